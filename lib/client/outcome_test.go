package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestFailedCallOutcome checks what a failed call says about its outcome:
// a write sent to a node that never answered may have been applied; one
// that never left (refused dial) or that the node refused before logging
// it (MOVE, TABLE_NOT_FOUND) was not; reads never report an unknown
// outcome. Calls that end by the deadline match DeadlineExceeded either
// way, and the cause stays matchable.
func TestFailedCallOutcome(t *testing.T) {
	// The hooks script the answers of the table's master to the test's
	// commands.
	answer := func(code zppb.Code) func(n *inproc.Tap) inproc.Hook {
		return func(n *inproc.Tap) inproc.Hook {
			return func(req *zppb.Request) *zppb.Response {
				if !dataCmd(req) {
					return nil
				}
				// A MOVE naming the node itself is one the client cannot
				// follow: only meta can tell, and it names this node.
				return &zppb.Response{Code: code, Msg: "scripted", Master: n.Addr()}
			}
		}
	}
	tests := []struct {
		name string
		// hook, when set, scripts the master's tap; down takes the tap
		// down, so that the master's address refuses connections while
		// meta still names it.
		hook     func(n *inproc.Tap) inproc.Hook
		down     bool
		unknown  bool  // the write's error matches ErrUnknownOutcome
		deadline bool  // both errors match DeadlineExceeded
		cause    error // both errors match it
	}{
		{
			name:     "accepts and never answers",
			hook:     func(*inproc.Tap) inproc.Hook { return hang },
			unknown:  true,
			deadline: true,
			cause:    rpc.ErrTransport,
		},
		{
			name:     "connection refused",
			down:     true,
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
	cl := sharedCluster(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := cl.addTable("", 1, 1).Name
			n := cl.masterOf(tb, []byte("k")).Tap()
			if tt.down {
				n.Down()
				t.Cleanup(func() {
					if err := n.Up(); err != nil {
						t.Error(err)
					}
				})
			}
			if tt.hook != nil {
				n.SetHook(tt.hook(n))
				t.Cleanup(func() { n.SetHook(nil) })
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
			_, err := c.IncrBy(ctx, tb, []byte("k"), 1)
			check("IncrBy", err, tt.unknown)

			ctx, cancel = context.WithTimeout(testCtx(t), deadline)
			defer cancel()
			_, err = c.Get(ctx, tb, []byte("k"))
			if tt.cause == status.ErrNotInteger || tt.cause == status.ErrNotEnoughReplicas {
				return // scripted write answers; a read would not get them
			}
			check("Get", err, false)

			ctx, cancel = context.WithTimeout(testCtx(t), deadline)
			defer cancel()
			err = c.MSet(ctx, tb, []KeyValue{{Key: []byte("a"), Value: []byte("1")}}, 0)
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

// TestContentRefusalAfterTimeout: an oversized SET whose first attempt
// timed out and whose retry the same node refused VALUE_TOO_LARGE was not
// applied: the node refuses the same bytes on every attempt (found by a
// loaded CI run, where a 16 MiB SET's first attempt outlasted its
// AttemptTimeout and zpctl reported an unknown outcome).
func TestContentRefusalAfterTimeout(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 1).Name
	n := cl.masterOf(tb, []byte("k")).Tap()
	var sets atomic.Int32
	n.SetHook(func(req *zppb.Request) *zppb.Response {
		if dataCmd(req) && sets.Add(1) == 1 {
			return inproc.NoAnswer // the first attempt times out
		}
		return nil // the real node answers the retry
	})
	t.Cleanup(func() { n.SetHook(nil) })
	c := newTestClient(t, cl, func(o *Options) { o.AttemptTimeout = 200 * time.Millisecond })
	err := c.Set(testCtx(t), tb, []byte("k"), make([]byte, 16<<20+1), 0)
	if !errors.Is(err, status.ErrValueTooLarge) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("Set = %v, want VALUE_TOO_LARGE, not an unknown outcome", err)
	}
	if got := sets.Load(); got < 2 {
		t.Fatalf("the node saw %d attempts, want the timed-out one and a retry", got)
	}
}

// TestLargeRequestOutlastsAttemptTimeout: an attempt carrying a large
// value is given time to send it beyond AttemptTimeout, or every attempt
// would time out and the value could never be written.
func TestLargeRequestOutlastsAttemptTimeout(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 1).Name
	c := newTestClient(t, cl, func(o *Options) { o.AttemptTimeout = time.Millisecond })
	value := make([]byte, 12<<20)
	if err := c.Set(testCtx(t), tb, []byte("k"), value, 0); err != nil {
		t.Fatalf("Set of 12 MiB with a 1 ms AttemptTimeout: %v", err)
	}
	if err := c.MSet(testCtx(t), tb, []KeyValue{{Key: []byte("m"), Value: value}}, 0); err != nil {
		t.Fatalf("MSet of 12 MiB with a 1 ms AttemptTimeout: %v", err)
	}
}

// TestContentRefusalElsewhereKeepsUnknownOutcome: a refusal of the
// request's bytes by another node than the one whose attempt timed out
// proves nothing about that attempt (the nodes' limits may differ).
func TestContentRefusalElsewhereKeepsUnknownOutcome(t *testing.T) {
	timedOut := atNode("a", fmt.Errorf("%w: read: i/o timeout", rpc.ErrTransport))
	tests := []struct {
		name    string
		final   error
		unknown bool
	}{
		{"refused by the same node", atNode("a", status.New(zppb.Code_VALUE_TOO_LARGE, "big")), false},
		{"refused by another node", atNode("b", status.New(zppb.Code_VALUE_TOO_LARGE, "big")), true},
		{"a refusal not of the content", atNode("a", status.New(zppb.Code_NOT_INTEGER, "no")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &failures{write: true}
			f.add(timedOut)
			err := f.final("set", tt.final)
			if got := errors.Is(err, ErrUnknownOutcome); got != tt.unknown {
				t.Errorf("errors.Is(ErrUnknownOutcome) = %v, want %v: %v", got, tt.unknown, err)
			}
		})
	}
	// Ambiguous attempts at two nodes: a refusal by one says nothing of
	// the other.
	f := &failures{write: true}
	f.add(timedOut)
	f.add(atNode("b", fmt.Errorf("%w: read: i/o timeout", rpc.ErrTransport)))
	if err := f.final("set", atNode("a", status.New(zppb.Code_VALUE_TOO_LARGE, "big"))); !errors.Is(err, ErrUnknownOutcome) {
		t.Errorf("after attempts at a and b, a's refusal: %v, want an unknown outcome", err)
	}
}

// TestHungMasterNextCallReachesNewMaster: a master that accepts
// connections but never answers makes calls end by their deadline, which
// no answer corrects. The next call after the first timeout must reach the
// master meta names by then, and the connection to the hung master must
// not be used again.
func TestHungMasterNextCallReachesNewMaster(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 2)
	hung := cl.Node(tb.Partitions[0].Master).Tap()
	node := cl.Node(tb.Partitions[0].Slaves[0])
	// The master hangs for clients; its slave still replicates from it.
	var sets atomic.Int32
	hung.SetHook(func(req *zppb.Request) *zppb.Response {
		if !dataCmd(req) {
			return nil
		}
		sets.Add(1)
		return inproc.NoAnswer
	})
	c := newTestClient(t, cl)

	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	if err := c.Set(ctx, tb.Name, []byte("k"), []byte("v1"), 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Set to the hung master = %v, want DeadlineExceeded", err)
	}
	// Meta moves the partition off the hung master after the call.
	cl.setMaster(tb.Name, 0, node.Addr)

	ctx, cancel = context.WithTimeout(testCtx(t), 2*time.Second)
	defer cancel()
	if err := c.Set(ctx, tb.Name, []byte("k"), []byte("v2"), 0); err != nil {
		t.Fatalf("next Set: %v", err)
	}
	if v, err := cl.get(tb.Name, []byte("k")); err != nil || string(v) != "v2" || node.Tap().Calls("set") == 0 {
		t.Fatalf("new master has %q, %v; want v2", v, err)
	}

	// The connection the timed-out call used was closed by the client.
	if sets.Load() == 0 {
		t.Fatal("the hung master never saw a request")
	}
	deadline := time.Now().Add(5 * time.Second)
	for hung.Hung() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to the hung master still open after the timeout", hung.Hung())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStaleRouteClearedByAnswer: after a transport failure the route is
// stale until the master answers; a PULL naming the same master keeps the
// mark (meta may not have failed the master over yet).
func TestStaleRouteClearedByAnswer(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 1)
	c := newTestClient(t, cl)
	master := tb.Partitions[0].Master
	stale := func() bool {
		tr, _ := c.c.topo.table(tb.Name)
		return tr.parts[0].stale
	}
	c.c.routeFailed(tb.Name, 0, master, errors.New("scripted"))
	if !stale() {
		t.Fatal("route not stale after a failure")
	}
	if _, err := c.Pull(testCtx(t), ""); err != nil {
		t.Fatal(err)
	}
	if !stale() {
		t.Fatal("a PULL naming the same master cleared the mark")
	}
	if err := c.Set(testCtx(t), tb.Name, []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if stale() {
		t.Fatal("route still stale after the master answered")
	}
}

// hang is a hook under which the node accepts the test's commands and
// never answers them, like a SIGSTOPped process (whose kernel still
// completes handshakes) or a half-open link.
func hang(req *zppb.Request) *zppb.Response {
	if !dataCmd(req) {
		return nil
	}
	return inproc.NoAnswer
}

// dataCmd reports whether req is one of the client's data commands, not
// replication or INFO between the servers.
func dataCmd(req *zppb.Request) bool {
	switch cmdOf(req) {
	case "set", "get", "incrby", "mget", "mset", "exists":
		return true
	}
	return false
}
