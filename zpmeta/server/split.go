package server

import (
	"context"
	"fmt"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Splits run through the move loop (moves.go) with a state machine of
// their own (zpmeta/fsm/split.go, docs/topology.md "Split"): PENDING ->
// PREPARE, where the partition carries the split and its master logs the
// fence, every replica creating the child's replica at it; once the
// master and min_sync_replicas slaves report the child at the same
// record (their PINGs), COMMITTED, which switches the ranges and adds the
// child in one entry; then DONE. A failover of the parent, or PREPARE
// longer than SplitTimeout, rolls it back. What the nodes hold is soft
// state: a new leader learns it again from their PINGs.

// advanceSplit moves a split in PREPARE on, or rolls it back.
func (s *Server) advanceSplit(ctx context.Context, m *zppb.Move) error {
	tp, err := s.fsm.Topology(m.Table)
	if err != nil {
		return err // a dropped table cancels its moves
	}
	tb := tp.Tables[0]
	p := tb.Partitions[m.Partition]
	if p.Term != m.Term || p.GetSplit().GetEpoch() != m.SplitEpoch {
		return s.fail(ctx, m, fmt.Sprintf("partition term moved from %d to %d (failover)", m.Term, p.Term))
	}
	held, ok := s.splitHeld(m, p, int(tb.MinSyncReplicas))
	if ok {
		s.logger.Info("split: every replica needed holds the child", "id", m.Id, "table", m.Table, "partition", m.Partition, "child", m.SplitChild, "replicas", held)
		return s.step(ctx, m, zppb.MoveState_MOVE_COMMITTED, "")
	}
	if time.Since(time.UnixMilli(m.UpdatedMs)) > s.cfg.SplitTimeout {
		return s.fail(ctx, m, fmt.Sprintf("PREPARE over %v: %d replicas hold the child", s.cfg.SplitTimeout, held))
	}
	return nil
}

// splitHeld counts the replicas of p whose nodes reported the child of
// split m at the master's fence, and reports whether they are enough to
// commit: the master and minSync slaves, so that the child starts with the
// durability its table asks for (a slave without it full-syncs it after).
func (s *Server) splitHeld(m *zppb.Move, p *zppb.Partition, minSync int) (held int, ok bool) {
	child := func(addr string) *zppb.SplitChild {
		pos, _, ok := s.live.position(addr, m.Table, m.Partition)
		sc := pos.GetSplitChild()
		if !ok || sc.GetChild() != m.SplitChild || sc.GetEpoch() != m.SplitEpoch || sc.GetTerm() != m.Term {
			return nil
		}
		return sc
	}
	fence := child(p.Master)
	if fence == nil {
		return 0, false
	}
	held = 1
	for _, a := range p.Slaves {
		if sc := child(a); sc != nil && sc.Lsn == fence.Lsn {
			held++
		}
	}
	return held, held-1 >= minSync
}

// splitProgress fills in how many replicas hold the child of a split in
// PREPARE (MIGRATESTATUS).
func (s *Server) splitProgress(m *zppb.Move) {
	if m.State != zppb.MoveState_MOVE_PREPARE {
		return
	}
	if tp, err := s.fsm.Topology(m.Table); err == nil {
		held, _ := s.splitHeld(m, tp.Tables[0].Partitions[m.Partition], 0)
		m.SplitChildren = uint32(held)
	}
}

// split queues the split of a partition, or of every partition of the
// table with all, each at the slot that halves its data (its master's
// estimate; the middle if it cannot say) unless at names the slot.
func (s *Server) split(ctx context.Context, req *zppb.SplitRequest) (*zppb.Response, error) {
	var moves []*zppb.Move
	if req.All {
		tp, err := s.fsm.Topology(req.Table)
		if err != nil {
			return nil, err
		}
		for _, p := range tp.Tables[0].Partitions {
			moves = append(moves, &zppb.Move{Kind: zppb.MoveKind_SPLIT, Table: req.Table, Partition: p.Id, Origin: "manual"})
		}
	} else {
		moves = []*zppb.Move{{Kind: zppb.MoveKind_SPLIT, Table: req.Table, Partition: req.Partition, SplitAt: req.At, Origin: "manual"}}
	}
	s.fillSplitPointsBySize(ctx, moves)
	return s.queueMoves(ctx, moves, req.ExpectedEpoch)
}
