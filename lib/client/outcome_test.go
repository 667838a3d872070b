package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client/clienttest"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// hungListener accepts connections and never answers, like a SIGSTOPped
// process (whose kernel still completes handshakes) or a half-open link.
type hungListener struct {
	ln net.Listener

	mu    sync.Mutex
	conns []net.Conn
}

func newHungListener(t *testing.T) *hungListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hungListener{ln: ln}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, nc)
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, nc := range h.conns {
			nc.Close()
		}
	})
	return h
}

func (h *hungListener) addr() string { return h.ln.Addr().String() }

func (h *hungListener) accepted() []net.Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]net.Conn(nil), h.conns...)
}

// refusedAddr returns an address where nothing listens.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestFailedCallOutcome checks what a failed call says about its outcome:
// a write sent to a node that never answered may have been applied; one
// that never left (refused dial) or that the node refused before logging
// it (MOVE, TABLE_NOT_FOUND) was not; reads never report an unknown
// outcome. Calls that end by the deadline match DeadlineExceeded either
// way, and the cause stays matchable.
func TestFailedCallOutcome(t *testing.T) {
	answer := func(code zppb.Code) func(n *clienttest.Node) clienttest.Hook {
		return func(n *clienttest.Node) clienttest.Hook {
			return func(req *zppb.Request) *zppb.Response {
				if req.GetInfo() != nil {
					return nil
				}
				// A MOVE naming the node itself is one the client cannot
				// follow: only meta can tell, and it names this node.
				return &zppb.Response{Code: code, Msg: "scripted", Master: n.Addr}
			}
		}
	}
	tests := []struct {
		name string
		// master returns the address meta names as the partition's
		// master; hook, when set, scripts cl.Nodes[0].
		master   func(t *testing.T, cl *clienttest.Cluster) string
		hook     func(n *clienttest.Node) clienttest.Hook
		unknown  bool  // the write's error matches ErrUnknownOutcome
		deadline bool  // both errors match DeadlineExceeded
		cause    error // both errors match it
	}{
		{
			name:     "accepts and never answers",
			master:   func(t *testing.T, _ *clienttest.Cluster) string { return newHungListener(t).addr() },
			unknown:  true,
			deadline: true,
			cause:    rpc.ErrTransport,
		},
		{
			name:     "connection refused",
			master:   func(t *testing.T, _ *clienttest.Cluster) string { return refusedAddr(t) },
			deadline: true,
			cause:    rpc.ErrNotSent,
		},
		{
			name:     "MOVE",
			hook:     answer(zppb.Code_MOVE),
			deadline: true,
			cause:    status.ErrMove,
		},
		{
			name:     "TABLE_NOT_FOUND",
			hook:     answer(zppb.Code_TABLE_NOT_FOUND),
			deadline: true,
			cause:    status.ErrTableNotFound,
		},
		{
			// A node answers WAIT also to a write it logged before it
			// lost the partition (zpnode writeError), so WAIT does not
			// prove the write was not applied.
			name:     "WAIT",
			hook:     answer(zppb.Code_WAIT),
			unknown:  true,
			deadline: true,
			cause:    status.ErrWait,
		},
		{
			// Logged by the master, not acknowledged by enough slaves
			// within the attempt: asked again (the id makes the retry
			// wait for the same record) until the call's deadline.
			name:     "NOT_ENOUGH_REPLICAS",
			hook:     answer(zppb.Code_NOT_ENOUGH_REPLICAS),
			unknown:  true,
			deadline: true,
			cause:    status.ErrNotEnoughReplicas,
		},
		{
			name:  "NOT_INTEGER",
			hook:  answer(zppb.Code_NOT_INTEGER),
			cause: status.ErrNotInteger,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := clienttest.NewCluster(t, 1, 1)
			cl.AddTable("t", 1)
			if tt.master != nil {
				cl.SetMaster("t", 0, tt.master(t, cl))
			}
			if tt.hook != nil {
				cl.Nodes[0].SetHook(tt.hook(cl.Nodes[0]))
			}
			// One attempt, then a pause past the deadline: a deadline that
			// cut an attempt in flight would rightly make the outcome
			// unknown, whatever the node would have answered.
			c := newTestClient(t, cl, func(o *Options) { o.RetryBackoff, o.MaxRetryBackoff = 2*time.Second, 2*time.Second })
			check := func(what string, err error, unknown bool) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s succeeded", what)
				}
				if got := errors.Is(err, ErrUnknownOutcome); got != unknown {
					t.Errorf("%s: errors.Is(ErrUnknownOutcome) = %v, want %v: %v", what, got, unknown, err)
				}
				if got := errors.Is(err, context.DeadlineExceeded); got != tt.deadline {
					t.Errorf("%s: errors.Is(DeadlineExceeded) = %v, want %v: %v", what, got, tt.deadline, err)
				}
				if !errors.Is(err, tt.cause) {
					t.Errorf("%s: %v does not match %v", what, err, tt.cause)
				}
			}
			const deadline = 300 * time.Millisecond
			ctx, cancel := context.WithTimeout(testCtx(t), deadline)
			defer cancel()
			_, err := c.IncrBy(ctx, "t", []byte("k"), 1)
			check("IncrBy", err, tt.unknown)

			ctx, cancel = context.WithTimeout(testCtx(t), deadline)
			defer cancel()
			_, err = c.Get(ctx, "t", []byte("k"))
			if tt.cause == status.ErrNotInteger || tt.cause == status.ErrNotEnoughReplicas {
				return // scripted write answers; a read would not get them
			}
			check("Get", err, false)

			ctx, cancel = context.WithTimeout(testCtx(t), deadline)
			defer cancel()
			err = c.MSet(ctx, "t", []KV{{Key: []byte("a"), Value: []byte("1")}}, 0)
			check("MSet", err, tt.unknown)
		})
	}
}

// TestUnknownOutcomeKeepsFirstAmbiguousFailure: a write that timed out
// against a hung master and then found the master refusing connections is
// still of unknown outcome, and its error names both failures.
func TestUnknownOutcomeKeepsFirstAmbiguousFailure(t *testing.T) {
	f := &failures{write: true}
	sent := fmt.Errorf("node a: %w: read: connection reset", rpc.ErrTransport)
	refused := fmt.Errorf("node a: %w: %w: dial: connection refused", rpc.ErrNotSent, rpc.ErrTransport)
	f.add(sent)
	f.add(refused)
	f.add(status.New(zppb.Code_MOVE, "moved"))
	err := f.ended("set", context.DeadlineExceeded)
	for _, want := range []error{ErrUnknownOutcome, context.DeadlineExceeded, status.ErrMove, rpc.ErrTransport} {
		if !errors.Is(err, want) {
			t.Errorf("%v does not match %v", err, want)
		}
	}
	if !strings.Contains(err.Error(), "first ambiguous failure") || !strings.Contains(err.Error(), "moved") {
		t.Errorf("error %q names neither the first ambiguous failure nor the last", err)
	}

	read := &failures{}
	read.add(sent)
	if err := read.ended("get", context.DeadlineExceeded); errors.Is(err, ErrUnknownOutcome) {
		t.Errorf("read: %v matches ErrUnknownOutcome", err)
	}
	definite := &failures{write: true}
	definite.add(refused)
	definite.add(status.New(zppb.Code_TABLE_NOT_FOUND, "gone"))
	if err := definite.ended("set", context.DeadlineExceeded); errors.Is(err, ErrUnknownOutcome) {
		t.Errorf("write that never reached a node: %v matches ErrUnknownOutcome", err)
	}
}

// TestHungMasterNextCallReachesNewMaster: a master that accepts
// connections but never answers makes calls end by their deadline, which
// no answer corrects. The next call after the first timeout must reach the
// master meta names by then, and the connection to the hung master must
// not be used again.
func TestHungMasterNextCallReachesNewMaster(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 1)
	cl.AddTable("t", 1)
	hung := newHungListener(t)
	cl.SetMaster("t", 0, hung.addr())
	c := newTestClient(t, cl)

	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	if err := c.Set(ctx, "t", []byte("k"), []byte("v1"), 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Set to the hung master = %v, want DeadlineExceeded", err)
	}
	// Meta fails the hung master over after the call.
	node := cl.Nodes[0]
	cl.SetMaster("t", 0, node.Addr)

	ctx, cancel = context.WithTimeout(testCtx(t), 2*time.Second)
	defer cancel()
	if err := c.Set(ctx, "t", []byte("k"), []byte("v2"), 0); err != nil {
		t.Fatalf("next Set: %v", err)
	}
	if v, ok := node.Value("t", []byte("k")); !ok || string(v) != "v2" {
		t.Fatalf("new master has %q, %v; want v2", v, ok)
	}

	// The connection the timed-out call used was closed by the client.
	conns := hung.accepted()
	if len(conns) == 0 {
		t.Fatal("the hung master never saw a connection")
	}
	for _, nc := range conns {
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64<<10)
		for {
			_, err := nc.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("connection to the hung master still open after the timeout: %v", err)
			}
		}
	}
}

// TestStaleRouteClearedByAnswer: after a transport failure the route is
// stale until the master answers; a PULL naming the same master keeps the
// mark (meta may not have failed the master over yet).
func TestStaleRouteClearedByAnswer(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 1)
	tb := cl.AddTable("t", 1)
	c := newTestClient(t, cl)
	master := tb.Partitions[0].Master
	stale := func() bool {
		tr, _ := c.topo.table("t")
		return tr.parts[0].stale
	}
	c.routeFailed("t", 0, master, errors.New("scripted"))
	if !stale() {
		t.Fatal("route not stale after a failure")
	}
	if _, err := c.Pull(testCtx(t), ""); err != nil {
		t.Fatal(err)
	}
	if !stale() {
		t.Fatal("a PULL naming the same master cleared the mark")
	}
	if err := c.Set(testCtx(t), "t", []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if stale() {
		t.Fatal("route still stale after the master answered")
	}
}
