package server

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/failpoint"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/fsm"
)

// The leader runs queued moves through Zeppelin's state machine (see
// zpmeta/fsm/moves.go): add the target as a slave and wait until it is close
// behind; if the source is the master, SLOWDOWN, then STUCK once nearly
// equal, then hand over the moment the target has every record; finally
// drop the source. Each step is a Raft entry, so a new leader picks the move
// up where the old one left it. What it needs to know about replication it
// asks the nodes (INFO replication), which is fresher than PINGs.

// moveTick is how often the leader advances moves; stuckTick how often
// while a partition is STUCK, which bounds how long it stays STUCK beyond
// the target catching up.
const (
	moveTick  = 50 * time.Millisecond
	stuckTick = 10 * time.Millisecond
)

// moveLoop advances moves until ctx ends (leadership lost).
func (s *Server) moveLoop(ctx context.Context) {
	wait := moveTick
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = moveTick
		if s.stepMoves(ctx) {
			wait = stuckTick
		}
	}
}

// stepMoves advances every move one step where it can and reports whether
// a partition is STUCK.
func (s *Server) stepMoves(ctx context.Context) (stuck bool) {
	moves := s.fsm.Moves(false)
	if len(moves) == 0 {
		return false
	}
	// At most MaxMovesPerNode running moves involve a node, and one runs
	// per partition at a time; pending ones start in id order.
	busy := make(map[string]int)
	type part struct {
		table string
		id    uint32
	}
	running := make(map[part]bool)
	// Splits of one table prepare one at a time: the child takes the
	// next partition id.
	splitting := make(map[string]bool)
	perNode := cmp.Or(int(s.fsm.ScheduleSettings().GetMaxMovesPerNode()), s.cfg.MaxMovesPerNode)
	for _, m := range moves {
		if m.Kind == zppb.MoveKind_SPLIT && m.State == zppb.MoveState_MOVE_PREPARE {
			splitting[m.Table] = true
		}
		if m.State != zppb.MoveState_MOVE_PENDING {
			busy[m.From]++
			busy[m.To]++
			running[part{m.Table, m.Partition}] = true
		}
	}
	for _, m := range moves {
		if ctx.Err() != nil {
			return false
		}
		stuck = stuck || m.State == zppb.MoveState_MOVE_STUCK
		var err error
		switch m.State {
		case zppb.MoveState_MOVE_PENDING:
			k := part{m.Table, m.Partition}
			if running[k] || busy[m.From] >= perNode || busy[m.To] >= perNode || m.Kind == zppb.MoveKind_SPLIT && splitting[m.Table] {
				// Later moves of this partition wait for this one.
				running[k] = true
				continue
			}
			if m.Kind == zppb.MoveKind_SPLIT {
				splitting[m.Table] = true
			}
			running[k] = true
			busy[m.From]++
			busy[m.To]++
			err = s.startMove(ctx, m)
		case zppb.MoveState_MOVE_REMOVING, zppb.MoveState_MOVE_COMMITTED:
			if m.State == zppb.MoveState_MOVE_COMMITTED {
				failpoint.Hold(ctx, s.logger, failpoint.SplitDone)
			}
			err = s.step(ctx, m, zppb.MoveState_MOVE_DONE, "")
		case zppb.MoveState_MOVE_PREPARE:
			err = s.advanceSplit(ctx, m)
		default:
			err = s.advanceMove(ctx, m)
		}
		if err != nil && ctx.Err() == nil {
			s.logger.Debug("move step failed; retrying", "move", m.Id, "state", m.State, "err", err)
		}
	}
	return stuck
}

// startMove takes m out of PENDING; a move that no longer fits the layout
// (the moves before it changed it) fails.
func (s *Server) startMove(ctx context.Context, m *zppb.Move) error {
	next := zppb.MoveState_MOVE_CATCHING_UP
	switch m.Kind {
	case zppb.MoveKind_REMOVESLAVE:
		next = zppb.MoveState_MOVE_DONE
	case zppb.MoveKind_SPLIT:
		next = zppb.MoveState_MOVE_PREPARE
		failpoint.Hold(ctx, s.logger, failpoint.SplitPrepare)
	}
	err := s.step(ctx, m, next, "")
	if status.Code(err) == zppb.Code_INVALID_ARGUMENT {
		return s.fail(ctx, m, err.Error())
	}
	return err
}

// step proposes m's next state and tells the partition's nodes about the
// new epoch at once.
func (s *Server) step(ctx context.Context, m *zppb.Move, to zppb.MoveState, errMsg string) error {
	return s.proposeStep(ctx, m, fsm.StepMove(m.Id, m.State, to, errMsg, time.Now().UnixMilli()))
}

