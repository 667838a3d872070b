package topo

import (
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// A split (docs/topology.md, "Split") is a move of kind SPLIT: partition p,
// owning [b, e), keeps [b, at) and a new partition (the child) takes
// [at, e) with p's replicas. The rules of which splits are legal and what
// the commit makes of the table are here, beside those of the other moves,
// for the meta FSM to apply.

// partitionRange is p's slot range among parts, a table's partitions in id
// order (SlotRange for a View, which holds no table).
func partitionRange(parts []*zppb.Partition, p *zppb.Partition) (begin, end uint32) {
	return SlotRange(&zppb.Table{PartitionCount: uint32(len(parts))}, p)
}

// SplitPoint returns the slot at which p splits: at when it is inside p's
// range (b < at < e), the middle of the range when at is 0. A range of one
// slot does not split.
func SplitPoint(parts []*zppb.Partition, p *zppb.Partition, at uint32) (uint32, error) {
	b, e := partitionRange(parts, p)
	if e-b < 2 {
		return 0, status.New(zppb.Code_INVALID_ARGUMENT, "partition %d owns slots [%d, %d): too few to split", p.GetId(), b, e)
	}
	if at == 0 {
		return b + (e-b)/2, nil
	}
	if at <= b || at >= e {
		return 0, status.New(zppb.Code_INVALID_ARGUMENT, "slot %d is not inside partition %d's range (%d, %d)", at, p.GetId(), b, e)
	}
	return at, nil
}

// FillSplitPoints fixes the slot of each SPLIT that asks for the middle
// (split_at 0), so that the point queued in Raft is the one checked and
// shown. Moves of unknown partitions are left for CheckMoves to refuse.
func FillSplitPoints(v View, moves []*zppb.Move) {
	for _, m := range moves {
		if m.GetKind() != zppb.MoveKind_SPLIT || m.GetSplitAt() != 0 {
			continue
		}
		parts, _ := v.Partitions(m.GetTable())
		if p, err := FindPartition(v, m.GetTable(), m.GetPartition()); err == nil {
			if at, err := SplitPoint(parts, p, 0); err == nil {
				m.SplitAt = at
			}
		}
	}
}

// checkSplit checks a new SPLIT of p: no other move queued on the
// partition (one move or split at a time), the partition ACTIVE, the
// point inside its range, and every replica's node UP.
func checkSplit(v View, m *zppb.Move, p *zppb.Partition, pm *partMoves) error {
	if pm.moves > 0 {
		return status.New(zppb.Code_INVALID_ARGUMENT, "%s/%d has a move queued (%d): one move or split at a time per partition", m.Table, m.Partition, pm.firstID)
	}
	if m.From != "" || m.To != "" {
		return status.New(zppb.Code_INVALID_ARGUMENT, "a split names no nodes")
	}
	if p.State != zppb.PartitionState_ACTIVE || p.Split != nil {
		return status.New(zppb.Code_INVALID_ARGUMENT, "%s/%d is %v: a split starts from ACTIVE", m.Table, m.Partition, p.State)
	}
	parts, _ := v.Partitions(m.Table)
	if _, err := SplitPoint(parts, p, m.SplitAt); err != nil {
		return err
	}
	for _, a := range ReplicasOf(p) {
		if n := v.Node(a); n == nil || n.State != zppb.NodeState_UP {
			return status.New(zppb.Code_INVALID_ARGUMENT, "replica %q of %s/%d is not UP: a split needs every replica", a, m.Table, m.Partition)
		}
	}
	return nil
}

// PrepareSplit checks that the split m may enter PREPARE on tb (no other
// split of the table in PREPARE: the child takes the next id, so splits of
// one table prepare one at a time) and returns what p carries during it.
// epoch is the epoch the step makes.
func PrepareSplit(tb *zppb.Table, m *zppb.Move, preparing bool, epoch uint64) (*zppb.PartitionSplit, error) {
	if preparing {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "another split of table %q is in PREPARE", tb.GetName())
	}
	if m.GetPartition() >= uint32(len(tb.GetPartitions())) {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "table %q has no partition %d", tb.GetName(), m.GetPartition())
	}
	p := tb.Partitions[m.Partition]
	if p.State != zppb.PartitionState_ACTIVE || p.Split != nil {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "%s/%d is %v: a split starts from ACTIVE", tb.GetName(), m.Partition, p.State)
	}
	if _, err := SplitPoint(tb.Partitions, p, m.GetSplitAt()); err != nil || m.GetSplitAt() == 0 {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "%s/%d cannot split at %d", tb.GetName(), m.Partition, m.GetSplitAt())
	}
	return &zppb.PartitionSplit{Child: uint32(len(tb.Partitions)), At: m.SplitAt, Epoch: epoch, Move: m.Id}, nil
}

