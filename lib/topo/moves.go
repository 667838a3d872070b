package topo

import (
	"slices"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// View is the topology as the rules below read it. The meta FSM's state
// and lib/client's Topology each implement it over what they hold, so that
// both apply the same rules to their own data without copying it.
type View interface {
	// Tables returns the tables' names.
	Tables() []string
	// Partitions returns table's partitions, the one with id i at index
	// i; ok is false when there is no such table.
	Partitions(table string) (parts []*zppb.Partition, ok bool)
	// Node returns the node registered at addr, nil when there is none.
	Node(addr string) *zppb.Node
}

// Terminal reports whether a move in state st is over.
func Terminal(st zppb.MoveState) bool {
	return st == zppb.MoveState_MOVE_DONE || st == zppb.MoveState_MOVE_FAILED || st == zppb.MoveState_MOVE_CANCELLED
}

// Cancellable reports whether a move in state st can still be rolled
// back: it has not ended, nor passed its handover (REMOVING can only
// finish), nor, a split, its commit.
func Cancellable(st zppb.MoveState) bool {
	return !Terminal(st) && st != zppb.MoveState_MOVE_REMOVING && st != zppb.MoveState_MOVE_COMMITTED
}

// Receives reports whether n may be given new replicas and masters: UP and
// not cordoned. Table placement, moves, expand and failover's choice among
// equals all follow it.
func Receives(n *zppb.Node) bool {
	return n != nil && n.State == zppb.NodeState_UP && !n.Cordoned
}

// ReplicasOf returns the nodes holding a replica of p: the master, then
// the slaves.
func ReplicasOf(p *zppb.Partition) []string {
	return append([]string{p.Master}, p.Slaves...)
}

// Holds reports whether addr holds a replica of p, as master or slave.
func Holds(p *zppb.Partition, addr string) bool {
	return p.Master == addr || slices.Contains(p.Slaves, addr)
}

// FindPartition returns table's partition id.
func FindPartition(v View, table string, id uint32) (*zppb.Partition, error) {
	parts, ok := v.Partitions(table)
	if !ok {
		return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q does not exist", table)
	}
	if id >= uint32(len(parts)) {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "table %q has no partition %d", table, id)
	}
	return parts[id], nil
}

// CheckTarget checks that addr may receive a replica or a master (see
// Receives), saying why not.
func CheckTarget(v View, addr string) error {
	n := v.Node(addr)
	switch {
	case n == nil:
		return status.New(zppb.Code_NODE_NOT_FOUND, "node %q is not registered", addr)
	case n.State != zppb.NodeState_UP:
		return status.New(zppb.Code_INVALID_ARGUMENT, "node %q is %v", addr, n.State)
	case n.Cordoned:
		return status.New(zppb.Code_INVALID_ARGUMENT, "node %q is cordoned: it receives no new replica or master (zpctl node uncordon)", addr)
	}
	return nil
}

type partKey struct {
	table string
	id    uint32
}

// Queue is what the moves not yet finished will do to each partition: the
// nodes they involve and the nodes they add. Several moves may wait on one
// partition; the meta leader runs them one at a time, in id order.
type Queue map[partKey]*partMoves

type partMoves struct {
	involved map[string]uint64 // node -> id of a move that involves it
	adding   map[string]bool   // nodes a MIGRATE or ADDSLAVE adds
	// moves counts the moves queued (firstID the first one's id, 0 for a
	// move of the batch being checked); splitting is set when one is a
	// SPLIT, which shares its partition with no other move.
	moves     int
	firstID   uint64
	splitting bool
}

// NewQueue returns the queue of the moves of moves not yet finished, which
// come in id order.
func NewQueue(moves []*zppb.Move) Queue {
	q := make(Queue)
	for _, m := range moves {
		if !Terminal(m.State) {
			q.add(m)
		}
	}
	return q
}

func (q Queue) of(table string, id uint32) *partMoves {
	k := partKey{table, id}
	pm := q[k]
	if pm == nil {
		pm = &partMoves{involved: map[string]uint64{}, adding: map[string]bool{}}
		q[k] = pm
	}
	return pm
}

func (q Queue) add(m *zppb.Move) {
	pm := q.of(m.Table, m.Partition)
	if pm.moves == 0 {
		pm.firstID = m.Id
	}
	pm.moves++
	if m.Kind == zppb.MoveKind_SPLIT {
		pm.splitting = true
		return
	}
	for _, a := range []string{m.From, m.To} {
		if a != "" {
			pm.involved[a] = m.Id
		}
	}
	if m.Kind == zppb.MoveKind_MIGRATE || m.Kind == zppb.MoveKind_ADDSLAVE {
		pm.adding[m.To] = true
	}
}

