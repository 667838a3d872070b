package topo

import (
	"slices"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// testView is a topology held as the protocol has it.
type testView struct {
	tables []*zppb.Table
	nodes  []*zppb.Node
}

func (v testView) Tables() []string {
	var names []string
	for _, t := range v.tables {
		names = append(names, t.Name)
	}
	return names
}

func (v testView) Partitions(table string) ([]*zppb.Partition, bool) {
	for _, t := range v.tables {
		if t.Name == table {
			return t.Partitions, true
		}
	}
	return nil, false
}

func (v testView) Node(addr string) *zppb.Node {
	for _, n := range v.nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

const a, b, c, d, down, cordoned = "a:1", "b:1", "c:1", "d:1", "down:1", "cord:1"

// sample: t/0 on a (master), b and down; t/1 on b (master) and c; d holds
// nothing; cordoned is UP and cordoned.
func sample() testView {
	up := func(addr string) *zppb.Node { return &zppb.Node{Addr: addr, State: zppb.NodeState_UP} }
	return testView{
		tables: []*zppb.Table{{Name: "t", Partitions: []*zppb.Partition{
			{Id: 0, Master: a, Slaves: []string{b, down}},
			{Id: 1, Master: b, Slaves: []string{c}},
		}}},
		nodes: []*zppb.Node{up(a), up(b), up(c), up(d), {Addr: down, State: zppb.NodeState_DOWN},
			{Addr: cordoned, State: zppb.NodeState_UP, Cordoned: true}},
	}
}

func mv(kind zppb.MoveKind, part uint32, from, to string) *zppb.Move {
	return &zppb.Move{Kind: kind, Table: "t", Partition: part, From: from, To: to}
}

const (
	migrate     = zppb.MoveKind_MIGRATE
	setmaster   = zppb.MoveKind_SETMASTER
	addslave    = zppb.MoveKind_ADDSLAVE
	removeslave = zppb.MoveKind_REMOVESLAVE
)

// checkErr fails unless err has code and exactly the message msg (OK and
// "" for no error).
func checkErr(t *testing.T, err error, code zppb.Code, msg string) {
	t.Helper()
	got := ""
	if se, ok := err.(*status.Error); ok {
		got = se.Msg
	} else if err != nil {
		t.Fatalf("err %v is not a *status.Error", err)
	}
	if status.Code(err) != code || got != msg {
		t.Fatalf("err %v, want %v %q", err, code, msg)
	}
}

func TestCheckMove(t *testing.T) {
	tests := []struct {
		name string
		// queued are moves in progress, in id order (ids from 1).
		queued []*zppb.Move
		move   *zppb.Move
		code   zppb.Code
		msg    string
	}{
		{"migrate a slave", nil, mv(migrate, 0, b, d), zppb.Code_OK, ""},
		{"migrate the master", nil, mv(migrate, 0, a, d), zppb.Code_OK, ""},
		{"migrate from a DOWN slave", nil, mv(migrate, 0, down, d), zppb.Code_OK, ""},
		{"migrate from a non-holder", nil, mv(migrate, 0, c, d), zppb.Code_INVALID_ARGUMENT, `"c:1" holds no replica of t/0`},
		{"migrate onto a holder", nil, mv(migrate, 0, a, b), zppb.Code_INVALID_ARGUMENT, `"b:1" already holds a replica of t/0`},
		{"migrate to a DOWN node", nil, mv(migrate, 1, b, down), zppb.Code_INVALID_ARGUMENT, `node "down:1" is DOWN`},
		{"migrate to a cordoned node", nil, mv(migrate, 1, b, cordoned), zppb.Code_INVALID_ARGUMENT,
			`node "cord:1" is cordoned: it receives no new replica or master (zpctl node uncordon)`},
		{"migrate to an unknown node", nil, mv(migrate, 1, b, "x:1"), zppb.Code_NODE_NOT_FOUND, `node "x:1" is not registered`},
		{"unknown table", nil, &zppb.Move{Kind: migrate, Table: "u", From: a, To: d}, zppb.Code_TABLE_NOT_FOUND, `table "u" does not exist`},
		{"unknown partition", nil, mv(migrate, 2, b, d), zppb.Code_INVALID_ARGUMENT, `table "t" has no partition 2`},

		{"setmaster", nil, mv(setmaster, 0, "", b), zppb.Code_OK, ""},
		{"setmaster to the master", nil, mv(setmaster, 0, "", a), zppb.Code_INVALID_ARGUMENT, `"a:1" is already the master of t/0`},
		{"setmaster to a non-holder", nil, mv(setmaster, 0, "", c), zppb.Code_INVALID_ARGUMENT, `"c:1" is not a slave of t/0`},
		{"setmaster to a DOWN slave", nil, mv(setmaster, 0, "", down), zppb.Code_INVALID_ARGUMENT, `node "down:1" is DOWN`},
		{"setmaster after the move adding its target", []*zppb.Move{mv(migrate, 1, c, d)}, mv(setmaster, 1, "", d), zppb.Code_OK, ""},
		{"setmaster to a node a move removes", []*zppb.Move{mv(migrate, 1, c, d)}, mv(setmaster, 1, "", c), zppb.Code_INVALID_ARGUMENT,
			`node "c:1" of t/1 is already part of move 1`},

		{"addslave", nil, mv(addslave, 1, "", d), zppb.Code_OK, ""},
		{"addslave to a holder", nil, mv(addslave, 1, "", c), zppb.Code_INVALID_ARGUMENT, `"c:1" already holds a replica of t/1`},
		{"addslave to a cordoned node", nil, mv(addslave, 1, "", cordoned), zppb.Code_INVALID_ARGUMENT,
			`node "cord:1" is cordoned: it receives no new replica or master (zpctl node uncordon)`},
		{"addslave to a node another move adds", []*zppb.Move{mv(addslave, 1, "", d)}, mv(addslave, 1, "", d), zppb.Code_INVALID_ARGUMENT,
			`node "d:1" of t/1 is already part of move 1`},
		{"addslave on another partition", []*zppb.Move{mv(addslave, 1, "", d)}, mv(migrate, 0, b, d), zppb.Code_OK, ""},

		{"removeslave", nil, mv(removeslave, 0, down, ""), zppb.Code_OK, ""},
		{"removeslave of the master", nil, mv(removeslave, 0, a, ""), zppb.Code_INVALID_ARGUMENT, `"a:1" is not a slave of t/0`},
		{"removeslave of a slave being moved", []*zppb.Move{mv(migrate, 0, b, d)}, mv(removeslave, 0, b, ""), zppb.Code_INVALID_ARGUMENT,
			`node "b:1" of t/0 is already part of move 1`},
		{"removeslave after an ended move", []*zppb.Move{{Kind: migrate, Table: "t", From: b, To: d, State: zppb.MoveState_MOVE_DONE}},
			mv(removeslave, 0, b, ""), zppb.Code_OK, ""},

		{"unknown kind", nil, mv(zppb.MoveKind_MOVE_KIND_UNKNOWN, 0, a, d), zppb.Code_INVALID_ARGUMENT, "unknown move kind MOVE_KIND_UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, m := range tt.queued {
				m.Id = uint64(i + 1)
			}
			checkErr(t, CheckMove(sample(), tt.move, NewQueue(tt.queued)), tt.code, tt.msg)
		})
	}
}

