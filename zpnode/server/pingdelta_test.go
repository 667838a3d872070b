package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	nodeserver "github.com/zeppelin-kv/zeppelin/zpnode/server"
)

// TestPingCarriesChangedPositions: once the meta leader holds a node's
// positions, the node's PINGs carry only the replicas whose position
// changed: none while the table is idle, one after a write.
func TestPingCarriesChangedPositions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	type ping struct {
		base      uint64
		positions []*zppb.ReplicaPosition
	}
	var mu sync.Mutex
	pings := map[string][]ping{} // by node
	record := func(req *zppb.Request) *zppb.Response {
		if p := req.GetPing(); p != nil {
			mu.Lock()
			pings[p.Addr] = append(pings[p.Addr], ping{p.PositionsBase, p.Positions})
			mu.Unlock()
		}
		return nil
	}
	// Each node PINGs through taps in front of the meta servers.
	c := inproc.StartTest(t, inproc.Options{Nodes: 3, NodeConfig: func(_ int, cfg *nodeserver.Config) {
		var addrs []string
		for _, m := range cfg.MetaAddrs {
			tap, err := inproc.NewTap("127.0.0.1:0", m)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tap.Close() })
			tap.SetHook(record)
			addrs = append(addrs, tap.Addr())
		}
		cfg.MetaAddrs = addrs
		cfg.PingInterval = 100 * time.Millisecond
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "d", Partitions: 8, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	// mark returns how many PINGs each node has sent so far.
	mark := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		m := map[string]int{}
		for addr, ps := range pings {
			m[addr] = len(ps)
		}
		return m
	}
	// waitEach waits until every node sent, after from, a delta PING that
	// ok accepts.
	waitEach := func(what string, from map[string]int, ok func(ping) bool) {
		t.Helper()
		testcluster.Poll(t, 30*time.Second, func() error {
			mu.Lock()
			defer mu.Unlock()
			for _, addr := range c.NodeAddrs() {
				found := false
				for _, p := range pings[addr][from[addr]:] {
					if p.base != 0 && ok(p) {
						found = true
					}
				}
				if !found {
					return fmt.Errorf("%s: no delta PING with %s yet", addr, what)
				}
			}
			return nil
		})
	}
	waitEach("no position (the table idle)", mark(), func(p ping) bool { return len(p.positions) == 0 })
	from := mark()
	if err := cl.Set(ctx, "d", []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	// Every node holds a replica of every partition: the write moves one
	// position on each.
	waitEach("the written replica's position alone", from, func(p ping) bool {
		return len(p.positions) == 1 && p.positions[0].Table == "d" && p.positions[0].Lsn > 0
	})
}