// CommitSplit returns tb as the commit of p's split leaves it: p keeps
// [b, at), the child is appended with [at, e), p's replicas, master and
// term, ACTIVE; partition_count +1. It fails, and tb is not to be
// changed, unless the result routes every slot to exactly one partition
// (SlotMap), so no epoch has two partitions claiming a slot or a slot
// without one.
func CommitSplit(tb *zppb.Table, p *zppb.Partition) (*zppb.Table, error) {
	sp := p.GetSplit()
	if sp == nil {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "%s/%d has no split in PREPARE", tb.GetName(), p.GetId())
	}
	if sp.Child != uint32(len(tb.Partitions)) {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "%s: split child %d is not the next partition id %d", tb.GetName(), sp.Child, len(tb.Partitions))
	}
	next := proto.Clone(tb).(*zppb.Table)
	np := next.Partitions[p.Id]
	b, e := SlotRange(tb, p)
	child := &zppb.Partition{
		Id: sp.Child, State: zppb.PartitionState_ACTIVE, Master: np.Master, Slaves: slices.Clone(np.Slaves),
		Term: np.Term, SlotBegin: sp.At, SlotEnd: e, SplitEpoch: sp.Epoch,
	}
	np.SlotBegin, np.SlotEnd, np.Split = b, sp.At, nil
	next.Partitions = append(next.Partitions, child)
	next.PartitionCount++
	if _, err := SlotMap(next); err != nil {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "split of %s/%d at %d refused: %v", tb.GetName(), p.GetId(), sp.At, err)
	}
	return next, nil
}

// MinSplitSamples is the fewest sampled keys in a partition's range from
// which MedianSlot places a split by size; below it, the middle.
const MinSplitSamples = 16

// MedianSlot returns the slot s (b < s < e) that halves a partition's
// data by size, from a sample of its keys: bySlot maps the slot of each
// sampled key to the key and value bytes sampled there. The keys of
// [b, s) then weigh about as much as those of [s, e). Between two sampled
// slots the data is unknown, so s is the middle of the gap where the
// cumulative weight is closest to half. Samples outside [b, e) (keys a
// trim has not deleted yet) are left out. With fewer than
// MinSplitSamples keys in the range, or no bytes, it returns the middle,
// as SplitPoint does. [b, e) must hold two slots at least.
func MedianSlot(bySlot map[uint32]uint64, keys int, b, e uint32) uint32 {
	mid := b + (e-b)/2
	slots := make([]uint32, 0, len(bySlot))
	var total uint64
	for s, w := range bySlot {
		if s >= b && s < e && w > 0 {
			slots = append(slots, s)
			total += w
		}
	}
	if keys < MinSplitSamples || total == 0 || e-b < 2 {
		return mid
	}
	slices.Sort(slots)
	// Cut j leaves slots[:j] below the point: the point is in
	// (slots[j-1], slots[j]], b+1 and e-1 bounding the ends.
	best, bestDiff := 0, total // cut 0: everything above
	var below uint64
	for j := 1; j <= len(slots); j++ {
		below += bySlot[slots[j-1]]
		diff := max(2*below, total) - min(2*below, total)
		if diff < bestDiff {
			best, bestDiff = j, diff
		}
	}
	lo, hi := b+1, e-1 // the point's bounds for the cut
	if best > 0 {
		lo = max(lo, slots[best-1]+1)
	}
	if best < len(slots) {
		hi = min(hi, slots[best])
	}
	if lo > hi {
		// A sampled slot at an end of the range: the nearest point.
		return min(max(lo, b+1), e-1)
	}
	return lo + (hi-lo)/2
}
