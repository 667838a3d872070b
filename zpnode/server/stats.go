package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// qpsWindow is how many one-second samples the QPS figure averages.
const qpsWindow = 5

// tableStats counts one table's requests on this node.
type tableStats struct {
	reads, writes, errors atomic.Uint64
	quotaExceeded         atomic.Uint64

	mu      sync.Mutex
	samples [qpsWindow + 1]uint64 // ring of total ops, one per second
	next    int
	filled  int
}

func (t *tableStats) ops() uint64 { return t.reads.Load() + t.writes.Load() }

func (t *tableStats) sample() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.samples[t.next] = t.ops()
	t.next = (t.next + 1) % len(t.samples)
	t.filled = min(t.filled+1, len(t.samples))
}

func (t *tableStats) qps() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.filled < 2 {
		return 0
	}
	newest := t.samples[(t.next+len(t.samples)-1)%len(t.samples)]
	oldest := t.samples[(t.next+len(t.samples)-t.filled)%len(t.samples)]
	return float64(newest-oldest) / float64(t.filled-1)
}

type statsRegistry struct {
	mu     sync.RWMutex
	tables map[string]*tableStats
}

func newStatsRegistry() *statsRegistry {
	return &statsRegistry{tables: make(map[string]*tableStats)}
}

func (r *statsRegistry) table(name string) *tableStats {
	r.mu.RLock()
	t := r.tables[name]
	r.mu.RUnlock()
	if t != nil {
		return t
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if t = r.tables[name]; t == nil {
		t = &tableStats{}
		r.tables[name] = t
	}
	return t
}

// record counts one request of table; only known tables are counted so that
// requests naming garbage cannot grow the registry.
func (r *statsRegistry) record(name string, write bool, err error) {
	t := r.table(name)
	if write {
		t.writes.Add(1)
	} else {
		t.reads.Add(1)
	}
	if err != nil {
		t.errors.Add(1)
	}
}

// run samples every table once a second until ctx ends.
func (r *statsRegistry) run(ctx context.Context) func() {
	return func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			r.mu.RLock()
			for _, ts := range r.tables {
				ts.sample()
			}
			r.mu.RUnlock()
		}
	}
}

func (r *statsRegistry) snapshot(only string) []*zppb.TableStats {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*zppb.TableStats
	for name, t := range r.tables {
		if only != "" && name != only {
			continue
		}
		out = append(out, &zppb.TableStats{
			Table:  name,
			Ops:    t.ops(),
			Reads:  t.reads.Load(),
			Writes: t.writes.Load(),
			Qps:    t.qps(),
			Errors: t.errors.Load(),

			QuotaExceeded: t.quotaExceeded.Load(),
		})
	}
	return out
}
