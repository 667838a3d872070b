package placement

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// nodes returns n UP nodes n0..n(n-1); zone and rack of node i come from the
// functions when given.
func nodes(n int, zone, rack func(i int) string) []*zppb.Node {
	out := make([]*zppb.Node, n)
	for i := range n {
		out[i] = &zppb.Node{Addr: fmt.Sprintf("10.0.0.%d:9221", i), State: zppb.NodeState_UP, Weight: 1}
		if zone != nil {
			out[i].Zone = zone(i)
		}
		if rack != nil {
			out[i].Rack = rack(i)
		}
	}
	return out
}

func modName(prefix string, m int) func(int) string {
	return func(i int) string { return fmt.Sprintf("%s%d", prefix, i%m) }
}

func divName(prefix string, d int) func(int) string {
	return func(i int) string { return fmt.Sprintf("%s%d", prefix, i/d) }
}

// counts returns the masters and replicas per address over tables.
func counts(tables ...[]*zppb.Partition) (masters, replicas map[string]int) {
	masters, replicas = map[string]int{}, map[string]int{}
	for _, parts := range tables {
		for _, p := range parts {
			masters[p.Master]++
			replicas[p.Master]++
			for _, s := range p.Slaves {
				replicas[s]++
			}
		}
	}
	return masters, replicas
}

// spread returns max-min of the counts over nodes (absent counts are 0).
func spread(ns []*zppb.Node, c map[string]int) int {
	lo, hi := int(^uint(0)>>1), 0
	for _, n := range ns {
		lo, hi = min(lo, c[n.Addr]), max(hi, c[n.Addr])
	}
	return hi - lo
}

// checkShape checks what every plan must satisfy: ids, state, term, replica
// count, distinct known nodes.
func checkShape(t *testing.T, ns []*zppb.Node, parts []*zppb.Partition, partitions, replicas uint32) {
	t.Helper()
	if len(parts) != int(partitions) {
		t.Fatalf("%d partitions, want %d", len(parts), partitions)
	}
	known := map[string]bool{}
	for _, n := range ns {
		known[n.Addr] = true
	}
	for i, p := range parts {
		if p.Id != uint32(i) || p.State != zppb.PartitionState_ACTIVE || p.Term != InitialTerm {
			t.Fatalf("partition %d: id %d state %v term %d", i, p.Id, p.State, p.Term)
		}
		all := append([]string{p.Master}, p.Slaves...)
		if len(all) != int(replicas) {
			t.Fatalf("partition %d has %d replicas, want %d", i, len(all), replicas)
		}
		seen := map[string]bool{}
		for _, a := range all {
			if !known[a] {
				t.Fatalf("partition %d on unknown node %q", i, a)
			}
			if seen[a] {
				t.Fatalf("partition %d has two replicas on %s: %v", i, a, all)
			}
			seen[a] = true
		}
	}
}

// distinctPerPartition returns the smallest number of distinct values of key
// among the replicas of any partition.
func distinctPerPartition(ns []*zppb.Node, parts []*zppb.Partition, key func(*zppb.Node) string) int {
	byAddr := map[string]*zppb.Node{}
	for _, n := range ns {
		byAddr[n.Addr] = n
	}
	least := int(^uint(0) >> 1)
	for _, p := range parts {
		vals := map[string]bool{}
		for _, a := range append([]string{p.Master}, p.Slaves...) {
			vals[key(byAddr[a])] = true
		}
		least = min(least, len(vals))
	}
	return least
}

