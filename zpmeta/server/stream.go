package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// raftStream is the raft.StreamLayer over the shared port: it accepts the
// connections the mux sorted to Raft and dials others with raftMagic first.
type raftStream struct {
	*muxListener
	tls func() *tls.Config // nil config: plain TCP
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
