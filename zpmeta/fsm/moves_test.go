package fsm

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// movesFSM has nodes a..d, all UP, and table t with one partition on a
// (master), b, c.
func movesFSM(t *testing.T) *FSM {
	f := seeded(t)
	mustApply(t, f, register("d:1"))
	return f
}

func part(t *testing.T, f *FSM) *zppb.Partition {
	t.Helper()
	topo, err := f.Topology("t")
	if err != nil {
		t.Fatal(err)
	}
	return topo.Tables[0].Partitions[0]
}

func addMove(t *testing.T, f *FSM, m *zppb.Move) uint64 {
	t.Helper()
	mustApply(t, f, AddMoves([]*zppb.Move{m}, 0, 1))
	moves := f.Moves(false)
	return moves[len(moves)-1].Id
}

func step(f *FSM, id uint64, from, to zppb.MoveState) error {
	b, _ := proto.Marshal(StepMove(id, from, to, "", 2))
	return applyLog(f, b).Err
}

const (
	pending  = zppb.MoveState_MOVE_PENDING
	catching = zppb.MoveState_MOVE_CATCHING_UP
	slowdown = zppb.MoveState_MOVE_SLOWDOWN
	stuck    = zppb.MoveState_MOVE_STUCK
	removing = zppb.MoveState_MOVE_REMOVING
	done     = zppb.MoveState_MOVE_DONE
	failed   = zppb.MoveState_MOVE_FAILED
)

func TestMigrateMasterWalksTheStateMachine(t *testing.T) {
	f := movesFSM(t)
	epoch := f.Epoch()
	id := addMove(t, f, &zppb.Move{Kind: zppb.MoveKind_MIGRATE, Table: "t", From: "a:1", To: "d:1"})
	if f.Epoch() != epoch {
		t.Fatalf("queueing a move bumped the epoch to %d", f.Epoch())
	}
	walk := []struct {
		from, to zppb.MoveState
		master   string
		slaves   []string
		state    zppb.PartitionState
		term     uint64
	}{
		{pending, catching, "a:1", []string{"b:1", "c:1", "d:1"}, zppb.PartitionState_ACTIVE, 1},
		{catching, slowdown, "a:1", []string{"b:1", "c:1", "d:1"}, zppb.PartitionState_SLOWDOWN, 1},
		{slowdown, stuck, "a:1", []string{"b:1", "c:1", "d:1"}, zppb.PartitionState_STUCK, 1},
		{stuck, removing, "d:1", []string{"b:1", "c:1", "a:1"}, zppb.PartitionState_ACTIVE, 2},
		{removing, done, "d:1", []string{"b:1", "c:1"}, zppb.PartitionState_ACTIVE, 2},
	}
	for _, w := range walk {
		before := f.Epoch()
		if err := step(f, id, w.from, w.to); err != nil {
			t.Fatalf("%v -> %v: %v", w.from, w.to, err)
		}
		p := part(t, f)
		if p.Master != w.master || !slices.Equal(p.Slaves, w.slaves) || p.State != w.state || p.Term != w.term {
			t.Fatalf("after %v: master %s slaves %v state %v term %d; want %s %v %v %d", w.to, p.Master, p.Slaves, p.State, p.Term, w.master, w.slaves, w.state, w.term)
		}
		if f.Epoch() != before+1 {
			t.Fatalf("step %v -> %v: epoch %d, want %d", w.from, w.to, f.Epoch(), before+1)
		}
		// The same step again is stale.
		if err := step(f, id, w.from, w.to); !errors.Is(err, status.ErrStaleEpoch) {
			t.Fatalf("repeated step %v -> %v: %v, want STALE_EPOCH", w.from, w.to, err)
		}
	}
	if len(f.Moves(false)) != 0 || len(f.Moves(true)) != 1 {
		t.Fatalf("moves after done: active %v, all %v", f.Moves(false), f.Moves(true))
	}
}

