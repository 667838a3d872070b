package placement

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/status"
)

// scenario is a cluster change: nodes (with the change applied) and the
// layout before it.
type scenario struct {
	name   string
	nodes  []Node
	tables []Table
	// wantMoves is the exact number of moves when >= 0 (a drain moves
	// exactly the drained replicas); -1: only the bound is checked.
	wantMoves int
	// zones: every partition spans min(replicas, zones) zones; racks
	// likewise for racks.
	zones, racks int
	// uneven: zones make the weight shares unreachable; only Check's
	// (capacity-aware) shares are checked.
	uneven bool
}

// expanded returns 6 nodes in zones a/b/c with the table of 64×3 on the
// first 3 of them.
func expanded() ([]Node, []Table) {
	nodes := cl(6, abc, nil)
	return nodes, []Table{roundRobin("t", nodes[:3], 64, 3)}
}

// balanced6 returns 6 nodes in zones a/b/c with a balanced table of 64×3.
func balanced6(t *testing.T) ([]Node, []Table) {
	nodes, tables := expanded()
	plan, err := Rebalance(nodes, tables, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return nodes, plan.Target
}

func scenarios(t *testing.T) []scenario {
	var out []scenario

	nodes, tables := expanded()
	out = append(out, scenario{name: "expand 3 to 6", nodes: nodes, tables: tables, wantMoves: -1, zones: 3})

	nodes, tables = balanced6(t)
	for i := 3; i < 6; i++ {
		nodes[i].Draining = true
	}
	out = append(out, scenario{name: "shrink 6 to 3", nodes: nodes, tables: tables, wantMoves: 96, zones: 3})

	nodes, tables = balanced6(t)
	nodes = append(nodes, Node{Addr: "n06", Zone: "c", Up: true, Weight: 1})
	nodes[2].Draining = true // zone c
	out = append(out, scenario{name: "replace node by a new one", nodes: nodes, tables: tables, wantMoves: 32, zones: 3})

	// A DOWN node without zones: its replicas spread over the others.
	nodes = cl(5, nil, nil)
	tables = []Table{roundRobin("t", nodes, 60, 3)}
	nodes[4].Up = false
	out = append(out, scenario{name: "a DOWN node", nodes: nodes, tables: tables, wantMoves: 36})

	// A DOWN node in zone b leaves n01 alone there: zones beat weights,
	// n01 holds every partition (Check's shares account for it).
	nodes, tables = balanced6(t)
	nodes[4].Up = false
	out = append(out, scenario{name: "a DOWN node, zones", nodes: nodes, tables: tables, wantMoves: 32, zones: 3, uneven: true})

	// Weights 1:2:3 with equal zone weights (a zone holds one replica of
	// every partition whatever its weight, so only then can every node
	// get its weight share).
	nodes = cl(6, abc, nil)
	for i, w := range []uint32{1, 2, 3, 3, 2, 1} {
		nodes[i].Weight = w
	}
	out = append(out, scenario{name: "weights 1:2:3", nodes: nodes, tables: []Table{roundRobin("t", nodes[:3], 64, 3)}, wantMoves: -1, zones: 3})

	// Weights without zones, 2 replicas: the heaviest node's share is
	// exactly one replica of every partition.
	nodes = cl(3, nil, nil)
	for i, w := range []uint32{1, 2, 3} {
		nodes[i].Weight = w
	}
	out = append(out, scenario{name: "weights 1:2:3 no zones", nodes: nodes, tables: []Table{roundRobin("t", nodes, 48, 2)}, wantMoves: -1})

	// Racks without zones, starting with every partition on two nodes of
	// one rack.
	nodes = cl(6, nil, abc)
	tb := Table{Name: "t"}
	for p := range 30 {
		tb.Partitions = append(tb.Partitions, Replicas{Master: nodes[p%3].Addr, Slaves: []string{nodes[p%3+3].Addr}})
	}
	out = append(out, scenario{name: "racks without zones", nodes: nodes, tables: []Table{tb}, wantMoves: 30, racks: 3})

	// Several tables of different sizes and replica counts, expand 4 to 8
	// in two zones.
	nodes = cl(8, func(i int) string { return fmt.Sprint("z", i%2) }, nil)
	out = append(out, scenario{name: "three tables expand 4 to 8", nodes: nodes, tables: []Table{
		roundRobin("big", nodes[:4], 128, 3),
		roundRobin("small", nodes[:4], 4, 2),
		roundRobin("cache", nodes[:4], 16, 1),
	}, wantMoves: -1, zones: 2})
	return out
}

func TestRebalanceScenarios(t *testing.T) {
	for _, sc := range scenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			plan, err := Rebalance(sc.nodes, sc.tables, Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkPlan(t, sc.nodes, sc.tables, plan)
			if vs := Check(sc.nodes, plan.Target, Options{}); len(vs) > 0 {
				t.Errorf("target breaks the rules: %v", vs)
			}
			// Every node within 10% (or 1) of its weight share, replicas
			// and masters, over the table and per table.
			reps, masters := loads(plan.Target)
			total, parts := 0, 0
			for _, tb := range plan.Target {
				parts += len(tb.Partitions)
				for _, p := range tb.Partitions {
					total += 1 + len(p.Slaves)
				}
			}
			for _, n := range sc.nodes {
				if sc.uneven {
					break
				}
				if !n.eligible() {
					if reps[n.Addr] > 0 {
						t.Errorf("%s is not eligible and holds %d replicas", n.Addr, reps[n.Addr])
					}
					continue
				}
				for what, c := range map[string][2]int{"replicas": {reps[n.Addr], total}, "masters": {masters[n.Addr], parts}} {
					share := shareOf(sc.nodes, n.Addr, c[1])
					if d := float64(c[0]) - share; d > max(0.1*share, 1) || -d > max(0.1*share, 1) {
						t.Errorf("%s has %d %s, share %.2f", n.Addr, c[0], what, share)
					}
				}
			}
			for _, tb := range plan.Target {
				if got := minSpan(sc.nodes, tb, func(n Node) string { return n.Zone }); sc.zones > 0 && got < min(1+len(tb.Partitions[0].Slaves), sc.zones) {
					t.Errorf("%s: a partition spans %d zones", tb.Name, got)
				}
				if got := minSpan(sc.nodes, tb, func(n Node) string { return n.Zone + "/" + n.Rack }); sc.racks > 0 && got < min(1+len(tb.Partitions[0].Slaves), sc.racks) {
					t.Errorf("%s: a partition spans %d racks", tb.Name, got)
				}
			}
			// Close to the fewest moves: the replicas above each node's
			// share (rounded up) must move, and at most 10% more do.
			bound := moveBound(sc.nodes, sc.tables)
			if sc.wantMoves >= 0 && len(plan.Moves) != sc.wantMoves {
				t.Errorf("%d moves, want %d", len(plan.Moves), sc.wantMoves)
			}
			if sc.wantMoves < 0 && float64(len(plan.Moves)) > 1.1*float64(bound) {
				t.Errorf("%d moves, lower bound %d", len(plan.Moves), bound)
			}
			t.Logf("%d moves (bound %d), %d master moves", len(plan.Moves), bound, len(plan.MasterMoves))
		})
	}
}

