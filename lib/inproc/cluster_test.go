package inproc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

// TestCluster runs the harness through what tests do with it: data on every
// node, a node stopped and restarted with its data, and a master cut off
// the network failed over, then healed back into the cluster.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := inproc.StartTest(t, inproc.Options{
		Proxies:    true,
		MetaConfig: func(_ int, cfg *metaserver.Config) { cfg.DownTimeout = 1500 * time.Millisecond },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "t", Partitions: 4, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	write := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			k := fmt.Appendf(nil, "k%d", i)
			wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := cl.Set(wctx, "t", k, k, 0)
			cancel()
			if err != nil {
				t.Fatalf("set %s: %v", k, err)
			}
		}
	}
	readAll := func(n int) {
		t.Helper()
		for i := range n {
			k := fmt.Appendf(nil, "k%d", i)
			if v, err := cl.Get(ctx, "t", k); err != nil || string(v) != string(k) {
				t.Fatalf("get %s: %q, %v", k, v, err)
			}
		}
	}
	write(0, 100)

	// A node stopped and restarted keeps its data and comes back UP.
	n := c.Nodes[1]
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitNodes(ctx, zppb.NodeState_UP, n.Addr); err != nil {
		t.Fatal(err)
	}
	write(100, 200)
	readAll(200)

	// The master of partition 0, cut off the network, is replaced.
	topo, err := cl.Pull(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	victim := c.Node(topo.Tables[0].Partitions[keyspace.Partition([]byte("k0"), 4)].Master)
	if err := victim.Isolate(); err != nil {
		t.Fatal(err)
	}
	// Writes go on at once: the first goes to the isolated master, which
	// never answers; its attempt times out and the call, whose deadline is
	// far off, retries at the new master once meta has failed over.
	write(200, 300)
	if err := c.WaitNodes(ctx, zppb.NodeState_DOWN, victim.Addr); err != nil {
		t.Fatal(err)
	}
	readAll(300)
	if err := victim.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitNodes(ctx, zppb.NodeState_UP, victim.Addr); err != nil {
		t.Fatal(err)
	}
	topo, err = cl.Pull(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range topo.Tables[0].Partitions {
		if p.Master == victim.Addr {
			t.Errorf("partition %d still mastered by the isolated node", p.ID)
		}
	}
}
