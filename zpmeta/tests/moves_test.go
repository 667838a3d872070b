package tests

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

// movesFixture is a real cluster of 4 nodes with a one-partition table of
// 3 replicas, so that a fourth node can be a move's target. Every node has
// a proxy (to cut its links) and a tap (to hold its replication).
type movesFixture struct {
	t  *testing.T
	c  *inproc.Cluster
	cl *client.Client
	// before is the partition as created: the layout every rolled-back
	// move must leave behind.
	before *client.Partition
	// target is the node that holds no replica (nil with 3 nodes).
	target *inproc.Node
}

// newMovesFixture starts nodes nodes (with proxies) whose meta servers tune
// applies to.
func newMovesFixture(t *testing.T, nodes int, tune func(*server.Config)) *movesFixture {
	t.Helper()
	c := inproc.StartTest(t, inproc.Options{
		Nodes:      nodes,
		Proxies:    true,
		Taps:       true,
		MetaConfig: func(_ int, cfg *server.Config) { tune(cfg) },
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "t", Partitions: 1, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	f := &movesFixture{t: t, c: c, cl: cl}
	f.before = f.partition()
	for _, n := range c.Nodes {
		if n.Addr != f.before.Master && !slices.Contains(f.before.Slaves, n.Addr) {
			f.target = n
		}
	}
	return f
}

func (f *movesFixture) partition() *client.Partition {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo, err := f.cl.Pull(ctx, "t")
	if err != nil {
		f.t.Fatal(err)
	}
	p := topo.Tables[0].Partitions[0]
	return &p
}

// waitMove waits until move id is in state want.
func (f *movesFixture) waitMove(id uint64, want client.MoveState) *client.Move {
	f.t.Helper()
	var found *client.Move
	waitFor(f.t, 30*time.Second, fmt.Sprintf("move %d %v", id, want), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		moves, err := f.cl.MoveStatus(ctx, true)
		if err != nil {
			return false
		}
		for _, m := range moves {
			if m.ID == id && m.State == want {
				found = &m
				return true
			}
		}
		return false
	})
	return found
}

// rolledBack checks that the partition is as it was before the moves and
// takes writes.
func (f *movesFixture) rolledBack(what string) {
	f.t.Helper()
	waitFor(f.t, 30*time.Second, what+": layout rolled back", func() bool {
		p := f.partition()
		return p.State == "ACTIVE" && p.Master == f.before.Master && slices.Equal(p.Slaves, f.before.Slaves)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.cl.Set(ctx, "t", []byte("after-"+what), []byte("v"), 0); err != nil {
		f.t.Fatalf("%s: write after the rollback: %v", what, err)
	}
}

// TestCancelMovesBeforeHandover cancels, on the real meta servers, a move
// waiting its turn (PENDING) and one whose target is catching up
// (CATCHING_UP): both end CANCELLED and the partition is as before. The
// target is cut from the meta servers, so it never learns it is a slave and
// the first move stays CATCHING_UP; the down-timeout is long enough that it
// stays UP meanwhile.
func TestCancelMovesBeforeHandover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	f := newMovesFixture(t, 4, func(cfg *server.Config) { cfg.DownTimeout = 30 * time.Second })
	if err := f.target.CutFromMeta(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Two moves of one partition: the second waits for the first.
	first, err := f.cl.Migrate(ctx, "t", 0, f.before.Slaves[0], f.target.Addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.cl.SetMaster(ctx, "t", 0, f.before.Slaves[1], 0)
	if err != nil {
		t.Fatal(err)
	}
	f.waitMove(first[0].ID, client.MoveCatchingUp)
	if got := f.partition(); !slices.Contains(got.Slaves, f.target.Addr) {
		t.Fatalf("catching up: target %s not a slave of %+v", f.target.Addr, got)
	}

	for _, tc := range []struct {
		name  string
		id    uint64
		state client.MoveState
	}{{"pending", second[0].ID, client.MovePending}, {"catching up", first[0].ID, client.MoveCatchingUp}} {
		f.waitMove(tc.id, tc.state)
		got, err := f.cl.CancelMoves(ctx, []uint64{tc.id})
		if err != nil || len(got.Cancelled) != 1 || got.Cancelled[0].ID != tc.id || got.Cancelled[0].State != client.MoveCancelled {
			t.Fatalf("%s: cancel move %d: %+v, %v", tc.name, tc.id, got, err)
		}
		f.waitMove(tc.id, client.MoveCancelled)
	}
	if err := f.target.Heal(); err != nil {
		t.Fatal(err)
	}
	f.rolledBack("cancel")
}

// TestMoveFailsWhenTargetGoesDown: a move whose target goes DOWN while it
// catches up fails and is rolled back.
func TestMoveFailsWhenTargetGoesDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	f := newMovesFixture(t, 4, func(cfg *server.Config) { cfg.DownTimeout = 1500 * time.Millisecond })
	if err := f.target.CutFromMeta(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	moves, err := f.cl.Migrate(ctx, "t", 0, f.before.Slaves[0], f.target.Addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Cut from meta, the target is marked DOWN after the down-timeout.
	m := f.waitMove(moves[0].ID, client.MoveFailed)
	t.Logf("move %d: %s", m.ID, m.Error)
	if err := f.target.Heal(); err != nil {
		t.Fatal(err)
	}
	f.rolledBack("target down")
}

// TestStuckMoveTimesOut: a SETMASTER whose master never takes up the STUCK
// topology (it is cut from the meta servers, so it cannot pull it) cannot
// hand over; after the STUCK timeout the move fails and the partition is
// ACTIVE again with its old master.
func TestStuckMoveTimesOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	f := newMovesFixture(t, 3, func(cfg *server.Config) { cfg.DownTimeout, cfg.StuckTimeout = 30*time.Second, time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	master := f.c.Node(f.before.Master)
	if err := master.CutFromMeta(); err != nil {
		t.Fatal(err)
	}
	moves, err := f.cl.SetMaster(ctx, "t", 0, f.before.Slaves[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	f.waitMove(moves[0].ID, client.MoveStuck)
	m := f.waitMove(moves[0].ID, client.MoveFailed)
	t.Logf("move %d: %s", m.ID, m.Error)
	if err := master.Heal(); err != nil {
		t.Fatal(err)
	}
	f.rolledBack("stuck timeout")
}

// hold keeps slave from getting records from the partition's master while
// it stays connected (inproc.Tap.HoldSlave), then writes a few keys, so
// that a move whose target is slave reaches SLOWDOWN and STUCK (given lag
// thresholds it is within) but cannot hand over. The returned release lets
// it catch up.
func (f *movesFixture) hold(slave string) (release func()) {
	f.t.Helper()
	tap := f.c.Node(f.before.Master).Tap()
	tap.SetHook(tap.HoldSlave(slave))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 5 {
		if err := f.cl.Set(ctx, "t", fmt.Appendf(nil, "before-%d", i), []byte("v"), 0); err != nil {
			f.t.Fatal(err)
		}
	}
	return func() { tap.SetHook(nil) }
}

// cancel cancels move id, which must end CANCELLED.
func (f *movesFixture) cancel(id uint64) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := f.cl.CancelMoves(ctx, []uint64{id})
	if err != nil || len(got.Cancelled) != 1 || got.Cancelled[0].ID != id {
		f.t.Fatalf("cancel move %d: %+v, %v", id, got, err)
	}
	f.waitMove(id, client.MoveCancelled)
}

// stuckWaits waits until the partition's master runs the topology in which
// the partition is STUCK, then checks that a write and a read sent straight
// to it (the client would retry them) are answered WAIT.
func (f *movesFixture) stuckWaits() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topo, err := f.cl.Pull(ctx, "t")
	if err != nil {
		f.t.Fatal(err)
	}
	p := topo.Tables[0].Partitions[0]
	if p.State != "STUCK" || p.Master != f.before.Master {
		f.t.Fatalf("partition %+v at epoch %d; want STUCK with master %s", p, topo.Epoch, f.before.Master)
	}
	pool := rpc.NewPool(rpc.PoolOptions{ConnsPerAddr: 1})
	defer pool.Close()
	call := func(req *zppb.Request) (*zppb.Response, error) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return pool.Call(cctx, p.Master, req)
	}
	waitFor(f.t, 10*time.Second, fmt.Sprintf("master %s at epoch %d", p.Master, topo.Epoch), func() bool {
		resp, err := call(&zppb.Request{Cmd: &zppb.Request_Info{Info: &zppb.InfoRequest{Section: zppb.InfoSection_INFO_SERVER}}})
		return err == nil && resp.Epoch >= topo.Epoch
	})
	for _, req := range []*zppb.Request{
		{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: "t", Key: []byte("stuck"), Value: []byte("v")}}},
		{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: "t", Key: []byte("before-0")}}},
	} {
		resp, err := call(req)
		if err != nil {
			f.t.Fatalf("%v while STUCK: %v", req, err)
		}
		if resp.Code != zppb.Code_WAIT || !strings.Contains(resp.Msg, "STUCK") {
			f.t.Fatalf("%v while STUCK: answered %v %q, want WAIT (STUCK)", req, resp.Code, resp.Msg)
		}
	}
}

// TestCancelMoveNearHandover cancels a migration of the master while the
// partition is SLOWDOWN (the target, held, stays more than StuckLag records
// behind: writes still succeed meanwhile) and while it is STUCK (the
// target never gets the last records: the master, running the STUCK
// topology, answers WAIT). Either way the cancelled move is rolled back
// and writes succeed again.
func TestCancelMoveNearHandover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	for _, tc := range []struct {
		name  string
		state client.MoveState
		tune  func(*server.Config)
		// during checks the partition while the move is held in state.
		during func(t *testing.T, f *movesFixture)
	}{
		{"slowdown", client.MoveSlowdown, func(cfg *server.Config) { cfg.DownTimeout, cfg.StuckLag = 30*time.Second, 1 },
			func(t *testing.T, f *movesFixture) {
				if p := f.partition(); p.State != "SLOWDOWN" || !slices.Contains(p.Slaves, f.target.Addr) {
					t.Fatalf("in SLOWDOWN: partition %+v; want SLOWDOWN with slave %s", p, f.target.Addr)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := f.cl.Set(ctx, "t", []byte("slowdown"), []byte("v"), 0); err != nil {
					t.Fatalf("write in SLOWDOWN: %v", err)
				}
			}},
		{"stuck", client.MoveStuck, func(cfg *server.Config) { cfg.DownTimeout, cfg.StuckTimeout = 30*time.Second, time.Minute },
			func(t *testing.T, f *movesFixture) { f.stuckWaits() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newMovesFixture(t, 4, tc.tune)
			release := f.hold(f.target.Addr)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			moves, err := f.cl.Migrate(ctx, "t", 0, f.before.Master, f.target.Addr, 0)
			if err != nil {
				t.Fatal(err)
			}
			id := moves[0].ID
			f.waitMove(id, tc.state)
			tc.during(t, f)
			f.cancel(id)
			release()
			f.rolledBack("cancel in " + tc.name)
		})
	}
}

// TestWritesWaitWhileStuck: during a switchover held STUCK (its target
// slave, held, is behind), the master answers WAIT and a client's write
// waits; once the target catches up the switchover completes, the waiting
// write succeeds at the new master, and so do new writes.
func TestWritesWaitWhileStuck(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	f := newMovesFixture(t, 3, func(cfg *server.Config) { cfg.DownTimeout, cfg.StuckTimeout = 30*time.Second, time.Minute })
	target := f.before.Slaves[0]
	release := f.hold(target)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	moves, err := f.cl.SetMaster(ctx, "t", 0, target, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := moves[0].ID
	f.waitMove(id, client.MoveStuck)
	f.stuckWaits()

	// The client retries WAIT: its write, sent to the master over and
	// over while STUCK, goes through after the handover.
	tap := f.c.Node(f.before.Master).Tap()
	tap.ResetCalls()
	waiting := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		waiting <- f.cl.Set(wctx, "t", []byte("during-stuck"), []byte("v"), 0)
	}()
	waitFor(t, 10*time.Second, "the client's write retried at the STUCK master", func() bool { return tap.Calls("set") >= 2 })
	release()
	f.waitMove(id, client.MoveDone)
	if err := <-waiting; err != nil {
		t.Fatalf("write sent while STUCK: %v", err)
	}
	p := f.partition()
	if p.State != "ACTIVE" || p.Master != target || !slices.Contains(p.Slaves, f.before.Master) {
		t.Fatalf("after the switchover: %+v; want ACTIVE with master %s and slave %s", p, target, f.before.Master)
	}
	for _, k := range []string{"before-4", "during-stuck"} {
		if v, err := f.cl.Get(ctx, "t", []byte(k)); err != nil || string(v) != "v" {
			t.Fatalf("read %s after the switchover: %q, %v", k, v, err)
		}
	}
	if err := f.cl.Set(ctx, "t", []byte("after-switchover"), []byte("v"), 0); err != nil {
		t.Fatalf("write after the switchover: %v", err)
	}
}

// TestPlanMoves: PLAN_MOVES, through a follower, answers the moves as the
// leader would queue them (a SETMASTER with the master it takes over from)
// and the epoch it checked them at, and queues nothing; a move it refuses
// is refused with the words queueing it meets. A request without a command
// is how an older meta reads PLAN_MOVES: it is answered status.NoCommand.
func TestPlanMoves(t *testing.T) {
	c := startCluster(t, 3, longDown)
	leader := c.waitLeader(10 * time.Second)
	f := c.follower(leader)
	c.ping(leader, fakeNodes[:3]...)
	c.mustOK(leader, createReq("t", 1, 2))
	before := c.pull(leader)
	p := before.Tables[0].Partitions[0]
	slave := p.Slaves[0]
	plan := func(moves ...*zppb.Move) *zppb.Response {
		return c.call(f, &zppb.Request{Cmd: &zppb.Request_PlanMoves{PlanMoves: &zppb.PlanMovesRequest{Moves: moves}}})
	}

	resp := plan(&zppb.Move{Kind: zppb.MoveKind_SETMASTER, Table: "t", To: slave})
	got := resp.GetMoves()
	if resp.Code != zppb.Code_OK || got.GetEpoch() != before.Epoch || len(got.GetMoves()) != 1 {
		t.Fatalf("plan: %v %q %v, want the move at epoch %d", resp.Code, resp.Msg, got, before.Epoch)
	}
	if m := got.Moves[0]; m.Kind != zppb.MoveKind_SETMASTER || m.From != p.Master || m.To != slave || m.Id != 0 || m.Origin != "manual" {
		t.Fatalf("planned %v, want SETMASTER %s -> %s without an id", m, p.Master, slave)
	}
	ms := c.mustOK(leader, &zppb.Request{Cmd: &zppb.Request_MoveStatus{MoveStatus: &zppb.MoveStatusRequest{All: true}}})
	if n := len(ms.GetMoves().GetMoves()); n != 0 || c.pull(leader).Epoch != before.Epoch {
		t.Fatalf("after the plan: %d moves, epoch %d (was %d)", n, c.pull(leader).Epoch, before.Epoch)
	}

	// Refused as SET_MASTER is: the target is the master already.
	refused := plan(&zppb.Move{Kind: zppb.MoveKind_SETMASTER, Table: "t", To: p.Master})
	queue := c.call(f, &zppb.Request{Cmd: &zppb.Request_SetMaster{SetMaster: &zppb.SetMasterRequest{Table: "t", Node: p.Master}}})
	want := fmt.Sprintf("%q is already the master of t/0", p.Master)
	if refused.Code != zppb.Code_INVALID_ARGUMENT || refused.Msg != want || queue.Code != refused.Code || queue.Msg != refused.Msg {
		t.Fatalf("plan %v %q, queue %v %q, want INVALID_ARGUMENT %q", refused.Code, refused.Msg, queue.Code, queue.Msg, want)
	}
	if resp := plan(); resp.Code != zppb.Code_INVALID_ARGUMENT || resp.Msg != "no moves" {
		t.Fatalf("empty plan: %v %q", resp.Code, resp.Msg)
	}

	// The words older releases answer with, which clients recognise: a
	// literal, so that changing status.NoCommand fails here.
	if resp := c.call(f, &zppb.Request{}); resp.Code != zppb.Code_INVALID_ARGUMENT || resp.Msg != "request without a command" {
		t.Fatalf("no command: %v %q", resp.Code, resp.Msg)
	}
}
