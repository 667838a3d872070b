package rpc

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// DefaultAbandonGrace is the AbandonGrace of the servers' pools to a
// server that may be busy (a node's to the meta servers, a meta
// follower's to its leader): long enough for a loaded server to answer
// what it was sent, short enough that one that stopped answering is
// dialled again within a few ping intervals.
const DefaultAbandonGrace = 5 * time.Second

// PoolOptions configures a Pool.
type PoolOptions struct {
	// ConnsPerAddr is how many connections are kept to each address; calls
	// are spread over them and pipelined on each. Default 2.
	ConnsPerAddr int
	// DialTimeout bounds a dial when the call's context has no earlier
	// deadline. Default 3s.
	DialTimeout time.Duration
	// MaxFrameSize bounds frames both ways. Default DefaultMaxFrameSize.
	MaxFrameSize int
	// ClusterToken, when set, is carried by every request sent through
	// the pool (Conn.SetClusterToken).
	ClusterToken []byte
	// TLS, when set, returns the config each new connection dials with
	// (a function, so that a server's reloaded certificate and CA apply
	// to the connections it opens next); nil: plain TCP.
	TLS func() *tls.Config
	// AbandonGrace, when set, keeps a connection whose call was
	// abandoned while responses keep coming (Conn.SetAbandonGrace).
	AbandonGrace time.Duration
}

func (o *PoolOptions) setDefaults() {
	if o.ConnsPerAddr <= 0 {
		o.ConnsPerAddr = 2
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 3 * time.Second
	}
	if o.MaxFrameSize <= 0 {
		o.MaxFrameSize = DefaultMaxFrameSize
	}
}

// Pool keeps connections to many addresses, dialling lazily and replacing
// connections that failed.
type Pool struct {
	opts PoolOptions

	mu     sync.Mutex
	addrs  map[string]*addrConns
	closed bool
}

type addrConns struct {
	next  atomic.Uint32
	mu    sync.Mutex // serialises dials to this address
	conns []*Conn
}

// NewPool returns an empty pool.
func NewPool(opts PoolOptions) *Pool {
	opts.setDefaults()
	return &Pool{opts: opts, addrs: make(map[string]*addrConns)}
}

// Call sends req to addr over a pooled connection.
func (p *Pool) Call(ctx context.Context, addr string, req *zppb.Request) (*zppb.Response, error) {
	c, err := p.conn(ctx, addr)
	if err != nil {
		return nil, err
	}
	return c.Call(ctx, req)
}

func (p *Pool) conn(ctx context.Context, addr string) (*Conn, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", ErrNotSent, ErrClosed)
	}
	ac := p.addrs[addr]
	if ac == nil {
		ac = &addrConns{conns: make([]*Conn, p.opts.ConnsPerAddr)}
		p.addrs[addr] = ac
	}
	p.mu.Unlock()

	i := int(ac.next.Add(1)) % len(ac.conns)
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if c := ac.conns[i]; c != nil && !c.Closed() {
		return c, nil
	}
	dctx, cancel := context.WithTimeout(ctx, p.opts.DialTimeout)
	defer cancel()
	var cfg *tls.Config
	if p.opts.TLS != nil {
		cfg = p.opts.TLS()
	}
	c, err := DialTLS(dctx, addr, p.opts.MaxFrameSize, cfg)
	if err != nil {
		return nil, err
	}
	c.SetClusterToken(p.opts.ClusterToken)
	c.SetAbandonGrace(p.opts.AbandonGrace)
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		c.Close()
		return nil, fmt.Errorf("%w: %w", ErrNotSent, ErrClosed)
	}
	ac.conns[i] = c
	return c, nil
}

// Close closes every connection; later calls fail with ErrClosed.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	addrs := p.addrs
	p.addrs = nil
	p.mu.Unlock()
	for _, ac := range addrs {
		ac.mu.Lock()
		for _, c := range ac.conns {
			if c != nil {
				c.Close()
			}
		}
		ac.mu.Unlock()
	}
	return nil
}