// minSpan returns the fewest distinct key values among any partition's
// replicas.
func minSpan(nodes []Node, tb Table, key func(Node) string) int {
	byAddr := map[string]Node{}
	for _, n := range nodes {
		byAddr[n.Addr] = n
	}
	least := 1 << 30
	for _, p := range tb.Partitions {
		vals := map[string]bool{}
		for _, a := range replicasOf(p) {
			vals[key(byAddr[a])] = true
		}
		least = min(least, len(vals))
	}
	return least
}

// TestRebalanceExpandHalf: doubling 3 nodes to 6 moves half of the replicas,
// the new nodes' share, and hands masters over with the moves.
func TestRebalanceExpandHalf(t *testing.T) {
	nodes, tables := expanded()
	plan, err := Rebalance(nodes, tables, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Moves) != 96 {
		t.Errorf("%d moves, want 96 (half of 192 replicas)", len(plan.Moves))
	}
	reps, masters := loads(plan.Target)
	for _, n := range nodes {
		if reps[n.Addr] != 32 || masters[n.Addr] < 10 || masters[n.Addr] > 11 {
			t.Errorf("%s: %d replicas, %d masters; want 32 and 10 or 11", n.Addr, reps[n.Addr], masters[n.Addr])
		}
	}
	// No replica moves within a zone's old node: every move goes from an
	// old node to a new one.
	for _, m := range plan.Moves {
		if m.From >= "n03" || m.To < "n03" {
			t.Errorf("move %v is not old -> new", m)
		}
	}
}

