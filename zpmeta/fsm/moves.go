package fsm

import (
	"cmp"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// keepFinished is how many finished moves the state remembers, for
// MIGRATESTATUS; older ones are forgotten.
const keepFinished = 256

// cancellable reports whether a move in state st can still be rolled back:
// it has not ended, nor passed its handover (REMOVING can only finish).
func cancellable(st zppb.MoveState) bool {
	return !Terminal(st) && st != zppb.MoveState_MOVE_REMOVING
}

// Terminal reports whether a move in state st is over.
func Terminal(st zppb.MoveState) bool {
	return st == zppb.MoveState_MOVE_DONE || st == zppb.MoveState_MOVE_FAILED || st == zppb.MoveState_MOVE_CANCELLED
}

type partKey struct {
	table string
	id    uint32
}

// queued is what the moves not yet finished will do to each partition:
// the nodes they involve and the nodes they add. Several moves may wait on
// one partition; the leader runs them one at a time, in id order.
type queued map[partKey]*partMoves

type partMoves struct {
	involved map[string]uint64 // node -> id of a move that involves it
	adding   map[string]bool   // nodes a MIGRATE or ADDSLAVE adds
}

func (q queued) of(k partKey) *partMoves {
	pm := q[k]
	if pm == nil {
		pm = &partMoves{involved: map[string]uint64{}, adding: map[string]bool{}}
		q[k] = pm
	}
	return pm
}

func (q queued) add(m *zppb.Move) {
	pm := q.of(partKey{m.Table, m.Partition})
	for _, a := range []string{m.From, m.To} {
		if a != "" {
			pm.involved[a] = m.Id
		}
	}
	if m.Kind == zppb.MoveKind_MIGRATE || m.Kind == zppb.MoveKind_ADDSLAVE {
		pm.adding[m.To] = true
	}
}

func (s *state) queuedMoves() queued {
	q := make(queued)
	for _, m := range s.sortedMoves() {
		if !Terminal(m.State) {
			q.add(m)
		}
	}
	return q
}

func (s *state) partition(table string, id uint32) (*zppb.Partition, error) {
	t := s.tables[table]
	if t == nil {
		return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q does not exist", table)
	}
	if id >= uint32(len(t.Partitions)) {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "table %q has no partition %d", table, id)
	}
	return t.Partitions[id], nil
}