// CheckMove checks a new move against the topology and the moves queued
// before it, which it then joins (q may be nil when none are known). A
// node may take part in one queued move per partition, except that a
// SETMASTER may follow the move that adds its target.
func CheckMove(v View, m *zppb.Move, q Queue) error {
	p, err := FindPartition(v, m.GetTable(), m.GetPartition())
	if err != nil {
		return err
	}
	if q == nil {
		q = make(Queue)
	}
	pm := q.of(m.Table, m.Partition)
	if m.GetKind() == zppb.MoveKind_SPLIT {
		if err := checkSplit(v, m, p, pm); err != nil {
			return err
		}
		q.add(m)
		return nil
	}
	if pm.splitting || p.GetSplit() != nil {
		return status.New(zppb.Code_INVALID_ARGUMENT, "%s/%d has a split queued: one move or split at a time per partition", m.Table, m.Partition)
	}
	for _, a := range []string{m.From, m.To} {
		follows := m.Kind == zppb.MoveKind_SETMASTER && a == m.To && pm.adding[a]
		if id, ok := pm.involved[a]; ok && a != "" && !follows {
			return status.New(zppb.Code_INVALID_ARGUMENT, "node %q of %s/%d is already part of move %d", a, m.Table, m.Partition, id)
		}
	}
	switch m.GetKind() {
	case zppb.MoveKind_MIGRATE:
		if !Holds(p, m.From) {
			return status.New(zppb.Code_INVALID_ARGUMENT, "%q holds no replica of %s/%d", m.From, m.Table, m.Partition)
		}
		if Holds(p, m.To) {
			return status.New(zppb.Code_INVALID_ARGUMENT, "%q already holds a replica of %s/%d", m.To, m.Table, m.Partition)
		}
	case zppb.MoveKind_SETMASTER:
		// Scripts (playbooks/roles/*/drain_round.yml, rebalance_masters.yml)
		// take "is already the master" for a switchover an earlier try
		// made: keep the words.
		if m.To == p.Master {
			return status.New(zppb.Code_INVALID_ARGUMENT, "%q is already the master of %s/%d", m.To, m.Table, m.Partition)
		}
		// The target may be a slave a queued move adds.
		if !slices.Contains(p.Slaves, m.To) && !pm.adding[m.To] {
			return status.New(zppb.Code_INVALID_ARGUMENT, "%q is not a slave of %s/%d", m.To, m.Table, m.Partition)
		}
	case zppb.MoveKind_ADDSLAVE:
		if Holds(p, m.To) {
			return status.New(zppb.Code_INVALID_ARGUMENT, "%q already holds a replica of %s/%d", m.To, m.Table, m.Partition)
		}
	case zppb.MoveKind_REMOVESLAVE:
		if !slices.Contains(p.Slaves, m.From) {
			return status.New(zppb.Code_INVALID_ARGUMENT, "%q is not a slave of %s/%d", m.From, m.Table, m.Partition)
		}
	default:
		return status.New(zppb.Code_INVALID_ARGUMENT, "unknown move kind %v", m.GetKind())
	}
	if m.Kind != zppb.MoveKind_REMOVESLAVE {
		if err := CheckTarget(v, m.To); err != nil {
			return err
		}
	}
	q.add(m)
	return nil
}

// CheckMoves checks a batch of new moves, each after those before it.
func CheckMoves(v View, moves []*zppb.Move, q Queue) error {
	if q == nil {
		q = make(Queue)
	}
	for _, m := range moves {
		if err := CheckMove(v, m, q); err != nil {
			return err
		}
	}
	return nil
}

// FillSources fills in what an operator is shown of moves that passed
// CheckMoves before they are queued: the master a SETMASTER takes over
// from, which the meta leader records only when the move starts (a move
// queued before it may change the master).
func FillSources(v View, moves []*zppb.Move) {
	for _, m := range moves {
		if m.Kind != zppb.MoveKind_SETMASTER || m.From != "" {
			continue
		}
		if p, err := FindPartition(v, m.Table, m.Partition); err == nil {
			m.From = p.Master
		}
	}
}

// CheckRemovable checks that the nodes addrs may be forgotten: registered,
// DOWN, holding no replica and, of moves, part of none not yet finished.
func CheckRemovable(v View, addrs []string, moves []*zppb.Move) error {
	tables := v.Tables()
	for _, addr := range addrs {
		n := v.Node(addr)
		if n == nil {
			return status.New(zppb.Code_NODE_NOT_FOUND, "node %q is not registered", addr)
		}
		if n.State != zppb.NodeState_DOWN {
			return status.New(zppb.Code_INVALID_ARGUMENT, "node %q is %v; only DOWN nodes can be removed", addr, n.State)
		}
		for _, t := range tables {
			parts, _ := v.Partitions(t)
			for id, p := range parts {
				if Holds(p, addr) {
					return status.New(zppb.Code_INVALID_ARGUMENT, "node %q still holds a replica of %s/%d: shrink or replace-node it first", addr, t, id)
				}
			}
		}
		for _, m := range moves {
			if !Terminal(m.State) && (m.From == addr || m.To == addr) {
				return status.New(zppb.Code_INVALID_ARGUMENT, "node %q is part of move %d", addr, m.Id)
			}
		}
	}
	return nil
}
