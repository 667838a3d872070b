package keyspace

import (
	"fmt"
	"strings"
	"testing"
)

func TestEvenSlotMapIsSlotRange(t *testing.T) {
	for _, n := range []uint32{1, 2, 3, 7, 16, 1000, Slots} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			m := EvenSlotMap(n)
			for s := range uint32(Slots) {
				if got, want := m.PartitionOfSlot(uint16(s)), PartitionOfSlot(uint16(s), n); got != want {
					t.Fatalf("slot %d: partition %d, want %d", s, got, want)
				}
			}
			for i, r := range m.Ranges() {
				if b, e := SlotRange(uint32(i), n); r != (Range{uint32(i), b, e}) {
					t.Fatalf("range %d = %+v, want [%d, %d)", i, r, b, e)
				}
			}
		})
	}
}

// TestSlotMapOutOfIDOrder routes by ranges whose ids are not in slot
// order, as after splits: 0 split at 2048 into 0 and 4, 2 at 10240 into
// 2 and 5.
func TestSlotMapOutOfIDOrder(t *testing.T) {
	m, err := NewSlotMap([]Range{
		{Partition: 3, Begin: 12288, End: 16384},
		{Partition: 4, Begin: 2048, End: 4096},
		{Partition: 0, Begin: 0, End: 2048},
		{Partition: 5, Begin: 10240, End: 12288},
		{Partition: 1, Begin: 4096, End: 8192},
		{Partition: 2, Begin: 8192, End: 10240},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		slot uint16
		want uint32
	}{{0, 0}, {2047, 0}, {2048, 4}, {4095, 4}, {4096, 1}, {8191, 1}, {8192, 2}, {10239, 2}, {10240, 5}, {12287, 5}, {12288, 3}, {16383, 3}} {
		if got := m.PartitionOfSlot(tt.slot); got != tt.want {
			t.Errorf("slot %d: partition %d, want %d", tt.slot, got, tt.want)
		}
	}
	key := []byte("foo") // slot 12182
	if got := m.Partition(key); got != 5 {
		t.Errorf("Partition(foo) = %d, want 5", got)
	}
	if m.Len() != 6 || m.Ranges()[1] != (Range{4, 2048, 4096}) {
		t.Errorf("Len %d, Ranges %v", m.Len(), m.Ranges())
	}
}

func TestNewSlotMapRejects(t *testing.T) {
	for _, tt := range []struct {
		name   string
		ranges []Range
		want   string
	}{
		{"none", nil, "slots [0, 16384) belong to no partition"},
		{"gap", []Range{{0, 0, 100}, {1, 200, Slots}}, "slots [100, 200) belong to no partition"},
		{"short", []Range{{0, 0, 100}}, "slots [100, 16384) belong to no partition"},
		{"overlap", []Range{{0, 0, 200}, {1, 100, Slots}}, "partition 1's slot range [100, 16384) overlaps partition 0's"},
		{"empty", []Range{{0, 0, 0}, {1, 0, Slots}}, "partition 0 has slot range [0, 0)"},
		{"beyond", []Range{{0, 0, Slots + 1}}, "partition 0 has slot range [0, 16385)"},
		{"same id", []Range{{0, 0, 100}, {0, 100, Slots}}, "partition 0 has two slot ranges"},
		{"id too large", []Range{{Slots, 0, Slots}}, "partition id 16384 is not below 16384"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSlotMap(tt.ranges)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func BenchmarkSlotMapPartition(b *testing.B) {
	m := EvenSlotMap(64)
	key := []byte("{user1000}.following")
	for b.Loop() {
		m.Partition(key)
	}
}

// BenchmarkNewSlotMap builds the map of a table of 16384 partitions, what
// a client or node does for each table on every topology it installs.
func BenchmarkNewSlotMap(b *testing.B) {
	ranges := EvenSlotMap(Slots).Ranges()
	for b.Loop() {
		if _, err := NewSlotMap(ranges); err != nil {
			b.Fatal(err)
		}
	}
}
