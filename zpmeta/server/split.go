package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
	"github.com/zeppelin-kv/zeppelin/lib/failpoint"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
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
		failpoint.Hold(ctx, s.logger, failpoint.SplitCommit)
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

// checkSplitFeatures refuses the SPLITs among moves while an UP node that
// holds a replica of their table has not reported, in a PING to this
// leader, that it routes by slot ranges (buildinfo.FeatureSlotRanges): a
// node of an older release finds a key's partition from the partition
// count, which after a split names the wrong one. A node that has not
// PINGed this leader yet (one just elected) counts as lacking it, so a
// split asked for at once after a leader change may be refused for a ping
// interval. DOWN nodes are left out: every replica of the partition being
// split must be UP anyway (topo.CheckMove), and an old node that comes
// back is the operator's to upgrade, as the docs say.
func (s *Server) checkSplitFeatures(moves []*zppb.Move) error {
	checked := make(map[string]bool)
	for _, m := range moves {
		if m.GetKind() != zppb.MoveKind_SPLIT || checked[m.GetTable()] {
			continue
		}
		checked[m.GetTable()] = true
		tp, err := s.fsm.Topology(m.GetTable())
		if err != nil {
			return err
		}
		var lacking []string
		seen := make(map[string]bool)
		for _, p := range tp.Tables[0].Partitions {
			for _, a := range topo.ReplicasOf(p) {
				if seen[a] {
					continue
				}
				seen[a] = true
				if n := s.fsm.Node(a); n == nil || n.State != zppb.NodeState_UP {
					continue
				}
				if !slices.Contains(s.live.featuresOf(a), buildinfo.FeatureSlotRanges) {
					lacking = append(lacking, a)
				}
			}
		}
		if len(lacking) > 0 {
			slices.Sort(lacking)
			return status.New(zppb.Code_FAILED_PRECONDITION,
				"split of table %q refused: node(s) %s hold its replicas and have not reported %q to this meta leader: a release before slot ranges (upgrade them first, docs/topology.md \"Version gating\"), or no PING since the leader changed (retry in a second)",
				m.GetTable(), strings.Join(lacking, ", "), buildinfo.FeatureSlotRanges)
		}
	}
	return nil
}
