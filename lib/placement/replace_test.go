package placement

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/status"
)

func TestReplace(t *testing.T) {
	nodes, tables := balanced6(t)
	nodes = append(nodes,
		Node{Addr: "n06", Zone: "c", Up: true, Weight: 1}, // same zone as n02
		Node{Addr: "n07", Zone: "a", Up: true, Weight: 1}, // another zone
	)
	plan, err := Replace(nodes, tables, "n02", "n06")
	if err != nil {
		t.Fatal(err)
	}
	drained := slices.Clone(nodes)
	drained[2].Draining = true
	checkPlan(t, drained, tables, plan)
	before, beforeMasters := loads(tables)
	after, afterMasters := loads(plan.Target)
	if len(plan.Moves) != before["n02"] || after["n06"] != before["n02"] || after["n02"] != 0 || afterMasters["n06"] != beforeMasters["n02"] {
		t.Fatalf("%d moves; n02 had %d (%d masters), n06 has %d (%d masters)",
			len(plan.Moves), before["n02"], beforeMasters["n02"], after["n06"], afterMasters["n06"])
	}
	if len(plan.MasterMoves) != 0 {
		t.Fatalf("master moves %v", plan.MasterMoves)
	}
	for _, m := range plan.Moves {
		if m.From != "n02" || m.To != "n06" {
			t.Fatalf("move %v", m)
		}
	}
	// With n02 drained (and without n07, which the replace ignores), the
	// target meets every rule.
	drained = slices.DeleteFunc(drained, func(n Node) bool { return n.Addr == "n07" })
	if vs := Check(drained, plan.Target, Options{}); len(vs) > 0 {
		t.Fatal(vs)
	}
	// A node without replicas: nothing to do.
	if plan, err := Replace(nodes, tables, "n07", "n06"); err != nil || len(plan.Moves) != 0 {
		t.Fatalf("%v, %v", plan.Moves, err)
	}
}

func TestReplaceErrors(t *testing.T) {
	nodes, tables := balanced6(t)
	nodes = append(nodes,
		Node{Addr: "new-a", Zone: "a", Up: true},
		Node{Addr: "down", Zone: "c", Up: false},
		Node{Addr: "drain", Zone: "c", Up: true, Draining: true},
	)
	tests := []struct {
		name     string
		from, to string
		want     *status.Error
		// msg: what the error must say.
		msg string
	}{
		{"unknown from", "nx", "new-a", status.ErrNodeNotFound, `"nx"`},
		{"unknown to", "n00", "nx", status.ErrNodeNotFound, `"nx"`},
		{"same node", "n00", "n00", status.ErrInvalidArgument, "itself"},
		{"to is DOWN", "n02", "down", status.ErrInvalidArgument, "DOWN"},
		{"to is draining", "n02", "drain", status.ErrInvalidArgument, "draining"},
		// n00..n05 each hold 32 of the 64 partitions: n00 and n01 share
		// some.
		{"to holds replicas", "n00", "n01", status.ErrInvalidArgument, "already holds a replica of t/"},
		// new-a is in zone a: n02's partitions (zone c) already have a
		// replica in zone a.
		{"zone", "n02", "new-a", status.ErrInvalidArgument, "more replicas of t/0, t/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Replace(nodes, tables, tt.from, tt.to)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.want, tt.msg)
			}
			if plan.Moves != nil {
				t.Fatalf("moves with an error: %v", plan.Moves)
			}
			t.Log(err)
		})
	}
	// A malformed layout fails as in Rebalance.
	if _, err := Replace(nodes[:2], tables, "n00", "n01"); !errors.Is(err, status.ErrInvalidArgument) {
		t.Fatalf("unknown nodes in the layout: %v", err)
	}
}
