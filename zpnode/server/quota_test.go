package server

import (
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func quotaTopology(opsPerSec, bytesPerSec uint64, masters ...string) *zppb.Topology {
	t := &zppb.Table{Name: "t", PartitionCount: uint32(len(masters)), Quota: &zppb.Quota{OpsPerSec: opsPerSec, BytesPerSec: bytesPerSec}}
	for i, m := range masters {
		t.Partitions = append(t.Partitions, &zppb.Partition{Id: uint32(i), Master: m})
	}
	return &zppb.Topology{Tables: []*zppb.Table{t}}
}

// admitted counts how many of n operations of size bytes the quota lets
// through at once.
func admitted(q *quotas, n, size int) int {
	ok := 0
	for range n {
		if q.admit("t", size) {
			ok++
		}
	}
	return ok
}

func TestQuotaShareFollowsMasters(t *testing.T) {
	tests := []struct {
		name    string
		masters []string
		ops     uint64
		want    int // operations admitted in a burst (one second's share)
	}{
		{"all partitions here", []string{"a", "a", "a", "a"}, 400, 400},
		{"half the partitions", []string{"a", "b", "a", "b"}, 400, 200},
		{"a quarter", []string{"a", "b", "b", "b"}, 400, 100},
		{"none here", []string{"b", "b"}, 400, 1}, // a burst is at least one token
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := stoppedQuotas()
			q.update(quotaTopology(tt.ops, 0, tt.masters...), "a")
			if got := admitted(q, 1000, 10); got != tt.want {
				t.Fatalf("admitted %d of 1000, want %d", got, tt.want)
			}
		})
	}
}

// stoppedQuotas is quotas whose clock does not move unless a test moves it.
func stoppedQuotas() *quotas {
	q := newQuotas()
	now := time.Unix(1000, 0)
	q.now = func() time.Time { return now }
	return q
}

func TestQuotaBytesAndRefill(t *testing.T) {
	q := stoppedQuotas()
	q.update(quotaTopology(0, 1000, "a"), "a")
	// Bytes may overdraw once; the debt then refuses until it is paid.
	if !q.admit("t", 5000) {
		t.Fatal("first large request refused")
	}
	if q.admit("t", 1) {
		t.Fatal("request admitted while the bucket is in debt")
	}
	// Refill: six seconds later the debt is paid.
	later := q.now().Add(6 * time.Second)
	q.now = func() time.Time { return later }
	if !q.admit("t", 1) {
		t.Fatal("refused after the debt was paid back")
	}

	// A quota removed from the topology lifts the limit.
	q.update(&zppb.Topology{Tables: []*zppb.Table{{Name: "t", PartitionCount: 1, Partitions: []*zppb.Partition{{Master: "a"}}}}}, "a")
	if got := admitted(q, 100, 1<<20); got != 100 {
		t.Fatalf("admitted %d of 100 without a quota", got)
	}
}

func TestQuotaRefusalCostsNothing(t *testing.T) {
	q := stoppedQuotas()
	q.update(quotaTopology(10, 100, "a"), "a")
	// Exhaust bytes; ops remain but requests are refused without using them.
	q.admit("t", 200)
	for range 50 {
		if q.admit("t", 1) {
			t.Fatal("admitted with the bytes bucket in debt")
		}
	}
	ops := q.tables["t"].ops
	ops.mu.Lock()
	left := ops.tokens
	ops.mu.Unlock()
	if left != 9 {
		t.Fatalf("refused requests used op tokens: %.1f left of 10 after one admitted", left)
	}
}