// targetNode checks that addr may receive a replica or a master.
func (s *state) targetNode(addr string) error {
	n := s.nodes[addr]
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

// Receives reports whether n may be given new replicas and masters: UP and
// not cordoned. Table placement, moves, expand and failover's choice among
// equals all follow it.
func Receives(n *zppb.Node) bool {
	return n != nil && n.State == zppb.NodeState_UP && !n.Cordoned
}

func replicasOf(p *zppb.Partition) []string {
	return append([]string{p.Master}, p.Slaves...)
}

// checkMove checks a new move against the state and the moves queued
// before it (which it joins). A node may take part in one queued move per
// partition.
func (s *state) checkMove(m *zppb.Move, q queued) error {
	p, err := s.partition(m.GetTable(), m.GetPartition())
	if err != nil {
		return err
	}
	pm := q.of(partKey{m.Table, m.Partition})
	for _, a := range []string{m.From, m.To} {
		// A switchover may follow the move that adds its target.
		follows := m.Kind == zppb.MoveKind_SETMASTER && a == m.To && pm.adding[a]
		if id, ok := pm.involved[a]; ok && a != "" && !follows {
			return status.New(zppb.Code_INVALID_ARGUMENT, "node %q of %s/%d is already part of move %d", a, m.Table, m.Partition, id)
		}
	}
	replicas := replicasOf(p)
	switch m.GetKind() {
	case zppb.MoveKind_MIGRATE:
		if !slices.Contains(replicas, m.From) {
			return status.New(zppb.Code_INVALID_ARGUMENT, "%q holds no replica of %s/%d", m.From, m.Table, m.Partition)
		}
		if slices.Contains(replicas, m.To) {
			return status.New(zppb.Code_INVALID_ARGUMENT, "%q already holds a replica of %s/%d", m.To, m.Table, m.Partition)
		}
		if err := s.targetNode(m.To); err != nil {
			return err
		}
	case zppb.MoveKind_SETMASTER:
		// The target may be a slave a queued move adds.
		if !slices.Contains(p.Slaves, m.To) && !pm.adding[m.To] {
			return status.New(zppb.Code_INVALID_ARGUMENT, "%q is not a slave of %s/%d", m.To, m.Table, m.Partition)
		}
		if err := s.targetNode(m.To); err != nil {
			return err
		}
	case zppb.MoveKind_ADDSLAVE:
		if slices.Contains(replicas, m.To) {
			return status.New(zppb.Code_INVALID_ARGUMENT, "%q already holds a replica of %s/%d", m.To, m.Table, m.Partition)
		}
		if err := s.targetNode(m.To); err != nil {
			return err
		}
	case zppb.MoveKind_REMOVESLAVE:
		if !slices.Contains(p.Slaves, m.From) {
			return status.New(zppb.Code_INVALID_ARGUMENT, "%q is not a slave of %s/%d", m.From, m.Table, m.Partition)
		}
	default:
		return status.New(zppb.Code_INVALID_ARGUMENT, "unknown move kind %v", m.GetKind())
	}
	q.add(m)
	return nil
}

// checkMoves checks moves as one batch.
func (s *state) checkMoves(moves []*zppb.Move, expectedEpoch uint64) error {
	if len(moves) == 0 {
		return status.New(zppb.Code_INVALID_ARGUMENT, "no moves")
	}
	if err := checkEpoch(expectedEpoch, s.epoch); err != nil {
		return err
	}
	q := s.queuedMoves()
	for _, m := range moves {
		if err := s.checkMove(m, q); err != nil {
			return err
		}
	}
	return nil
}

func (s *state) addMoves(c *zppb.AddMovesCommand) ([]*zppb.Move, error) {
	moves := cloneAll(c.GetMoves())
	if err := s.checkMoves(moves, c.GetExpectedEpoch()); err != nil {
		return nil, err
	}
	for _, m := range moves {
		s.nextMoveID++
		m.Id = s.nextMoveID
		m.State = zppb.MoveState_MOVE_PENDING
		m.Error = ""
		m.CreatedMs, m.UpdatedMs = c.GetNowMs(), c.GetNowMs()
		s.moves[m.Id] = m
	}
	return cloneAll(moves), nil
}

// stepMove advances a move one step of its state machine and makes the
// topology change of that step; changed reports a topology change (an epoch
// bump). Steps that do not fit the move's kind or the partition's state are
// rejected, which is what makes a stale or repeated step harmless.
func (s *state) stepMove(c *zppb.StepMoveCommand) (changed bool, err error) {
	m := s.moves[c.GetId()]
	if m == nil {
		return false, status.New(zppb.Code_INVALID_ARGUMENT, "no move %d", c.GetId())
	}
	if m.State != c.GetFrom() {
		return false, status.New(zppb.Code_STALE_EPOCH, "move %d is %v, not %v", m.Id, m.State, c.GetFrom())
	}
	p, err := s.partition(m.Table, m.Partition)
	if err != nil {
		return false, err
	}
	bad := func() (bool, error) {
		return false, status.New(zppb.Code_INVALID_ARGUMENT, "move %d (%v) cannot go from %v to %v", m.Id, m.Kind, c.GetFrom(), c.GetTo())
	}
	from, to := c.GetFrom(), c.GetTo()
	switch {
	case to == zppb.MoveState_MOVE_FAILED || to == zppb.MoveState_MOVE_CANCELLED:
		if !cancellable(from) {
			return bad()
		}
		changed = s.rollback(m, p)
	case from == zppb.MoveState_MOVE_PENDING && to == zppb.MoveState_MOVE_CATCHING_UP:
		switch m.Kind {
		case zppb.MoveKind_MIGRATE, zppb.MoveKind_ADDSLAVE:
			if slices.Contains(replicasOf(p), m.To) || s.nodes[m.To] == nil {
				return bad()
			}
			p.Slaves = append(p.Slaves, m.To)
			changed = true
		case zppb.MoveKind_SETMASTER:
			if !slices.Contains(p.Slaves, m.To) {
				return bad()
			}
			// The master it takes over from is the one at the start.
			m.From = p.Master
		default:
			return bad()
		}
	case from == zppb.MoveState_MOVE_CATCHING_UP && to == zppb.MoveState_MOVE_SLOWDOWN:
		if p.Master != m.From || !slices.Contains(p.Slaves, m.To) || p.State != zppb.PartitionState_ACTIVE {
			return bad()
		}
		p.State = zppb.PartitionState_SLOWDOWN
		m.Term = p.Term
		changed = true
	case from == zppb.MoveState_MOVE_SLOWDOWN && to == zppb.MoveState_MOVE_STUCK:
		if p.State != zppb.PartitionState_SLOWDOWN || p.Term != m.Term {
			return bad()
		}
		p.State = zppb.PartitionState_STUCK
		changed = true
	case from == zppb.MoveState_MOVE_STUCK && (to == zppb.MoveState_MOVE_REMOVING && m.Kind == zppb.MoveKind_MIGRATE ||
		to == zppb.MoveState_MOVE_DONE && m.Kind == zppb.MoveKind_SETMASTER):
		i := slices.Index(p.Slaves, m.To)
		if p.State != zppb.PartitionState_STUCK || p.Term != m.Term || p.Master != m.From || i < 0 {
			return bad()
		}
		// Handover: the target masters, the old master is a slave in its
		// place (until REMOVING drops it, for a migration).
		p.Master, p.Slaves[i] = m.To, p.Master
		p.Term++
		p.State = zppb.PartitionState_ACTIVE
		changed = true
	case from == zppb.MoveState_MOVE_CATCHING_UP && to == zppb.MoveState_MOVE_REMOVING && m.Kind == zppb.MoveKind_MIGRATE:
		// The source is a slave: nothing to hand over.
		if !slices.Contains(p.Slaves, m.From) || !slices.Contains(p.Slaves, m.To) {
			return bad()
		}
	case from == zppb.MoveState_MOVE_CATCHING_UP && to == zppb.MoveState_MOVE_DONE && m.Kind == zppb.MoveKind_ADDSLAVE:
	case from == zppb.MoveState_MOVE_REMOVING && to == zppb.MoveState_MOVE_DONE && m.Kind == zppb.MoveKind_MIGRATE,
		from == zppb.MoveState_MOVE_PENDING && to == zppb.MoveState_MOVE_DONE && m.Kind == zppb.MoveKind_REMOVESLAVE:
		i := slices.Index(p.Slaves, m.From)
		if i < 0 {
			return bad()
		}
		p.Slaves = slices.Delete(p.Slaves, i, i+1)
		changed = true
	default:
		return bad()
	}
	m.State, m.Error, m.UpdatedMs = to, c.GetError(), c.GetNowMs()
	if c.GetStuckMs() > 0 {
		m.StuckMs = c.GetStuckMs()
	}
	s.pruneMoves()
	return changed, nil
}

// rollback undoes what a move not yet past its handover did: the partition
// is ACTIVE again and a target added as a slave goes away (unless a
// failover made it the master meanwhile).
func (s *state) rollback(m *zppb.Move, p *zppb.Partition) (changed bool) {
	if p.State != zppb.PartitionState_ACTIVE && (m.State == zppb.MoveState_MOVE_SLOWDOWN || m.State == zppb.MoveState_MOVE_STUCK) {
		p.State = zppb.PartitionState_ACTIVE
		changed = true
	}
	added := m.Kind == zppb.MoveKind_MIGRATE || m.Kind == zppb.MoveKind_ADDSLAVE
	if added && m.State != zppb.MoveState_MOVE_PENDING {
		if i := slices.Index(p.Slaves, m.To); i >= 0 {
			p.Slaves = slices.Delete(p.Slaves, i, i+1)
			changed = true
		}
	}
	return changed
}

// pruneMoves forgets the oldest finished moves beyond keepFinished.
func (s *state) pruneMoves() {
	var done []uint64
	for id, m := range s.moves {
		if Terminal(m.State) {
			done = append(done, id)
		}
	}
	if len(done) <= keepFinished {
		return
	}
	slices.Sort(done)
	for _, id := range done[:len(done)-keepFinished] {
		delete(s.moves, id)
	}
}

// cancelMoves ends the named moves (every active one with all), rolling
// each back; copies of the cancelled moves and of those left as they are
// (past the handover, or ended) are returned. All happen in this one entry,
// so no step of a move can come between the decision and the rollback.
func (s *state) cancelMoves(c *zppb.CancelMovesCommand) (changed bool, cancelled, left []*zppb.Move, err error) {
	var targets []*zppb.Move
	if c.GetAll() {
		for _, m := range s.moves {
			if !Terminal(m.State) {
				targets = append(targets, m)
			}
		}
		slices.SortFunc(targets, func(a, b *zppb.Move) int { return cmp.Compare(a.Id, b.Id) })
	} else {
		for _, id := range c.GetIds() {
			m := s.moves[id]
			if m == nil {
				return false, nil, nil, status.New(zppb.Code_INVALID_ARGUMENT, "no move %d", id)
			}
			if !slices.Contains(targets, m) {
				targets = append(targets, m)
			}
		}
	}
	// Validate everything before changing anything. A move's partition
	// exists while the move is active (dropping a table ends its moves).
	parts := make([]*zppb.Partition, len(targets))
	for i, m := range targets {
		if !cancellable(m.State) {
			continue
		}
		if parts[i], err = s.partition(m.Table, m.Partition); err != nil {
			return false, nil, nil, err
		}
	}
	for i, m := range targets {
		if parts[i] == nil {
			left = append(left, proto.Clone(m).(*zppb.Move))
			continue
		}
		if s.rollback(m, parts[i]) {
			changed = true
		}
		m.State, m.Error, m.UpdatedMs = zppb.MoveState_MOVE_CANCELLED, c.GetReason(), c.GetNowMs()
		cancelled = append(cancelled, proto.Clone(m).(*zppb.Move))
	}
	s.pruneMoves()
	return changed, cancelled, left, nil
}

// cancelTableMoves ends the moves of a dropped table.
func (s *state) cancelTableMoves(table string, nowMs int64) {
	for _, m := range s.moves {
		if m.Table == table && !Terminal(m.State) {
			m.State, m.Error, m.UpdatedMs = zppb.MoveState_MOVE_CANCELLED, "table dropped", nowMs
		}
	}
}

func (s *state) removeNodes(c *zppb.RemoveNodesCommand) error {
	if len(c.GetNodes()) == 0 {
		return status.New(zppb.Code_INVALID_ARGUMENT, "no nodes to remove")
	}
	if err := checkEpoch(c.GetExpectedEpoch(), s.epoch); err != nil {
		return err
	}
	for _, addr := range c.GetNodes() {
		n := s.nodes[addr]
		if n == nil {
			return status.New(zppb.Code_NODE_NOT_FOUND, "node %q is not registered", addr)
		}
		if n.State != zppb.NodeState_DOWN {
			return status.New(zppb.Code_INVALID_ARGUMENT, "node %q is %v; only DOWN nodes can be removed", addr, n.State)
		}
		for _, t := range s.tables {
			for _, p := range t.Partitions {
				if slices.Contains(replicasOf(p), addr) {
					return status.New(zppb.Code_INVALID_ARGUMENT, "node %q still holds a replica of %s/%d; move it first", addr, t.Name, p.Id)
				}
			}
		}
		for _, m := range s.moves {
			if !Terminal(m.State) && (m.From == addr || m.To == addr) {
				return status.New(zppb.Code_INVALID_ARGUMENT, "node %q is part of move %d", addr, m.Id)
			}
		}
	}
	for _, addr := range c.GetNodes() {
		delete(s.nodes, addr)
	}
	return nil
}

// sortedMoves returns the moves by id, not copied.
func (s *state) sortedMoves() []*zppb.Move {
	out := make([]*zppb.Move, 0, len(s.moves))
	for _, m := range s.moves {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *zppb.Move) int { return cmp.Compare(a.Id, b.Id) })
	return out
}