func TestMoveRulesAndRollback(t *testing.T) {
	tests := []struct {
		name  string
		move  *zppb.Move
		steps [][2]zppb.MoveState
		err   error // of the last step, or of AddMoves when steps is empty
		want  *zppb.Partition
	}{
		{name: "migrate a slave skips slowdown", move: &zppb.Move{Kind: zppb.MoveKind_MIGRATE, Table: "t", From: "b:1", To: "d:1"},
			steps: [][2]zppb.MoveState{{pending, catching}, {catching, removing}, {removing, done}},
			want:  &zppb.Partition{Master: "a:1", Slaves: []string{"c:1", "d:1"}, Term: 1}},
		{name: "setmaster", move: &zppb.Move{Kind: zppb.MoveKind_SETMASTER, Table: "t", To: "c:1"},
			steps: [][2]zppb.MoveState{{pending, catching}, {catching, slowdown}, {slowdown, stuck}, {stuck, done}},
			want:  &zppb.Partition{Master: "c:1", Slaves: []string{"b:1", "a:1"}, Term: 2}},
		{name: "addslave", move: &zppb.Move{Kind: zppb.MoveKind_ADDSLAVE, Table: "t", To: "d:1"},
			steps: [][2]zppb.MoveState{{pending, catching}, {catching, done}},
			want:  &zppb.Partition{Master: "a:1", Slaves: []string{"b:1", "c:1", "d:1"}, Term: 1}},
		{name: "removeslave", move: &zppb.Move{Kind: zppb.MoveKind_REMOVESLAVE, Table: "t", From: "c:1"},
			steps: [][2]zppb.MoveState{{pending, done}},
			want:  &zppb.Partition{Master: "a:1", Slaves: []string{"b:1"}, Term: 1}},
		{name: "cancel while stuck rolls back", move: &zppb.Move{Kind: zppb.MoveKind_MIGRATE, Table: "t", From: "a:1", To: "d:1"},
			steps: [][2]zppb.MoveState{{pending, catching}, {catching, slowdown}, {slowdown, stuck}, {stuck, failed}},
			want:  &zppb.Partition{Master: "a:1", Slaves: []string{"b:1", "c:1"}, Term: 1}},
		{name: "no cancel after handover", move: &zppb.Move{Kind: zppb.MoveKind_MIGRATE, Table: "t", From: "a:1", To: "d:1"},
			steps: [][2]zppb.MoveState{{pending, catching}, {catching, slowdown}, {slowdown, stuck}, {stuck, removing}, {removing, failed}},
			err:   status.ErrInvalidArgument},
		{name: "slave migration cannot slow down", move: &zppb.Move{Kind: zppb.MoveKind_MIGRATE, Table: "t", From: "b:1", To: "d:1"},
			steps: [][2]zppb.MoveState{{pending, catching}, {catching, slowdown}},
			err:   status.ErrInvalidArgument},
		{name: "target already a replica", move: &zppb.Move{Kind: zppb.MoveKind_MIGRATE, Table: "t", From: "a:1", To: "b:1"}, err: status.ErrInvalidArgument},
		{name: "source holds nothing", move: &zppb.Move{Kind: zppb.MoveKind_MIGRATE, Table: "t", From: "d:1", To: "d:1"}, err: status.ErrInvalidArgument},
		{name: "unknown node", move: &zppb.Move{Kind: zppb.MoveKind_ADDSLAVE, Table: "t", To: "z:1"}, err: status.ErrNodeNotFound},
		{name: "setmaster to a non-slave", move: &zppb.Move{Kind: zppb.MoveKind_SETMASTER, Table: "t", To: "d:1"}, err: status.ErrInvalidArgument},
		{name: "unknown table", move: &zppb.Move{Kind: zppb.MoveKind_ADDSLAVE, Table: "x", To: "d:1"}, err: status.ErrTableNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := movesFSM(t)
			if len(tt.steps) == 0 {
				before, _ := f.Topology("")
				b, _ := proto.Marshal(AddMoves([]*zppb.Move{tt.move}, 0, 1))
				if err := applyLog(f, b).Err; !errors.Is(err, tt.err) {
					t.Fatalf("AddMoves: %v, want %v", err, tt.err)
				}
				if after, _ := f.Topology(""); !proto.Equal(before, after) || len(f.Moves(true)) != 0 {
					t.Fatal("a rejected move changed the state")
				}
				return
			}
			id := addMove(t, f, tt.move)
			var err error
			for _, s := range tt.steps {
				if err = step(f, id, s[0], s[1]); err != nil {
					break
				}
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("last step: %v, want %v", err, tt.err)
			}
			if tt.want != nil {
				p := part(t, f)
				if p.Master != tt.want.Master || !slices.Equal(p.Slaves, tt.want.Slaves) || p.Term != tt.want.Term || p.State != zppb.PartitionState_ACTIVE {
					t.Fatalf("partition %v, want %v", p, tt.want)
				}
			}
		})
	}
}

