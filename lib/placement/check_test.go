package placement

import (
	"slices"
	"testing"
)

func TestCheck(t *testing.T) {
	three := cl(3, abc, nil)
	six := cl(6, abc, nil)
	downSix := cl(6, abc, nil)
	downSix[5].Up = false
	drainSix := cl(6, abc, nil)
	drainSix[5].Draining = true
	racks := cl(4, nil, func(i int) string { return map[bool]string{true: "r0", false: "r1"}[i < 2] })
	// rr3 is 3 partitions × 3 replicas on three: balanced.
	rr3 := []Table{roundRobin("t", three, 3, 3)}
	tests := []struct {
		name   string
		nodes  []Node
		tables []Table
		want   []Violation
	}{
		{name: "balanced", nodes: three, tables: rr3},
		{name: "no tables", nodes: three},
		{
			name: "unknown node", nodes: three[:2],
			tables: []Table{{Name: "t", Partitions: []Replicas{{Master: "n00", Slaves: []string{"n09"}}}}},
			want: []Violation{
				{Kind: UnknownNode, Table: "t", Partition: 0, Node: "n09"},
				// n00 holds the only replica on a known node: n01 is below
				// its share of 1 (of 2).
			},
		},
		{
			name: "duplicate and no master", nodes: three,
			tables: []Table{{Name: "t", Partitions: []Replicas{{Master: "n00", Slaves: []string{"n00"}}, {Slaves: []string{"n01"}}}}},
			want: []Violation{
				{Kind: DuplicateReplica, Table: "t", Partition: 0, Node: "n00"},
				{Kind: NoMaster, Table: "t", Partition: 1},
			},
		},
		{
			name: "down and draining", nodes: downSix,
			tables: []Table{{Name: "t", Partitions: []Replicas{{Master: "n05", Slaves: []string{"n00"}}}}},
			want:   []Violation{{Kind: IneligibleNode, Table: "t", Partition: 0, Node: "n05"}},
		},
		{
			name: "draining", nodes: drainSix,
			tables: []Table{{Name: "t", Partitions: []Replicas{{Master: "n00", Slaves: []string{"n05"}}}}},
			want:   []Violation{{Kind: IneligibleNode, Table: "t", Partition: 0, Node: "n05"}},
		},
		{
			name: "not enough nodes", nodes: three[:2],
			tables: []Table{{Name: "t", Partitions: []Replicas{{Master: "n00", Slaves: []string{"n01", "n02"}}}}},
			want: []Violation{
				{Kind: UnknownNode, Table: "t", Partition: 0, Node: "n02"},
				{Kind: NotEnoughNodes, Table: "t", Partition: 0, Have: 3, Max: 2},
			},
		},
		{
			name: "zone spread", nodes: six, // n00 and n03 are both in zone a
			tables: []Table{{Name: "t", Partitions: []Replicas{{Master: "n00", Slaves: []string{"n03"}}}}},
			want:   []Violation{{Kind: ZoneSpread, Table: "t", Partition: 0, Node: "a", Have: 2, Max: 1}},
		},
		{
			name: "rack spread", nodes: racks,
			tables: []Table{{Name: "t", Partitions: []Replicas{{Master: "n00", Slaves: []string{"n01"}}, {Master: "n02", Slaves: []string{"n03"}}}}},
			want: []Violation{
				{Kind: RackSpread, Table: "t", Partition: 0, Node: "/r0", Have: 2, Max: 1},
				{Kind: RackSpread, Table: "t", Partition: 1, Node: "/r1", Have: 2, Max: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Check(tt.nodes, tt.tables, Options{})
			// Only the partition-level violations are compared exactly.
			got = slices.DeleteFunc(got, func(v Violation) bool { return v.Partition < 0 })
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestCheckLoads(t *testing.T) {
	nodes := cl(3, nil, nil)
	// 9 partitions × 1 replica: shares 3 each (band 2..4 by the "1").
	tb := Table{Name: "t"}
	for _, n := range []int{0, 0, 0, 0, 0, 1, 1, 1, 2} { // 5, 3, 1
		tb.Partitions = append(tb.Partitions, Replicas{Master: nodes[n].Addr})
	}
	got := Check(nodes, []Table{tb}, Options{})
	want := []Violation{
		{Kind: TableReplicaLoad, Table: "t", Partition: -1, Node: "n00", Have: 5, Min: 2, Max: 4, Share: 3},
		{Kind: TableReplicaLoad, Table: "t", Partition: -1, Node: "n02", Have: 1, Min: 2, Max: 4, Share: 3},
		{Kind: TableMasterLoad, Table: "t", Partition: -1, Node: "n00", Have: 5, Min: 2, Max: 4, Share: 3},
		{Kind: TableMasterLoad, Table: "t", Partition: -1, Node: "n02", Have: 1, Min: 2, Max: 4, Share: 3},
		{Kind: ReplicaLoad, Partition: -1, Node: "n00", Have: 5, Min: 2, Max: 4, Share: 3},
		{Kind: ReplicaLoad, Partition: -1, Node: "n02", Have: 1, Min: 2, Max: 4, Share: 3},
		{Kind: MasterLoad, Partition: -1, Node: "n00", Have: 5, Min: 2, Max: 4, Share: 3},
		{Kind: MasterLoad, Partition: -1, Node: "n02", Have: 1, Min: 2, Max: 4, Share: 3},
	}
	if !slices.EqualFunc(got, want, func(a, b Violation) bool {
		return a.Kind == b.Kind && a.Table == b.Table && a.Partition == b.Partition && a.Node == b.Node &&
			a.Have == b.Have && a.Min == b.Min && a.Max == b.Max && a.Share > b.Share-1e-6 && a.Share < b.Share+1e-6
	}) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	for _, v := range got {
		if v.String() == "" {
			t.Fatal("empty String")
		}
	}
	t.Log(got[0])
	// A wide tolerance accepts it.
	if got := Check(nodes, []Table{tb}, Options{Tolerance: 0.7}); len(got) != 0 {
		t.Fatalf("tolerance 0.7: %v", got)
	}
}

// TestBands pins the tolerance rule: |count - share| <= max(tol×share, 1).
func TestBands(t *testing.T) {
	tests := []struct {
		share, tol float64
		lo, hi     int
	}{
		{32, 0.1, 29, 35}, // 28.8..35.2
		{10, 0.1, 9, 11},  // the 1 beats 10%
		{2.5, 0.1, 2, 3},  // 1.5..3.5
		{0.25, 0.1, 0, 1}, // never below 0
		{0, 0.1, 0, 1},    // a node with no share may still take one
		{100, 0, 99, 101}, // no tolerance still allows 1
		{213.33, 0.1, 192, 234},
		{30, 0.1, 27, 33}, // whole numbers exactly at the edge are in
	}
	for _, tt := range tests {
		b := bandOf(tt.share, slack(tt.share, tt.tol))
		if b.lo != tt.lo || b.hi != tt.hi {
			t.Errorf("share %v tol %v: band %d..%d, want %d..%d", tt.share, tt.tol, b.lo, b.hi, tt.lo, tt.hi)
		}
	}
}
