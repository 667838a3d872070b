package server

import (
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// liveness is the leader's memory of the nodes' heartbeats: when each last
// pinged and the replica positions it reported. It is not replicated: a new
// leader starts empty and rebuilds it from the PINGs it receives, giving every
// node a full down-timeout from the moment it took over before counting it
// missing.
type liveness struct {
	mu sync.Mutex
	// since is when this member became leader; zero while it is not.
	since     time.Time
	seen      map[string]time.Time
	positions map[string][]*zppb.ReplicaPosition
	// downAt is when this leader marked a node DOWN; nodes already DOWN
	// when it took over count from since.
	downAt map[string]time.Time
}

func newLiveness() *liveness {
	return &liveness{
		seen:      make(map[string]time.Time),
		positions: make(map[string][]*zppb.ReplicaPosition),
		downAt:    make(map[string]time.Time),
	}
}

// reset forgets every heartbeat; since is the start of the grace period.
func (l *liveness) reset(since time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.since = since
	clear(l.seen)
	clear(l.positions)
	clear(l.downAt)
}

// markedDown records that addr was marked DOWN at.
func (l *liveness) markedDown(addr string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.downAt[addr] = at
}

// downSince is when addr went DOWN as far as this leader knows.
func (l *liveness) downSince(addr string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.downAt[addr]; ok {
		return t
	}
	return l.since
}

// position returns what addr last reported about its replica of
// (table, partition) and when, if it reported one.
func (l *liveness) position(addr, table string, partition uint32) (*zppb.ReplicaPosition, time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.positions[addr] {
		if p.GetTable() == table && p.GetPartition() == partition {
			return p, l.seen[addr], true
		}
	}
	return nil, time.Time{}, false
}

// heartbeat records a PING. positions is kept as is: the caller hands it
// over.
func (l *liveness) heartbeat(addr string, at time.Time, positions []*zppb.ReplicaPosition) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen[addr] = at
	l.positions[addr] = positions
}

// lastHeartbeat returns the time of addr's last PING to this leader, zero if
// none.
func (l *liveness) lastHeartbeat(addr string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[addr]
}

// expired reports whether addr has gone timeout without a PING, counting from
// the later of its last PING and the start of the grace period. Before reset
// nothing expires.
func (l *liveness) expired(addr string, now time.Time, timeout time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.since.IsZero() {
		return false
	}
	last := l.since
	if t := l.seen[addr]; t.After(last) {
		last = t
	}
	return now.Sub(last) >= timeout
}

// replicaPositions returns what addr last reported, for failover to choose
// the most up-to-date slave. The slice must not be modified.
func (l *liveness) replicaPositions(addr string) []*zppb.ReplicaPosition {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.positions[addr]
}
