package fsm

import (
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// stepSplit advances a SPLIT (docs/topology.md, "Split"): PENDING ->
// PREPARE (the partition carries the split; its master logs the fence),
// PREPARE -> COMMITTED (the ranges switch and the child partition
// appears, in this one entry), COMMITTED -> DONE; PENDING or PREPARE ->
// FAILED/CANCELLED rolls back (stepMove handles those through rollback).
func (s *state) stepSplit(m *zppb.Move, p *zppb.Partition, c *zppb.StepMoveCommand) (changed bool, err error) {
	bad := func() (bool, error) {
		return false, status.New(zppb.Code_INVALID_ARGUMENT, "split %d cannot go from %v to %v", m.Id, c.GetFrom(), c.GetTo())
	}
	t := s.tables[m.Table]
	switch from, to := c.GetFrom(), c.GetTo(); {
	case from == zppb.MoveState_MOVE_PENDING && to == zppb.MoveState_MOVE_PREPARE:
		sp, err := topo.PrepareSplit(t, m, s.preparingSplit(m.Table), s.epoch+1)
		if err != nil {
			return false, err
		}
		if t.Partitions[0].GetSlotEnd() == 0 {
			// A table of a meta before ranges: record the even layout it
			// routes by (nothing changes for readers), so that the
			// commit can give two partitions ranges out of id order.
			topo.SetEvenSlotRanges(t.Partitions)
		}
		p.Split = sp
		m.SplitChild, m.SplitEpoch, m.Term = sp.Child, sp.Epoch, p.Term
		return true, nil
	case from == zppb.MoveState_MOVE_PREPARE && to == zppb.MoveState_MOVE_COMMITTED:
		if p.GetSplit().GetEpoch() != m.SplitEpoch || p.Term != m.Term || p.State != zppb.PartitionState_ACTIVE {
			return bad()
		}
		next, err := topo.CommitSplit(t, p)
		if err != nil {
			return false, err
		}
		s.tables[m.Table] = next
		return true, nil
	case from == zppb.MoveState_MOVE_COMMITTED && to == zppb.MoveState_MOVE_DONE:
		return false, nil
	}
	return bad()
}

// preparingSplit reports whether a split of table is in PREPARE.
func (s *state) preparingSplit(table string) bool {
	for _, m := range s.moves {
		if m.Table == table && m.Kind == zppb.MoveKind_SPLIT && m.State == zppb.MoveState_MOVE_PREPARE {
			return true
		}
	}
	return false
}
