package fsm

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

const (
	prepare   = zppb.MoveState_MOVE_PREPARE
	committed = zppb.MoveState_MOVE_COMMITTED
)

func splitMove(partition, at uint32) *zppb.Move {
	return &zppb.Move{Kind: zppb.MoveKind_SPLIT, Table: "t", Partition: partition, SplitAt: at, Origin: "manual"}
}

func tableT(t *testing.T, f *FSM) *zppb.Table {
	t.Helper()
	tp, err := f.Topology("t")
	if err != nil {
		t.Fatal(err)
	}
	return tp.Tables[0]
}

// TestSplitWalksTheStateMachine: PENDING -> PREPARE puts the split on the
// partition, COMMITTED switches the ranges and adds the child with the
// parent's replicas, master and term, and every epoch routes each slot to
// exactly one partition.
func TestSplitWalksTheStateMachine(t *testing.T) {
	f := movesFSM(t)
	id := addMove(t, f, splitMove(0, 0))
	m := f.Moves(false)[0]
	if m.SplitAt != 8192 {
		t.Fatalf("split queued at %d, want the middle 8192", m.SplitAt)
	}
	// The partition takes no other move while the split is queued, and
	// the split no second one.
	if r := applyLog(f, mustMarshal(t, AddMoves([]*zppb.Move{{Kind: zppb.MoveKind_ADDSLAVE, Table: "t", To: "d:1"}}, 0, 1))); r.Err == nil {
		t.Fatal("ADDSLAVE queued beside a split")
	}
	if r := applyLog(f, mustMarshal(t, AddMoves([]*zppb.Move{splitMove(0, 100)}, 0, 1))); r.Err == nil {
		t.Fatal("second split queued")
	}
	before := f.Epoch()
	if err := step(f, id, pending, prepare); err != nil {
		t.Fatal(err)
	}
	p := part(t, f)
	if p.Split == nil || p.Split.Child != 1 || p.Split.At != 8192 || p.Split.Epoch != before+1 || p.Split.Move != id || f.Epoch() != before+1 {
		t.Fatalf("after PREPARE: partition split %v, epoch %d (was %d)", p.Split, f.Epoch(), before)
	}
	// A COMMIT before PREPARE of another split of the table, or a
	// repeated PREPARE, changes nothing.
	if err := step(f, id, pending, prepare); err == nil {
		t.Fatal("PREPARE applied twice")
	}
	if err := step(f, id, prepare, committed); err != nil {
		t.Fatal(err)
	}
	tb := tableT(t, f)
	if tb.PartitionCount != 2 || len(tb.Partitions) != 2 {
		t.Fatalf("after COMMIT: %d partitions (%d listed)", tb.PartitionCount, len(tb.Partitions))
	}
	par, child := tb.Partitions[0], tb.Partitions[1]
	if par.SlotBegin != 0 || par.SlotEnd != 8192 || par.Split != nil || child.SlotBegin != 8192 || child.SlotEnd != 16384 {
		t.Fatalf("ranges after COMMIT: parent [%d,%d) split %v, child [%d,%d)", par.SlotBegin, par.SlotEnd, par.Split, child.SlotBegin, child.SlotEnd)
	}
	if child.Master != par.Master || !proto.Equal(&zppb.Partition{Slaves: child.Slaves}, &zppb.Partition{Slaves: par.Slaves}) || child.Term != par.Term || child.State != zppb.PartitionState_ACTIVE {
		t.Fatalf("child %v of parent %v", child, par)
	}
	if _, err := topo.SlotMap(tb); err != nil {
		t.Fatal(err)
	}
	// Past the commit there is no going back.
	if r := applyLog(f, mustMarshal(t, CancelMoves([]uint64{id}, false, "test", 3))); r.Err != nil || len(r.Moves) != 0 || len(r.NotCancelled) != 1 {
		t.Fatalf("cancel after COMMIT: %+v", r)
	}
	if err := step(f, id, committed, done); err != nil {
		t.Fatal(err)
	}
	// The halves split again, each on its own, and the child takes moves.
	id2 := addMove(t, f, splitMove(1, 0))
	if err := step(f, id2, pending, prepare); err != nil {
		t.Fatal(err)
	}
	if err := step(f, id2, prepare, committed); err != nil {
		t.Fatal(err)
	}
	tb = tableT(t, f)
	if tb.PartitionCount != 3 || tb.Partitions[2].SlotBegin != 12288 || tb.Partitions[1].SlotEnd != 12288 {
		t.Fatalf("second split: %v", tb)
	}
	if _, err := topo.SlotMap(tb); err != nil {
		t.Fatal(err)
	}
	addMove(t, f, &zppb.Move{Kind: zppb.MoveKind_MIGRATE, Table: "t", Partition: 2, From: "b:1", To: "d:1"})
}

