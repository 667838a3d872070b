package testcluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// scheduleSet changes scheduler settings through the client.
func scheduleSet(t *testing.T, cl *client.Client, ch client.ScheduleChange) *client.ScheduleStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := cl.Schedule(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// layoutOf returns, per node, the partitions of table it holds and those
// it masters.
func layoutOf(t *testing.T, cl *client.Client, table string) (held, mastered map[string][]uint32, topo *client.Topology) {
	t.Helper()
	topo = pullTable(t, cl, table)
	held, mastered = make(map[string][]uint32), make(map[string][]uint32)
	for _, p := range topo.Tables[0].Partitions {
		mastered[p.Master] = append(mastered[p.Master], p.ID)
		for _, a := range append([]string{p.Master}, p.Slaves...) {
			held[a] = append(held[a], p.ID)
		}
	}
	return held, mastered, topo
}

// schedulerMoves returns the scheduler's moves of kind, by partition.
func schedulerMoves(t *testing.T, cl *client.Client, kind client.MoveKind) map[uint32][]client.Move {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	moves, err := cl.MoveStatus(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[uint32][]client.Move)
	for _, m := range moves {
		if m.Origin == "scheduler" && m.Kind == kind {
			out[m.Partition] = append(out[m.Partition], m)
		}
	}
	return out
}

// killMetaLeaderAfter waits until the scheduler has finished one move of
// kind and more remain, then kills the meta leader: the new leader must
// go on from the replicated state without redoing what was done.
func killMetaLeaderAfter(t *testing.T, c *testcluster.Cluster, cl *client.Client, kind client.MoveKind) {
	t.Helper()
	testcluster.Poll(t, 90*time.Second, func() error {
		for _, ms := range schedulerMoves(t, cl, kind) {
			for _, m := range ms {
				if m.State == client.MoveDone {
					return nil
				}
			}
		}
		return fmt.Errorf("no %s move of the scheduler done yet", kind)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Metas[leader].Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed meta leader %s in the middle", c.Metas[leader].Addr)
}

// TestSchedulerRepairsLostNode: a node killed for good is DOWN past the
// down-timeout (2 s here); the scheduler rebuilds each of its replicas on
// a node that receives (never the cordoned one), one move at a time, with
// the meta leader killed in the middle; writes with min_sync_replicas=1
// keep being acknowledged and none is lost; each replica is rebuilt once;
// the dead node can then be removed.
func TestSchedulerRepairsLostNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	// Five nodes, three replicas: with one dead and one cordoned, three
	// receive, and every partition keeps a slave to acknowledge
	// min_sync_replicas=1 writes while its lost replica is rebuilt.
	c := testcluster.Start(t, testcluster.Options{Nodes: 5, Scheduler: true, MetaArgs: fastFailover})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: 8, Replicas: 3, MinSyncReplicas: 1})
	down, maxMoves := 2*time.Second, uint32(1)
	scheduleSet(t, cl, client.ScheduleChange{DownTimeout: &down, MaxMoves: &maxMoves})

	dead, cordoned := c.Nodes[0], c.Nodes[4]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := cl.CordonNodes(ctx, []string{cordoned.Addr}, true); err != nil {
		t.Fatal(err)
	}
	heldBefore, _, _ := layoutOf(t, cl, "t")
	lost := heldBefore[dead.Addr]
	if len(lost) == 0 {
		t.Fatalf("%s holds nothing to repair", dead.Addr)
	}
	v := startVerifier(t, cl, "t", 32, 4)
	if err := dead.Kill(); err != nil {
		t.Fatal(err)
	}
	if len(lost) > 1 {
		killMetaLeaderAfter(t, c, cl, client.MoveMigrate)
	}

	testcluster.Poll(t, 2*time.Minute, func() error {
		held, _, topo := layoutOf(t, cl, "t")
		if n := len(held[dead.Addr]); n > 0 {
			return fmt.Errorf("%s still holds %d replicas", dead.Addr, n)
		}
		for _, p := range topo.Tables[0].Partitions {
			if r := 1 + len(p.Slaves); r != 3 {
				return fmt.Errorf("partition %d has %d replicas", p.ID, r)
			}
		}
		return nil
	})
	waitMoves(t, cl, time.Minute)
	v.check(t)

	held, _, _ := layoutOf(t, cl, "t")
	if !slices.Equal(held[cordoned.Addr], heldBefore[cordoned.Addr]) {
		t.Errorf("cordoned %s holds %v, held %v before the repair", cordoned.Addr, held[cordoned.Addr], heldBefore[cordoned.Addr])
	}
	repairs := schedulerMoves(t, cl, client.MoveMigrate)
	for _, id := range lost {
		var done int
		for _, m := range repairs[id] {
			if m.From != dead.Addr {
				t.Errorf("repair of partition %d from %s, not the dead node", id, m.From)
			}
			if m.State == client.MoveDone {
				done++
			}
		}
		if done != 1 {
			t.Errorf("partition %d: %d repairs done, want 1: %+v", id, done, repairs[id])
		}
	}
	st := scheduleSet(t, cl, client.ScheduleChange{})
	if len(st.UnderReplicated) != 0 {
		t.Errorf("still under-replicated: %+v", st.UnderReplicated)
	}
	if !slices.ContainsFunc(st.Events, func(e client.ScheduleEvent) bool { return e.Kind == "repair" }) {
		t.Errorf("no repair event: %+v", st.Events)
	}
	if _, err := cl.RemoveNodes(ctx, []string{dead.Addr}, 0); err != nil {
		t.Errorf("remove the repaired dead node: %v", err)
	}
}

