package client

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client/clienttest"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// A stale cache sends a key to the old master, which answers MOVE; the
// client follows it, and remembers it for the next call.
func TestFollowsMoveAndRemembersMaster(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 2)
	cl.AddTable("t", 2)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	key := keyIn(t, 2, 0, "move")
	oldM := masterOf(t, cl, "t", key)
	newM := otherNode(cl, oldM)
	// The metas must not help: this is the MOVE answer alone.
	for _, m := range cl.Metas {
		m.Stop()
	}
	cl.SetMaster("t", 0, newM.Addr)

	if err := c.Set(ctx, "t", key, []byte("v"), 0); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if _, ok := newM.Value("t", key); !ok {
		t.Fatal("the new master did not get the write")
	}
	if _, err := c.Get(ctx, "t", key); err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got := oldM.Calls("set") + oldM.Calls("get"); got != 1 {
		t.Fatalf("old master got %d calls, want only the first", got)
	}
	if loc, _ := c.Locate(ctx, "t", key); loc.Master != newM.Addr {
		t.Fatalf("Locate after MOVE: master %s, want %s", loc.Master, newM.Addr)
	}
}

// A MOVE that names no master (or the node itself) cannot be followed: the
// client re-PULLs.
func TestMoveWithoutMasterRePulls(t *testing.T) {
	tests := []struct {
		name   string
		master func(self string) string
	}{
		{"empty master", func(string) string { return "" }},
		{"names itself", func(self string) string { return self }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := clienttest.NewCluster(t, 1, 2)
			cl.AddTable("t", 2)
			c := newTestClient(t, cl)
			key := keyIn(t, 2, 1, "m")
			oldM := masterOf(t, cl, "t", key)
			newM := otherNode(cl, oldM)
			oldM.SetHook(func(req *zppb.Request) *zppb.Response {
				cl.SetMaster("t", 1, newM.Addr)
				return &zppb.Response{Code: zppb.Code_MOVE, Master: tt.master(oldM.Addr), Epoch: cl.Epoch()}
			})
			pulls := metaCalls(cl, "pull")
			if err := c.Set(testCtx(t), "t", key, []byte("v"), 0); err != nil {
				t.Fatalf("Set: %v", err)
			}
			if _, ok := newM.Value("t", key); !ok {
				t.Fatal("the new master did not get the write")
			}
			if metaCalls(cl, "pull") == pulls {
				t.Fatal("no PULL after an unusable MOVE")
			}
		})
	}
}

// A node whose epoch is older than the client's is not believed when it
// points elsewhere: it has not yet learned that it is the master.
func TestMoveFromLaggingNodeIsWaitedOut(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 2)
	cl.AddTable("t", 1)
	key := []byte("k")
	m := masterOf(t, cl, "t", key)
	other := otherNode(cl, m)
	c := newTestClient(t, cl)
	m.SetHook(times(2, "set", func(*zppb.Request) *zppb.Response {
		return &zppb.Response{Code: zppb.Code_MOVE, Master: other.Addr, Epoch: 1}
	}))
	if err := c.Set(testCtx(t), "t", key, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if other.Calls("set") != 0 || m.Calls("set") != 3 {
		t.Fatalf("sets: master %d, other %d; want 3 and 0", m.Calls("set"), other.Calls("set"))
	}
}

func TestWaitIsRetried(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 1)
	cl.AddTable("t", 1)
	c := newTestClient(t, cl)
	n := cl.Nodes[0]
	n.SetHook(times(2, "set", func(*zppb.Request) *zppb.Response {
		return &zppb.Response{Code: zppb.Code_WAIT, Msg: "slowdown"}
	}))
	if err := c.Set(testCtx(t), "t", []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if got := n.Calls("set"); got != 3 {
		t.Fatalf("%d set calls, want 3 (WAIT, WAIT, OK)", got)
	}
}

