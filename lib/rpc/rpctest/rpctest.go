// Package rpctest serves a handler function over the real rpc protocol for
// tests: a peer on a 127.0.0.1 port whose answers are the code under test
// (a node's request handler, a replica's side of replication), reached
// over TCP exactly as in production. It is no fake of a server: the
// handler the test passes is all it runs. Whole meta and node servers are
// lib/inproc's.
package rpctest

import (
	"log/slog"
	"net"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
)

// Serve starts an rpc.Server for h on 127.0.0.1:0, closed when the test
// ends, and returns its address.
func Serve(tb testing.TB, h rpc.Handler) string {
	tb.Helper()
	srv, err := rpc.NewServer(rpc.ServerConfig{Handler: h, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