func TestQueuedMovesPerPartitionAndFailoverAbortsHandover(t *testing.T) {
	f := movesFSM(t)
	id := addMove(t, f, &zppb.Move{Kind: zppb.MoveKind_MIGRATE, Table: "t", From: "a:1", To: "d:1"})
	b, _ := proto.Marshal(AddMoves([]*zppb.Move{{Kind: zppb.MoveKind_ADDSLAVE, Table: "t", To: "d:1"}}, 0, 1))
	if err := applyLog(f, b).Err; !errors.Is(err, status.ErrInvalidArgument) {
		t.Fatalf("second move of the same node on a partition: %v", err)
	}
	// A switchover to the node the queued migration adds may wait behind it.
	mustApply(t, f, AddMoves([]*zppb.Move{{Kind: zppb.MoveKind_SETMASTER, Table: "t", To: "d:1"}}, 0, 1))
	if n := len(f.Moves(false)); n != 2 {
		t.Fatalf("%d moves queued, want 2", n)
	}
	for _, s := range [][2]zppb.MoveState{{pending, catching}, {catching, slowdown}, {slowdown, stuck}} {
		if err := step(f, id, s[0], s[1]); err != nil {
			t.Fatal(err)
		}
	}
	// The master fails over to b while the partition is STUCK.
	mustApply(t, f, SetMasters("failover", change("t", 0, "b:1", 1)))
	if p := part(t, f); p.State != zppb.PartitionState_ACTIVE {
		t.Fatalf("failover left the partition %v", p.State)
	}
	if err := step(f, id, stuck, removing); !errors.Is(err, status.ErrInvalidArgument) {
		t.Fatalf("handover after a failover: %v, want rejection", err)
	}
	if err := step(f, id, stuck, failed); err != nil {
		t.Fatal(err)
	}
	if p := part(t, f); slices.Contains(p.Slaves, "d:1") || p.Master != "b:1" {
		t.Fatalf("after failing the move: %v", p)
	}
}

func TestSnapshotKeepsMoves(t *testing.T) {
	f := movesFSM(t)
	id := addMove(t, f, &zppb.Move{Kind: zppb.MoveKind_MIGRATE, Table: "t", From: "a:1", To: "d:1"})
	if err := step(f, id, pending, catching); err != nil {
		t.Fatal(err)
	}
	g := restored(t, f, nil)
	if !slices.EqualFunc(f.Moves(true), g.Moves(true), func(a, b *zppb.Move) bool { return proto.Equal(a, b) }) {
		t.Fatalf("moves after restore %v, want %v", g.Moves(true), f.Moves(true))
	}
	// Ids go on where they were.
	if err := step(g, id, catching, failed); err != nil {
		t.Fatal(err)
	}
	id2 := addMove(t, g, &zppb.Move{Kind: zppb.MoveKind_REMOVESLAVE, Table: "t", From: "b:1"})
	if id2 != id+1 {
		t.Fatalf("next move id %d, want %d", id2, id+1)
	}
}

