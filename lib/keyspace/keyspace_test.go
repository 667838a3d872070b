package keyspace

import (
	"fmt"
	"testing"
)

func TestCRC16(t *testing.T) {
	if got := CRC16([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("CRC16(123456789) = %#04x, want 0x31c3", got)
	}
}

func TestSlot(t *testing.T) {
	tests := []struct {
		key  string
		want uint16
	}{
		{"foo", 12182},
		{"123456789", 0x31C3 % Slots},
		{"{foo}bar", 12182},
		{"bar{foo}", 12182},
		{"{}foo", CRC16([]byte("{}foo")) % Slots}, // empty tag: whole key
		{"foo{", CRC16([]byte("foo{")) % Slots},
		{"{a}{b}", CRC16([]byte("a")) % Slots},
	}
	for _, tt := range tests {
		if got := Slot([]byte(tt.key)); got != tt.want {
			t.Errorf("Slot(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
	a, b := Slot([]byte("{user1000}.following")), Slot([]byte("{user1000}.followers"))
	if a != b {
		t.Errorf("hashtagged keys in different slots: %d vs %d", a, b)
	}
}

func TestHashTag(t *testing.T) {
	tests := []struct{ key, want string }{
		{"{user1000}.following", "user1000"},
		{"plain", ""},
		{"{}x", ""},
		{"x{y", ""},
		{"a{b}{c}", "b"},
		{"{{x}}", "{x"},
	}
	for _, tt := range tests {
		if got := string(HashTag([]byte(tt.key))); got != tt.want {
			t.Errorf("HashTag(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestPartitionOfSlotInvertsSlotRange(t *testing.T) {
	for _, n := range []uint32{1, 2, 3, 7, 16, 64, 100, 1000, 16384} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			covered := 0
			for id := range n {
				begin, end := SlotRange(id, n)
				for s := begin; s < end; s++ {
					if got := PartitionOfSlot(uint16(s), n); got != id {
						t.Fatalf("slot %d: partition %d, want %d", s, got, id)
					}
					covered++
				}
			}
			if covered != Slots {
				t.Fatalf("partitions cover %d slots, want %d", covered, Slots)
			}
		})
	}
}

func BenchmarkPartition(b *testing.B) {
	key := []byte("{user1000}.following")
	for b.Loop() {
		Partition(key, 64)
	}
}
