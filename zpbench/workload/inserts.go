package workload

import (
	"sync"
	"sync/atomic"
)

// insertWindow bounds the inserts in flight; it is far above what any
// number of workers and pipeline depth keeps outstanding.
const insertWindow = 1 << 16

// Inserts numbers new records and tracks which exist. A record counts as
// existing once it and every record before it are acknowledged (YCSB's
// AcknowledgedCounterGenerator), so reads of "the latest" record never
// target one whose insert is still in flight, which would count a miss that
// is the benchmark's own doing.
type Inserts struct {
	next  atomic.Uint64
	limit atomic.Uint64

	mu    sync.Mutex
	acked [insertWindow]bool
}

// NewInserts returns a counter for a keyspace whose records [0, n) exist.
func NewInserts(n uint64) *Inserts {
	c := &Inserts{}
	c.next.Store(n)
	c.limit.Store(n)
	return c
}

// Limit returns the number of records known to exist: [0, Limit()).
func (c *Inserts) Limit() uint64 { return c.limit.Load() }

// Next returns the number of a new record to insert and whether one can be
// handed out now; it cannot when insertWindow inserts are unacknowledged.
func (c *Inserts) Next() (uint64, bool) {
	for {
		// limit first: it never passes next, so n-limit cannot underflow.
		limit := c.limit.Load()
		n := c.next.Load()
		if n-limit >= insertWindow {
			return 0, false
		}
		if c.next.CompareAndSwap(n, n+1) {
			return n, true
		}
	}
}

// Ack reports that the insert of record id finished. A failed insert is
// acknowledged too: reading it later counts as a miss, which is the truth.
func (c *Inserts) Ack(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	limit := c.limit.Load()
	if id < limit {
		return
	}
	c.acked[id%insertWindow] = true
	for c.acked[limit%insertWindow] {
		c.acked[limit%insertWindow] = false
		limit++
	}
	c.limit.Store(limit)
}