// TestCancelMoves: one entry cancels the moves it names (every active one
// with all), rolling each back; moves past the handover or ended are left
// as they are and reported; an unknown id changes nothing.
func TestCancelMoves(t *testing.T) {
	const reason = "cancelled by operator"
	// setup queues a migration of a's replica to d walked to the state
	// given and a switchover to c queued behind it; it returns their ids.
	setup := func(t *testing.T, f *FSM, to zppb.MoveState) (migrate, setmaster uint64) {
		migrate = addMove(t, f, &zppb.Move{Kind: zppb.MoveKind_MIGRATE, Table: "t", From: "a:1", To: "d:1"})
		setmaster = addMove(t, f, &zppb.Move{Kind: zppb.MoveKind_SETMASTER, Table: "t", To: "c:1"})
		for _, s := range [][2]zppb.MoveState{{pending, catching}, {catching, slowdown}, {slowdown, stuck}, {stuck, removing}, {removing, done}} {
			if s[0] == to {
				break
			}
			if err := step(f, migrate, s[0], s[1]); err != nil {
				t.Fatal(err)
			}
		}
		return migrate, setmaster
	}
	ids := func(ms []*zppb.Move) []uint64 {
		var out []uint64
		for _, m := range ms {
			out = append(out, m.Id)
		}
		return out
	}
	tests := []struct {
		name              string
		state             zppb.MoveState // of the migration when cancelling
		all               bool
		named             func(migrate, setmaster uint64) []uint64
		wantCancelled     func(migrate, setmaster uint64) []uint64
		wantNotCancelled  func(migrate, setmaster uint64) []uint64
		wantMaster        string
		wantSlaves        []string
		wantPartitionLeft zppb.PartitionState
	}{
		{name: "all, one STUCK and one queued", state: stuck, all: true,
			wantCancelled: func(m, s uint64) []uint64 { return []uint64{m, s} }, wantNotCancelled: func(m, s uint64) []uint64 { return nil },
			wantMaster: "a:1", wantSlaves: []string{"b:1", "c:1"}, wantPartitionLeft: zppb.PartitionState_ACTIVE},
		{name: "named, one past its handover", state: removing, named: func(m, s uint64) []uint64 { return []uint64{s, m} },
			wantCancelled: func(m, s uint64) []uint64 { return []uint64{s} }, wantNotCancelled: func(m, s uint64) []uint64 { return []uint64{m} },
			wantMaster: "d:1", wantSlaves: []string{"b:1", "c:1", "a:1"}, wantPartitionLeft: zppb.PartitionState_ACTIVE},
		{name: "all leaves a move past its handover", state: removing, all: true,
			wantCancelled: func(m, s uint64) []uint64 { return []uint64{s} }, wantNotCancelled: func(m, s uint64) []uint64 { return []uint64{m} },
			wantMaster: "d:1", wantSlaves: []string{"b:1", "c:1", "a:1"}, wantPartitionLeft: zppb.PartitionState_ACTIVE},
		{name: "named, one ended", state: done, named: func(m, s uint64) []uint64 { return []uint64{m, s} },
			wantCancelled: func(m, s uint64) []uint64 { return []uint64{s} }, wantNotCancelled: func(m, s uint64) []uint64 { return []uint64{m} },
			wantMaster: "d:1", wantSlaves: []string{"b:1", "c:1"}, wantPartitionLeft: zppb.PartitionState_ACTIVE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := movesFSM(t)
			m, s := setup(t, f, tt.state)
			var named []uint64
			if tt.named != nil {
				named = tt.named(m, s)
			}
			epoch := f.Epoch()
			res := mustApply(t, f, CancelMoves(named, tt.all, reason, 9))
			if got, want := ids(res.Moves), tt.wantCancelled(m, s); !slices.Equal(got, want) {
				t.Fatalf("cancelled %v, want %v", got, want)
			}
			if got, want := ids(res.NotCancelled), tt.wantNotCancelled(m, s); !slices.Equal(got, want) {
				t.Fatalf("not cancelled %v, want %v", got, want)
			}
			for _, mv := range res.Moves {
				if mv.State != zppb.MoveState_MOVE_CANCELLED || mv.Error != reason || mv.UpdatedMs != 9 {
					t.Fatalf("cancelled move %v", mv)
				}
			}
			for _, mv := range f.Moves(true) {
				if slices.Contains(ids(res.Moves), mv.Id) != (mv.State == zppb.MoveState_MOVE_CANCELLED) {
					t.Fatalf("move %d is %v after the cancel", mv.Id, mv.State)
				}
			}
			p := part(t, f)
			if p.Master != tt.wantMaster || p.State != tt.wantPartitionLeft || (tt.state == stuck) != (f.Epoch() != epoch) {
				t.Fatalf("partition %v at epoch %d (was %d)", p, f.Epoch(), epoch)
			}
			if !slices.Equal(p.Slaves, tt.wantSlaves) {
				t.Fatalf("slaves %v, want %v", p.Slaves, tt.wantSlaves)
			}
			// A step the move loop proposed before it saw the cancel is
			// rejected.
			if tt.state == stuck {
				if err := step(f, m, stuck, removing); !errors.Is(err, status.ErrStaleEpoch) {
					t.Fatalf("step after the cancel: %v, want STALE_EPOCH", err)
				}
			}
		})
	}

	t.Run("an unknown id changes nothing", func(t *testing.T) {
		f := movesFSM(t)
		m, _ := setup(t, f, stuck)
		before, _ := f.Topology("")
		b, _ := proto.Marshal(CancelMoves([]uint64{m, 999}, false, reason, 9))
		if err := applyLog(f, b).Err; !errors.Is(err, status.ErrInvalidArgument) {
			t.Fatalf("cancel of an unknown move: %v", err)
		}
		if after, _ := f.Topology(""); !proto.Equal(before, after) {
			t.Fatal("a rejected cancel changed the topology")
		}
		for _, mv := range f.Moves(true) {
			if mv.State == zppb.MoveState_MOVE_CANCELLED {
				t.Fatalf("a rejected cancel cancelled move %d", mv.Id)
			}
		}
	})
}

