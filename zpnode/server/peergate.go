package server

import (
	"context"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// Probing a peer that refused a connection: first after peerProbeMin, then
// backing off to peerProbeMax.
const (
	peerProbeMin = 50 * time.Millisecond
	peerProbeMax = time.Second
)

// peerGate stands between a node's slave replicas and the master nodes
// they dial. Once a dial to a node fails, later dials to it wait while one
// prober alone tries it again, and all go ahead once the prober gets
// through. Without it, every slave replica of a restarting master node
// dialled it on a backoff of its own: with 10,000 replicas a node, 3,333
// slaves each of two other nodes tried a port that refused them up to once
// a second while that node opened its replicas, on the same CPUs
// (docs/benchmarks.md, Scale).
type peerGate struct {
	ctx  context.Context // ends the probers
	dial func(ctx context.Context, addr string) (replica.Conn, error)
	wg   sync.WaitGroup // the probers

	mu     sync.Mutex
	down   map[string]chan struct{} // closed when the node takes a connection again
	closed bool                     // wait began: no more probers
}

// newPeerGate returns a gate over dial whose probers run until ctx ends.
func newPeerGate(ctx context.Context, dial func(ctx context.Context, addr string) (replica.Conn, error)) *peerGate {
	return &peerGate{ctx: ctx, dial: dial, down: make(map[string]chan struct{})}
}

// wait waits for the probers to end, after the gate's context ended; no
// prober starts after it began (a dial that failed as the server closed
// would otherwise start one as Wait runs).
func (g *peerGate) wait() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}

// Dial dials addr, first waiting (until ctx ends) while a prober finds addr
// refusing connections.
func (g *peerGate) Dial(ctx context.Context, addr string) (replica.Conn, error) {
	g.mu.Lock()
	up := g.down[addr]
	g.mu.Unlock()
	if up != nil {
		select {
		case <-up:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c, err := g.dial(ctx, addr)
	if err != nil && ctx.Err() == nil {
		g.markDown(addr)
	}
	return c, err
}

// markDown starts a prober of addr unless one runs.
func (g *peerGate) markDown(addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.down[addr]; ok || g.closed || g.ctx.Err() != nil {
		return
	}
	up := make(chan struct{})
	g.down[addr] = up
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.probe(addr)
		g.mu.Lock()
		delete(g.down, addr)
		g.mu.Unlock()
		close(up)
	}()
}

// probe returns once addr takes a connection, or the gate's context ends
// (the waiters then end with their own contexts, which derive from it).
func (g *peerGate) probe(addr string) {
	wait := peerProbeMin
	for {
		t := time.NewTimer(wait)
		select {
		case <-g.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(g.ctx, peerProbeMax)
		c, err := g.dial(ctx, addr)
		cancel()
		if err == nil {
			c.Close()
			return
		}
		wait = min(2*wait, peerProbeMax)
	}
}
