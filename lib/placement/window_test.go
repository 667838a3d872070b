package placement

import (
	"fmt"
	"testing"
)

// TestWindowsOptimal: on clusters large enough for windows, the replica
// flow over the windows costs what the full network costs (the layouts
// are equally good by every rule), and solveReplicas takes the windows'
// layout in the common cases (a table created on a skewed cluster, zones,
// racks, a rebalance that moves nothing or an expand) rather than falling
// back to the full network.
func TestWindowsOptimal(t *testing.T) {
	rack := func(i int) string { return fmt.Sprint(i % 7) }
	skewed := func(nodes []Node) []Table {
		var ts []Table
		for k := range 3 {
			ts = append(ts, roundRobin(fmt.Sprintf("old%d", k), nodes, 700, 3))
		}
		return ts
	}
	weighted := cl(200, abc, nil)
	for i := range weighted {
		weighted[i].Weight = uint32(1 + i%3)
	}
	expand := cl(240, abc, rack)
	cases := []struct {
		name string
		pb   func(t *testing.T) *problem
		// accepted: the windows' layout must be taken (the fallback
		// would cost the full network's time), or not (they cannot be
		// as good).
		accepted bool
	}{
		{"place on a skewed cluster", func(t *testing.T) *problem {
			nodes := cl(300, nil, nil)
			return mustPlace(t, nodes, skewed(nodes), 1000, 3)
		}, true},
		{"place in zones and racks", func(t *testing.T) *problem {
			nodes := cl(240, abc, rack)
			return mustPlace(t, nodes, skewed(nodes), 800, 3)
		}, true},
		{"place one replica per partition", func(t *testing.T) *problem {
			nodes := cl(200, abc, nil)
			return mustPlace(t, nodes, skewed(nodes), 500, 1)
		}, true},
		{"place on nodes of weights 1-3", func(t *testing.T) *problem {
			return mustPlace(t, weighted, nil, 900, 3)
		}, true},
		{"rebalance a balanced cluster", func(t *testing.T) *problem {
			nodes := cl(200, abc, nil)
			parts, err := PlaceTable(toProto(nodes), nil, 600, 3)
			if err != nil {
				t.Fatal(err)
			}
			tb := Table{Name: "t"}
			for _, p := range parts {
				tb.Partitions = append(tb.Partitions, Replicas{Master: p.Master, Slaves: p.Slaves})
			}
			return mustProblem(t, nodes, []Table{tb})
		}, true},
		{"rebalance an expand by 40 nodes", func(t *testing.T) *problem {
			return mustProblem(t, expand, []Table{roundRobin("t", expand[:200], 600, 3)})
		}, true},
		// A node of weight 100 among 199 of weight 1 must hold a replica
		// of every partition; a window holds it in a third of them.
		{"place with one node of every partition", func(t *testing.T) *problem {
			nodes := cl(200, nil, nil)
			nodes[0].Weight = 100
			return mustPlace(t, nodes, nil, 900, 3)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pb := tc.pb(t)
			full, err := pb.replicaFlow(nil)
			if err != nil {
				t.Fatal(err)
			}
			cands := pb.windows()
			if cands == nil {
				t.Fatal("no windows")
			}
			win, err := pb.replicaFlow(cands)
			bound := pb.relaxedReplicaCost()
			if err == nil && win.cost == bound && win.cost != full.cost {
				t.Fatalf("windows cost %v, the bound %v, the full network %v", win.cost, bound, full.cost)
			}
			if full.cost.cmp(bound) < 0 {
				t.Fatalf("full network cost %v below the bound %v", full.cost, bound)
			}
			if taken := err == nil && win.cost == bound; taken != tc.accepted {
				t.Fatalf("windows taken %v, want %v: %v, cost %v, bound %v, full %v", taken, tc.accepted, err, win.cost, bound, full.cost)
			}
			t.Logf("windows %v (err %v), bound %v, full %v", win.cost, err, bound, full.cost)
		})
	}
}

func mustPlace(t *testing.T, nodes []Node, existing []Table, partitions, replicas uint32) *problem {
	t.Helper()
	pb, err := placeProblem(toProto(nodes), tablesToProto(existing), partitions, replicas)
	if err != nil {
		t.Fatal(err)
	}
	return pb
}

func mustProblem(t *testing.T, nodes []Node, tables []Table) *problem {
	t.Helper()
	pb, err := newProblem(nodes, tables, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return pb
}