func TestPlaceTable(t *testing.T) {
	zoneOf := func(n *zppb.Node) string { return n.Zone }
	rackOf := func(n *zppb.Node) string { return n.Zone + "/" + n.Rack }
	tests := []struct {
		name       string
		nodes      []*zppb.Node
		partitions uint32
		replicas   uint32
		// minZones and minRacks: each partition spans at least that many.
		minZones, minRacks int
		// replicaSpread is the largest max-min of replica counts allowed:
		// 1 unless zones constrain the plan (-1: not checked).
		replicaSpread int
	}{
		{name: "one partition on all three", nodes: nodes(3, nil, nil), partitions: 1, replicas: 3},
		{name: "3 nodes 16x3", nodes: nodes(3, nil, nil), partitions: 16, replicas: 3},
		{name: "5 nodes 16x3", nodes: nodes(5, nil, nil), partitions: 16, replicas: 3},
		{name: "7 nodes 100x2", nodes: nodes(7, nil, nil), partitions: 100, replicas: 2},
		{name: "10 nodes 1024x3", nodes: nodes(10, nil, nil), partitions: 1024, replicas: 3},
		{name: "4 nodes 3x1", nodes: nodes(4, nil, nil), partitions: 3, replicas: 1},
		{name: "one node", nodes: nodes(1, nil, nil), partitions: 8, replicas: 1},
		{name: "3 zones x2 nodes", nodes: nodes(6, modName("z", 3), nil), partitions: 12, replicas: 3, minZones: 3},
		{name: "3 zones x3 nodes 2 replicas", nodes: nodes(9, divName("z", 3), nil), partitions: 30, replicas: 2, minZones: 2},
		{name: "one zone 3 racks x2", nodes: nodes(6, func(int) string { return "z" }, modName("r", 3)), partitions: 12, replicas: 3, minZones: 1, minRacks: 3},
		{
			name:  "2 zones x 2 racks x 2 nodes",
			nodes: nodes(8, modName("z", 2), divName("r", 4)), partitions: 32, replicas: 3,
			minZones: 2, minRacks: 3, replicaSpread: 2,
		},
		{
			// Racks with the same name in different zones are different racks.
			name:  "rack names repeat across zones",
			nodes: nodes(6, divName("z", 3), modName("r", 3)), partitions: 12, replicas: 2,
			minZones: 2, minRacks: 2,
		},
		{
			// One node alone in its zone gets a replica of every partition:
			// zones beat even counts.
			name:  "uneven zones",
			nodes: nodes(4, func(i int) string { return map[bool]string{true: "a", false: "b"}[i == 0] }, nil), partitions: 8, replicas: 2,
			minZones: 2, replicaSpread: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts, err := PlaceTable(tt.nodes, nil, tt.partitions, tt.replicas)
			if err != nil {
				t.Fatal(err)
			}
			checkShape(t, tt.nodes, parts, tt.partitions, tt.replicas)
			masters, replicas := counts(parts)
			if s := spread(tt.nodes, masters); s > 1 {
				t.Errorf("masters spread %d: %v", s, masters)
			}
			want := cmp.Or(tt.replicaSpread, 1)
			if s := spread(tt.nodes, replicas); s > want && want >= 0 {
				t.Errorf("replicas spread %d, want <= %d: %v", s, want, replicas)
			}
			if tt.minZones > 0 {
				if got := distinctPerPartition(tt.nodes, parts, zoneOf); got < tt.minZones {
					t.Errorf("a partition spans %d zones, want >= %d", got, tt.minZones)
				}
			}
			if tt.minRacks > 0 {
				if got := distinctPerPartition(tt.nodes, parts, rackOf); got < tt.minRacks {
					t.Errorf("a partition spans %d racks, want >= %d", got, tt.minRacks)
				}
			}
		})
	}
}

// TestPlaceTableBalancedEverywhere sweeps small clusters: without zones the
// plan is always balanced to within one master and one replica per node.
func TestPlaceTableBalancedEverywhere(t *testing.T) {
	for n := 1; n <= 8; n++ {
		ns := nodes(n, nil, nil)
		for r := uint32(1); r <= uint32(n); r++ {
			for _, p := range sweepPartitions() {
				parts, err := PlaceTable(ns, nil, p, r)
				if err != nil {
					t.Fatalf("n=%d p=%d r=%d: %v", n, p, r, err)
				}
				checkShape(t, ns, parts, p, r)
				masters, replicas := counts(parts)
				if spread(ns, masters) > 1 || spread(ns, replicas) > 1 {
					t.Fatalf("n=%d p=%d r=%d: masters %v replicas %v", n, p, r, masters, replicas)
				}
			}
		}
	}
}