// TestSchedulerBalancesMastersAfterRestart: a node killed and restarted
// comes back as a slave everywhere; master balance hands it its share of
// masters back by planned switchovers (with the meta leader killed in the
// middle), without losing an acknowledged write.
func TestSchedulerBalancesMastersAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Scheduler: true, MetaArgs: fastFailover})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: 12, Replicas: 3, MinSyncReplicas: 1})
	maxMoves := uint32(1)
	scheduleSet(t, cl, client.ScheduleChange{MaxMoves: &maxMoves})
	v := startVerifier(t, cl, "t", 32, 4)

	node := c.Nodes[0]
	if err := node.Kill(); err != nil {
		t.Fatal(err)
	}
	testcluster.Poll(t, time.Minute, func() error {
		if _, mastered, _ := layoutOf(t, cl, "t"); len(mastered[node.Addr]) > 0 {
			return fmt.Errorf("%s still masters %v", node.Addr, mastered[node.Addr])
		}
		return nil
	})
	before := schedulerMoves(t, cl, client.MoveSetMaster)
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	killMetaLeaderAfter(t, c, cl, client.MoveSetMaster)
	// 12 masters over 3 nodes of equal weight: 4 each, within
	// lib/placement's tolerance (3 to 5).
	testcluster.Poll(t, 2*time.Minute, func() error {
		_, mastered, _ := layoutOf(t, cl, "t")
		for _, n := range c.Nodes {
			if k := len(mastered[n.Addr]); k < 3 || k > 5 {
				return fmt.Errorf("%s masters %d partitions", n.Addr, k)
			}
		}
		return nil
	})
	t.Logf("masters balanced %s after the restart", time.Since(back).Round(100*time.Millisecond))
	waitMoves(t, cl, time.Minute)
	v.check(t)
	after := schedulerMoves(t, cl, client.MoveSetMaster)
	total := 0
	for id, ms := range after {
		done := 0
		for _, m := range ms {
			if m.State == client.MoveDone && !slices.ContainsFunc(before[id], func(b client.Move) bool { return b.ID == m.ID }) {
				done++
			}
		}
		if done > 1 {
			t.Errorf("partition %d switched over %d times: %+v", id, done, ms)
		}
		total += done
	}
	if total < 3 || total > 5 {
		t.Errorf("%d switchovers to balance 12 masters over 3 nodes; want 3 to 5", total)
	}
}
