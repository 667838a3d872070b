package testcluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// incrBy sends one INCRBY attempt with request id straight to addr.
func incrBy(ctx context.Context, c *testcluster.Cluster, addr string, id []byte, key string, delta int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := c.Call(ctx, addr, &zppb.Request{RequestId: id, Cmd: &zppb.Request_Incrby{Incrby: &zppb.IncrByRequest{Table: "t", Key: []byte(key), Delta: delta}}})
	return resp.GetIncrby().GetValue(), err
}

// TestFailoverRetryAndRejoinWithTail, with min_sync_replicas=1:
//   - an INCRBY whose answer is lost, retried with its request id on the
//     slave promoted after the master is killed, is answered with the first
//     attempt's value and not applied again;
//   - the killed master had a tail of writes no slave acknowledged (both
//     slaves were stopped); it rejoins as a slave, the tail is cut, and every
//     replica ends with the new master's data.
func TestFailoverRetryAndRejoinWithTail(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Proxies: true, MetaArgs: fastFailover})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: 1, Replicas: 3, MinSyncReplicas: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo, err := cl.Pull(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	p := topo.Tables[0].Partitions[0]
	old := c.NodeByAddr(p.Master)

	// The first attempt is applied; its answer is "lost" on the way.
	lost := []byte("0123456789abcdef")
	if v, err := incrBy(ctx, c, old.Addr, lost, "counter", 5); err != nil || v != 5 {
		t.Fatalf("first INCRBY: %d, %v", v, err)
	}

	// A tail no slave gets: the slaves cannot reach the master, to which
	// the test writes around its proxy; the writes wait for acknowledgements
	// until their deadline. A write whose deadline passes while it is still
	// queued on a busy machine is dropped unlogged (CI saw 3 of 4 logged), so
	// the tail is whatever reached the binlog, at least one record.
	if err := old.CutFromClients(); err != nil {
		t.Fatal(err)
	}
	direct := old.Inbound.Target()
	const tail = 4
	var wg sync.WaitGroup
	tailErrs := make([]error, tail)
	for i := range tail {
		wg.Go(func() {
			wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
			defer wcancel()
			_, tailErrs[i] = c.Call(wctx, direct, &zppb.Request{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: "t", Key: fmt.Appendf(nil, "tail-%d", i), Value: []byte("x")}}})
		})
	}
	wg.Wait()
	for i, err := range tailErrs {
		if err == nil {
			t.Fatalf("tail write %d acknowledged with both slaves cut off", i)
		}
	}
	ictx, icancel := context.WithTimeout(ctx, 5*time.Second)
	info, err := c.Call(ictx, direct, &zppb.Request{Cmd: &zppb.Request_Info{Info: &zppb.InfoRequest{Section: zppb.InfoSection_INFO_REPLICATION, Table: "t"}}})
	icancel()
	if err != nil {
		t.Fatal(err)
	}
	if ri := info.GetInfo().GetReplication()[0]; ri.Lsn <= ri.AppliedLsn || ri.Lsn > ri.AppliedLsn+tail {
		t.Fatalf("old master at lsn %d applied %d; want a tail of 1 to %d unapplied records", ri.Lsn, ri.AppliedLsn, tail)
	}
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	// Drop what the proxy holds back (records on their way to the slaves),
	// as the network of a dead machine would.
	old.Inbound.SetMode(testcluster.Reject)
	var promoted string
	testcluster.Poll(t, 30*time.Second, func() error {
		if promoted = masterOf(t, cl, "t", 0); promoted == old.Addr {
			return fmt.Errorf("%s is still master", old.Addr)
		}
		return nil
	})

	// The retry reaches the promoted slave, which replicated the first
	// attempt: same answer, counter unchanged.
	var retried int64
	testcluster.Poll(t, 30*time.Second, func() error {
		retried, err = incrBy(ctx, c, promoted, lost, "counter", 5)
		return err
	})
	if retried != 5 {
		t.Fatalf("retried INCRBY answered %d on the promoted slave; want the first answer, 5", retried)
	}
	if v, err := incrBy(ctx, c, promoted, []byte("fedcba9876543210"), "counter", 1); err != nil || v != 6 {
		t.Fatalf("next INCRBY: %d, %v; want 6", v, err)
	}
	for i := range tail {
		if _, err := cl.Get(ctx, "t", fmt.Appendf(nil, "tail-%d", i)); !errors.Is(err, status.ErrNotFound) {
			t.Fatalf("unacknowledged tail-%d after the failover: %v, want NOT_FOUND", i, err)
		}
	}
	if err := cl.Set(ctx, "t", []byte("after"), []byte("y"), 0); err != nil {
		t.Fatal(err)
	}

	// The old master comes back with its tail.
	if err := old.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, c, "t", 1, 3, time.Minute)
	infos, err := replicationInfo(ctx, c, "t")
	if err != nil {
		t.Fatal(err)
	}
	if ri := infos[old.Addr][0]; ri.Role != "slave" {
		t.Fatalf("old master rejoined as %s", ri.Role)
	}
	if v, err := cl.Get(ctx, "t", []byte("counter")); err != nil || string(v) != "6" {
		t.Fatalf("counter = %q, %v; want 6", v, err)
	}
	// counter and after, on every replica alike; no tail key anywhere.
	assertReplicasEqual(t, replicaDigests(t, c, "t", 1), 1, 2)
}
