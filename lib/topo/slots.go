package topo

import (
	"fmt"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// SlotRange returns the half-open slot range [begin, end) that p owns in
// tb: the range p carries, or, when it carries none (slot_end 0: a table
// created by a meta that did not record ranges), the even layout's range
// of its id, which is what such a table was created with and what every
// release before ranges routed by.
func SlotRange(tb *zppb.Table, p *zppb.Partition) (begin, end uint32) {
	if p.GetSlotEnd() != 0 {
		return p.GetSlotBegin(), p.GetSlotEnd()
	}
	n := tb.GetPartitionCount()
	if n == 0 || p.GetId() >= n {
		return 0, 0
	}
	return keyspace.SlotRange(p.GetId(), n)
}

// SlotMap returns the map by which tb's keys are routed. It fails when tb
// cannot be routed: partitions missing or not listed in id order (clients
// and nodes index them by id), or ranges that do not cover every slot
// exactly once.
func SlotMap(tb *zppb.Table) (*keyspace.SlotMap, error) {
	n := tb.GetPartitionCount()
	if n == 0 || n > keyspace.Slots || len(tb.GetPartitions()) != int(n) {
		return nil, fmt.Errorf("table %q declares %d partitions and lists %d", tb.GetName(), n, len(tb.GetPartitions()))
	}
	ranges := make([]keyspace.Range, len(tb.GetPartitions()))
	for i, p := range tb.GetPartitions() {
		if p.GetId() != uint32(i) {
			return nil, fmt.Errorf("table %q lists partition %d at %d", tb.GetName(), p.GetId(), i)
		}
		b, e := SlotRange(tb, p)
		ranges[i] = keyspace.Range{Partition: p.GetId(), Begin: b, End: e}
	}
	m, err := keyspace.NewSlotMap(ranges)
	if err != nil {
		return nil, fmt.Errorf("table %q: %w", tb.GetName(), err)
	}
	return m, nil
}

// SetEvenSlotRanges records in each of a new table's partitions, listed in
// id order, its range in the even layout of their number.
func SetEvenSlotRanges(parts []*zppb.Partition) {
	for i, p := range parts {
		p.SlotBegin, p.SlotEnd = keyspace.SlotRange(uint32(i), uint32(len(parts)))
	}
}
