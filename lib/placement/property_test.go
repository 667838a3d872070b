package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRebalanceProperties runs Rebalance over random clusters (3..12 nodes
// in up to 4 zones and 3 racks, weights 1..4, some DOWN or draining, 1..4
// tables of 1..64 partitions with 1..3 replicas laid out at random, zone
// rules ignored). Whatever the input:
//   - the plan applies to exactly its Target, keeps replica counts, and
//     Target keeps rule 1 (distinct eligible nodes, zones and racks);
//   - Target meets the load bands of rule 2, over all tables and per table
//     (the water-filled shares always have a rounding that meets every cap,
//     and the flow finds it);
//   - Rebalance of Target plans nothing;
//   - each table's moves are at least its count changes, sum over nodes
//     of max(0, now - target), and often exactly that (more where zone
//     rules make replicas trade places).
//
// Rule 3 (masters) is met in all but rare runs, where the tables with one
// replica per partition (whose masters cannot switch) and weights leave no
// switchover that fixes a node's masters in one table; those misses are
// counted, must stay rare, and must be by one master.
func TestRebalanceProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	runs := 300
	if raceEnabled || testing.Short() {
		runs = 50
	}
	var st propertyStats
	for run := range runs {
		nodes, tables := randomCluster(rng)
		plan := checkRebalance(t, run, nodes, tables, &st)
		// Then a topology change on the balanced layout: nodes join,
		// drain, fail or change weight.
		changed := changeTopology(rng, nodes, plan.Target)
		st.changes++
		before := st.exchanges
		checkRebalance(t, run, changed, plan.Target, &st)
		if st.exchanges > before {
			st.changeExchanges++
		}
		if t.Failed() {
			t.Logf("nodes %+v", nodes)
			t.FailNow()
		}
	}
	t.Logf("%d runs: %d master misses; zone rules forced exchanges in %d random layouts and %d of %d topology changes",
		runs, st.masterMisses, st.exchanges-st.changeExchanges, st.changeExchanges, st.changes)
	if st.masterMisses > runs/50 {
		t.Errorf("%d master misses in %d runs", st.masterMisses, runs)
	}
}

type propertyStats struct {
	masterMisses, exchanges, changeExchanges, changes int
}

// checkRebalance runs Rebalance and checks the properties above.
func checkRebalance(t *testing.T, run int, nodes []Node, tables []Table, st *propertyStats) Plan {
	t.Helper()
	plan, err := Rebalance(nodes, tables, Options{})
	if err != nil {
		t.Fatalf("run %d: %v", run, err)
	}
	checkPlan(t, nodes, tables, plan)
	for _, v := range Check(nodes, plan.Target, Options{}) {
		switch v.Kind {
		case MasterLoad, TableMasterLoad:
			st.masterMisses++
			t.Logf("run %d: %v", run, v)
			if v.Have < v.Min-1 || v.Have > v.Max+1 {
				t.Errorf("run %d: master miss by more than one: %v", run, v)
			}
		default:
			t.Errorf("run %d: %v", run, v)
		}
	}
	again, err := Rebalance(nodes, plan.Target, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Moves)+len(again.MasterMoves) > 0 {
		t.Errorf("run %d: rebalancing the target plans %d moves, %d master moves", run, len(again.Moves), len(again.MasterMoves))
	}
	bound := countBound(tables, plan.Target)
	switch {
	case len(plan.Moves) < bound:
		t.Errorf("run %d: %d moves, fewer than the count changes %d", run, len(plan.Moves), bound)
	case len(plan.Moves) > bound:
		// Zone or rack caps made some replica trade places (for
		// instance, a node joins a zone every partition already has a
		// replica in, while the overloaded nodes are elsewhere).
		// TestRebalanceMinimalMoves shows by brute force that this is
		// still the fewest moves.
		st.exchanges++
	}
	return plan
}

// changeTopology returns nodes after a random change: up to 3 new nodes, up
// to 2 nodes draining or DOWN, a weight changed, keeping enough eligible
// nodes for 3 replicas.
func changeTopology(rng *rand.Rand, nodes []Node, tables []Table) []Node {
	out := slices.Clone(nodes)
	for i := range rng.IntN(4) {
		out = append(out, Node{
			Addr:   fmt.Sprintf("10.1.0.%d:9221", i),
			Zone:   out[rng.IntN(len(out))].Zone,
			Rack:   fmt.Sprintf("r%d", rng.IntN(3)),
			Weight: uint32(1 + rng.IntN(4)),
			Up:     true,
		})
	}
	eligible := func() int {
		n := 0
		for _, nd := range out {
			if nd.eligible() {
				n++
			}
		}
		return n
	}
	for range rng.IntN(3) {
		i := rng.IntN(len(out))
		if !out[i].eligible() || eligible() <= 3 {
			continue
		}
		if rng.IntN(2) == 0 {
			out[i].Draining = true
		} else {
			out[i].Up = false
		}
	}
	if rng.IntN(2) == 0 {
		out[rng.IntN(len(out))].Weight = uint32(1 + rng.IntN(4))
	}
	return out
}

// countBound returns the moves the count changes from before to after
// require: per table, the sum over nodes of max(0, before - after).
func countBound(before, after []Table) int {
	bound := 0
	for _, tb := range before {
		for _, ta := range after {
			if ta.Name != tb.Name {
				continue
			}
			was, _ := loads([]Table{tb})
			is, _ := loads([]Table{ta})
			for n, c := range was {
				bound += max(0, c-is[n])
			}
		}
	}
	return bound
}