func (s *Server) proposeStep(ctx context.Context, m *zppb.Move, cmd *zppb.MetaCommand) error {
	unlock, err := s.lockProposals(ctx)
	if err != nil {
		return err
	}
	res, err := s.propose(ctx, cmd)
	unlock()
	if err != nil {
		return err
	}
	to := cmd.GetStepMove().GetTo()
	if to == zppb.MoveState_MOVE_STUCK {
		s.stuckMu.Lock()
		s.stuckEpochs[m.Id] = res.Epoch
		s.stuckMu.Unlock()
	}
	s.logger.Info("move", "id", m.Id, "kind", m.Kind, "table", m.Table, "partition", m.Partition,
		"from", m.From, "to", m.To, "state", to, "epoch", res.Epoch, "error", cmd.GetStepMove().GetError())
	if res.Changed {
		s.notifyPartition(m, res.Epoch)
	}
	return nil
}

// fail ends m, rolling back what it did; the partition is ACTIVE again.
func (s *Server) fail(ctx context.Context, m *zppb.Move, why string) error {
	s.logger.Warn("move failed", "id", m.Id, "table", m.Table, "partition", m.Partition, "state", m.State, "why", why)
	return s.step(ctx, m, zppb.MoveState_MOVE_FAILED, why)
}

// advanceMove moves m on from CATCHING_UP, SLOWDOWN or STUCK when the
// target is far enough along.
func (s *Server) advanceMove(ctx context.Context, m *zppb.Move) error {
	topo, err := s.fsm.Topology(m.Table)
	if err != nil {
		return err // a dropped table cancels its moves
	}
	p := topo.Tables[0].Partitions[m.Partition]
	if n := s.fsm.Node(m.To); n == nil || n.State != zppb.NodeState_UP {
		return s.fail(ctx, m, fmt.Sprintf("target %s is not UP", m.To))
	}
	if m.State != zppb.MoveState_MOVE_CATCHING_UP && p.Term != m.Term {
		return s.fail(ctx, m, fmt.Sprintf("partition term moved from %d to %d (failover)", m.Term, p.Term))
	}
	pos, err := s.targetPosition(ctx, p.Master, m)
	if err != nil {
		if m.State == zppb.MoveState_MOVE_STUCK && s.stuckTooLong(m) {
			return s.fail(ctx, m, fmt.Sprintf("STUCK over %v: %v", s.cfg.StuckTimeout, err))
		}
		return err
	}
	now := time.Now().UnixMilli()
	switch m.State {
	case zppb.MoveState_MOVE_CATCHING_UP:
		if !pos.streaming || pos.lag > s.cfg.SlowdownLag || pos.lagBytes > s.cfg.SlowdownBytes {
			return nil
		}
		switch {
		case m.Kind == zppb.MoveKind_ADDSLAVE:
			return s.step(ctx, m, zppb.MoveState_MOVE_DONE, "")
		case m.Kind == zppb.MoveKind_SETMASTER || p.Master == m.From:
			return s.step(ctx, m, zppb.MoveState_MOVE_SLOWDOWN, "")
		default:
			return s.step(ctx, m, zppb.MoveState_MOVE_REMOVING, "")
		}
	case zppb.MoveState_MOVE_SLOWDOWN:
		if pos.streaming && pos.lag <= s.cfg.StuckLag && pos.lagBytes <= s.cfg.StuckBytes {
			return s.step(ctx, m, zppb.MoveState_MOVE_STUCK, "")
		}
		if time.Duration(now-m.UpdatedMs)*time.Millisecond > s.cfg.SlowdownTimeout {
			return s.fail(ctx, m, fmt.Sprintf("target still %d records behind after %v of SLOWDOWN", pos.lag, s.cfg.SlowdownTimeout))
		}
	case zppb.MoveState_MOVE_STUCK:
		// The master must be running the STUCK topology (no more writes)
		// and the target must have everything it wrote.
		if pos.masterEpoch >= s.stuckEpoch(m) && pos.lag == 0 && pos.streaming {
			if err := s.confirmTarget(ctx, m, pos); err != nil {
				if s.stuckTooLong(m) {
					return s.fail(ctx, m, fmt.Sprintf("STUCK over %v: %v", s.cfg.StuckTimeout, err))
				}
				return err
			}
			next := zppb.MoveState_MOVE_REMOVING
			if m.Kind == zppb.MoveKind_SETMASTER {
				next = zppb.MoveState_MOVE_DONE
			}
			return s.proposeStep(ctx, m, fsm.Handover(m.Id, next, now, now-m.UpdatedMs))
		}
		if s.stuckTooLong(m) {
			return s.fail(ctx, m, fmt.Sprintf("target not caught up after %v STUCK (%d records behind)", s.cfg.StuckTimeout, pos.lag))
		}
	}
	return nil
}

