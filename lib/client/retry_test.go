package client

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// A stale cache sends a key to the old master, which answers MOVE; the
// client follows it, and remembers it for the next call.
func TestFollowsMoveAndRemembersMaster(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 2, 2)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	key := keyIn(t, 2, 0, "move")
	oldM := cl.Node(tb.Partitions[0].Master)
	newM := cl.Node(tb.Partitions[0].Slaves[0])
	// The metas must not help: this is the real old master's MOVE alone.
	cl.stopMetas()
	cl.setMaster(tb.Name, 0, newM.Addr)
	cl.resetCalls()

	if err := c.Set(ctx, tb.Name, key, []byte("v"), 0); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if newM.Tap().Calls("set") != 1 {
		t.Fatal("the new master did not get the write")
	}
	if v, err := c.Get(ctx, tb.Name, key); err != nil || string(v) != "v" {
		t.Fatalf("Get: %q, %v", v, err)
	}
	if got := oldM.Tap().Calls("set") + oldM.Tap().Calls("get"); got != 1 {
		t.Fatalf("old master got %d calls, want only the first", got)
	}
	if loc, _ := c.Locate(ctx, tb.Name, key); loc.Master != newM.Addr {
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
			cl := sharedCluster(t)
			tb := cl.addTable("", 2, 2)
			c := newTestClient(t, cl)
			key := keyIn(t, 2, 1, "m")
			oldM := cl.Node(tb.Partitions[1].Master)
			newM := cl.Node(tb.Partitions[1].Slaves[0])
			// The partition moves behind the client's back; the old master
			// answers MOVE without a usable master.
			cl.setMaster(tb.Name, 1, newM.Addr)
			epoch := cl.epoch()
			oldM.Tap().SetHook(func(req *zppb.Request) *zppb.Response {
				if cmdOf(req) != "set" {
					return nil
				}
				return &zppb.Response{Code: zppb.Code_MOVE, Master: tt.master(oldM.Addr), Epoch: epoch}
			})
			pulls := cl.metaCalls("pull")
			if err := c.Set(testCtx(t), tb.Name, key, []byte("v"), 0); err != nil {
				t.Fatalf("Set: %v", err)
			}
			if v, err := cl.get(tb.Name, key); err != nil || string(v) != "v" || newM.Tap().Calls("set") == 0 {
				t.Fatalf("the new master did not get the write: %q, %v", v, err)
			}
			if cl.metaCalls("pull") == pulls {
				t.Fatal("no PULL after an unusable MOVE")
			}
		})
	}
}

// A node whose epoch is older than the client's is not believed when it
// points elsewhere: it has not yet learned that it is the master.
func TestMoveFromLaggingNodeIsWaitedOut(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 1).Name
	key := []byte("k")
	m := cl.masterOf(tb, key)
	other := cl.otherNode(m)
	c := newTestClient(t, cl)
	m.Tap().SetHook(times(2, "set", func(*zppb.Request) *zppb.Response {
		return &zppb.Response{Code: zppb.Code_MOVE, Master: other.Addr, Epoch: 1}
	}))
	if err := c.Set(testCtx(t), tb, key, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if other.Tap().Calls("set") != 0 || m.Tap().Calls("set") != 3 {
		t.Fatalf("sets: master %d, other %d; want 3 and 0", m.Tap().Calls("set"), other.Tap().Calls("set"))
	}
}