// When the deadline ends, the error says so and carries the last failure.
func TestDeadlineReturnsWrappedLastError(t *testing.T) {
	tests := []struct {
		name string
		hook clienttest.Hook
		want error
	}{
		{"wait forever", func(*zppb.Request) *zppb.Response { return &zppb.Response{Code: zppb.Code_WAIT} }, status.ErrWait},
		{"table unknown to the node", func(*zppb.Request) *zppb.Response { return &zppb.Response{Code: zppb.Code_TABLE_NOT_FOUND} }, status.ErrTableNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := clienttest.NewCluster(t, 1, 1)
			cl.AddTable("t", 1)
			c := newTestClient(t, cl)
			cl.Nodes[0].SetHook(tt.hook)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, err := c.Get(ctx, "t", []byte("k"))
			if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want DeadlineExceeded wrapping %v", err, tt.want)
			}
			if cl.Nodes[0].Calls("get") < 2 {
				t.Fatalf("only %d attempts before the deadline", cl.Nodes[0].Calls("get"))
			}
		})
	}
}

// DefaultTimeout applies when the caller's context has none.
func TestDefaultTimeout(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 1)
	cl.AddTable("t", 1)
	c := newTestClient(t, cl, func(o *Options) { o.DefaultTimeout = 30 * time.Millisecond })
	cl.Nodes[0].SetHook(func(*zppb.Request) *zppb.Response { return &zppb.Response{Code: zppb.Code_WAIT} })
	if _, err := c.Get(context.Background(), "t", []byte("k")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

// TABLE_NOT_FOUND from a node makes the client re-PULL: here the new epoch
// moved the partition to a node that has the table.
func TestTableNotFoundUntilNewEpoch(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 2)
	cl.AddTable("t", 1)
	c := newTestClient(t, cl)
	key := []byte("k")
	oldM := masterOf(t, cl, "t", key)
	newM := otherNode(cl, oldM)
	oldM.SetHook(func(*zppb.Request) *zppb.Response {
		epoch := cl.Epoch()
		if masterOf(t, cl, "t", key) == oldM {
			epoch = cl.SetMaster("t", 0, newM.Addr)
		}
		return &zppb.Response{Code: zppb.Code_TABLE_NOT_FOUND, Epoch: epoch}
	})
	if err := c.Set(testCtx(t), "t", key, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := newM.Value("t", key); !ok {
		t.Fatal("write did not reach the new master")
	}
	if c.Epoch() != cl.Epoch() {
		t.Fatalf("client epoch %d, cluster %d", c.Epoch(), cl.Epoch())
	}
}

// A table created after the client started: the client PULLs it, and the
// node, which has not opened it yet, answers TABLE_NOT_FOUND twice.
func TestNewTableNotYetOnNode(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 1)
	c := newTestClient(t, cl)
	cl.AddTable("fresh", 1)
	cl.Nodes[0].SetHook(times(2, "set", func(*zppb.Request) *zppb.Response {
		return &zppb.Response{Code: zppb.Code_TABLE_NOT_FOUND}
	}))
	if err := c.Set(testCtx(t), "fresh", []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if got := cl.Nodes[0].Calls("set"); got != 3 {
		t.Fatalf("%d set calls, want 3", got)
	}
}

// A dropped table fails at once, not at the deadline.
func TestDroppedTableFailsFast(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 1)
	cl.AddTable("t", 1)
	c := newTestClient(t, cl)
	cl.DropTable("t")
	_, err := c.Get(testCtx(t), "t", []byte("k"))
	if !errors.Is(err, status.ErrTableNotFound) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want TABLE_NOT_FOUND before the deadline", err)
	}
}

// applyThenDrop executes the first request of cmd and closes the
// connection instead of answering it.
func applyThenDrop(n *clienttest.Node, cmd string) {
	var dropped atomic.Bool
	n.SetHook(func(req *zppb.Request) *zppb.Response {
		if cmdOf(req) != cmd || dropped.Swap(true) {
			return nil
		}
		resp := n.Handle(req)
		n.CloseConns()
		return resp
	})
}