// Moves returns copies of the moves by id: the active ones, and with all
// the remembered finished ones too.
func (f *FSM) Moves(all bool) []*zppb.Move {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []*zppb.Move
	for _, m := range f.st.sortedMoves() {
		if all || !Terminal(m.State) {
			out = append(out, proto.Clone(m).(*zppb.Move))
		}
	}
	return out
}

// CheckMoves checks a batch of new moves against the state (filling in a
// SETMASTER's From), so the leader can refuse a bad request before
// proposing it.
func (f *FSM) CheckMoves(moves []*zppb.Move, expectedEpoch uint64) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.checkMoves(moves, expectedEpoch)
}

// AddMoves returns the command that queues moves.
func AddMoves(moves []*zppb.Move, expectedEpoch uint64, nowMs int64) *zppb.MetaCommand {
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_AddMoves{AddMoves: &zppb.AddMovesCommand{Moves: moves, ExpectedEpoch: expectedEpoch, NowMs: nowMs}}}
}

// StepMove returns the command that advances move id from one state to the
// next.
func StepMove(id uint64, from, to zppb.MoveState, errMsg string, nowMs int64) *zppb.MetaCommand {
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_StepMove{StepMove: &zppb.StepMoveCommand{Id: id, From: from, To: to, Error: errMsg, NowMs: nowMs}}}
}

