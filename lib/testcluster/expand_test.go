package testcluster_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// rebalance queues a REBALANCE and waits for its moves, repeating until
// the plan is empty (replica moves first, then the switchovers that
// balance masters), and fails the test on a move that does not finish.
func rebalance(t *testing.T, cl *client.Client, mode client.RebalanceMode, nodes []string) (moves int) {
	t.Helper()
	for round := range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		queued, err := cl.Rebalance(ctx, mode, nodes, false, 0)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if len(queued) == 0 {
			return moves
		}
		t.Logf("%v round %d: %d moves", mode, round, len(queued))
		moves += len(queued)
		ids := make(map[uint64]bool)
		for _, m := range queued {
			ids[m.ID] = true
		}
		for _, m := range waitMoves(t, cl, 5*time.Minute) {
			if ids[m.ID] && m.State != client.MoveDone {
				t.Fatalf("move %d (%v %s/%d %s->%s) ended %v: %s", m.ID, m.Kind, m.Table, m.Partition, m.From, m.To, m.State, m.Error)
			}
		}
	}
	t.Fatalf("%v did not settle in 4 rounds", mode)
	return moves
}

// checkLayout checks the placement rules on table: replicas of a
// partition in distinct zones, and every node's replica count within 10%
// of its (equal-weight) share.
func checkLayout(t *testing.T, cl *client.Client, table string, nodes []string, zoneOf map[string]string) {
	t.Helper()
	topo := pullTable(t, cl, table)
	load := make(map[string]int)
	total := 0
	for _, p := range topo.Tables[0].Partitions {
		zones := make(map[string]bool)
		for _, a := range append([]string{p.Master}, p.Slaves...) {
			if zones[zoneOf[a]] {
				t.Errorf("partition %d has two replicas in zone %s: %s %v", p.ID, zoneOf[a], p.Master, p.Slaves)
			}
			zones[zoneOf[a]] = true
			load[a]++
			total++
		}
	}
	share := float64(total) / float64(len(nodes))
	for _, a := range nodes {
		if dev := math.Abs(float64(load[a])-share) / share; dev > 0.10 {
			t.Errorf("node %s holds %d replicas, share %.1f (off by %.0f%%)", a, load[a], share, dev*100)
		}
	}
	for a := range load {
		found := false
		for _, n := range nodes {
			found = found || n == a
		}
		if !found {
			t.Errorf("node %s still holds %d replicas", a, load[a])
		}
	}
	t.Logf("layout over %d nodes: %v", len(nodes), load)
}

// TestExpandAndShrinkUnderLoad expands a 64-partition table from 3 to 6
// nodes and shrinks it back, with a verifier writing and reading
// throughout.
func TestExpandAndShrinkUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	zones := []string{"a", "b", "c"}
	c := testcluster.Start(t, testcluster.Options{
		NodeArgsFor: func(i int) []string { return []string{"--zone", zones[i%3]} },
		MetaArgs:    []string{"--max-moves-per-node", "4"},
	})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: 64, Replicas: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Data to move, then load while it moves.
	if err := parallel(200, 8, func(b int) error {
		kvs := make([]client.KeyValue, 100)
		for i := range kvs {
			kvs[i] = client.KeyValue{Key: key(b*100 + i), Value: value(b*100 + i)}
		}
		return cl.MSet(ctx, "t", kvs, 0)
	}); err != nil {
		t.Fatal(err)
	}
	v := startVerifier(t, cl, "t", 64, 8)

	old := c.NodeAddrs()
	zoneOf := make(map[string]string)
	for i, a := range old {
		zoneOf[a] = zones[i%3]
	}
	for range 3 {
		p := c.AddNode()
		zoneOf[p.Addr] = zones[(len(c.Nodes)-1)%3]
	}
	start := time.Now()
	n := rebalance(t, cl, client.RebalanceExpand, nil)
	t.Logf("expand to 6 nodes: %d moves in %v, %d verifier writes so far", n, time.Since(start), v.count())
	checkLayout(t, cl, "t", c.NodeAddrs(), zoneOf)

	start = time.Now()
	added := c.NodeAddrs()[3:]
	n = rebalance(t, cl, client.RebalanceShrink, added)
	t.Logf("shrink to 3 nodes: %d moves in %v, %d verifier writes so far", n, time.Since(start), v.count())
	checkLayout(t, cl, "t", old, zoneOf)

	v.check(t)
	if err := checkAll(ctx, cl, "t", 20_000); err != nil {
		t.Fatal(err)
	}
	// The drained nodes can go once they are DOWN.
	for _, a := range added {
		if err := c.NodeByAddr(a).Stop(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitNodesDown(ctx, added...); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.RemoveNodes(ctx, added, 0); err != nil {
		t.Fatal(err)
	}
	nodes, _, err := cl.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 {
		t.Fatalf("%d nodes after removing the drained ones", len(nodes))
	}
}