// sweepPartitions returns the partition counts the sweeps try: all of
// 1..48, or a sample of them under the race detector or -short.
func sweepPartitions() []uint32 {
	if raceEnabled || testing.Short() {
		return []uint32{1, 2, 3, 5, 8, 12, 16, 24, 33, 48}
	}
	out := make([]uint32, 48)
	for i := range out {
		out[i] = uint32(i + 1)
	}
	return out
}

// TestPlaceTableZonesSweep sweeps clusters of equal zones and racks: every
// partition spans as many zones and racks as it can, masters stay within one
// per node, and replica counts within two (the greedy choice zone by zone
// cannot always reach one; the rebalancing planner will).
func TestPlaceTableZonesSweep(t *testing.T) {
	for zones := 1; zones <= 4; zones++ {
		for racks := 1; racks <= 3; racks++ {
			for per := 1; per <= 3; per++ {
				n := zones * racks * per
				ns := nodes(n, modName("z", zones), func(i int) string { return modName("r", racks)(i / zones) })
				for r := uint32(1); r <= uint32(min(n, 4)); r++ {
					for _, p := range sweepPartitions() {
						parts, err := PlaceTable(ns, nil, p, r)
						if err != nil {
							t.Fatalf("zones=%d racks=%d per=%d p=%d r=%d: %v", zones, racks, per, p, r, err)
						}
						checkShape(t, ns, parts, p, r)
						masters, replicas := counts(parts)
						if spread(ns, masters) > 1 || spread(ns, replicas) > 2 {
							t.Fatalf("zones=%d racks=%d per=%d p=%d r=%d: masters %v replicas %v", zones, racks, per, p, r, masters, replicas)
						}
						if got := distinctPerPartition(ns, parts, func(n *zppb.Node) string { return n.Zone }); got < min(int(r), zones) {
							t.Fatalf("zones=%d racks=%d per=%d p=%d r=%d: a partition spans %d zones", zones, racks, per, p, r, got)
						}
						if got := distinctPerPartition(ns, parts, func(n *zppb.Node) string { return n.Zone + "/" + n.Rack }); got < min(int(r), zones*racks) {
							t.Fatalf("zones=%d racks=%d per=%d p=%d r=%d: a partition spans %d racks", zones, racks, per, p, r, got)
						}
					}
				}
			}
		}
	}
}

