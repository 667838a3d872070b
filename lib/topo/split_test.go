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