// TestCordonNodes: a cordoned node receives no new replica (moves to it and
// table placement skip it), keeps what it holds, and a snapshot keeps the
// flag.
func TestCordonNodes(t *testing.T) {
	f := movesFSM(t)
	epoch := f.Epoch()
	b, _ := proto.Marshal(CordonNodes([]string{"d:1", "z:1"}, true))
	if err := applyLog(f, b).Err; !errors.Is(err, status.ErrNodeNotFound) || f.Epoch() != epoch || f.Node("d:1").GetCordoned() {
		t.Fatalf("cordon of an unknown node: %v; epoch %d, d cordoned %v", err, f.Epoch(), f.Node("d:1").GetCordoned())
	}
	if res := mustApply(t, f, CordonNodes([]string{"d:1", "c:1"}, true)); !res.Changed || res.Epoch != epoch+1 {
		t.Fatalf("cordon: %+v", res)
	}
	if res := mustApply(t, f, CordonNodes([]string{"d:1"}, true)); res.Changed {
		t.Fatal("cordoning a cordoned node changed the state")
	}
	for _, m := range []*zppb.Move{
		{Kind: zppb.MoveKind_ADDSLAVE, Table: "t", To: "d:1"},
		{Kind: zppb.MoveKind_MIGRATE, Table: "t", From: "b:1", To: "d:1"},
		{Kind: zppb.MoveKind_SETMASTER, Table: "t", To: "c:1"},
	} {
		b, _ := proto.Marshal(AddMoves([]*zppb.Move{m}, 0, 1))
		if err := applyLog(f, b).Err; !errors.Is(err, status.ErrInvalidArgument) || !strings.Contains(err.Error(), "cordoned") {
			t.Fatalf("%v to a cordoned node: %v", m.Kind, err)
		}
	}
	// A new table goes on the nodes that receive: a and b.
	cmd, err := f.PrepareCreateTable(&zppb.CreateTableRequest{Name: "n", Partitions: 4, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range cmd.GetCreateTable().GetTable().GetPartitions() {
		if on := topo.ReplicasOf(p); slices.Contains(on, "c:1") || slices.Contains(on, "d:1") {
			t.Fatalf("partition %d placed on %v, a cordoned node among them", p.Id, on)
		}
	}
	if _, err := f.PrepareCreateTable(&zppb.CreateTableRequest{Name: "n", Partitions: 4, Replicas: 3}); err == nil {
		t.Fatal("3 replicas placed on the 2 nodes that receive")
	}
	if p := part(t, f); p.Master != "a:1" || !slices.Equal(p.Slaves, []string{"b:1", "c:1"}) {
		t.Fatalf("the cordon moved what c holds: %v", p)
	}

	g := restored(t, f, nil)
	if !g.Node("d:1").GetCordoned() || g.Node("a:1").GetCordoned() {
		t.Fatal("the snapshot lost who is cordoned")
	}
	mustApply(t, g, CordonNodes([]string{"d:1"}, false))
	addMove(t, g, &zppb.Move{Kind: zppb.MoveKind_ADDSLAVE, Table: "t", To: "d:1"})
}