// TestRebalanceIdempotent: a layout that meets the rules plans nothing.
func TestRebalanceIdempotent(t *testing.T) {
	for _, sc := range scenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			plan, err := Rebalance(sc.nodes, sc.tables, Options{})
			if err != nil {
				t.Fatal(err)
			}
			again, err := Rebalance(sc.nodes, plan.Target, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(again.Moves)+len(again.MasterMoves) > 0 {
				t.Fatalf("balanced layout gets %v %v", again.Moves, again.MasterMoves)
			}
			if !slices.EqualFunc(again.Target, plan.Target, tableEqual) {
				t.Fatal("empty plan changes the layout")
			}
		})
	}
}

// TestRebalanceTolerance: counts off their share but within the tolerance
// do not move; counts outside move to the share.
func TestRebalanceTolerance(t *testing.T) {
	// 4 nodes, 40 partitions × 1 replica: shares 10.
	nodes := cl(4, nil, nil)
	layout := func(counts ...int) []Table {
		tb := Table{Name: "t"}
		for i, c := range counts {
			for range c {
				tb.Partitions = append(tb.Partitions, Replicas{Master: nodes[i].Addr})
			}
		}
		return []Table{tb}
	}
	tests := []struct {
		name      string
		tables    []Table
		tolerance float64
		want      []int // replicas per node after
	}{
		{"within 1", layout(11, 9, 10, 10), 0, []int{11, 9, 10, 10}},
		{"out of band", layout(12, 8, 10, 10), 0, []int{10, 10, 10, 10}},
		{"wide tolerance", layout(12, 8, 10, 10), 0.5, []int{12, 8, 10, 10}},
		{"one out of band", layout(13, 9, 9, 9), 0, []int{10, 10, 10, 10}},
		{"tiny tolerance keeps the 1", layout(11, 9, 10, 10), 1e-9, []int{11, 9, 10, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Rebalance(nodes, tt.tables, Options{Tolerance: tt.tolerance})
			if err != nil {
				t.Fatal(err)
			}
			reps, _ := loads(plan.Target)
			for i, n := range nodes {
				if reps[n.Addr] != tt.want[i] {
					t.Errorf("%s: %d replicas, want %d", n.Addr, reps[n.Addr], tt.want[i])
				}
			}
		})
	}
}

