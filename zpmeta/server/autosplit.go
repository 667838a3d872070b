package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/fsm"
)

// Split points by size and automatic splits (docs/topology.md, "Split").
// A SPLIT queued without a slot (zpctl table split without --at, --all,
// the scheduler) asks the partition's master for the slot that halves its
// data (SPLITPOINT: the node samples its keys, topo.MedianSlot decides);
// a master that cannot answer leaves the middle (topo.FillSplitPoints).
// The scheduler splits the partitions of a table with a split_size whose
// master reports more data than it in its PING (size_bytes).

const (
	// splitPointTimeout bounds one SPLITPOINT: a sample of a few
	// thousand keys takes tens of milliseconds.
	splitPointTimeout = 3 * time.Second
	// splitPointAsks is how many SPLITPOINTs run at once (--all).
	splitPointAsks = 8
	// autoSplitSettle is how long after a split of a partition (as
	// parent or child) ends the scheduler leaves the partition alone:
	// its master reports its size again only once the halves are
	// trimmed, and the node learns of the commit and starts the trims a
	// PING or two after it.
	autoSplitSettle = 30 * time.Second
)

// fillSplitPointsBySize sets the slot of each SPLIT in moves that names
// none to the one that halves its partition's data, as the partition's
// master weighs it; a split whose master does not answer keeps 0, the
// middle.
func (s *Server) fillSplitPointsBySize(ctx context.Context, moves []*zppb.Move) {
	sem := make(chan struct{}, splitPointAsks)
	var wg sync.WaitGroup
	for _, m := range moves {
		if m.GetKind() != zppb.MoveKind_SPLIT || m.GetSplitAt() != 0 {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			at, err := s.splitPointBySize(ctx, m.Table, m.Partition)
			if err != nil {
				s.logger.Warn("split: no point by size, the middle", "table", m.Table, "partition", m.Partition, "err", err)
			}
			m.SplitAt = at
		}()
	}
	wg.Wait()
}

// splitPointBySize asks the master of (table, id) for the slot that halves
// its data (SPLITPOINT). It asks nothing, and returns 0 and no error, for
// a split CheckMoves will refuse (no such table or partition, a range too
// small).
func (s *Server) splitPointBySize(ctx context.Context, table string, id uint32) (uint32, error) {
	tp, err := s.fsm.Topology(table)
	if err != nil {
		return 0, nil
	}
	tb := tp.Tables[0]
	if id >= uint32(len(tb.Partitions)) {
		return 0, nil
	}
	p := tb.Partitions[id]
	if _, err := topo.SplitPoint(tb.Partitions, p, 0); err != nil || p.Master == "" {
		return 0, nil
	}
	b, e := topo.SlotRange(tb, p)
	ctx, cancel := context.WithTimeout(ctx, splitPointTimeout)
	defer cancel()
	resp, err := s.pool.Call(ctx, p.Master, &zppb.Request{Cmd: &zppb.Request_SplitPoint{SplitPoint: &zppb.SplitPointRequest{
		Table: table, Partition: id, SlotBegin: b, SlotEnd: e,
	}}})
	if err == nil {
		err = status.FromResponse(resp)
	}
	if err != nil {
		return 0, fmt.Errorf("SPLITPOINT %s/%d at %s: %w", table, id, p.Master, err)
	}
	sp := resp.GetSplitPoint()
	if at := sp.GetAt(); at <= b || at >= e {
		return 0, fmt.Errorf("SPLITPOINT %s/%d at %s: slot %d outside (%d, %d)", table, id, p.Master, at, b, e)
	}
	s.logger.Info("split: point by size", "table", table, "partition", id, "at", sp.GetAt(), "keys", sp.GetSampledKeys(), "bytes", sp.GetSampledBytes(), "exact", sp.GetExact())
	return sp.GetAt(), nil
}

// partKey names a partition.
type partKey struct {
	table string
	id    uint32
}

