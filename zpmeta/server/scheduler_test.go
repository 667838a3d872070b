package server

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/fsm"
)

func schedNode(addr string, st zppb.NodeState, cordoned bool) *zppb.Node {
	return &zppb.Node{Addr: addr, State: st, Cordoned: cordoned, Weight: 1}
}

// schedTable builds a table whose partition i has the replicas layout[i],
// master first.
func schedTable(name string, replicas uint32, layout ...[]string) *zppb.Table {
	t := &zppb.Table{Name: name, PartitionCount: uint32(len(layout)), Replicas: replicas}
	for i, l := range layout {
		t.Partitions = append(t.Partitions, &zppb.Partition{Id: uint32(i), Master: l[0], Slaves: slices.Clone(l[1:]), Term: 1})
	}
	return t
}

func describe(moves []*zppb.Move) []string {
	var out []string
	for _, m := range moves {
		out = append(out, fmt.Sprintf("%v %s/%d %s->%s", m.Kind, m.Table, m.Partition, m.From, m.To))
	}
	return out
}

// TestPlanRepairs checks the repair decisions on fixed layouts: which
// replicas are rebuilt where, and what is left alone.
func TestPlanRepairs(t *testing.T) {
	up := func(a string) *zppb.Node { return schedNode(a, zppb.NodeState_UP, false) }
	down := func(a string) *zppb.Node { return schedNode(a, zppb.NodeState_DOWN, false) }
	cordoned := func(a string) *zppb.Node { return schedNode(a, zppb.NodeState_UP, true) }
	for _, tc := range []struct {
		name     string
		nodes    []*zppb.Node
		tables   []*zppb.Table
		dead     []string
		busy     []uint32 // partitions of table t with a move in flight
		maxMoves int
		// wantTo: every repair's target must be one of these; wantKinds
		// the repairs by kind; wantShort the under-replicated count.
		wantTo      []string
		wantKinds   map[zppb.MoveKind]int
		wantShort   int
		wantBlocked string
	}{
		{
			name:   "dead slave: re-replicated on the spare node",
			nodes:  []*zppb.Node{up("a:1"), up("b:1"), down("c:1"), up("d:1")},
			tables: []*zppb.Table{schedTable("t", 3, []string{"a:1", "b:1", "c:1"}, []string{"b:1", "c:1", "a:1"})},
			dead:   []string{"c:1"},
			wantTo: []string{"d:1"}, wantKinds: map[zppb.MoveKind]int{zppb.MoveKind_MIGRATE: 2}, wantShort: 2,
		},
		{
			name:      "DOWN but not yet past the down-timeout: nothing",
			nodes:     []*zppb.Node{up("a:1"), up("b:1"), down("c:1"), up("d:1")},
			tables:    []*zppb.Table{schedTable("t", 3, []string{"a:1", "b:1", "c:1"})},
			wantKinds: map[zppb.MoveKind]int{},
		},
		{
			name:   "a cordoned node receives no repair",
			nodes:  []*zppb.Node{up("a:1"), up("b:1"), down("c:1"), cordoned("d:1"), up("e:1")},
			tables: []*zppb.Table{schedTable("t", 3, []string{"a:1", "b:1", "c:1"}, []string{"a:1", "c:1", "b:1"})},
			dead:   []string{"c:1"},
			wantTo: []string{"e:1"}, wantKinds: map[zppb.MoveKind]int{zppb.MoveKind_MIGRATE: 2}, wantShort: 2,
		},
		{
			name:      "a dead master waits for failover",
			nodes:     []*zppb.Node{up("a:1"), up("b:1"), down("c:1"), up("d:1")},
			tables:    []*zppb.Table{schedTable("t", 3, []string{"c:1", "a:1", "b:1"})},
			dead:      []string{"c:1"},
			wantKinds: map[zppb.MoveKind]int{}, wantShort: 1,
		},
		{
			name:   "a partition short of replicas gets them back",
			nodes:  []*zppb.Node{up("a:1"), up("b:1"), up("c:1")},
			tables: []*zppb.Table{schedTable("t", 3, []string{"a:1"}, []string{"b:1", "c:1", "a:1"})},
			wantTo: []string{"b:1", "c:1"}, wantKinds: map[zppb.MoveKind]int{zppb.MoveKind_ADDSLAVE: 2}, wantShort: 1,
		},
		{
			name:   "a partition with a move in flight is left to it",
			nodes:  []*zppb.Node{up("a:1"), up("b:1"), up("c:1")},
			tables: []*zppb.Table{schedTable("t", 3, []string{"a:1", "b:1"}, []string{"b:1", "c:1"})},
			busy:   []uint32{0},
			wantTo: []string{"a:1"}, wantKinds: map[zppb.MoveKind]int{zppb.MoveKind_ADDSLAVE: 1}, wantShort: 2,
		},
		{
			name:   "at most max-moves at a time",
			nodes:  []*zppb.Node{up("a:1"), up("b:1"), down("c:1"), up("d:1")},
			tables: []*zppb.Table{schedTable("t", 3, []string{"a:1", "b:1", "c:1"}, []string{"b:1", "c:1", "a:1"}, []string{"a:1", "c:1", "b:1"})},
			dead:   []string{"c:1"}, maxMoves: 2,
			wantTo: []string{"d:1"}, wantKinds: map[zppb.MoveKind]int{zppb.MoveKind_MIGRATE: 2}, wantShort: 3,
		},
		{
			name:      "too few nodes receive: reported, nothing planned",
			nodes:     []*zppb.Node{up("a:1"), up("b:1"), down("c:1")},
			tables:    []*zppb.Table{schedTable("t", 3, []string{"a:1", "b:1", "c:1"})},
			dead:      []string{"c:1"},
			wantKinds: map[zppb.MoveKind]int{}, wantShort: 1, wantBlocked: "table t wants 3 replicas, 2 nodes receive",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &scheduleView{settings: fsm.Resolve(&zppb.Schedule{MaxMoves: uint32(tc.maxMoves)})}
			dead := make(map[string]string)
			for _, a := range tc.dead {
				dead[a] = "node " + a + " is dead"
			}
			v.planRepairs(tc.nodes, tc.tables, dead, func(table string, id uint32) bool { return slices.Contains(tc.busy, id) })
			kinds := make(map[zppb.MoveKind]int)
			for _, m := range v.repairs {
				kinds[m.Kind]++
				if !slices.Contains(tc.wantTo, m.To) {
					t.Errorf("repair %s: target not in %v", describe([]*zppb.Move{m}), tc.wantTo)
				}
				if m.Origin != "scheduler" || m.Reason == "" {
					t.Errorf("repair %s: origin %q reason %q", describe([]*zppb.Move{m}), m.Origin, m.Reason)
				}
				if slices.Contains(tc.busy, m.Partition) {
					t.Errorf("repair %s of a partition with a move in flight", describe([]*zppb.Move{m}))
				}
			}
			if fmt.Sprint(kinds) != fmt.Sprint(tc.wantKinds) {
				t.Errorf("repairs %v; want kinds %v", describe(v.repairs), tc.wantKinds)
			}
			if len(v.underReplicated) != tc.wantShort {
				t.Errorf("%d under-replicated; want %d", len(v.underReplicated), tc.wantShort)
			}
			if !strings.Contains(v.repairBlocked, tc.wantBlocked) || (tc.wantBlocked == "" && v.repairBlocked != "") {
				t.Errorf("blocked %q; want %q", v.repairBlocked, tc.wantBlocked)
			}
		})
	}
}

