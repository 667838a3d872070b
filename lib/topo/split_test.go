package topo

import (
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestSplitPoint(t *testing.T) {
	parts := []*zppb.Partition{{Id: 0, SlotBegin: 0, SlotEnd: 100}, {Id: 1, SlotBegin: 100, SlotEnd: 101}, {Id: 2, SlotBegin: 101, SlotEnd: 16384}}
	old := []*zppb.Partition{{Id: 0}, {Id: 1}} // no recorded ranges: the even layout
	for _, tt := range []struct {
		name  string
		parts []*zppb.Partition
		id    int
		at    uint32
		want  uint32
		bad   bool
	}{
		{"middle", parts, 0, 0, 50, false},
		{"given", parts, 0, 99, 99, false},
		{"on the begin", parts, 2, 101, 0, true},
		{"on the end", parts, 0, 100, 0, true},
		{"outside", parts, 0, 5000, 0, true},
		{"one slot", parts, 1, 0, 0, true},
		{"even layout", old, 1, 0, 12288, false},
	} {
		got, err := SplitPoint(tt.parts, tt.parts[tt.id], tt.at)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("%s: SplitPoint = %d, %v; want %d (error %v)", tt.name, got, err, tt.want, tt.bad)
		}
	}
}

// TestCommitSplit: the commit gives the child the upper range and the
// parent's replicas, and refuses a child id that is not the next one.
func TestCommitSplit(t *testing.T) {
	tb := &zppb.Table{Name: "t", PartitionCount: 2, Partitions: []*zppb.Partition{
		{Id: 0, SlotBegin: 0, SlotEnd: 8192, Master: "a", Slaves: []string{"b"}, Term: 3, Split: &zppb.PartitionSplit{Child: 2, At: 4000, Epoch: 9}},
		{Id: 1, SlotBegin: 8192, SlotEnd: 16384, Master: "b"},
	}}
	next, err := CommitSplit(tb, tb.Partitions[0])
	if err != nil {
		t.Fatal(err)
	}
	c, p := next.Partitions[2], next.Partitions[0]
	if next.PartitionCount != 3 || p.SlotEnd != 4000 || p.Split != nil || c.SlotBegin != 4000 || c.SlotEnd != 8192 ||
		c.Master != "a" || len(c.Slaves) != 1 || c.Term != 3 || c.SplitEpoch != 9 {
		t.Fatalf("committed: %v", next)
	}
	if tb.Partitions[0].SlotEnd != 8192 || len(tb.Partitions) != 2 {
		t.Fatal("CommitSplit changed the table it was given")
	}
	tb.Partitions[0].Split.Child = 5
	if _, err := CommitSplit(tb, tb.Partitions[0]); err == nil {
		t.Fatal("committed a child that is not the next id")
	}
}

// TestMedianSlot checks the rule that places a split by size.
func TestMedianSlot(t *testing.T) {
	even := func(from, to, step uint32, w uint64) map[uint32]uint64 {
		m := make(map[uint32]uint64)
		for s := from; s < to; s += step {
			m[s] = w
		}
		return m
	}
	merge := func(ms ...map[uint32]uint64) map[uint32]uint64 {
		out := make(map[uint32]uint64)
		for _, m := range ms {
			for s, w := range m {
				out[s] += w
			}
		}
		return out
	}
	for _, tt := range []struct {
		name   string
		bySlot map[uint32]uint64
		keys   int
		b, e   uint32
		// The point must be in [lo, hi].
		lo, hi uint32
	}{
		{"no data: the middle", nil, 0, 0, 16384, 8192, 8192},
		{"too few keys: the middle", even(0, 100, 10, 1000), 10, 0, 16384, 8192, 8192},
		{"even data: about the middle", even(0, 16384, 16, 100), 1024, 0, 16384, 8176, 8208},
		// Nine tenths of the bytes in the lowest quarter of the range.
		{"skewed low", merge(even(0, 4096, 16, 900), even(4096, 16384, 16, 33)), 1024, 0, 16384, 1000, 3000},
		{"skewed high", merge(even(0, 12288, 16, 33), even(12288, 16384, 16, 900)), 1024, 0, 16384, 13500, 15400},
		// A gap between the sampled halves: its middle.
		{"gap", merge(even(100, 120, 1, 10), even(180, 200, 1, 10)), 40, 100, 200, 149, 151},
		{"samples outside the range are left out", merge(even(0, 100, 1, 1000), even(200, 300, 1, 1)), 100, 200, 300, 249, 251},
		{"all in the first slot", map[uint32]uint64{100: 5000}, 100, 100, 200, 101, 101},
		{"all in the last slot", map[uint32]uint64{199: 5000}, 100, 100, 200, 150, 150},
		{"two slots", map[uint32]uint64{0: 5, 1: 5}, 100, 0, 2, 1, 1},
	} {
		got := MedianSlot(tt.bySlot, tt.keys, tt.b, tt.e)
		if got < tt.lo || got > tt.hi || got <= tt.b || got >= tt.e {
			t.Errorf("%s: MedianSlot = %d, want in [%d, %d] inside (%d, %d)", tt.name, got, tt.lo, tt.hi, tt.b, tt.e)
		}
	}
}
