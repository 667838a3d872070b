package testcluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestPausedMasterNextCallReachesNewMaster pauses (SIGSTOP) the master of
// a one-partition table: its kernel still accepts connections, nothing
// answers, so every call to it ends by its own deadline and no answer ever
// says the route is wrong. Once every meta server names a new master, the
// very next call must reach it, although the paused node stays paused.
// Calls that timed out against the paused master were sent, so their
// outcome is unknown.
func TestPausedMasterNextCallReachesNewMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: 1, Replicas: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cl.Set(ctx, "t", []byte("k"), []byte("before"), 0); err != nil {
		t.Fatal(err)
	}
	old := masterOf(t, cl, "t", 0)
	oldNode := c.NodeByAddr(old)
	if err := oldNode.Pause(); err != nil {
		t.Fatal(err)
	}
	defer oldNode.Resume()
	paused := time.Now()

	// Every meta server must name the new master: the client may ask any.
	newMaster := func() (string, error) {
		var m string
		for _, p := range c.Metas {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			resp, err := c.Call(pctx, p.Addr, &zppb.Request{Cmd: &zppb.Request_Pull{Pull: &zppb.PullRequest{Table: "t"}}})
			pcancel()
			if err != nil {
				return "", err
			}
			tables := resp.GetPull().GetTopology().GetTables()
			if len(tables) != 1 || len(tables[0].GetPartitions()) != 1 {
				return "", fmt.Errorf("meta %s: unexpected topology %v", p.Addr, tables)
			}
			pm := tables[0].GetPartitions()[0].GetMaster()
			if pm == old || pm == "" || (m != "" && pm != m) {
				return "", fmt.Errorf("meta %s names master %q", p.Addr, pm)
			}
			m = pm
		}
		return m, nil
	}

	const short = 300 * time.Millisecond
	var (
		firstErr error
		failed   int
		now      string
	)
	for i := 0; ; i++ {
		cctx, ccancel := context.WithTimeout(ctx, short)
		err := cl.Set(cctx, "t", []byte("k"), fmt.Appendf(nil, "during-%d", i), 0)
		ccancel()
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
		}
		m, merr := newMaster()
		if merr == nil {
			now = m
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no failover within %v of SIGSTOP: %v", time.Since(paused), merr)
		}
	}
	t.Logf("meta names %s instead of %s %v after SIGSTOP; %d short calls failed meanwhile", now, old, time.Since(paused), failed)
	if firstErr == nil {
		t.Fatal("the first call after SIGSTOP succeeded: the master was not paused")
	}
	if !errors.Is(firstErr, client.ErrUnknownOutcome) || !errors.Is(firstErr, context.DeadlineExceeded) {
		t.Errorf("write that timed out against the paused master = %v, want ErrUnknownOutcome and DeadlineExceeded", firstErr)
	}

	// The paused node stays paused: a success can only come from the new
	// master. Its deadline leaves time for the new master to learn of its
	// promotion (a PING, about a second), not for an answer from the old.
	start := time.Now()
	nctx, ncancel := context.WithTimeout(ctx, 5*time.Second)
	defer ncancel()
	if err := cl.Set(nctx, "t", []byte("k"), []byte("after"), 0); err != nil {
		t.Fatalf("first call after meta named %s: %v", now, err)
	}
	t.Logf("first call after the failover took %v", time.Since(start))
	if loc, err := cl.Locate(nctx, "t", []byte("k")); err != nil || loc.Master != now {
		t.Fatalf("Locate = %+v, %v; want master %s", loc, err, now)
	}
	if v, err := cl.Get(nctx, "t", []byte("k")); err != nil || string(v) != "after" {
		t.Fatalf("Get = %q, %v; want \"after\"", v, err)
	}
}