// TestPlanBalance checks master balance: switchovers only to slaves of
// nodes that receive, none when balanced, none when turned off.
func TestPlanBalance(t *testing.T) {
	up := func(a string) *zppb.Node { return schedNode(a, zppb.NodeState_UP, false) }
	// Node a masters all six partitions after b and c came back.
	var layout [][]string
	for range 6 {
		layout = append(layout, []string{"a:1", "b:1", "c:1"})
	}
	skewed := []*zppb.Table{schedTable("t", 3, layout...)}
	balanced := []*zppb.Table{schedTable("t", 3,
		[]string{"a:1", "b:1", "c:1"}, []string{"b:1", "c:1", "a:1"}, []string{"c:1", "a:1", "b:1"},
		[]string{"a:1", "b:1", "c:1"}, []string{"b:1", "c:1", "a:1"}, []string{"c:1", "a:1", "b:1"})}
	for _, tc := range []struct {
		name      string
		nodes     []*zppb.Node
		tables    []*zppb.Table
		settings  *zppb.Schedule
		wantTo    map[string]int
		wantImbal bool
	}{
		{"skewed", []*zppb.Node{up("a:1"), up("b:1"), up("c:1")}, skewed, &zppb.Schedule{}, map[string]int{"b:1": 2, "c:1": 2}, true},
		{"balanced", []*zppb.Node{up("a:1"), up("b:1"), up("c:1")}, balanced, &zppb.Schedule{}, map[string]int{}, false},
		{"cordoned node gets no master", []*zppb.Node{up("a:1"), up("b:1"), schedNode("c:1", zppb.NodeState_UP, true)}, skewed, &zppb.Schedule{}, map[string]int{"b:1": 2}, true},
		// With a DOWN node partitions still count on, balance plans as if it
		// were UP and leaves its share where it is.
		{"DOWN node gets no master", []*zppb.Node{up("a:1"), up("b:1"), schedNode("c:1", zppb.NodeState_DOWN, false)}, skewed, &zppb.Schedule{}, map[string]int{"b:1": 2}, true},
		{"off: reported, not planned", []*zppb.Node{up("a:1"), up("b:1"), up("c:1")}, skewed, &zppb.Schedule{MasterBalanceOff: true}, map[string]int{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &scheduleView{settings: fsm.Resolve(tc.settings)}
			v.planBalance(tc.nodes, tc.tables)
			got := make(map[string]int)
			for _, m := range v.switchovers {
				if m.Kind != zppb.MoveKind_SETMASTER {
					t.Errorf("balance queued %v", describe([]*zppb.Move{m}))
				}
				got[m.To]++
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.wantTo) {
				t.Errorf("switchovers %v; want per target %v", describe(v.switchovers), tc.wantTo)
			}
			if (v.imbalance > 0) != tc.wantImbal {
				t.Errorf("imbalance %d; want imbalanced %t", v.imbalance, tc.wantImbal)
			}
		})
	}
}