// planSplits plans the automatic splits: a partition of a table with a
// split_size (and not restoring) whose master reports more data than
// that (size returns what the master's last PING said, 0 when unknown),
// ACTIVE, with no move in flight (busy) nor a split ended within
// autoSplitSettle (settling), every replica's node UP, and a range of two
// slots or more; at most budget of them.
func (v *scheduleView) planSplits(tables []*zppb.Table, up func(addr string) bool, busy, settling func(partKey) bool, size func(addr, table string, id uint32) uint64, budget int) {
	for _, t := range tables {
		if t.SplitSize == 0 || t.Restoring {
			continue
		}
		for _, p := range t.Partitions {
			if budget <= 0 {
				return
			}
			k := partKey{t.Name, p.Id}
			if p.State != zppb.PartitionState_ACTIVE || p.Split != nil || p.Master == "" || busy(k) || settling(k) {
				continue
			}
			if b, e := topo.SlotRange(t, p); e-b < 2 {
				continue
			}
			n := size(p.Master, t.Name, p.Id)
			if n <= t.SplitSize {
				continue
			}
			ok := true
			for _, a := range topo.ReplicasOf(p) {
				ok = ok && up(a)
			}
			if !ok {
				continue
			}
			v.splits = append(v.splits, &zppb.Move{Kind: zppb.MoveKind_SPLIT, Table: t.Name, Partition: p.Id, Origin: "scheduler",
				Reason: fmt.Sprintf("%s/%d holds %d bytes, over its table's split size %d", t.Name, p.Id, n, t.SplitSize)})
			budget--
		}
	}
	if len(v.splits) > 0 {
		v.splitSummary = fmt.Sprintf("automatic split: %d partition(s) over their table's split size: %s", len(v.splits), v.splits[0].Reason)
	}
}

// splitSettling returns whether a split of a partition, as parent or
// child, ended less than autoSplitSettle before now, from the moves the
// state keeps.
func splitSettling(moves []*zppb.Move, now time.Time) func(partKey) bool {
	recent := make(map[partKey]bool)
	for _, m := range moves {
		if m.Kind != zppb.MoveKind_SPLIT || !topo.Terminal(m.State) || now.Sub(time.UnixMilli(m.UpdatedMs)) >= autoSplitSettle {
			continue
		}
		recent[partKey{m.Table, m.Partition}] = true
		if m.SplitChild != 0 {
			recent[partKey{m.Table, m.SplitChild}] = true
		}
	}
	return func(k partKey) bool { return recent[k] }
}

// splitCheckEvery is how often the scheduler looks at the masters'
// reported sizes when nothing else made it plan.
const splitCheckEvery = 2 * time.Second

// planAutoSplits plans v's automatic splits from the state read at v's
// epoch and the sizes the masters last reported, within what max-moves
// leaves after the repairs.
func (s *Server) planAutoSplits(v *scheduleView, nodes []*zppb.Node, tables []*zppb.Table, busy func(partKey) bool, now time.Time) {
	auto := false
	for _, t := range tables {
		auto = auto || t.SplitSize > 0
	}
	if !auto {
		return
	}
	up := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		up[n.Addr] = n.State == zppb.NodeState_UP
	}
	size := func(addr, table string, id uint32) uint64 {
		pos, _, ok := s.live.position(addr, table, id)
		if !ok || !pos.GetMaster() {
			return 0
		}
		return pos.GetSizeBytes()
	}
	budget := v.settings.MaxMoves - v.schedulerInFlight - len(v.repairs)
	v.planSplits(tables, func(a string) bool { return up[a] }, busy, splitSettling(s.fsm.Moves(true), now), size, budget)
}

// autoSplitOnce queues the automatic splits the masters' sizes call for
// now, between plans (the sizes come with PINGs, which change no state).
func (s *Server) autoSplitOnce(ctx context.Context, now time.Time) error {
	tables, tepoch := s.fsm.SplitSizedTables()
	if len(tables) == 0 {
		return nil
	}
	nodes, epoch := s.fsm.Nodes()
	if epoch != tepoch {
		return errEpochMoved
	}
	sc, _ := s.fsm.Schedule()
	v := &scheduleView{settings: fsm.Resolve(sc), epoch: epoch}
	if v.settings.Paused {
		return nil
	}
	busy := make(map[partKey]bool)
	for _, m := range s.fsm.Moves(false) {
		busy[partKey{m.Table, m.Partition}] = true
		if m.Origin == "scheduler" {
			v.schedulerInFlight++
		}
	}
	s.planAutoSplits(v, nodes, tables, func(k partKey) bool { return busy[k] }, now)
	if len(v.splits) == 0 {
		return nil
	}
	s.fillSplitPointsBySize(ctx, v.splits)
	return s.queueScheduled(ctx, v.splits, v.epoch, "split", v.splitSummary, now)
}
