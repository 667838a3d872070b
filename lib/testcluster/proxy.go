package testcluster

import (
	"net"
	"sync"
)

// ProxyMode is what a Proxy does with traffic.
type ProxyMode int

// Proxy modes.
const (
	// Pass forwards traffic both ways.
	Pass ProxyMode = iota
	// Blackhole is a network partition: new connections are accepted but go
	// nowhere, and open ones stop moving bytes (held, not lost) until the
	// proxy passes again. Peers see timeouts, as on a real partition.
	Blackhole
	// Reject closes every connection, open or new: peers see resets.
	Reject
)

func (m ProxyMode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Blackhole:
		return "blackhole"
	case Reject:
		return "reject"
	}
	return "unknown"
}

// Proxy is a TCP proxy on 127.0.0.1 that tests switch between passing,
// blackholing and rejecting traffic to a target.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	mode   ProxyMode
	change chan struct{} // closed and replaced when mode changes
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewProxy listens on listen (e.g. "127.0.0.1:0") and forwards to target.
func NewProxy(listen, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, change: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to: for a node's inbound proxy,
// where the node really listens, which reaches it around the proxy.
func (p *Proxy) Target() string { return p.target }

// Mode returns the current mode.
func (p *Proxy) Mode() ProxyMode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// SetMode switches the proxy; Reject closes open connections at once.
func (p *Proxy) SetMode(m ProxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == m {
		return
	}
	p.mode = m
	close(p.change)
	p.change = make(chan struct{})
	if m == Reject {
		for c := range p.conns {
			c.Close()
		}
	}
}

// gate blocks while the proxy blackholes and reports whether traffic may
// flow (false once rejecting or closed).
func (p *Proxy) gate() bool {
	for {
		p.mu.Lock()
		mode, change, closed := p.mode, p.change, p.closed
		p.mu.Unlock()
		switch {
		case closed || mode == Reject:
			return false
		case mode == Pass:
			return true
		}
		<-change
	}
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.mode == Reject {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(in) {
			continue
		}
		p.wg.Add(1)
		go p.serve(in)
	}
}

func (p *Proxy) serve(in net.Conn) {
	defer p.wg.Done()
	defer p.untrack(in)
	// A connection made during a partition waits for it to heal before it
	// reaches the target, like a SYN retransmitted until it gets through.
	if !p.gate() {
		return
	}
	out, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(out) {
		return
	}
	defer p.untrack(out)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(out, in) }()
	go func() { defer wg.Done(); p.pipe(in, out) }()
	wg.Wait()
}

// pipe copies src to dst, holding each chunk while the proxy blackholes.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Close stops the proxy and closes every connection through it.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.change)
	p.change = make(chan struct{})
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}