// A batch is checked move by move, each joining the queue for the next.
func TestCheckMovesBatch(t *testing.T) {
	v := sample()
	if err := CheckMoves(v, []*zppb.Move{mv(addslave, 1, "", d), mv(setmaster, 1, "", d)}, nil); err != nil {
		t.Fatalf("addslave then setmaster to it: %v", err)
	}
	err := CheckMoves(v, []*zppb.Move{mv(migrate, 0, b, d), mv(migrate, 0, b, c)}, nil)
	checkErr(t, err, zppb.Code_INVALID_ARGUMENT, `node "b:1" of t/0 is already part of move 0`)
}

func TestFillSources(t *testing.T) {
	moves := []*zppb.Move{mv(setmaster, 0, "", b), mv(setmaster, 1, c, c), mv(addslave, 1, "", d)}
	FillSources(sample(), moves)
	if moves[0].From != a || moves[1].From != c || moves[2].From != "" {
		t.Fatalf("sources %q %q %q, want %q %q %q", moves[0].From, moves[1].From, moves[2].From, a, c, "")
	}
}

func TestCheckRemovable(t *testing.T) {
	v := sample()
	v.nodes = append(v.nodes, &zppb.Node{Addr: "gone:1", State: zppb.NodeState_DOWN},
		&zppb.Node{Addr: "new:1", State: zppb.NodeState_NODE_STATE_UNKNOWN})
	inMove := []*zppb.Move{{Id: 4, Kind: migrate, Table: "t", From: "gone:1", To: d}}
	tests := []struct {
		name  string
		nodes []string
		moves []*zppb.Move
		code  zppb.Code
		msg   string
	}{
		{"DOWN and empty", []string{"gone:1"}, nil, zppb.Code_OK, ""},
		{"after its move ended", []string{"gone:1"}, []*zppb.Move{{Id: 4, From: "gone:1", State: zppb.MoveState_MOVE_CANCELLED}}, zppb.Code_OK, ""},
		{"unknown", []string{"x:1"}, nil, zppb.Code_NODE_NOT_FOUND, `node "x:1" is not registered`},
		{"UP", []string{d}, nil, zppb.Code_INVALID_ARGUMENT, `node "d:1" is UP; only DOWN nodes can be removed`},
		{"never seen", []string{"new:1"}, nil, zppb.Code_INVALID_ARGUMENT, `node "new:1" is NODE_STATE_UNKNOWN; only DOWN nodes can be removed`},
		{"holding a replica", []string{"gone:1", down}, nil, zppb.Code_INVALID_ARGUMENT,
			`node "down:1" still holds a replica of t/0: shrink or replace-node it first`},
		{"part of a move", []string{"gone:1"}, inMove, zppb.Code_INVALID_ARGUMENT, `node "gone:1" is part of move 4`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, CheckRemovable(v, tt.nodes, tt.moves), tt.code, tt.msg)
		})
	}
}

