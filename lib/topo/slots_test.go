package topo

import (
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestSlotMapOfTable covers the three shapes a table comes in: created
// before ranges (none recorded: the even layout), created with them, and
// split (ranges out of id order).
func TestSlotMapOfTable(t *testing.T) {
	parts := func(ranges ...[2]uint32) []*zppb.Partition {
		out := make([]*zppb.Partition, len(ranges))
		for i, r := range ranges {
			out[i] = &zppb.Partition{Id: uint32(i), SlotBegin: r[0], SlotEnd: r[1]}
		}
		return out
	}
	for _, tt := range []struct {
		name string
		tb   *zppb.Table
		want map[uint16]uint32 // slot -> partition
		err  string
	}{
		{name: "no ranges", tb: &zppb.Table{Name: "t", PartitionCount: 3, Partitions: parts([2]uint32{}, [2]uint32{}, [2]uint32{})},
			want: map[uint16]uint32{0: 0, 5460: 0, 5461: 1, 10921: 1, 10922: 2, 16383: 2}},
		{name: "even ranges", tb: &zppb.Table{Name: "t", PartitionCount: 2, Partitions: parts([2]uint32{0, 8192}, [2]uint32{8192, 16384})},
			want: map[uint16]uint32{0: 0, 8191: 0, 8192: 1, 16383: 1}},
		{name: "split", tb: &zppb.Table{Name: "t", PartitionCount: 3, Partitions: parts([2]uint32{0, 4096}, [2]uint32{8192, 16384}, [2]uint32{4096, 8192})},
			want: map[uint16]uint32{0: 0, 4095: 0, 4096: 2, 8191: 2, 8192: 1, 16383: 1}},
		{name: "gap", tb: &zppb.Table{Name: "t", PartitionCount: 2, Partitions: parts([2]uint32{0, 4096}, [2]uint32{8192, 16384})},
			err: `table "t": slots [4096, 8192) belong to no partition`},
		{name: "missing", tb: &zppb.Table{Name: "t", PartitionCount: 3, Partitions: parts([2]uint32{0, 4096}, [2]uint32{4096, 16384})},
			err: `table "t" declares 3 partitions and lists 2`},
		{name: "out of order", tb: &zppb.Table{Name: "t", PartitionCount: 2, Partitions: []*zppb.Partition{{Id: 1, SlotEnd: 8192}, {Id: 0, SlotBegin: 8192, SlotEnd: 16384}}},
			err: `table "t" lists partition 1 at 0`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := SlotMap(tt.tb)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for slot, want := range tt.want {
				if got := m.PartitionOfSlot(slot); got != want {
					t.Errorf("slot %d: partition %d, want %d", slot, got, want)
				}
			}
		})
	}
}

func TestSetEvenSlotRanges(t *testing.T) {
	parts := []*zppb.Partition{{Id: 0}, {Id: 1}, {Id: 2}}
	SetEvenSlotRanges(parts)
	tb := &zppb.Table{PartitionCount: 3, Partitions: parts}
	for i, p := range parts {
		b, e := keyspace.SlotRange(uint32(i), 3)
		if gb, ge := SlotRange(tb, p); p.SlotEnd == 0 || gb != b || ge != e {
			t.Errorf("partition %d: [%d, %d), want [%d, %d)", i, gb, ge, b, e)
		}
	}
}
