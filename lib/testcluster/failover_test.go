package testcluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// keyIn returns a key of partition id of a table with n partitions.
func keyIn(n, id uint32, prefix string) []byte {
	for i := 0; ; i++ {
		k := fmt.Appendf(nil, "%s-%d", prefix, i)
		if keyspace.Partition(k, n) == id {
			return k
		}
	}
}

// masterOf returns the current master of (table, partition) as meta says.
func masterOf(t *testing.T, cl *client.Client, table string, partition uint32) string {
	t.Helper()
	return pullTable(t, cl, table).Tables[0].Partitions[partition].Master
}

// TestFailoverAfterMasterKill kills the master of a partition under
// continuous writes, with the default heartbeat settings (ping 1 s,
// down-timeout 3 s), and logs how long writes to that partition fail
// (docs/failover.md has the figures). It asserts the failover and the
// rejoin, not a duration: a wall-clock target fails on a loaded machine.
func TestFailoverAfterMasterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{NodeArgs: []string{"--ping-interval", "1s"}})
	cl := newClient(t, c)
	const partitions = 4
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: partitions, Replicas: 3})
	victim := masterOf(t, cl, "t", 0)
	k := keyIn(partitions, 0, "hot")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		killedAt    atomic.Int64 // unix nanos
		recoveredAt atomic.Int64
	)
	stop := startLoops(t, 4, func(w, i int) error {
		start := time.Now().UnixNano()
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		err := cl.Set(wctx, "t", k, fmt.Appendf(nil, "%d-%d", w, i), 0)
		if err == nil && killedAt.Load() != 0 && start > killedAt.Load() {
			recoveredAt.CompareAndSwap(0, time.Now().UnixNano())
		}
		return err
	})
	testcluster.Poll(t, 30*time.Second, func() error {
		if _, err := cl.Get(ctx, "t", k); err != nil {
			return err
		}
		return nil
	})
	if err := c.NodeByAddr(victim).Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt.Store(time.Now().UnixNano())
	testcluster.Poll(t, time.Minute, func() error {
		if recoveredAt.Load() == 0 {
			return errors.New("no write started after the kill has succeeded")
		}
		return nil
	})
	stop()
	recovery := time.Duration(recoveredAt.Load() - killedAt.Load())
	newMaster := masterOf(t, cl, "t", 0)
	t.Logf("time to recover: %v (master %s killed, %s promoted)", recovery, victim, newMaster)
	if newMaster == victim {
		t.Fatalf("partition 0 still mastered by the killed %s", victim)
	}

	// The killed node comes back as a slave and catches up.
	if err := c.NodeByAddr(victim).Start(); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, c, "t", partitions, 3, time.Minute)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	infos, err := replicationInfo(ctx2, c, "t")
	if err != nil {
		t.Fatal(err)
	}
	for _, ri := range infos[victim] {
		if ri.Partition == 0 && ri.Role != "slave" {
			t.Fatalf("the old master rejoined as %s", ri.Role)
		}
	}
}

// TestPausedMasterIsFencedAndRejoins stops a master with SIGSTOP while a
// client writes to it, lets meta fail it over, and resumes it: it serves no
// write any more, becomes a slave and ends with exactly the new master's
// data, which holds every acknowledged write.
func TestPausedMasterIsFencedAndRejoins(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Proxies: true})
	cl := newClient(t, c)
	// min_sync_replicas=1: every acknowledged write must survive the
	// failover (with 0, those no slave had pulled yet are lost by design).
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: 1, Replicas: 3, MinSyncReplicas: 1})
	old := masterOf(t, cl, "t", 0)
	oldNode := c.NodeByAddr(old)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var (
		mu    sync.Mutex
		keys  [][]byte // acknowledged
		acked atomic.Int64
		tried atomic.Int64
	)
	stop := startLoops(t, 4, func(w, i int) error {
		k := fmt.Appendf(nil, "w%d-%d", w, i)
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		tried.Add(1)
		err := cl.Set(wctx, "t", k, k, 0)
		if err == nil {
			mu.Lock()
			keys = append(keys, k)
			mu.Unlock()
			acked.Add(1)
		}
		return err
	})
	testcluster.Poll(t, 30*time.Second, func() error {
		if acked.Load() < 500 {
			return fmt.Errorf("%d writes so far", acked.Load())
		}
		return nil
	})

	if err := oldNode.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	// A write sent straight to the paused master waits in its socket.
	conn, err := rpc.Dial(ctx, old, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fenced := make(chan *zppb.Response, 1)
	go func() {
		resp, err := conn.Call(ctx, &zppb.Request{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: "t", Key: []byte("fenced"), Value: []byte("x")}}})
		if err != nil {
			resp = status.Response(err)
		}
		fenced <- resp
	}()

	testcluster.Poll(t, time.Minute, func() error {
		if m := masterOf(t, cl, "t", 0); m == old {
			return fmt.Errorf("%s is still master", old)
		}
		return nil
	})
	t.Logf("failover %v after SIGSTOP", time.Since(paused))
	before := acked.Load()
	testcluster.Poll(t, time.Minute, func() error {
		if acked.Load() < before+100 {
			return fmt.Errorf("only %d writes since the failover", acked.Load()-before)
		}
		return nil
	})

	if err := oldNode.Resume(); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-fenced:
		if resp.Code == zppb.Code_OK {
			t.Fatalf("the replaced master accepted a write after it resumed (answer at epoch %d)", resp.Epoch)
		}
		t.Logf("write to the resumed old master: %v %s", resp.Code, resp.Msg)
	case <-ctx.Done():
		t.Fatal("no answer from the resumed master")
	}
	stop()

	waitConverged(t, c, "t", 1, 3, 2*time.Minute)
	// Every acknowledged write is there; failed ones may be too.
	err = parallel(len(keys), 8, func(i int) error {
		if v, err := cl.Get(ctx, "t", keys[i]); err != nil || string(v) != string(keys[i]) {
			return fmt.Errorf("acknowledged %s: %q, %v", keys[i], v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	states := replicaDigests(t, c, "t", 1)
	n := countKeys(states)
	// The write sent straight to the paused master is not counted in
	// tried; it was refused, so it must not be there, but the bound
	// leaves it to the check on its answer.
	if n < len(keys) || int64(n) > tried.Load()+1 {
		t.Errorf("replicas hold %d keys; %d writes acknowledged of %d sent", n, len(keys), tried.Load())
	}
	assertReplicasEqual(t, states, 1, n)
	for node, parts := range states {
		t.Logf("%s: %+v", node, parts[0])
	}
}

// countKeys is the key count of the first replica in states; the test then
// checks every replica has the same.
func countKeys(states map[string]map[uint32]replicaState) int {
	for _, parts := range states {
		return parts[0].keys
	}
	return 0
}
