package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// raftStream is the raft.StreamLayer over the shared port: it accepts the
// connections the mux sorted to Raft and dials others with raftMagic first.
type raftStream struct {
	*muxListener
	tls func() *tls.Config // nil config: plain TCP

	// The connections Accept handed to Raft's transport, whose handlers
	// may still be applying an RPC (a heartbeat saves the term in the
	// store) after Raft and its transport are shut down: the store may
	// only close once they are gone (drain).
	mu       sync.Mutex
	drained  bool
	accepted map[*acceptedConn]struct{}
	handlers sync.WaitGroup
}

// acceptedConn is a connection handed to the transport; its handler
// closes it when it returns.
type acceptedConn struct {
	net.Conn
	s    *raftStream
	once sync.Once
}

// Close is the handler's: it is done with the connection.
func (c *acceptedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.accepted, c)
		c.s.mu.Unlock()
		c.s.handlers.Done()
	})
	return err
}

// Accept hands the next Raft connection to the transport, tracked.
func (s *raftStream) Accept() (net.Conn, error) {
	nc, err := s.muxListener.Accept()
	if err != nil {
		return nil, err
	}
	c := &acceptedConn{Conn: nc, s: s}
	s.mu.Lock()
	if s.drained {
		s.mu.Unlock()
		nc.Close()
		return nil, net.ErrClosed
	}
	if s.accepted == nil {
		s.accepted = make(map[*acceptedConn]struct{})
	}
	s.accepted[c] = struct{}{}
	s.handlers.Add(1)
	s.mu.Unlock()
	return c, nil
}

// drain closes the connections the transport's handlers still read (the
// transport leaves them to their peers) and waits up to timeout for the
// handlers to return. It runs after the transport is closed.
func (s *raftStream) drain(timeout time.Duration) bool {
	s.mu.Lock()
	s.drained = true
	for c := range s.accepted {
		c.Conn.Close() // the handler's read fails; its Close is counted
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

var _ raft.StreamLayer = (*raftStream)(nil)

// Dial connects to a member's shared port as Raft.
func (s *raftStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	var (
		nc  net.Conn
		err error
	)
	var cfg *tls.Config
	if s.tls != nil {
		cfg = s.tls()
	}
	if cfg != nil {
		nc, err = tls.DialWithDialer(d, "tcp", string(addr), cfg)
	} else {
		nc, err = d.Dial("tcp", string(addr))
	}
	if err != nil {
		return nil, err
	}
	nc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := nc.Write([]byte{raftMagic}); err != nil {
		nc.Close()
		return nil, fmt.Errorf("raft: write stream header to %s: %w", addr, err)
	}
	nc.SetWriteDeadline(time.Time{})
	return nc, nil
}
