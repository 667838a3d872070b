package fsm

import (
	"cmp"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// keepFinished is how many finished moves the state remembers, for
// MIGRATESTATUS; older ones are forgotten.
const keepFinished = 256

// view is the state as lib/topo's rules read it.
type view state

func (s *state) view() *view { return (*view)(s) }

func (v *view) Tables() []string {
	names := make([]string, 0, len(v.tables))
	for name := range v.tables {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (v *view) Partitions(table string) ([]*zppb.Partition, bool) {
	t := v.tables[table]
	if t == nil {
		return nil, false
	}
	return t.Partitions, true
}

func (v *view) Node(addr string) *zppb.Node { return v.nodes[addr] }

// checkMoves checks new moves as one batch, after the moves queued.
func (s *state) checkMoves(moves []*zppb.Move, expectedEpoch uint64) error {
	if len(moves) == 0 {
		return status.New(zppb.Code_INVALID_ARGUMENT, "no moves")
	}
	if err := checkEpoch(expectedEpoch, s.epoch); err != nil {
		return err
	}
	topo.FillSplitPoints(s.view(), moves)
	return topo.CheckMoves(s.view(), moves, topo.NewQueue(s.sortedMoves()))
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
	p, err := topo.FindPartition(s.view(), m.Table, m.Partition)
	if err != nil {
		return false, err
	}
	bad := func() (bool, error) {
		return false, status.New(zppb.Code_INVALID_ARGUMENT, "move %d (%v) cannot go from %v to %v", m.Id, m.Kind, c.GetFrom(), c.GetTo())
	}
	from, to := c.GetFrom(), c.GetTo()
	switch {
	case to == zppb.MoveState_MOVE_FAILED || to == zppb.MoveState_MOVE_CANCELLED:
		if !topo.Cancellable(from) {
			return bad()
		}
		changed = s.rollback(m, p)
	case m.Kind == zppb.MoveKind_SPLIT:
		if changed, err = s.stepSplit(m, p, c); err != nil {
			return false, err
		}
	case from == zppb.MoveState_MOVE_PENDING && to == zppb.MoveState_MOVE_CATCHING_UP:
		switch m.Kind {
		case zppb.MoveKind_MIGRATE, zppb.MoveKind_ADDSLAVE:
			if topo.Holds(p, m.To) || s.nodes[m.To] == nil {
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
	if m.Kind == zppb.MoveKind_SPLIT {
		// The partition keeps its range; nodes delete the child replicas
		// no topology names, and the master's WAIT on the range ends.
		if p.Split != nil && p.Split.Move == m.Id {
			p.Split = nil
			return true
		}
		return false
	}
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
		if topo.Terminal(m.State) {
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
			if !topo.Terminal(m.State) {
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
		if !topo.Cancellable(m.State) {
			continue
		}
		if parts[i], err = topo.FindPartition(s.view(), m.Table, m.Partition); err != nil {
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
		if m.Table == table && !topo.Terminal(m.State) {
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
	if err := topo.CheckRemovable(s.view(), c.GetNodes(), s.sortedMoves()); err != nil {
		return err
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
		if all || !topo.Terminal(m.State) {
			out = append(out, proto.Clone(m).(*zppb.Move))
		}
	}
	return out
}

// CheckMoves checks a batch of new moves against the state, so the leader
// can refuse a bad request before proposing it.
func (f *FSM) CheckMoves(moves []*zppb.Move, expectedEpoch uint64) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.checkMoves(moves, expectedEpoch)
}

// PlanMoves checks a batch of new moves as CheckMoves does and fills in
// what an operator is shown before they are queued (topo.FillSources); it
// returns the epoch they were checked at, to queue them with.
func (f *FSM) PlanMoves(moves []*zppb.Move) (uint64, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if err := f.st.checkMoves(moves, 0); err != nil {
		return 0, err
	}
	topo.FillSources(f.st.view(), moves)
	return f.st.epoch, nil
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
