package placement

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// cl builds nodes n0..n(n-1), UP with weight 1, zone and rack from the
// functions when given.
func cl(n int, zone, rack func(i int) string) []Node {
	out := make([]Node, n)
	for i := range n {
		out[i] = Node{Addr: fmt.Sprintf("n%02d", i), Up: true, Weight: 1}
		if zone != nil {
			out[i].Zone = zone(i)
		}
		if rack != nil {
			out[i].Rack = rack(i)
		}
	}
	return out
}

// abc gives node i zone a, b or c.
func abc(i int) string { return string(rune('a' + i%3)) }

// roundRobin lays out a table of p partitions with r replicas on nodes:
// partition i on nodes i, i+1, ..., master first.
func roundRobin(name string, nodes []Node, p, r int) Table {
	t := Table{Name: name}
	for i := range p {
		rep := Replicas{Master: nodes[i%len(nodes)].Addr}
		for k := 1; k < r; k++ {
			rep.Slaves = append(rep.Slaves, nodes[(i+k)%len(nodes)].Addr)
		}
		t.Partitions = append(t.Partitions, rep)
	}
	return t
}

// loads returns replica and master counts per node over the tables.
func loads(tables []Table) (replicas, masters map[string]int) {
	replicas, masters = map[string]int{}, map[string]int{}
	for _, t := range tables {
		for _, p := range t.Partitions {
			masters[p.Master]++
			for _, a := range replicasOf(p) {
				replicas[a]++
			}
		}
	}
	return replicas, masters
}

// applyIndependently applies plan to tables by sets, without Apply: every
// move's From leaves and To arrives, and the master ends on the last
// MasterMove's To, or else where the moves carried it.
func applyIndependently(t *testing.T, tables []Table, plan Plan) map[string][]Replicas {
	t.Helper()
	type key struct {
		table string
		pid   uint32
	}
	sets := map[key]map[string]bool{}
	master := map[key]string{}
	out := map[string][]Replicas{}
	for _, tb := range tables {
		for pid, p := range tb.Partitions {
			k := key{tb.Name, uint32(pid)}
			sets[k] = map[string]bool{}
			for _, a := range replicasOf(p) {
				sets[k][a] = true
			}
			master[k] = p.Master
		}
	}
	for _, m := range plan.Moves {
		k := key{m.Table, m.Partition}
		if !sets[k][m.From] || sets[k][m.To] {
			t.Fatalf("move %v does not fit %v", m, sets[k])
		}
		delete(sets[k], m.From)
		sets[k][m.To] = true
		if master[k] == m.From {
			master[k] = m.To
		}
	}
	for _, m := range plan.MasterMoves {
		k := key{m.Table, m.Partition}
		if !sets[k][m.To] || master[k] == m.To {
			t.Fatalf("master move %v does not fit %v (master %s)", m, sets[k], master[k])
		}
		master[k] = m.To
	}
	for _, tb := range tables {
		for pid := range tb.Partitions {
			k := key{tb.Name, uint32(pid)}
			rest := slices.Sorted(maps.Keys(sets[k]))
			rest = slices.DeleteFunc(rest, func(a string) bool { return a == master[k] })
			out[tb.Name] = append(out[tb.Name], Replicas{Master: master[k], Slaves: rest})
		}
	}
	return out
}

// sameLayout reports whether the tables equal want, comparing slaves as
// sets.
func sameLayout(tables []Table, want map[string][]Replicas) bool {
	if len(tables) != len(want) {
		return false
	}
	for _, tb := range tables {
		w, ok := want[tb.Name]
		if !ok || len(w) != len(tb.Partitions) {
			return false
		}
		for pid, p := range tb.Partitions {
			if p.Master != w[pid].Master || !slices.Equal(slices.Sorted(slices.Values(p.Slaves)), w[pid].Slaves) {
				return false
			}
		}
	}
	return true
}

// checkPlan checks what every plan must satisfy: the moves and master moves
// take tables to Target exactly, replica counts are kept, and Target keeps
// the hard rules (distinct eligible nodes, zone and rack spread).
func checkPlan(t *testing.T, nodes []Node, tables []Table, plan Plan) {
	t.Helper()
	applied, err := Apply(tables, plan)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if !slices.EqualFunc(applied, plan.Target, tableEqual) {
		t.Fatalf("Apply(current, plan) != Target")
	}
	if !sameLayout(plan.Target, applyIndependently(t, tables, plan)) {
		t.Fatalf("Target is not what the moves make")
	}
	for _, tb := range tables {
		i := slices.IndexFunc(plan.Target, func(x Table) bool { return x.Name == tb.Name })
		for pid, p := range tb.Partitions {
			if got := plan.Target[i].Partitions[pid]; len(got.Slaves) != len(p.Slaves) {
				t.Fatalf("%s/%d: %d replicas, had %d", tb.Name, pid, 1+len(got.Slaves), 1+len(p.Slaves))
			}
		}
	}
	for _, v := range Check(nodes, plan.Target, Options{}) {
		switch v.Kind {
		case ReplicaLoad, TableReplicaLoad, MasterLoad, TableMasterLoad:
		default:
			t.Errorf("target breaks rule 1: %v", v)
		}
	}
	seen := map[Move]bool{}
	for _, m := range plan.Moves {
		if seen[m] {
			t.Fatalf("move %v twice", m)
		}
		seen[m] = true
	}
}