// A write whose answer was lost is sent again with the same request id,
// which the node recognises: INCRBY is applied once and answered with the
// first attempt's value.
func TestWriteRetriedWithItsRequestID(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 1)
	cl.AddTable("t", 1)
	c := newTestClient(t, cl)
	n := cl.Nodes[0]
	key := []byte("counter")

	applyThenDrop(n, "incrby")
	v, err := c.IncrBy(testCtx(t), "t", key, 5)
	if err != nil || v != 5 {
		t.Fatalf("IncrBy = %d, %v; want 5 after a retry", v, err)
	}
	if got := n.Calls("incrby"); got != 2 {
		t.Fatalf("INCRBY sent %d times, want 2", got)
	}
	if cur, _ := n.Value("t", key); string(cur) != "5" {
		t.Fatalf("counter = %q, want 5 (applied once)", cur)
	}

	// Another call has another id: it is applied.
	if v, err := c.IncrBy(testCtx(t), "t", key, 1); err != nil || v != 6 {
		t.Fatalf("second IncrBy = %d, %v; want 6", v, err)
	}
	applyThenDrop(n, "set")
	if err := c.Set(testCtx(t), "t", []byte("k"), []byte("v"), 0); err != nil {
		t.Fatalf("Set after a dropped connection: %v", err)
	}
	if got := n.Calls("set"); got != 2 {
		t.Fatalf("SET sent %d times, want 2", got)
	}
}

// When the dial fails the request never left: INCRBY is retried (here at
// the master the re-PULL names).
func TestIncrByRetriedAfterDialFailure(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 2)
	cl.AddTable("t", 1)
	c := newTestClient(t, cl)
	key := []byte("counter")
	dead := masterOf(t, cl, "t", key)
	alive := otherNode(cl, dead)
	dead.Stop()
	cl.SetMaster("t", 0, alive.Addr)

	v, err := c.IncrBy(testCtx(t), "t", key, 7)
	if err != nil || v != 7 {
		t.Fatalf("IncrBy = %d, %v; want 7", v, err)
	}
	if got := alive.Calls("incrby"); got != 1 {
		t.Fatalf("INCRBY reached the live master %d times, want 1", got)
	}
}

// INCRBY is retried after answers that mean the node did nothing.
func TestIncrByRetriedAfterWait(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 1)
	cl.AddTable("t", 1)
	c := newTestClient(t, cl)
	n := cl.Nodes[0]
	n.SetHook(times(1, "incrby", func(*zppb.Request) *zppb.Response { return &zppb.Response{Code: zppb.Code_WAIT} }))
	if v, err := c.IncrBy(testCtx(t), "t", []byte("c"), 2); err != nil || v != 2 {
		t.Fatalf("IncrBy = %d, %v", v, err)
	}
}

// A node answering with a newer epoch than the cache's starts a PULL in
// the background; the call itself does not wait for it.
func TestNewerEpochStartsBackgroundPull(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 1)
	cl.AddTable("t", 1)
	c := newTestClient(t, cl)
	pulled := make(chan struct{}, 10)
	cl.Metas[0].SetHook(func(req *zppb.Request) *zppb.Response {
		if cmdOf(req) == "pull" {
			pulled <- struct{}{}
		}
		return nil
	})
	want := cl.Update(func(*zppb.Topology) {})
	if err := c.Set(testCtx(t), "t", []byte("k"), nil, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pulled:
	case <-testCtx(t).Done():
		t.Fatal("no PULL after a response from a newer epoch")
	}
	waitFlight(t, c)
	if c.Epoch() != want {
		t.Fatalf("epoch %d after background PULL, want %d", c.Epoch(), want)
	}
}

// waitFlight waits for the PULL in progress, if any.
func waitFlight(t *testing.T, c *Client) {
	t.Helper()
	c.flightMu.Lock()
	f := c.flight
	c.flightMu.Unlock()
	if f == nil {
		return
	}
	select {
	case <-f.done:
	case <-testCtx(t).Done():
		t.Fatal("PULL never finished")
	}
}

