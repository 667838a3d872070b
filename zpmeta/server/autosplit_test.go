package server

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/fsm"
)

// TestPlanSplits checks the scheduler's choice of automatic splits on
// fixed tables and reported sizes.
func TestPlanSplits(t *testing.T) {
	const mb = 1 << 20
	withSize := func(tb *zppb.Table, size uint64) *zppb.Table { tb.SplitSize = size; return tb }
	two := func() *zppb.Table {
		return withSize(schedTable("t", 3, []string{"a:1", "b:1", "c:1"}, []string{"b:1", "c:1", "a:1"}), 4*mb)
	}
	for _, tc := range []struct {
		name     string
		tables   []*zppb.Table
		sizes    map[string]uint64 // "table/id" -> master's size
		down     []string
		busy     []string
		settling []string
		budget   int
		want     []string // "table/id" split
	}{
		{name: "over the size: split", tables: []*zppb.Table{two()}, sizes: map[string]uint64{"t/0": 5 * mb, "t/1": 3 * mb}, budget: 4, want: []string{"t/0"}},
		{name: "at the size: not", tables: []*zppb.Table{two()}, sizes: map[string]uint64{"t/0": 4 * mb}, budget: 4},
		{name: "size unknown: not", tables: []*zppb.Table{two()}, budget: 4},
		{name: "off: not", tables: []*zppb.Table{withSize(two(), 0)}, sizes: map[string]uint64{"t/0": 50 * mb}, budget: 4},
		{name: "restoring: not", tables: []*zppb.Table{func() *zppb.Table { tb := two(); tb.Restoring = true; return tb }()},
			sizes: map[string]uint64{"t/0": 50 * mb}, budget: 4},
		{name: "a move in flight: not", tables: []*zppb.Table{two()}, sizes: map[string]uint64{"t/0": 5 * mb, "t/1": 5 * mb}, busy: []string{"t/0"}, budget: 4, want: []string{"t/1"}},
		{name: "split lately: not", tables: []*zppb.Table{two()}, sizes: map[string]uint64{"t/0": 5 * mb, "t/1": 5 * mb}, settling: []string{"t/1"}, budget: 4, want: []string{"t/0"}},
		{name: "a replica DOWN: not", tables: []*zppb.Table{two()}, sizes: map[string]uint64{"t/0": 5 * mb}, down: []string{"c:1"}, budget: 4},
		{name: "within max-moves", tables: []*zppb.Table{two()}, sizes: map[string]uint64{"t/0": 5 * mb, "t/1": 5 * mb}, budget: 1, want: []string{"t/0"}},
		{name: "a range of one slot: never", tables: []*zppb.Table{func() *zppb.Table {
			tb := two()
			tb.Partitions[0].SlotBegin, tb.Partitions[0].SlotEnd = 0, 1
			tb.Partitions[1].SlotBegin, tb.Partitions[1].SlotEnd = 1, 16384
			return tb
		}()}, sizes: map[string]uint64{"t/0": 50 * mb}, budget: 4},
		{name: "in PREPARE already: not", tables: []*zppb.Table{func() *zppb.Table {
			tb := two()
			tb.Partitions[0].Split = &zppb.PartitionSplit{Child: 2, At: 100}
			return tb
		}()}, sizes: map[string]uint64{"t/0": 50 * mb}, budget: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &scheduleView{settings: fsm.Resolve(&zppb.Schedule{})}
			in := func(list []string) func(partKey) bool {
				return func(k partKey) bool { return slices.Contains(list, fmt.Sprintf("%s/%d", k.table, k.id)) }
			}
			v.planSplits(tc.tables, func(a string) bool { return !slices.Contains(tc.down, a) }, in(tc.busy), in(tc.settling),
				func(addr, table string, id uint32) uint64 { return tc.sizes[fmt.Sprintf("%s/%d", table, id)] }, tc.budget)
			var got []string
			for _, m := range v.splits {
				if m.Kind != zppb.MoveKind_SPLIT || m.Origin != "scheduler" || m.SplitAt != 0 || m.Reason == "" {
					t.Errorf("move %+v", m)
				}
				got = append(got, fmt.Sprintf("%s/%d", m.Table, m.Partition))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("splits %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSplitSettling: a partition is left alone for autoSplitSettle after
// a split of it ended, as parent or as child.
func TestSplitSettling(t *testing.T) {
	now := time.Now()
	moves := []*zppb.Move{
		{Kind: zppb.MoveKind_SPLIT, Table: "t", Partition: 0, SplitChild: 4, State: zppb.MoveState_MOVE_DONE, UpdatedMs: now.Add(-time.Second).UnixMilli()},
		{Kind: zppb.MoveKind_SPLIT, Table: "t", Partition: 1, SplitChild: 5, State: zppb.MoveState_MOVE_DONE, UpdatedMs: now.Add(-time.Hour).UnixMilli()},
		{Kind: zppb.MoveKind_SPLIT, Table: "t", Partition: 2, State: zppb.MoveState_MOVE_FAILED, UpdatedMs: now.UnixMilli()},
		{Kind: zppb.MoveKind_MIGRATE, Table: "t", Partition: 3, State: zppb.MoveState_MOVE_DONE, UpdatedMs: now.UnixMilli()},
	}
	settling := splitSettling(moves, now)
	for id, want := range map[uint32]bool{0: true, 4: true, 1: false, 5: false, 2: true, 3: false} {
		if got := settling(partKey{"t", id}); got != want {
			t.Errorf("partition %d settling %v, want %v", id, got, want)
		}
	}
}