func tableEqual(a, b Table) bool {
	return a.Name == b.Name && slices.EqualFunc(a.Partitions, b.Partitions, func(x, y Replicas) bool {
		return x.Master == y.Master && slices.Equal(x.Slaves, y.Slaves)
	})
}

// shareOf returns n's weight share of total among the eligible nodes.
func shareOf(nodes []Node, addr string, total int) float64 {
	w, sum := 0.0, 0.0
	for _, n := range nodes {
		if !n.eligible() {
			continue
		}
		sum += float64(max(n.Weight, 1))
		if n.Addr == addr {
			w = float64(max(n.Weight, 1))
		}
	}
	return float64(total) * w / sum
}

// moveBound returns the least number of moves that can bring every
// eligible node to at most its share rounded up and empty the others:
// sum over nodes of max(0, now - ceil(share)) for eligible nodes, plus all
// replicas of the others.
func moveBound(nodes []Node, tables []Table) int {
	replicas, _ := loads(tables)
	total := 0
	for _, c := range replicas {
		total += c
	}
	bound := 0
	for _, n := range nodes {
		now := replicas[n.Addr]
		if !n.eligible() {
			bound += now
			continue
		}
		share := shareOf(nodes, n.Addr, total)
		bound += max(0, now-int(ceilEps(share)))
	}
	return bound
}

func ceilEps(x float64) float64 {
	c := float64(int(x))
	if x-c > 1e-9 {
		c++
	}
	return c
}

// randomCluster returns a random cluster and layout: 3..12 nodes in up to 4
// zones and 3 racks, weights 1..4, some DOWN or draining (always enough
// eligible ones), 1..4 tables of 1..64 partitions with 1..3 replicas placed
// at random on any nodes.
func randomCluster(rng *rand.Rand) ([]Node, []Table) {
	n := 3 + rng.IntN(10)
	zones, racks := 1+rng.IntN(4), 1+rng.IntN(3)
	nodes := make([]Node, n)
	for i := range nodes {
		nodes[i] = Node{
			Addr:   fmt.Sprintf("10.0.%d.%d:9221", rng.IntN(3), i),
			Zone:   fmt.Sprintf("z%d", rng.IntN(zones)),
			Rack:   fmt.Sprintf("r%d", rng.IntN(racks)),
			Weight: uint32(1 + rng.IntN(4)),
			Up:     true,
		}
	}
	maxR := 3
	for i := range nodes {
		if rng.IntN(6) == 0 {
			nodes[i].Up = false
		} else if rng.IntN(6) == 0 {
			nodes[i].Draining = true
		}
	}
	eligible := 0
	for _, nd := range nodes {
		if nd.eligible() {
			eligible++
		}
	}
	for i := 0; eligible < maxR; i++ {
		if !nodes[i].eligible() {
			nodes[i].Up, nodes[i].Draining = true, false
			eligible++
		}
	}
	tables := make([]Table, 1+rng.IntN(4))
	for ti := range tables {
		r := 1 + rng.IntN(maxR)
		tables[ti] = Table{Name: fmt.Sprintf("t%d", ti)}
		for range 1 + rng.IntN(64) {
			perm := rng.Perm(n)[:r]
			p := Replicas{Master: nodes[perm[0]].Addr}
			for _, k := range perm[1:] {
				p.Slaves = append(p.Slaves, nodes[k].Addr)
			}
			tables[ti].Partitions = append(tables[ti].Partitions, p)
		}
	}
	return nodes, tables
}

// toProto returns nodes as the meta server's records.
func toProto(nodes []Node) []*zppb.Node {
	var out []*zppb.Node
	for _, n := range nodes {
		st := zppb.NodeState_UP
		if !n.Up {
			st = zppb.NodeState_DOWN
		}
		out = append(out, &zppb.Node{Addr: n.Addr, Zone: n.Zone, Rack: n.Rack, Weight: n.Weight, State: st})
	}
	return out
}

// tablesToProto returns tables as the meta server's records.
func tablesToProto(tables []Table) []*zppb.Table {
	var out []*zppb.Table
	for _, t := range tables {
		pt := &zppb.Table{Name: t.Name, PartitionCount: uint32(len(t.Partitions))}
		for pid, p := range t.Partitions {
			pt.Partitions = append(pt.Partitions, &zppb.Partition{Id: uint32(pid), Master: p.Master, Slaves: slices.Clone(p.Slaves)})
		}
		out = append(out, pt)
	}
	return out
}