// TestRebalanceOutOfBandGoesToShare: a node outside its band is brought to
// its share, not just to the band's edge.
func TestRebalanceOutOfBandGoesToShare(t *testing.T) {
	nodes := cl(4, nil, nil)
	tb := Table{Name: "t"}
	for p := range 100 {
		tb.Partitions = append(tb.Partitions, Replicas{Master: nodes[min(p/30, 3)].Addr}) // 30 30 30 10
	}
	plan, err := Rebalance(nodes, []Table{tb}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	reps, _ := loads(plan.Target)
	// n03 (10) is out of [22.5, 27.5]: it gets 25. The others, at 30
	// (out of band too), come to 25 as well.
	for _, n := range nodes {
		if reps[n.Addr] != 25 {
			t.Errorf("%s: %d replicas, want 25", n.Addr, reps[n.Addr])
		}
	}
	if len(plan.Moves) != 15 {
		t.Errorf("%d moves, want 15", len(plan.Moves))
	}
}

// TestRebalanceMastersBySwitchover: masters piled on one node are spread
// with switchovers, not moves.
func TestRebalanceMastersBySwitchover(t *testing.T) {
	nodes := cl(3, abc, nil)
	tb := Table{Name: "t"}
	for range 30 {
		tb.Partitions = append(tb.Partitions, Replicas{Master: "n00", Slaves: []string{"n01", "n02"}})
	}
	plan, err := Rebalance(nodes, []Table{tb}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Moves) != 0 || len(plan.MasterMoves) != 20 {
		t.Fatalf("%d moves, %d master moves; want 0 and 20", len(plan.Moves), len(plan.MasterMoves))
	}
	_, masters := loads(plan.Target)
	for _, n := range nodes {
		if masters[n.Addr] != 10 {
			t.Errorf("%s: %d masters", n.Addr, masters[n.Addr])
		}
	}
}

// TestRebalanceDrainedMasterHandsOver: when a master's node drains, its
// replica moves to the node that is to be master, so no switchover is
// needed on top of the move.
func TestRebalanceDrainedMasterHandsOver(t *testing.T) {
	nodes := cl(4, nil, nil)
	nodes[0].Draining = true
	tb := Table{Name: "t", Partitions: []Replicas{{Master: "n00", Slaves: []string{"n01", "n02"}}}}
	plan, err := Rebalance(nodes, []Table{tb}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Move{{Table: "t", Partition: 0, From: "n00", To: "n03"}}
	if !reflect.DeepEqual(plan.Moves, want) || len(plan.MasterMoves) != 0 {
		t.Fatalf("plan %v %v, want %v and no master moves", plan.Moves, plan.MasterMoves, want)
	}
	if got := plan.Target[0].Partitions[0]; got.Master != "n03" || !slices.Equal(got.Slaves, []string{"n01", "n02"}) {
		t.Fatalf("target %+v", got)
	}
}

// TestRebalanceZonesFixed: a layout with two replicas in one zone is fixed
// even though loads are even.
func TestRebalanceZonesFixed(t *testing.T) {
	nodes := cl(6, abc, nil) // n00 a, n01 b, n02 c, n03 a, n04 b, n05 c
	tb := Table{Name: "t"}
	for range 6 {
		tb.Partitions = append(tb.Partitions,
			Replicas{Master: "n00", Slaves: []string{"n03"}}, // both in a
			Replicas{Master: "n01", Slaves: []string{"n04"}}, // both in b
			Replicas{Master: "n02", Slaves: []string{"n05"}}) // both in c
	}
	plan, err := Rebalance(nodes, []Table{tb}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, nodes, []Table{tb}, plan)
	if vs := Check(nodes, plan.Target, Options{}); len(vs) > 0 {
		t.Fatal(vs)
	}
	// One replica of each of the 18 partitions moves.
	if len(plan.Moves) != 18 {
		t.Errorf("%d moves, want 18", len(plan.Moves))
	}
}

// TestRebalanceUnevenZones: when a zone is too small for its weight share
// (one node alone in zone a, 2 replicas over 2 zones), rule 1 wins: it holds
// a replica of every partition, and Check agrees that is its share.
func TestRebalanceUnevenZones(t *testing.T) {
	nodes := cl(4, func(i int) string { return map[bool]string{true: "a", false: "b"}[i == 0] }, nil)
	tables := []Table{roundRobin("t", nodes[1:], 30, 2)}
	plan, err := Rebalance(nodes, tables, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, nodes, tables, plan)
	if vs := Check(nodes, plan.Target, Options{}); len(vs) > 0 {
		t.Fatal(vs)
	}
	reps, _ := loads(plan.Target)
	if reps["n00"] != 30 || reps["n01"] != 10 || reps["n02"] != 10 || reps["n03"] != 10 {
		t.Fatalf("replicas %v", reps)
	}
}

func TestRebalanceErrors(t *testing.T) {
	three := cl(3, nil, nil)
	down := cl(3, nil, nil)
	down[1].Up = false
	draining := cl(3, nil, nil)
	draining[2].Draining = true
	good := []Table{roundRobin("t", three, 4, 3)}
	tests := []struct {
		name   string
		nodes  []Node
		tables []Table
		opts   Options
		want   *status.Error
	}{
		{"3 replicas, a node DOWN", down, good, Options{}, status.ErrNotEnoughNodes},
		{"3 replicas, a node draining", draining, good, Options{}, status.ErrNotEnoughNodes},
		{"no nodes", nil, good, Options{}, status.ErrInvalidArgument}, // the replicas are on unknown nodes
		{"unknown node", three[:2], []Table{roundRobin("t", three, 4, 1)}, Options{}, status.ErrInvalidArgument},
		{"duplicate node", append(cl(3, nil, nil), three[0]), good, Options{}, status.ErrInvalidArgument},
		{"node without address", append(cl(3, nil, nil), Node{Up: true}), good, Options{}, status.ErrInvalidArgument},
		{"duplicate table", three, append(slices.Clone(good), good...), Options{}, status.ErrInvalidArgument},
		{"two replicas on a node", three, []Table{{Name: "t", Partitions: []Replicas{{Master: "n00", Slaves: []string{"n00"}}}}}, Options{}, status.ErrInvalidArgument},
		{"no master", three, []Table{{Name: "t", Partitions: []Replicas{{Slaves: []string{"n00"}}}}}, Options{}, status.ErrInvalidArgument},
		{"negative tolerance", three, good, Options{Tolerance: -0.1}, status.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Rebalance(tt.nodes, tt.tables, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if plan.Moves != nil || plan.Target != nil {
				t.Fatalf("plan with an error: %+v", plan)
			}
			t.Log(err)
		})
	}
}

// TestRebalanceEmpty: no tables, or tables without partitions, plan nothing.
func TestRebalanceEmpty(t *testing.T) {
	for _, tables := range [][]Table{nil, {{Name: "empty"}}} {
		plan, err := Rebalance(cl(3, nil, nil), tables, Options{})
		if err != nil || len(plan.Moves)+len(plan.MasterMoves) != 0 || len(plan.Target) != len(tables) {
			t.Fatalf("%v: %+v, %v", tables, plan, err)
		}
	}
}

// TestRebalanceDeterministic: the plan does not depend on the order of the
// nodes or the tables.
func TestRebalanceDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	clusters := 10
	if raceEnabled || testing.Short() {
		clusters = 4
	}
	for range clusters {
		nodes, tables := randomCluster(rng)
		want, err := Rebalance(nodes, tables, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			ns, ts := slices.Clone(nodes), slices.Clone(tables)
			rng.Shuffle(len(ns), func(i, j int) { ns[i], ns[j] = ns[j], ns[i] })
			rng.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
			got, err := Rebalance(ns, ts, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatal("plan depends on the order of nodes and tables")
			}
		}
	}
}

// TestRebalanceDoesNotModifyInput: the caller's layout is left alone.
func TestRebalanceDoesNotModifyInput(t *testing.T) {
	nodes, tables := expanded()
	before := sortedTables(tables)
	before[0].Partitions = slices.Clone(before[0].Partitions)
	for i := range before[0].Partitions {
		before[0].Partitions[i].Slaves = slices.Clone(before[0].Partitions[i].Slaves)
	}
	nodesBefore := slices.Clone(nodes)
	if _, err := Rebalance(nodes, tables, Options{}); err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(tables, before, tableEqual) || !slices.Equal(nodes, nodesBefore) {
		t.Fatal("Rebalance modified its input")
	}
}
