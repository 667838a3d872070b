package suite

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// probeTimeout bounds the probe's write. It is below the meta servers'
// default down-timeout (3s), so the paused slaves are not declared DOWN
// and failed over while the probe runs.
const probeTimeout = 2 * time.Second

// Probe is whether a cluster honours min_sync_replicas, as tried.
type Probe struct {
	// Honoured is "yes", "no" or "unknown".
	Honoured string `json:"honoured"`
	Detail   string `json:"detail"`
}

// probeMinSync pauses (SIGSTOP) every slave of one partition and writes a
// key of that partition. A master that waits for a slave cannot
// acknowledge it: it must answer NOT_ENOUGH_REPLICAS or TIMEOUT. An
// acknowledged write means the setting is not honoured (yet), and the
// cluster's figures are those of asynchronous replication.
func probeMinSync(ctx context.Context, cfg *Config, sys *system) Probe {
	unknown := func(format string, args ...any) Probe {
		return Probe{Honoured: "unknown", Detail: fmt.Sprintf(format, args...)}
	}
	cl, err := client.New(ctx, client.Options{MetaAddrs: []string{sys.addr}, DefaultTimeout: probeTimeout, Logger: cfg.Log})
	if err != nil {
		return unknown("client: %v", err)
	}
	defer cl.Close()
	var key []byte
	var loc client.Location
	for i := 0; i < 100_000 && key == nil; i++ {
		k := []byte("min-sync-probe:" + strconv.Itoa(i))
		l, err := cl.Locate(ctx, cfg.Table, k)
		if err != nil {
			return unknown("locate: %v", err)
		}
		if l.Master != "" && len(l.Slaves) > 0 {
			key, loc = k, l
		}
	}
	if key == nil {
		return unknown("no partition with a master and slaves")
	}
	var paused []*proc
	defer func() {
		for _, p := range paused {
			p.signal(syscall.SIGCONT)
		}
	}()
	for _, slave := range loc.Slaves {
		for i, addr := range sys.nodeAddrs {
			if addr == slave {
				if err := sys.nodes[i].signal(syscall.SIGSTOP); err != nil {
					return unknown("pause %s: %v", slave, err)
				}
				paused = append(paused, sys.nodes[i])
			}
		}
	}
	if len(paused) != len(loc.Slaves) {
		return unknown("slaves %v are not all nodes the suite started", loc.Slaves)
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	start := time.Now()
	err = cl.Set(pctx, cfg.Table, key, []byte("probe"), 0)
	took := time.Since(start).Round(time.Millisecond)
	what := fmt.Sprintf("write to partition %d (master %s) with its %d slaves paused", loc.Partition, loc.Master, len(paused))
	switch {
	case err == nil:
		return Probe{Honoured: "no", Detail: fmt.Sprintf("%s was acknowledged in %v", what, took)}
	case errors.Is(err, status.ErrNotEnoughReplicas) || status.Code(err) == zppb.Code_TIMEOUT || errors.Is(err, context.DeadlineExceeded):
		return Probe{Honoured: "yes", Detail: fmt.Sprintf("%s failed after %v: %v", what, took, err)}
	}
	return unknown("%s: %v", what, err)
}
