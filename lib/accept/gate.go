package accept

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// Limits bound the connections a server holds at once; 0 means no bound.
type Limits struct {
	// MaxConns bounds the connections of the server, all listeners of
	// one Gate together.
	MaxConns int
	// MaxConnsPerAddr bounds the connections from one remote IP address,
	// so that one runaway client cannot take every slot.
	MaxConnsPerAddr int
}

// The reasons a Gate refuses a connection.
var (
	ErrTooManyConns         = errors.New("too many connections")
	ErrTooManyConnsFromAddr = errors.New("too many connections from this address")
)

// Gate counts a server's connections against its Limits. Its methods are
// safe for concurrent use; the zero Gate and a nil one admit everything.
type Gate struct {
	limits Limits

	mu     sync.Mutex
	total  int
	byAddr map[string]int

	refused atomic.Uint64
}

// NewGate returns a Gate enforcing l.
func NewGate(l Limits) *Gate {
	return &Gate{limits: l, byAddr: make(map[string]int)}
}

// Enter admits a connection from remote, or refuses it with
// ErrTooManyConns or ErrTooManyConnsFromAddr (wrapped with the limit). An
// admitted connection calls leave, once, when it closes.
func (g *Gate) Enter(remote net.Addr) (leave func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	ip := remoteIP(remote)
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.limits.MaxConns > 0 && g.total >= g.limits.MaxConns:
		g.refused.Add(1)
		return nil, fmt.Errorf("%w: %d held, the most allowed", ErrTooManyConns, g.limits.MaxConns)
	case g.limits.MaxConnsPerAddr > 0 && g.byAddr[ip] >= g.limits.MaxConnsPerAddr:
		g.refused.Add(1)
		return nil, fmt.Errorf("%w %s: %d held, the most allowed", ErrTooManyConnsFromAddr, ip, g.limits.MaxConnsPerAddr)
	}
	g.total++
	g.byAddr[ip]++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.total--
			if g.byAddr[ip]--; g.byAddr[ip] <= 0 {
				delete(g.byAddr, ip)
			}
		})
	}, nil
}

// Refused returns how many connections the Gate has refused.
func (g *Gate) Refused() uint64 {
	if g == nil {
		return 0
	}
	return g.refused.Load()
}

// Held returns the connections admitted and not yet left.
func (g *Gate) Held() int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

// remoteIP is the address's host: connections from one machine share a
// bound whatever their ports.
func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