func TestMovePredicates(t *testing.T) {
	var terminal, cancellable []zppb.MoveState
	for st := range zppb.MoveState_name {
		s := zppb.MoveState(st)
		if Terminal(s) {
			terminal = append(terminal, s)
		}
		if Cancellable(s) {
			cancellable = append(cancellable, s)
		}
	}
	slices.Sort(terminal)
	slices.Sort(cancellable)
	wantTerminal := []zppb.MoveState{zppb.MoveState_MOVE_DONE, zppb.MoveState_MOVE_FAILED, zppb.MoveState_MOVE_CANCELLED}
	wantCancellable := []zppb.MoveState{zppb.MoveState_MOVE_PENDING, zppb.MoveState_MOVE_CATCHING_UP, zppb.MoveState_MOVE_SLOWDOWN, zppb.MoveState_MOVE_STUCK, zppb.MoveState_MOVE_PREPARE}
	slices.Sort(wantTerminal)
	slices.Sort(wantCancellable)
	if !slices.Equal(terminal, wantTerminal) || !slices.Equal(cancellable, wantCancellable) {
		t.Fatalf("terminal %v, cancellable %v", terminal, cancellable)
	}
	v := sample()
	for addr, want := range map[string]bool{a: true, down: false, cordoned: false, "x:1": false} {
		if got := Receives(v.Node(addr)); got != want {
			t.Errorf("Receives(%s) = %v", addr, got)
		}
	}
	p := v.tables[0].Partitions[0]
	if !Holds(p, a) || !Holds(p, down) || Holds(p, c) || !slices.Equal(ReplicasOf(p), []string{a, b, down}) {
		t.Fatalf("Holds/ReplicasOf of %v", p)
	}
}