// TestApplyScheduleRequest checks that a SCHEDULE request changes only
// the settings it names and refuses values that would read as defaults.
func TestApplyScheduleRequest(t *testing.T) {
	ptr := func(v int64) *int64 { return &v }
	cur := &zppb.Schedule{DownTimeoutMs: 5000, MaxMoves: 3}
	paused := true
	next, err := applyScheduleRequest(cur, &zppb.ScheduleRequest{Paused: &paused})
	if err != nil || !next.Paused || next.DownTimeoutMs != 5000 || next.MaxMoves != 3 {
		t.Fatalf("pause: %v, %v", next, err)
	}
	if _, err := applyScheduleRequest(cur, &zppb.ScheduleRequest{DownTimeoutMs: ptr(0)}); err == nil {
		t.Error("down-timeout 0 accepted")
	}
	zero := uint32(0)
	if _, err := applyScheduleRequest(cur, &zppb.ScheduleRequest{MaxMoves: &zero}); err == nil {
		t.Error("max-moves 0 accepted")
	}
	next, err = applyScheduleRequest(cur, &zppb.ScheduleRequest{DownTimeoutMs: ptr(-1)})
	if err != nil || fsm.Resolve(next).RepairDownAfter >= 0 {
		t.Errorf("never: %v, %v", next, err)
	}
	if got := fsm.Resolve(&zppb.Schedule{}); got.RepairDownAfter != 30*time.Minute || !got.MasterBalance || got.MaxMoves != fsm.DefaultMaxSchedulerMoves {
		t.Errorf("defaults: %+v", got)
	}
}

// TestReplan: the scheduler plans again when a command was applied or a
// down-timeout ran out, and not otherwise.
func TestReplan(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		name             string
		applied, current uint64
		due              time.Time
		want             bool
	}{
		{"nothing changed", 7, 7, time.Time{}, false},
		{"a command applied", 7, 8, time.Time{}, true},
		{"down-timeout ahead", 7, 7, now.Add(time.Second), false},
		{"down-timeout ran out", 7, 7, now, true},
	} {
		if got := replan(tc.applied, tc.current, tc.due, now); got != tc.want {
			t.Errorf("%s: replan = %t, want %t", tc.name, got, tc.want)
		}
	}
}