// Many callers finding the topology stale at once cause one PULL.
func TestConcurrentRefreshesShareOnePull(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 1)
	c := newTestClient(t, cl)
	cl.AddTable("new", 4)

	const callers = 20
	entered := make(chan struct{})
	release := make(chan struct{})
	var first atomic.Bool
	cl.Metas[0].SetHook(func(req *zppb.Request) *zppb.Response {
		if cmdOf(req) == "pull" && !first.Swap(true) {
			close(entered)
			<-release
		}
		return nil
	})
	joined := make(chan struct{}, callers)
	c.flightMu.Lock()
	c.onJoin = func() { joined <- struct{}{} }
	c.flightMu.Unlock()

	pullsBefore := metaCalls(cl, "pull")
	ctx := testCtx(t)
	errs := make(chan error, callers)
	set := func(i int) {
		errs <- c.Set(ctx, "new", []byte("k"+strconv.Itoa(i)), nil, 0)
	}
	go set(0)
	<-entered // the first caller's PULL is being answered
	for i := 1; i < callers; i++ {
		go set(i)
	}
	for range callers - 1 {
		select {
		case <-joined:
		case <-ctx.Done():
			t.Fatal("callers did not join the PULL in progress")
		}
	}
	close(release)
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := metaCalls(cl, "pull") - pullsBefore; got != 1 {
		t.Fatalf("%d PULLs for %d concurrent callers, want 1", got, callers)
	}
}

// With every meta server down the cache keeps serving; a dead node fails
// only its own partitions.
func TestWorksWithAllMetasDown(t *testing.T) {
	cl := clienttest.NewCluster(t, 3, 3)
	const parts = 6
	cl.AddTable("t", parts)
	c := newTestClient(t, cl)
	for _, m := range cl.Metas {
		m.Stop()
	}
	ctx := testCtx(t)
	for id := range uint32(parts) {
		key := keyIn(t, parts, id, "down")
		if err := c.Set(ctx, "t", key, key, 0); err != nil {
			t.Fatalf("Set partition %d: %v", id, err)
		}
		if _, err := c.Get(ctx, "t", key); err != nil {
			t.Fatalf("Get partition %d: %v", id, err)
		}
	}
	if _, err := c.Pull(ctx, ""); !errors.Is(err, ErrMetaUnreachable) {
		t.Fatalf("Pull with metas down: %v", err)
	}

	dead := cl.Nodes[0]
	dead.Stop()
	for id := range uint32(parts) {
		key := keyIn(t, parts, id, "down")
		if masterOf(t, cl, "t", key) == dead {
			short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			_, err := c.Get(short, "t", key)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) || !rpc.IsTransport(err) {
				t.Fatalf("Get on the dead node: %v, want deadline wrapping a transport error", err)
			}
			continue
		}
		if _, err := c.Get(ctx, "t", key); err != nil {
			t.Fatalf("Get partition %d on a live node: %v", id, err)
		}
	}
}

// A meta server that is down is skipped, and one whose copy is older than
// an epoch a node reported is passed over for a newer one.
func TestPullFailsOverBetweenMetas(t *testing.T) {
	cl := clienttest.NewCluster(t, 3, 1)
	cl.AddTable("t", 1)
	cl.Metas[0].Stop()
	cl.Metas[1].SetHook(func(req *zppb.Request) *zppb.Response {
		if cmdOf(req) != "pull" {
			return nil
		}
		resp := cl.Metas[1].Handle(req)
		resp.GetPull().GetTopology().Epoch = 1 // lagging follower
		return resp
	})
	c := newTestClient(t, cl)
	for range 4 { // whatever meta it starts with
		if _, err := c.refreshWait(testCtx(t), cl.Epoch()); err != nil {
			t.Fatal(err)
		}
		if c.Epoch() != cl.Epoch() {
			t.Fatalf("epoch %d, want %d from the up-to-date meta", c.Epoch(), cl.Epoch())
		}
	}
}
