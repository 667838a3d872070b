package server

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// raftMagic opens every Raft connection. A protocol connection opens with a
// big-endian frame length, and a length of 0x52000000 or more is over the
// 64 MiB frame limit, so no valid protocol connection starts with it.
const raftMagic byte = 'R'

// peekTimeout bounds how long an accepted connection may stay silent before
// it is known which side it belongs to.
const peekTimeout = 10 * time.Second

// portMux shares one listener between the protocol and Raft by the first
// byte of each connection.
type portMux struct {
	ln     net.Listener
	logger *slog.Logger
	rpc    *muxListener
	raft   *muxListener

	mu      sync.Mutex
	pending map[net.Conn]struct{} // accepted, first byte not yet read
	closed  bool
	wg      sync.WaitGroup
}

func newPortMux(ln net.Listener, advertise net.Addr, logger *slog.Logger) *portMux {
	return &portMux{
		ln:      ln,
		logger:  logger,
		rpc:     newMuxListener(advertise),
		raft:    newMuxListener(advertise),
		pending: make(map[net.Conn]struct{}),
	}
}

// serve accepts until the listener is closed. Sorting happens in a goroutine
// per connection so that a silent client cannot hold up the others.
func (m *portMux) serve() {
	var backoff time.Duration
	for {
		nc, err := m.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				m.logger.Warn("accept failed; retrying", "err", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			m.logger.Error("accept failed; listener stopped", "err", err)
			return
		}
		backoff = 0
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			nc.Close()
			return
		}
		m.pending[nc] = struct{}{}
		m.wg.Add(1)
		m.mu.Unlock()
		go m.sort(nc)
	}
}

func (m *portMux) sort(nc net.Conn) {
	defer m.wg.Done()
	var first [1]byte
	nc.SetReadDeadline(time.Now().Add(peekTimeout))
	_, err := io.ReadFull(nc, first[:])
	nc.SetReadDeadline(time.Time{})

	m.mu.Lock()
	_, tracked := m.pending[nc]
	delete(m.pending, nc)
	m.mu.Unlock()
	if err != nil || !tracked {
		nc.Close()
		return
	}
	if first[0] == raftMagic {
		m.raft.deliver(nc)
		return
	}
	m.rpc.deliver(&prefixConn{Conn: nc, prefix: first[:]})
}

// Close stops accepting and closes the virtual listeners and the connections
// not yet handed over; handed-over ones belong to their servers.
func (m *portMux) Close() error {
	m.mu.Lock()
	m.closed = true
	err := m.ln.Close()
	for nc := range m.pending {
		nc.Close()
	}
	clear(m.pending)
	m.mu.Unlock()
	m.rpc.Close()
	m.raft.Close()
	m.wg.Wait()
	return err
}

// muxListener is a net.Listener fed by portMux.
type muxListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newMuxListener(addr net.Addr) *muxListener {
	return &muxListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *muxListener) deliver(nc net.Conn) {
	select {
	case l.conns <- nc:
	case <-l.done:
		nc.Close()
	}
}

// Accept returns the next connection sorted to this listener.
func (l *muxListener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.conns:
		return nc, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close makes Accept fail; it does not close the shared listener.
func (l *muxListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is the advertised address.
func (l *muxListener) Addr() net.Addr { return l.addr }

// prefixConn gives back the bytes the mux read before the rest of the stream.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// advertiseAddr is a net.Addr for an address string that may be a host name.
type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }
