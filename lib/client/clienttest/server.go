package clienttest

import (
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Hook scripts a fake server: it sees every request first and returns the
// response to send, or nil for the default behaviour.
type Hook func(req *zppb.Request) *zppb.Response

// Serve starts an rpc.Server for h on 127.0.0.1:0, stopped at the end of
// the test, and returns its address: a real peer over TCP for tests whose
// handler is the code under test (a replica's side of replication, say).
func Serve(tb testing.TB, h rpc.Handler) string {
	tb.Helper()
	_, addr := serve(tb, h, func(net.Conn) {})
	return addr
}

// serve starts an rpc.Server for h on 127.0.0.1:0, stopped at the end of
// the test. track is told of every accepted connection.
func serve(tb testing.TB, h rpc.Handler, track func(net.Conn)) (*rpc.Server, string) {
	tb.Helper()
	srv, err := rpc.NewServer(rpc.ServerConfig{Handler: h, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Serve(&trackingListener{Listener: ln, track: track})
	tb.Cleanup(func() { srv.Close() })
	return srv, ln.Addr().String()
}

type trackingListener struct {
	net.Listener
	track func(net.Conn)
}

func (l *trackingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err == nil {
		l.track(nc)
	}
	return nc, err
}

// scripted is what Meta and Node share: the hook, call counts and the
// accepted connections.
type scripted struct {
	mu    sync.Mutex
	hook  Hook
	calls map[string]int
	conns map[net.Conn]struct{}
}

// CloseConns closes every connection the server has accepted, without an
// answer to the requests on them. A hook that calls it and then returns a
// response makes the client see the connection fail after its request was
// received (and, if the hook applied it, executed).
func (s *scripted) CloseConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for nc := range s.conns {
		nc.Close()
		delete(s.conns, nc)
	}
}

func (s *scripted) track(nc net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[nc] = struct{}{}
}

// SetHook installs h (nil removes it).
func (s *scripted) SetHook(h Hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
}

// Calls returns how many requests of a command ("get", "pull" ...) the
// server received, hooked or not.
func (s *scripted) Calls(cmd string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[cmd]
}

// before counts req and runs the hook.
func (s *scripted) before(req *zppb.Request) *zppb.Response {
	s.mu.Lock()
	s.calls[cmdName(req)]++
	h := s.hook
	s.mu.Unlock()
	if h != nil {
		return h(req)
	}
	return nil
}

func newScripted() scripted {
	return scripted{calls: map[string]int{}, conns: map[net.Conn]struct{}{}}
}
