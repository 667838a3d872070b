package keyspace

import (
	"fmt"
	"slices"
)

// Range is the half-open slot range [Begin, End) that a partition owns.
type Range struct {
	Partition  uint32
	Begin, End uint32
}

// SlotMap maps slots to the partitions that own them, built from the
// partitions' ranges: the one rule by which the client, the node and the
// RESP front route a key of a live table (lib/topo.SlotMap builds it from a
// table). A partition's id says nothing about where its range lies: a split
// gives the new partition the next id and half of its parent's range.
// Immutable.
type SlotMap struct {
	// begins are the ranges' first slots in slot order; ids[i] owns
	// [begins[i], begins[i+1]), the last one up to Slots.
	begins []uint32
	ids    []uint32
}

// NewSlotMap returns the map of ranges, which must cover every slot
// exactly once, with one range per partition and partition ids below
// Slots (a table has at most one partition per slot).
func NewSlotMap(ranges []Range) (*SlotMap, error) {
	rs := ranges
	if !slices.IsSortedFunc(rs, compareBegin) {
		rs = slices.Clone(ranges)
		slices.SortFunc(rs, compareBegin)
	}
	m := &SlotMap{begins: make([]uint32, len(rs)), ids: make([]uint32, len(rs))}
	var seen [Slots / 64]uint64 // a bit per partition id
	next := uint32(0)
	for i, r := range rs {
		switch {
		case r.Partition >= Slots:
			return nil, fmt.Errorf("partition id %d is not below %d", r.Partition, Slots)
		case r.Begin >= r.End || r.End > Slots:
			return nil, fmt.Errorf("partition %d has slot range [%d, %d)", r.Partition, r.Begin, r.End)
		case r.Begin > next:
			return nil, fmt.Errorf("slots [%d, %d) belong to no partition", next, r.Begin)
		case r.Begin < next:
			return nil, fmt.Errorf("partition %d's slot range [%d, %d) overlaps partition %d's", r.Partition, r.Begin, r.End, rs[i-1].Partition)
		case seen[r.Partition/64]&(1<<(r.Partition%64)) != 0:
			return nil, fmt.Errorf("partition %d has two slot ranges", r.Partition)
		}
		seen[r.Partition/64] |= 1 << (r.Partition % 64)
		m.begins[i], m.ids[i] = r.Begin, r.Partition
		next = r.End
	}
	if next != Slots {
		return nil, fmt.Errorf("slots [%d, %d) belong to no partition", next, Slots)
	}
	return m, nil
}

func compareBegin(a, b Range) int { return int(a.Begin) - int(b.Begin) }

// EvenSlotMap returns the map of a table created with n partitions (1 to
// Slots) and never split: partition i owns SlotRange(i, n).
func EvenSlotMap(n uint32) *SlotMap {
	m := &SlotMap{begins: make([]uint32, n), ids: make([]uint32, n)}
	for i := range n {
		m.begins[i], _ = SlotRange(i, n)
		m.ids[i] = i
	}
	return m
}

// PartitionOfSlot returns the partition that owns slot.
func (m *SlotMap) PartitionOfSlot(slot uint16) uint32 {
	// The last range that begins at or before slot; begins[0] is 0.
	lo, hi := 0, len(m.begins)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if m.begins[mid] <= uint32(slot) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return m.ids[lo]
}

// Partition returns the partition that holds key.
func (m *SlotMap) Partition(key []byte) uint32 {
	return m.PartitionOfSlot(Slot(key))
}

// Ranges returns the ranges in slot order.
func (m *SlotMap) Ranges() []Range {
	out := make([]Range, len(m.begins))
	for i := range m.begins {
		end := uint32(Slots)
		if i+1 < len(m.begins) {
			end = m.begins[i+1]
		}
		out[i] = Range{Partition: m.ids[i], Begin: m.begins[i], End: end}
	}
	return out
}

// Len returns the number of partitions.
func (m *SlotMap) Len() int { return len(m.ids) }
