package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRebalanceMinimalMoves checks by brute force on small random clusters
// that Rebalance moves no more replicas than needed: among all layouts that
// meet rule 1 and the load bands of rule 2 and bring every count that is
// outside its band now to its share rounded (what Rebalance aims for), none
// has fewer moves than the plan.
func TestRebalanceMinimalMoves(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	runs := 150
	if raceEnabled || testing.Short() {
		runs = 25
	}
	moved, exchanged := 0, 0
	for run := range runs {
		nodes, table := smallCluster(rng)
		tables := []Table{table}
		plan, err := Rebalance(nodes, tables, Options{})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		best, layouts := fewestMoves(nodes, table)
		if layouts == 0 {
			t.Fatalf("run %d: no acceptable layout, yet Rebalance found %v", run, plan.Target)
		}
		if len(plan.Moves) > 0 {
			moved++
		}
		if len(plan.Moves) > countBound(tables, plan.Target) {
			exchanged++
		}
		if len(plan.Moves) != best {
			t.Errorf("run %d: %d moves, brute force finds %d (nodes %+v, table %+v)", run, len(plan.Moves), best, nodes, table)
		}
	}
	t.Logf("%d runs, %d with moves, %d of them with exchanges", runs, moved, exchanged)
}

// smallCluster returns 3..5 nodes in 1..3 zones with weights 1..3 (one of
// them maybe DOWN or draining) and a table of 2..4 partitions with 1..3
// replicas placed at random.
func smallCluster(rng *rand.Rand) ([]Node, Table) {
	n := 3 + rng.IntN(3)
	zones := 1 + rng.IntN(3)
	nodes := make([]Node, n)
	for i := range nodes {
		nodes[i] = Node{Addr: fmt.Sprintf("n%d", i), Zone: fmt.Sprint("z", rng.IntN(zones)), Weight: uint32(1 + rng.IntN(3)), Up: true}
	}
	switch rng.IntN(4) {
	case 0:
		nodes[rng.IntN(n)].Up = false
	case 1:
		nodes[rng.IntN(n)].Draining = true
	}
	eligible := 0
	for _, nd := range nodes {
		if nd.eligible() {
			eligible++
		}
	}
	r := 1 + rng.IntN(min(3, eligible))
	tb := Table{Name: "t"}
	for range 2 + rng.IntN(3) {
		perm := rng.Perm(n)[:r]
		p := Replicas{Master: nodes[perm[0]].Addr}
		for _, k := range perm[1:] {
			p.Slaves = append(p.Slaves, nodes[k].Addr)
		}
		tb.Partitions = append(tb.Partitions, p)
	}
	return nodes, tb
}

// fewestMoves enumerates every layout of the table's partitions on the
// eligible nodes and returns the fewest moves of an acceptable one, and how
// many are acceptable.
func fewestMoves(nodes []Node, table Table) (best, acceptable int) {
	var eligible []string
	for _, n := range nodes {
		if n.eligible() {
			eligible = append(eligible, n.Addr)
		}
	}
	slices.Sort(eligible)
	r := 1 + len(table.Partitions[0].Slaves)
	sets := combinations(eligible, r)
	nowCounts, _ := loads([]Table{table})
	cl := newCluster(nodes)
	ts := newTableState(cl, table, false)
	best = 1 << 30
	choice := make([]int, len(table.Partitions))
	for {
		layout := Table{Name: table.Name, Partitions: make([]Replicas, len(choice))}
		moves := 0
		for pid, c := range choice {
			set := sets[c]
			layout.Partitions[pid] = Replicas{Master: set[0], Slaves: set[1:]}
			for _, a := range set {
				if !slices.Contains(replicasOf(table.Partitions[pid]), a) {
					moves++
				}
			}
		}
		if acceptableLayout(nodes, cl, ts, nowCounts, layout) {
			acceptable++
			best = min(best, moves)
		}
		// Next combination (odometer).
		k := 0
		for k < len(choice) {
			choice[k]++
			if choice[k] < len(sets) {
				break
			}
			choice[k] = 0
			k++
		}
		if k == len(choice) {
			return best, acceptable
		}
	}
}

// acceptableLayout: rule 1, the replica bands of rule 2, and every count
// outside its band now at its share rounded.
func acceptableLayout(nodes []Node, cl *cluster, ts *tableState, now map[string]int, layout Table) bool {
	for _, v := range Check(nodes, []Table{layout}, Options{}) {
		if v.Kind != MasterLoad && v.Kind != TableMasterLoad {
			return false
		}
	}
	counts, _ := loads([]Table{layout})
	for i, n := range cl.nodes {
		b := bandOf(ts.replicaShare[i], slack(ts.replicaShare[i], DefaultTolerance))
		if !b.contains(now[n.Addr]) && (counts[n.Addr] < b.coreLo || counts[n.Addr] > b.coreHi) {
			return false
		}
	}
	return true
}

// combinations returns the k-subsets of items, in order.
func combinations(items []string, k int) [][]string {
	if k == 0 {
		return [][]string{nil}
	}
	var out [][]string
	for i := range items {
		for _, rest := range combinations(items[i+1:], k-1) {
			out = append(out, append([]string{items[i]}, rest...))
		}
	}
	return out
}
