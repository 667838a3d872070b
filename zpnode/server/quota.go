package server

import (
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// quotas enforce each table's quota on this node: the node's share of it is
// the share of the table's partitions it masters, since that is the share
// of the table's traffic it serves. A table's limit changes with the
// topology (a new quota, a failover, a move), within a PING of the change.
type quotas struct {
	now    func() time.Time // time.Now; tests stop the clock
	mu     sync.RWMutex
	tables map[string]*tableQuota
}

type tableQuota struct {
	ops, bytes *bucket // nil: unlimited
}

// bucket is a token bucket refilled at rate per second up to one second's
// worth.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, now time.Time) *bucket {
	return &bucket{rate: rate, tokens: burst(rate), last: now}
}

func burst(rate float64) float64 { return max(rate, 1) }

func (b *bucket) refill(now time.Time) {
	if d := now.Sub(b.last).Seconds(); d > 0 {
		b.tokens = min(b.tokens+d*b.rate, burst(b.rate))
		b.last = now
	}
}

// available reports whether the bucket is not in debt. Taking may then
// overdraw it: a large value is let through once, and the debt holds back
// what follows.
func (b *bucket) available(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	return b.tokens > 0
}

func (b *bucket) charge(n float64, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	b.tokens -= n
}

func newQuotas() *quotas { return &quotas{now: time.Now, tables: make(map[string]*tableQuota)} }

// update sets every table's limits from the topology: quota × the share of
// partitions self masters. Buckets of unchanged limits keep their state.
func (q *quotas) update(topo *zppb.Topology, self string) {
	now := q.now()
	next := make(map[string]*tableQuota)
	q.mu.RLock()
	for _, t := range topo.GetTables() {
		quota := t.GetQuota()
		if quota.GetOpsPerSec() == 0 && quota.GetBytesPerSec() == 0 || len(t.Partitions) == 0 {
			continue
		}
		mastered := 0
		for _, p := range t.Partitions {
			if p.Master == self {
				mastered++
			}
		}
		share := float64(mastered) / float64(len(t.Partitions))
		old := q.tables[t.Name]
		tq := &tableQuota{}
		if r := float64(quota.GetOpsPerSec()); r > 0 {
			tq.ops = keepOrNew(old, func(o *tableQuota) *bucket { return o.ops }, r*share, now)
		}
		if r := float64(quota.GetBytesPerSec()); r > 0 {
			tq.bytes = keepOrNew(old, func(o *tableQuota) *bucket { return o.bytes }, r*share, now)
		}
		next[t.Name] = tq
	}
	q.mu.RUnlock()
	q.mu.Lock()
	q.tables = next
	q.mu.Unlock()
}

func keepOrNew(old *tableQuota, get func(*tableQuota) *bucket, rate float64, now time.Time) *bucket {
	if old != nil {
		if b := get(old); b != nil {
			b.mu.Lock()
			same := b.rate == rate
			b.mu.Unlock()
			if same {
				return b
			}
		}
	}
	return newBucket(rate, now)
}

// admit takes one operation of n bytes from table's quota, reporting
// whether it fits.
func (q *quotas) admit(table string, n int) bool {
	q.mu.RLock()
	tq := q.tables[table]
	q.mu.RUnlock()
	if tq == nil {
		return true
	}
	now := q.now()
	// Check both before taking from either, so a refusal costs nothing.
	if tq.ops != nil && !tq.ops.available(now) || tq.bytes != nil && !tq.bytes.available(now) {
		return false
	}
	if tq.ops != nil {
		tq.ops.charge(1, now)
	}
	if tq.bytes != nil {
		tq.bytes.charge(float64(n), now)
	}
	return true
}

// charge counts n more bytes (a value read or written) against table.
func (q *quotas) charge(table string, n int) {
	q.mu.RLock()
	tq := q.tables[table]
	q.mu.RUnlock()
	if tq != nil && tq.bytes != nil && n > 0 {
		tq.bytes.charge(float64(n), q.now())
	}
}
