package client

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// splitTable is table "s" as after splits: partition 0 [0, 4096) split at
// 2048 into 0 and 3, and 1 [8192, 16384) at 12288 into 1 and 4; each
// partition mastered by node "n<id>".
func splitTable() *zppb.Table {
	ranges := [][2]uint32{{0, 2048}, {8192, 12288}, {4096, 8192}, {2048, 4096}, {12288, 16384}}
	tb := &zppb.Table{Name: "s", PartitionCount: uint32(len(ranges)), Replicas: 1}
	for i, r := range ranges {
		tb.Partitions = append(tb.Partitions, &zppb.Partition{Id: uint32(i), Master: fmt.Sprintf("n%d", i), SlotBegin: r[0], SlotEnd: r[1]})
	}
	return tb
}

// TestRouteBySlotRanges: the client routes every key by the slot ranges
// the topology gives, whatever the order of the ids; a table without ranges
// (created by an older meta) by the even layout; a table whose ranges do
// not cover every slot once is not routed at all.
func TestRouteBySlotRanges(t *testing.T) {
	old := &zppb.Table{Name: "old", PartitionCount: 3, Replicas: 1}
	for i := range uint32(3) {
		old.Partitions = append(old.Partitions, &zppb.Partition{Id: i, Master: fmt.Sprintf("n%d", i)})
	}
	bad := splitTable()
	bad.Name = "bad"
	bad.Partitions[3].SlotEnd = 3000 // [3000, 4096) owned by none
	tp := newTopology(slog.New(slog.DiscardHandler))
	tp.install(&zppb.Topology{Epoch: 7, Tables: []*zppb.Table{splitTable(), old, bad}})

	if _, ok := tp.table("bad"); ok {
		t.Fatal("a table with slots owned by no partition is routed")
	}
	for _, tt := range []struct {
		table string
		owner func(slot uint16) uint32
	}{
		{"s", func(slot uint16) uint32 {
			for _, p := range splitTable().Partitions {
				if uint32(slot) >= p.SlotBegin && uint32(slot) < p.SlotEnd {
					return p.Id
				}
			}
			panic("unowned slot")
		}},
		{"old", func(slot uint16) uint32 { return keyspace.PartitionOfSlot(slot, 3) }},
	} {
		tr, ok := tp.table(tt.table)
		if !ok {
			t.Fatalf("table %s not routed", tt.table)
		}
		seen := map[uint32]bool{}
		for i := range 2000 {
			key := fmt.Appendf(nil, "key%d", i)
			want := tt.owner(keyspace.Slot(key))
			rt := tr.route(key)
			if rt.partition != want || rt.master != fmt.Sprintf("n%d", want) || rt.epoch != 7 {
				t.Fatalf("%s: %s (slot %d) routed to %+v, want partition %d", tt.table, key, keyspace.Slot(key), rt, want)
			}
			seen[want] = true
		}
		if len(seen) != int(tr.n) {
			t.Errorf("%s: keys reached %d partitions of %d", tt.table, len(seen), tr.n)
		}
	}

	// What Topology() and zpctl show: each partition's own range.
	got := tableFromPB(splitTable())
	for i, p := range splitTable().Partitions {
		if gp := got.Partitions[i]; gp.SlotBegin != p.SlotBegin || gp.SlotEnd != p.SlotEnd {
			t.Errorf("partition %d shown as [%d, %d), want [%d, %d)", i, gp.SlotBegin, gp.SlotEnd, p.SlotBegin, p.SlotEnd)
		}
	}
}