func mustMarshal(t *testing.T, cmd *zppb.MetaCommand) []byte {
	t.Helper()
	b, err := proto.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSplitRollback: a failover during PREPARE clears the split and the
// commit is refused; a cancel or failure in PREPARE leaves the partition
// its whole range and no child.
func TestSplitRollback(t *testing.T) {
	for _, how := range []string{"failover", "cancel", "fail"} {
		t.Run(how, func(t *testing.T) {
			f := movesFSM(t)
			id := addMove(t, f, splitMove(0, 1000))
			if err := step(f, id, pending, prepare); err != nil {
				t.Fatal(err)
			}
			switch how {
			case "failover":
				mustApply(t, f, &zppb.MetaCommand{Cmd: &zppb.MetaCommand_SetMasters{SetMasters: &zppb.SetMastersCommand{
					Changes: []*zppb.MasterChange{change("t", 0, "b:1", 1)}}}})
				if part(t, f).Split != nil {
					t.Fatal("failover left the split on the partition")
				}
				if err := step(f, id, prepare, committed); err == nil {
					t.Fatal("split committed after a failover")
				}
				if err := step(f, id, prepare, failed); err != nil {
					t.Fatal(err)
				}
			case "cancel":
				if r := applyLog(f, mustMarshal(t, CancelMoves([]uint64{id}, false, "test", 3))); r.Err != nil || len(r.Moves) != 1 || !r.Changed {
					t.Fatalf("cancel in PREPARE: %+v", r)
				}
			case "fail":
				if err := step(f, id, prepare, failed); err != nil {
					t.Fatal(err)
				}
			}
			tb := tableT(t, f)
			p := tb.Partitions[0]
			if tb.PartitionCount != 1 || p.Split != nil || p.SlotBegin != 0 || p.SlotEnd != 16384 {
				t.Fatalf("after rollback (%s): %v", how, tb)
			}
			// The partition splits again.
			id2 := addMove(t, f, splitMove(0, 0))
			if err := step(f, id2, pending, prepare); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSplitChecks: bad points and partitions busy with a move are refused
// when queued; a split of a table without recorded ranges records them.
func TestSplitChecks(t *testing.T) {
	f := movesFSM(t)
	for _, m := range []*zppb.Move{splitMove(0, 16384), splitMove(0, 20000), splitMove(1, 0),
		{Kind: zppb.MoveKind_SPLIT, Table: "t", To: "d:1"}} {
		if r := applyLog(f, mustMarshal(t, AddMoves([]*zppb.Move{m}, 0, 1))); r.Err == nil {
			t.Errorf("split %v queued", m)
		}
	}
	addMove(t, f, &zppb.Move{Kind: zppb.MoveKind_ADDSLAVE, Table: "t", To: "d:1"})
	if r := applyLog(f, mustMarshal(t, AddMoves([]*zppb.Move{splitMove(0, 0)}, 0, 1))); r.Err == nil {
		t.Error("split queued beside an ADDSLAVE")
	}

	// A table as a meta before ranges left it.
	g := movesFSM(t)
	g.mu.Lock()
	g.st.tables["t"].Partitions[0].SlotBegin, g.st.tables["t"].Partitions[0].SlotEnd = 0, 0
	g.mu.Unlock()
	id := addMove(t, g, splitMove(0, 0))
	if err := step(g, id, pending, prepare); err != nil {
		t.Fatal(err)
	}
	if p := part(t, g); p.SlotEnd != 16384 {
		t.Fatalf("PREPARE of a table without ranges left %d..%d", p.SlotBegin, p.SlotEnd)
	}
}
