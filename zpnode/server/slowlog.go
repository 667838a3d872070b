package server

import (
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// slowKeyBytes is how much of a key the slow log keeps.
const slowKeyBytes = 64

// slowlog keeps the last requests that took at least the threshold, like
// Redis's SLOWLOG; INFO slowlog reads them.
type slowlog struct {
	mu      sync.Mutex
	entries []*zppb.SlowlogEntry // ring
	next    int
	full    bool
}

func newSlowlog(size int) *slowlog {
	return &slowlog{entries: make([]*zppb.SlowlogEntry, max(size, 1))}
}

func (l *slowlog) add(e *zppb.SlowlogEntry) {
	if len(e.Key) > slowKeyBytes {
		e.Key = e.Key[:slowKeyBytes]
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries[l.next] = e
	l.next = (l.next + 1) % len(l.entries)
	l.full = l.full || l.next == 0
}

// list returns the entries, newest first, of table (all when empty).
func (l *slowlog) list(table string) []*zppb.SlowlogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.next
	if l.full {
		n = len(l.entries)
	}
	var out []*zppb.SlowlogEntry
	for i := 1; i <= n; i++ {
		e := l.entries[(l.next-i+len(l.entries))%len(l.entries)]
		if table == "" || e.Table == table {
			out = append(out, e)
		}
	}
	return out
}

// observe records a request in the metrics and, when slow, the slow log.
func (s *Server) observe(req *zppb.Request, table string, code zppb.Code, d time.Duration) {
	cmd := commandName(req)
	s.metrics.observe(table, cmd, code, d)
	// Long polls, and a restore's whole copy, are slow by design.
	if d < s.cfg.SlowlogThreshold || cmd == "binlog_pull" || cmd == "fullsync_fetch" || cmd == "restore_partition" {
		return
	}
	s.metrics.slow.Inc()
	key := requestKey(req)
	s.slow.add(&zppb.SlowlogEntry{
		TimeMs:     time.Now().Add(-d).UnixMilli(),
		Command:    cmd,
		Table:      table,
		Key:        append([]byte(nil), key...),
		DurationUs: d.Microseconds(),
		Code:       code.String(),
	})
}