func TestWaitIsRetried(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 1).Name
	c := newTestClient(t, cl)
	n := cl.masterOf(tb, []byte("k")).Tap()
	n.SetHook(times(2, "set", func(*zppb.Request) *zppb.Response {
		return &zppb.Response{Code: zppb.Code_WAIT, Msg: "slowdown"}
	}))
	if err := c.Set(testCtx(t), tb, []byte("k"), []byte("v"), 0); err != nil {
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
		code zppb.Code // every GET's answer
		want error
	}{
		{"wait forever", zppb.Code_WAIT, status.ErrWait},
		{"table unknown to the node", zppb.Code_TABLE_NOT_FOUND, status.ErrTableNotFound},
	}
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 1).Name
	n := cl.masterOf(tb, []byte("k")).Tap()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, cl)
			n.ResetCalls()
			n.SetHook(times(-1, "get", func(*zppb.Request) *zppb.Response { return &zppb.Response{Code: tt.code} }))
			defer n.SetHook(nil)
			// Long enough for the first answer to arrive on a busy
			// machine: an error without it wraps no last failure.
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := c.Get(ctx, tb, []byte("k"))
			if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want DeadlineExceeded wrapping %v", err, tt.want)
			}
			if n.Calls("get") < 2 {
				t.Fatalf("only %d attempts before the deadline", n.Calls("get"))
			}
		})
	}
}

// DefaultTimeout applies when the caller's context has none.
func TestDefaultTimeout(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 1).Name
	c := newTestClient(t, cl, func(o *Options) { o.DefaultTimeout = 30 * time.Millisecond })
	cl.masterOf(tb, []byte("k")).Tap().SetHook(times(-1, "get", func(*zppb.Request) *zppb.Response { return &zppb.Response{Code: zppb.Code_WAIT} }))
	if _, err := c.Get(context.Background(), tb, []byte("k")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

// TABLE_NOT_FOUND from a node makes the client re-PULL: here the new epoch
// moved the partition to a node that has the table.
func TestTableNotFoundUntilNewEpoch(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 2)
	c := newTestClient(t, cl)
	key := []byte("k")
	oldM := cl.Node(tb.Partitions[0].Master)
	newM := cl.Node(tb.Partitions[0].Slaves[0])
	cl.setMaster(tb.Name, 0, newM.Addr)
	epoch := cl.epoch()
	oldM.Tap().SetHook(times(-1, "set", func(*zppb.Request) *zppb.Response {
		return &zppb.Response{Code: zppb.Code_TABLE_NOT_FOUND, Epoch: epoch}
	}))
	if err := c.Set(testCtx(t), tb.Name, key, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := cl.get(tb.Name, key); err != nil || string(v) != "v" || newM.Tap().Calls("set") == 0 {
		t.Fatalf("write did not reach the new master: %q, %v", v, err)
	}
	if c.Epoch() != cl.epoch() {
		t.Fatalf("client epoch %d, cluster %d", c.Epoch(), cl.epoch())
	}
}

// A table created after the client started: the client PULLs it, and the
// node, which has not opened it yet, answers TABLE_NOT_FOUND twice.
func TestNewTableNotYetOnNode(t *testing.T) {
	cl := sharedCluster(t)
	c := newTestClient(t, cl)
	tb := cl.addTable("", 1, 1).Name
	n := cl.masterOf(tb, []byte("k")).Tap()
	n.SetHook(times(2, "set", func(*zppb.Request) *zppb.Response {
		return &zppb.Response{Code: zppb.Code_TABLE_NOT_FOUND}
	}))
	if err := c.Set(testCtx(t), tb, []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if got := n.Calls("set"); got != 3 {
		t.Fatalf("%d set calls, want 3", got)
	}
}

// A dropped table fails at once, not at the deadline.
func TestDroppedTableFailsFast(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 1).Name
	c := newTestClient(t, cl)
	epoch, err := cl.admin.DropTable(testCtx(t), tb, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Until a node learns of the drop it still serves the table (a GET
	// is answered NOT_FOUND): the client's part starts when it answers
	// TABLE_NOT_FOUND.
	cl.waitNodesAt(epoch)
	_, err = c.Get(testCtx(t), tb, []byte("k"))
	if !errors.Is(err, status.ErrTableNotFound) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want TABLE_NOT_FOUND before the deadline", err)
	}
}

// A write whose answer was lost is sent again with the same request id,
// which the node recognises: INCRBY is applied once and answered with the
// first attempt's value.
func TestWriteRetriedWithItsRequestID(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 1).Name
	c := newTestClient(t, cl)
	key := []byte("counter")
	n := cl.masterOf(tb, key).Tap()

	applyThenDrop(t, n, "incrby")
	v, err := c.IncrBy(testCtx(t), tb, key, 5)
	if err != nil || v != 5 {
		t.Fatalf("IncrBy = %d, %v; want 5 after a retry", v, err)
	}
	if got := n.Calls("incrby"); got != 2 {
		t.Fatalf("INCRBY sent %d times, want 2", got)
	}
	if cur, _ := cl.get(tb, key); string(cur) != "5" {
		t.Fatalf("counter = %q, want 5 (applied once)", cur)
	}

	// Another call has another id: it is applied.
	if v, err := c.IncrBy(testCtx(t), tb, key, 1); err != nil || v != 6 {
		t.Fatalf("second IncrBy = %d, %v; want 6", v, err)
	}
	applyThenDrop(t, n, "set")
	if err := c.Set(testCtx(t), tb, []byte("k"), []byte("v"), 0); err != nil {
		t.Fatalf("Set after a dropped connection: %v", err)
	}
	if got := n.Calls("set"); got != 2 {
		t.Fatalf("SET sent %d times, want 2", got)
	}
}

// When the dial fails the request never left: INCRBY is retried (here at
// the master the re-PULL names, once meta has failed the dead one over).
func TestIncrByRetriedAfterDialFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of its own and waits for a failover")
	}
	cl := ownCluster(t, 2)
	tb := cl.addTable("", 1, 2)
	c := newTestClient(t, cl)
	key := []byte("counter")
	dead := cl.Node(tb.Partitions[0].Master)
	alive := cl.Node(tb.Partitions[0].Slaves[0])
	if err := dead.Stop(); err != nil {
		t.Fatal(err)
	}
	poll(t, "failover to "+alive.Addr, func() bool { return cl.masterOf(tb.Name, key) == alive })
	// A promoted master answers WAIT until it may take writes: that is
	// not what this test is about.
	cl.waitMetasAt(cl.epoch())
	if err := cl.admin.WaitTableWritable(testCtx(t), tb.Name); err != nil {
		t.Fatal(err)
	}
	alive.Tap().ResetCalls()

	v, err := c.IncrBy(testCtx(t), tb.Name, key, 7)
	if err != nil || v != 7 {
		t.Fatalf("IncrBy = %d, %v; want 7", v, err)
	}
	if got := alive.Tap().Calls("incrby"); got != 1 {
		t.Fatalf("INCRBY reached the live master %d times, want 1", got)
	}
}