func (s *Server) stuckTooLong(m *zppb.Move) bool {
	return time.Since(time.UnixMilli(m.UpdatedMs)) > s.cfg.StuckTimeout
}

// stuckEpoch is the epoch the STUCK step made; a leader that took over a
// STUCK move uses the epoch at which it first saw it, which is later.
func (s *Server) stuckEpoch(m *zppb.Move) uint64 {
	s.stuckMu.Lock()
	defer s.stuckMu.Unlock()
	e, ok := s.stuckEpochs[m.Id]
	if !ok {
		e = s.fsm.Epoch()
		s.stuckEpochs[m.Id] = e
	}
	return e
}

// targetPos is what the partition's master says about the move's target.
type targetPos struct {
	masterEpoch uint64
	masterTerm  uint64 // of the master's last record
	masterLSN   uint64
	lag         uint64 // records
	lagBytes    uint64 // estimated from the master's mean record size
	streaming   bool
}

// targetPosition asks the master of m's partition how far the target is.
func (s *Server) targetPosition(ctx context.Context, master string, m *zppb.Move) (targetPos, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := s.pool.Call(cctx, master, &zppb.Request{Cmd: &zppb.Request_Info{Info: &zppb.InfoRequest{
		Section: zppb.InfoSection_INFO_REPLICATION, Table: m.Table,
	}}})
	if err != nil {
		return targetPos{}, err
	}
	if err := status.FromResponse(resp); err != nil {
		return targetPos{}, err
	}
	for _, ri := range resp.GetInfo().GetReplication() {
		if ri.Partition != m.Partition || ri.Role != "master" {
			continue
		}
		for _, peer := range ri.Peers {
			if peer.Addr == m.To {
				pos := targetPos{masterEpoch: resp.Epoch, masterTerm: ri.Term, masterLSN: ri.Lsn, streaming: peer.State == "streaming"}
				if ri.Lsn > peer.Lsn {
					pos.lag = ri.Lsn - peer.Lsn
				}
				if ri.LagRecords > 0 {
					pos.lagBytes = pos.lag * (ri.LagBytes / ri.LagRecords)
				}
				return pos, nil
			}
		}
		return targetPos{}, fmt.Errorf("master %s does not list %s as a slave of %s/%d yet", master, m.To, m.Table, m.Partition)
	}
	return targetPos{}, fmt.Errorf("%s is not master of %s/%d yet", master, m.Table, m.Partition)
}

// confirmTarget asks the move's target itself where its copy of the
// partition is, before the partition is handed over to it: the master's
// account of its slaves is what the handover rests on, and a stale one (a
// node that left the partition and came back with an empty replica) would
// make the new master one without the partition's records.
func (s *Server) confirmTarget(ctx context.Context, m *zppb.Move, pos targetPos) error {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := s.pool.Call(cctx, m.To, &zppb.Request{Cmd: &zppb.Request_Info{Info: &zppb.InfoRequest{
		Section: zppb.InfoSection_INFO_REPLICATION, Table: m.Table,
	}}})
	if err == nil {
		err = status.FromResponse(resp)
	}
	if err != nil {
		return fmt.Errorf("ask target %s for its position: %w", m.To, err)
	}
	for _, ri := range resp.GetInfo().GetReplication() {
		if ri.Partition == m.Partition {
			return caughtUp(pos, ri)
		}
	}
	return fmt.Errorf("target %s has no replica of %s/%d", m.To, m.Table, m.Partition)
}

// caughtUp reports whether a target replica, as it describes itself, holds
// every record its master has: the same last record (term and lsn; one
// master writes a term, so the pair names one record, and a slave only
// takes records that follow on from its own).
func caughtUp(master targetPos, target *zppb.ReplicaInfo) error {
	if target.Role != "slave" {
		return fmt.Errorf("target is %s of %s/%d, not a slave", target.Role, target.Table, target.Partition)
	}
	if target.Term != master.masterTerm || target.Lsn != master.masterLSN {
		return fmt.Errorf("target says its last record is (term %d, lsn %d); the master's is (term %d, lsn %d)",
			target.Term, target.Lsn, master.masterTerm, master.masterLSN)
	}
	return nil
}

// notifyPartition tells the nodes of m's partition that epoch is out, so
// they PULL now rather than at their next PING. Best effort: PINGs catch
// up with anyone it misses.
func (s *Server) notifyPartition(m *zppb.Move, epoch uint64) {
	nodes := map[string]bool{m.From: true, m.To: true}
	if topo, err := s.fsm.Topology(m.Table); err == nil {
		p := topo.Tables[0].Partitions[m.Partition]
		nodes[p.Master] = true
		for _, a := range p.Slaves {
			nodes[a] = true
		}
	}
	s.notify(nodes, epoch)
}
