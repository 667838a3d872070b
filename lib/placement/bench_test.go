package placement

import (
	"fmt"
	"testing"
)

// benchCluster returns 12 nodes in 3 zones and 10 tables of 256 partitions
// with 3 replicas, laid out on the first 9 nodes (an expand by 3 nodes is
// pending), or on all 12 (balanced) when balanced.
func benchCluster(balanced bool) ([]Node, []Table) {
	nodes := cl(12, abc, nil)
	var tables []Table
	for t := range 10 {
		var tb Table
		if balanced {
			tb = Table{Name: fmt.Sprintf("t%d", t)}
			parts, _ := PlaceTable(toProto(nodes), nil, 256, 3)
			for _, p := range parts {
				tb.Partitions = append(tb.Partitions, Replicas{Master: p.Master, Slaves: p.Slaves})
			}
		} else {
			tb = roundRobin(fmt.Sprintf("t%d", t), nodes[:9], 256, 3)
		}
		tables = append(tables, tb)
	}
	return nodes, tables
}

// BenchmarkRebalance plans an expand of 9 to 12 nodes holding 10 tables of
// 256 partitions with 3 replicas.
func BenchmarkRebalance(b *testing.B) {
	nodes, tables := benchCluster(false)
	b.ReportAllocs()
	var moves int
	for b.Loop() {
		plan, err := Rebalance(nodes, tables, Options{})
		if err != nil {
			b.Fatal(err)
		}
		moves = len(plan.Moves)
	}
	b.ReportMetric(float64(moves), "moves")
}

// BenchmarkRebalanceBalanced plans nothing on the same cluster already
// balanced: the cost of the check the leader can run on every change.
func BenchmarkRebalanceBalanced(b *testing.B) {
	nodes, tables := benchCluster(true)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Rebalance(nodes, tables, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlaceTable places one more table of 256×3 on the balanced
// cluster.
func BenchmarkPlaceTable(b *testing.B) {
	nodes, tables := benchCluster(true)
	pn, pt := toProto(nodes), tablesToProto(tables)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PlaceTable(pn, pt, 256, 3); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRebalanceLarge: the benchmark's expand meets every rule and moves
// exactly the replicas above the old nodes' share (9 × (853.3 - 640)).
func TestRebalanceLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large")
	}
	nodes, tables := benchCluster(false)
	plan, err := Rebalance(nodes, tables, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if vs := Check(nodes, plan.Target, Options{}); len(vs) > 0 {
		t.Fatal(vs)
	}
	if len(plan.Moves) != 1920 {
		t.Errorf("%d moves, want 1920", len(plan.Moves))
	}
	t.Logf("%d moves, %d master moves", len(plan.Moves), len(plan.MasterMoves))
}

// BenchmarkPlaceTableAtScale places the tenth table of 3,334 partitions x 3
// on 1,000 nodes that hold nine (issue 16's meta goal: 100,020 replicas),
// as the meta leader does on a table create:
//
//	go test -run - -bench PlaceTableAtScale -benchtime 3x ./lib/placement
func BenchmarkPlaceTableAtScale(b *testing.B) {
	nodes := cl(1000, nil, nil)
	var tables []Table
	for t := range 9 {
		tables = append(tables, roundRobin(fmt.Sprintf("t%d", t), nodes, 3334, 3))
	}
	pn, pt := toProto(nodes), tablesToProto(tables)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PlaceTable(pn, pt, 3334, 3); err != nil {
			b.Fatal(err)
		}
	}
}
