package secret

import (
	"net"
	"sync"
	"time"
)

// Failure-limiter bounds: a client may present this many wrong secrets in
// a burst, then one per failureRefill; the clients remembered are
// bounded, so that a flood of addresses cannot grow the map.
const (
	failureBurst   = 5
	failureRefill  = 2 * time.Second
	maxFailedAddrs = 4096
)

// FailureLimiter slows down guessing: each wrong secret a client IP
// presents spends one of its attempts, which come back one per two
// seconds up to five; a client without attempts left is refused before
// its secret is even looked at. Safe for concurrent use.
type FailureLimiter struct {
	now func() time.Time // tests stop the clock

	mu   sync.Mutex
	left map[string]failureState
}

type failureState struct {
	attempts float64
	at       time.Time
}

// NewFailureLimiter returns a FailureLimiter.
func NewFailureLimiter() *FailureLimiter {
	return &FailureLimiter{now: time.Now, left: make(map[string]failureState)}
}

// Allow reports whether the client at addr (host:port or host) may
// present a secret now.
func (l *FailureLimiter) Allow(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.left[hostOf(addr)]
	return !ok || l.refilled(st) >= 1
}

// Failed spends one attempt of the client at addr.
func (l *FailureLimiter) Failed(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	host := hostOf(addr)
	st, ok := l.left[host]
	if !ok {
		if len(l.left) >= maxFailedAddrs {
			l.prune()
		}
		st = failureState{attempts: failureBurst, at: l.now()}
	}
	l.left[host] = failureState{attempts: max(l.refilled(st)-1, 0), at: l.now()}
}

func (l *FailureLimiter) refilled(st failureState) float64 {
	return min(st.attempts+l.now().Sub(st.at).Seconds()/failureRefill.Seconds(), failureBurst)
}

// prune forgets the clients whose attempts are all back, and if none is,
// any one: a client forgotten early only gets its burst again.
func (l *FailureLimiter) prune() {
	for h, st := range l.left {
		if l.refilled(st) >= failureBurst {
			delete(l.left, h)
		}
	}
	for h := range l.left {
		if len(l.left) < maxFailedAddrs {
			break
		}
		delete(l.left, h)
	}
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