func TestPlaceTableCountsExistingTables(t *testing.T) {
	ns := nodes(4, nil, nil)
	tests := []struct {
		name     string
		existing []*zppb.Table
		// want the new table's masters avoid these nodes entirely.
		avoid []string
	}{
		{
			// All four masters of the old table are on n0: the new table's
			// twelve masters go to the others until they catch up.
			name: "skewed masters",
			existing: []*zppb.Table{{Name: "old", Partitions: []*zppb.Partition{
				{Id: 0, Master: ns[0].Addr, Slaves: []string{ns[1].Addr}},
				{Id: 1, Master: ns[0].Addr, Slaves: []string{ns[2].Addr}},
				{Id: 2, Master: ns[0].Addr, Slaves: []string{ns[3].Addr}},
				{Id: 3, Master: ns[0].Addr, Slaves: []string{ns[1].Addr}},
			}}},
			avoid: []string{ns[0].Addr},
		},
		{
			// Load on a node that is not a candidate (DOWN) is ignored.
			name: "load on non-candidates",
			existing: []*zppb.Table{{Name: "old", Partitions: []*zppb.Partition{
				{Id: 0, Master: "10.9.9.9:9221", Slaves: []string{"10.9.9.8:9221"}},
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts, err := PlaceTable(ns, tt.existing, 12, 2)
			if err != nil {
				t.Fatal(err)
			}
			checkShape(t, ns, parts, 12, 2)
			newMasters, _ := counts(parts)
			for _, a := range tt.avoid {
				if newMasters[a] != 0 {
					t.Errorf("%d new masters on overloaded %s: %v", newMasters[a], a, newMasters)
				}
			}
			var old []*zppb.Partition
			for _, tb := range tt.existing {
				old = append(old, tb.Partitions...)
			}
			masters, _ := counts(old, parts)
			if s := spread(ns, masters); s > 1 {
				t.Errorf("cluster masters spread %d after placement: %v", s, masters)
			}
		})
	}
}

func TestPlaceTableErrors(t *testing.T) {
	dup := nodes(1, nil, nil)
	dup = append(dup, proto.Clone(dup[0]).(*zppb.Node), proto.Clone(dup[0]).(*zppb.Node))
	tests := []struct {
		name       string
		nodes      []*zppb.Node
		partitions uint32
		replicas   uint32
		want       *status.Error
	}{
		{"more replicas than nodes", nodes(2, nil, nil), 4, 3, status.ErrNotEnoughNodes},
		{"no nodes", nil, 1, 1, status.ErrNotEnoughNodes},
		{"duplicate addresses count once", dup, 1, 2, status.ErrNotEnoughNodes},
		{"zero partitions", nodes(3, nil, nil), 0, 1, status.ErrInvalidArgument},
		{"zero replicas", nodes(3, nil, nil), 1, 0, status.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts, err := PlaceTable(tt.nodes, nil, tt.partitions, tt.replicas)
			if !errors.Is(err, tt.want) || parts != nil {
				t.Fatalf("got %v, %v; want %v", parts, err, tt.want)
			}
		})
	}
}

// TestPlaceTableDeterministic: the plan does not depend on the order the
// nodes come in.
func TestPlaceTableDeterministic(t *testing.T) {
	ns := nodes(9, modName("z", 3), modName("r", 2))
	want, err := PlaceTable(ns, nil, 64, 3)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := slices.Clone(ns)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got, err := PlaceTable(shuffled, nil, 64, 3)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, want, func(a, b *zppb.Partition) bool { return proto.Equal(a, b) }) {
			t.Fatal("plan depends on node order")
		}
	}
}

// TestPlaceTableAgreesWithRebalance: tables placed one after the other on a
// cluster meet the rules, and Rebalance plans nothing for them.
func TestPlaceTableAgreesWithRebalance(t *testing.T) {
	clusters := map[string][]*zppb.Node{
		"6 nodes 3 zones":         nodes(6, modName("z", 3), nil),
		"9 nodes 3 zones 3 racks": nodes(9, modName("z", 3), divName("r", 3)),
		"5 nodes no zones":        nodes(5, nil, nil),
		"weights 1:2:3 x2": func() []*zppb.Node {
			ns := nodes(6, modName("z", 3), nil)
			for i, w := range []uint32{1, 2, 3, 3, 2, 1} {
				ns[i].Weight = w
			}
			return ns
		}(),
	}
	shapes := []struct{ partitions, replicas uint32 }{{64, 3}, {16, 2}, {5, 1}, {128, 3}}
	for _, name := range sortedKeys(clusters) {
		ns := clusters[name]
		t.Run(name, func(t *testing.T) {
			var existing []*zppb.Table
			for k, sh := range shapes {
				parts, err := PlaceTable(ns, existing, sh.partitions, sh.replicas)
				if err != nil {
					t.Fatal(err)
				}
				existing = append(existing, &zppb.Table{Name: fmt.Sprintf("t%d", k), Partitions: parts})
				var pn []Node
				for _, n := range ns {
					pn = append(pn, Node{Addr: n.Addr, Zone: n.Zone, Rack: n.Rack, Weight: n.Weight, Up: true})
				}
				var tables []Table
				for _, tb := range existing {
					tables = append(tables, FromProto(tb))
				}
				if vs := Check(pn, tables, Options{}); len(vs) > 0 {
					t.Fatalf("after %d tables: %v", k+1, vs)
				}
				plan, err := Rebalance(pn, tables, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if len(plan.Moves)+len(plan.MasterMoves) > 0 {
					t.Fatalf("after %d tables: Rebalance plans %v %v", k+1, plan.Moves, plan.MasterMoves)
				}
			}
		})
	}
}