// Handover returns the step from STUCK past the handover, recording how
// long the partition was STUCK.
func Handover(id uint64, to zppb.MoveState, nowMs, stuckMs int64) *zppb.MetaCommand {
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_StepMove{StepMove: &zppb.StepMoveCommand{
		Id: id, From: zppb.MoveState_MOVE_STUCK, To: to, NowMs: nowMs, StuckMs: stuckMs,
	}}}
}

// CancelMoves returns the command that cancels the moves ids, or every
// active move with all.
func CancelMoves(ids []uint64, all bool, reason string, nowMs int64) *zppb.MetaCommand {
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_CancelMoves{CancelMoves: &zppb.CancelMovesCommand{Ids: ids, All: all, Reason: reason, NowMs: nowMs}}}
}

// CordonNodes returns the command that cordons (or uncordons) nodes.
func CordonNodes(nodes []string, cordoned bool) *zppb.MetaCommand {
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_CordonNodes{CordonNodes: &zppb.CordonNodesCommand{Nodes: nodes, Cordoned: cordoned}}}
}

// RemoveNodes returns the command that forgets DOWN, empty nodes.
func RemoveNodes(nodes []string, expectedEpoch uint64) *zppb.MetaCommand {
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_RemoveNodes{RemoveNodes: &zppb.RemoveNodesCommand{Nodes: nodes, ExpectedEpoch: expectedEpoch}}}
}
