package server

import (
	"log/slog"
	"sync"
	"time"
)

// masterLease fences a master that lost touch with meta: it serves reads
// and writes only until its lease, counted from when it sent its last
// successful PING, runs out. The meta leader marks a node DOWN — and fails
// its partitions over — only after a down-timeout without PINGs, which is
// longer than the lease, so an isolated master has stopped before a new one
// starts.
//
// One exception keeps data flowing when the meta group is gone: when every
// meta server refuses connections (no meta process listens, so no leader
// can fail anything over) a master that was confirmed by meta before keeps
// serving. A network that answers every meta address with a reset would
// look the same; that is the trade-off, documented in docs/failover.md.
type masterLease struct {
	logger *slog.Logger

	mu        sync.Mutex
	until     time.Time // the lease runs out then
	confirmed bool      // a PING succeeded in this process's life
	outage    bool      // every meta server refused the last round
}

// renewed records a successful PING sent at sent. current says the node
// runs the epoch the answer named: a PING that revealed a newer topology
// renews nothing until the node has applied it.
func (l *masterLease) renewed(sent time.Time, lease time.Duration, current bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.outage {
		l.logger.Info("meta servers reachable again")
	}
	l.outage = false
	if !current || lease <= 0 {
		return
	}
	if until := sent.Add(lease); until.After(l.until) {
		l.until = until
	}
	l.confirmed = true
}

// unreachable records a round in which no meta server answered;
// allRefused says each one refused the connection.
func (l *masterLease) unreachable(allRefused bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	outage := allRefused && l.confirmed
	if outage && !l.outage {
		l.logger.Warn("every meta server refuses connections; masters keep serving without a lease until one is back")
	}
	l.outage = outage
}

// valid reports whether a master may serve now, and if not, since when it
// may not.
func (l *masterLease) valid(now time.Time) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Before(l.until) || l.outage, l.until
}