// INCRBY is retried after answers that mean the node did nothing.
func TestIncrByRetriedAfterWait(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 1).Name
	c := newTestClient(t, cl)
	n := cl.masterOf(tb, []byte("c")).Tap()
	n.SetHook(times(1, "incrby", func(*zppb.Request) *zppb.Response { return &zppb.Response{Code: zppb.Code_WAIT} }))
	if v, err := c.IncrBy(testCtx(t), tb, []byte("c"), 2); err != nil || v != 2 {
		t.Fatalf("IncrBy = %d, %v", v, err)
	}
}

// A node answering with a newer epoch than the cache's starts a PULL in
// the background; the call itself does not wait for it.
func TestNewerEpochStartsBackgroundPull(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 1).Name
	c := newTestClient(t, cl)
	pulled := make(chan struct{}, 10)
	for _, m := range cl.Metas {
		m.SetHook(func(req *zppb.Request) *zppb.Response {
			if cmdOf(req) == "pull" {
				select {
				case pulled <- struct{}{}:
				default:
				}
			}
			return nil
		})
	}
	// Another table moves the epoch on; the nodes learn it, the client
	// does not.
	cl.addTable("-other", 1, 1)
	want := cl.epoch()
	cl.waitNodesAt(want)
	if err := c.Set(testCtx(t), tb, []byte("k"), nil, 0); err != nil {
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
	c.c.flightMu.Lock()
	f := c.c.flight
	c.c.flightMu.Unlock()
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
	cl := sharedCluster(t)
	c := newTestClient(t, cl)
	tb := cl.addTable("", 4, 1).Name

	const callers = 20
	entered := make(chan struct{})
	release := make(chan struct{})
	var first atomic.Bool
	for _, m := range cl.Metas {
		m.SetHook(func(req *zppb.Request) *zppb.Response {
			if cmdOf(req) == "pull" && !first.Swap(true) {
				close(entered)
				<-release
			}
			return nil
		})
	}
	joined := make(chan struct{}, callers)
	c.c.flightMu.Lock()
	c.c.onJoin = func() { joined <- struct{}{} }
	c.c.flightMu.Unlock()

	pullsBefore := cl.metaCalls("pull")
	ctx := testCtx(t)
	errs := make(chan error, callers)
	set := func(i int) {
		errs <- c.Set(ctx, tb, []byte("k"+strconv.Itoa(i)), nil, 0)
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
	if got := cl.metaCalls("pull") - pullsBefore; got != 1 {
		t.Fatalf("%d PULLs for %d concurrent callers, want 1", got, callers)
	}
}

// With every meta server down the cache keeps serving; a dead node fails
// only its own partitions.
func TestWorksWithAllMetasDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of its own")
	}
	cl := ownCluster(t, 3)
	const parts = 6
	tb := cl.addTable("", parts, 1).Name
	c := newTestClient(t, cl)
	cl.stopMetas()
	ctx := testCtx(t)
	masters := make(map[uint32]*inproc.Node)
	for id := range uint32(parts) {
		key := keyIn(t, parts, id, "down")
		masters[id] = cl.masterOf(tb, key)
		if err := c.Set(ctx, tb, key, key, 0); err != nil {
			t.Fatalf("Set partition %d: %v", id, err)
		}
		if _, err := c.Get(ctx, tb, key); err != nil {
			t.Fatalf("Get partition %d: %v", id, err)
		}
	}
	if _, err := c.Pull(ctx, ""); !errors.Is(err, ErrMetaUnreachable) {
		t.Fatalf("Pull with metas down: %v", err)
	}

	dead := cl.Nodes[0]
	if err := dead.Stop(); err != nil {
		t.Fatal(err)
	}
	for id := range uint32(parts) {
		key := keyIn(t, parts, id, "down")
		if masters[id] == dead {
			short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			_, err := c.Get(short, tb, key)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) || !rpc.IsTransport(err) {
				t.Fatalf("Get on the dead node: %v, want deadline wrapping a transport error", err)
			}
			continue
		}
		if _, err := c.Get(ctx, tb, key); err != nil {
			t.Fatalf("Get partition %d on a live node: %v", id, err)
		}
	}
}

// A meta server that is down is skipped, and one whose copy is older than
// an epoch a node reported is passed over for a newer one.
func TestPullFailsOverBetweenMetas(t *testing.T) {
	cl := sharedCluster(t)
	cl.addTable("", 1, 1)
	want := cl.epoch()
	cl.Metas[0].Close()
	lagging := cl.Metas[1]
	lagging.SetHook(func(req *zppb.Request) *zppb.Response {
		if cmdOf(req) != "pull" {
			return nil
		}
		resp, err := lagging.Forward(testCtx(t), req)
		if err != nil {
			return nil
		}
		resp.GetPull().GetTopology().Epoch = 1 // lagging follower
		return resp
	})
	c := newTestClient(t, cl)
	for range 4 { // whatever meta it starts with
		if _, err := c.c.refreshWait(testCtx(t), want); err != nil {
			t.Fatal(err)
		}
		if c.Epoch() != want {
			t.Fatalf("epoch %d, want %d from the up-to-date meta", c.Epoch(), want)
		}
	}
}
