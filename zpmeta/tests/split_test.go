package tests

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/server"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
	nodeserver "github.com/zeppelin-kv/zeppelin/zpnode/server"
)

// splitLoad writes unique keys to table from a few goroutines until stop,
// recording the acknowledged ones.
type splitLoad struct {
	mu    sync.Mutex
	acked map[string]string
	fails atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startSplitLoad(cl *client.Client, table string, writers int) *splitLoad {
	l := &splitLoad{acked: make(map[string]string), stop: make(chan struct{})}
	for w := range writers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				k, v := fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("v%d", i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := cl.Set(ctx, table, []byte(k), []byte(v), 0)
				cancel()
				if err != nil {
					l.fails.Add(1)
					continue
				}
				l.mu.Lock()
				l.acked[k] = v
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *splitLoad) halt() map[string]string {
	close(l.stop)
	l.wg.Wait()
	return l.acked
}

// waitMoves waits until every move is over and returns them.
func waitMoves(t *testing.T, ctx context.Context, cl *client.Client) []client.Move {
	t.Helper()
	for {
		moves, err := cl.MoveStatus(ctx, true)
		if err == nil {
			over := true
			for _, m := range moves {
				over = over && m.State.Ended()
			}
			if over {
				return moves
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("moves not over: %+v (%v)", moves, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitTrims waits until no replica under the nodes' directories has a
// split's child marker or a trim left to do.
func waitTrims(t *testing.T, ctx context.Context, c *inproc.Cluster) {
	t.Helper()
	for {
		left := ""
		for _, n := range c.Nodes {
			filepath.WalkDir(n.Dir, func(path string, d fs.DirEntry, err error) error {
				if err == nil && (d.Name() == "slots.trim" || d.Name() == "split.from") {
					left = path
				}
				return nil
			})
		}
		if left == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("trims not over: %s", left)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// splitDigests stops the nodes and digests every replica of table's
// partitions 0..parts-1, per partition and node.
func splitDigests(t *testing.T, c *inproc.Cluster, table string, parts uint32) map[uint32]map[string]string {
	t.Helper()
	for _, n := range c.Nodes {
		if err := n.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	shared, err := engine.NewShared(engine.SharedOptions{BlockCacheSize: 16 << 20, WriteBufferSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	now := time.Now().UnixMilli()
	out := make(map[uint32]map[string]string)
	for p := range parts {
		out[p] = make(map[string]string)
		for _, n := range c.Nodes {
			dirs, _ := filepath.Glob(filepath.Join(n.Dir, "*", table, strconv.Itoa(int(p))))
			dirs2, _ := filepath.Glob(filepath.Join(n.Dir, table, strconv.Itoa(int(p))))
			dirs = append(dirs, dirs2...)
			if len(dirs) != 1 {
				t.Fatalf("node %s: partition %d in %v", n.Addr, p, dirs)
			}
			r, err := replica.Open(replica.Options{Dir: dirs[0], Table: table, ID: p, Shared: shared, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			d, keys, err := r.Digest(now)
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			out[p][n.Addr] = fmt.Sprintf("%s/%d", hex.EncodeToString(d[:8]), keys)
		}
	}
	return out
}

// TestSplitEveryPartitionUnderLoad splits every partition of a table
// (min_sync_replicas=1) while writers write: every split commits, the
// table has twice the partitions with every slot owned exactly once,
// every acknowledged write reads back, and the replicas of each
// partition are equal once the halves are trimmed.
func TestSplitEveryPartitionUnderLoad(t *testing.T) {
	redisAddrs := make([]string, 3)
	for i := range redisAddrs {
		redisAddrs[i] = freeAddr(t)
	}
	c := inproc.StartTest(t, inproc.Options{NodeConfig: func(i int, cfg *nodeserver.Config) {
		cfg.RedisAddr, cfg.RedisTable = redisAddrs[i], "s"
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// 16 partitions as the issue asks; 4 with -short or under the race
	// detector (the splits of a table run one at a time: 16 took 15-23 s
	// on a shared 2-core machine, 4 take 7 s).
	parts := uint32(16)
	if testing.Short() || raceEnabled {
		parts = 4
	}
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "s", Partitions: parts, Replicas: 3, MinSyncReplicas: 1}); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	load := startSplitLoad(cl, "s", 4)
	time.Sleep(200 * time.Millisecond) // some data before the splits
	queued, err := cl.Split(ctx, "s", 0, 0, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != int(parts) {
		t.Fatalf("queued %d splits, want %d", len(queued), parts)
	}
	for _, m := range waitMoves(t, ctx, cl) {
		if m.State != client.MoveDone {
			t.Fatalf("split %+v did not finish", m)
		}
	}
	time.Sleep(200 * time.Millisecond) // writes after the splits
	acked := load.halt()
	t.Logf("%d writes acknowledged, %d failed", len(acked), load.fails.Load())

	tp, err := cl.Pull(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	tb := tp.Tables[0]
	if tb.PartitionCount != 2*parts {
		t.Fatalf("after splitting every partition: %d partitions", tb.PartitionCount)
	}
	pb := &zppb.Table{Name: "s", PartitionCount: tb.PartitionCount}
	for _, p := range tb.Partitions {
		pb.Partitions = append(pb.Partitions, &zppb.Partition{Id: p.ID, SlotBegin: p.SlotBegin, SlotEnd: p.SlotEnd})
	}
	if _, err := topo.SlotMap(pb); err != nil {
		t.Fatalf("slot coverage after the splits: %v", err)
	}
	for k, v := range acked {
		got, err := cl.Get(ctx, "s", []byte(k))
		if err != nil || string(got) != v {
			t.Fatalf("acknowledged %s=%s reads %q, %v", k, v, got, err)
		}
	}
	// Redis Cluster clients see every slot once, through CLUSTER SLOTS,
	// from every node.
	for _, addr := range redisAddrs {
		assertClusterSlots(t, ctx, addr, int(2*parts))
	}
	waitTrims(t, ctx, c)
	total := 0
	for p, byNode := range splitDigests(t, c, "s", 2*parts) {
		var first string
		for node, d := range byNode {
			if first == "" {
				first = d
				var keys int
				fmt.Sscanf(d[17:], "%d", &keys)
				total += keys
			} else if d != first {
				t.Errorf("partition %d: replicas differ: %v (%s)", p, byNode, node)
			}
		}
	}
	if total < len(acked) {
		t.Errorf("replicas hold %d keys in all, fewer than the %d acknowledged", total, len(acked))
	}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// assertClusterSlots checks, through go-redis, that the node at addr lists
// want ranges covering every slot exactly once.
func assertClusterSlots(t *testing.T, ctx context.Context, addr string, want int) {
	t.Helper()
	r := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, Protocol: 2})
	defer r.Close()
	slots, err := r.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatalf("CLUSTER SLOTS from %s: %v", addr, err)
	}
	var owners [keyspace.Slots]int
	for _, s := range slots {
		for slot := s.Start; slot <= s.End; slot++ {
			owners[slot]++
		}
	}
	for slot, n := range owners {
		if n != 1 {
			t.Fatalf("CLUSTER SLOTS from %s: slot %d listed %d times (%d ranges: %+v)", addr, slot, n, len(slots), slots)
		}
	}
	if len(slots) != want {
		t.Fatalf("CLUSTER SLOTS from %s: %d ranges, want %d", addr, len(slots), want)
	}
}

// TestSplitSurvivesMetaLeaderChange: the meta leader stops while a split
// is in PREPARE; the new leader learns from the nodes' PINGs that they
// hold the child and commits it.
func TestSplitSurvivesMetaLeaderChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newSplitFixture(t, ctx, nil)
	release := f.holdSlaves()
	moves, err := f.cl.Split(ctx, "r", 0, 0, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := moves[0].ID
	waitState(t, ctx, f.cl, id, client.MovePrepare)
	leader, err := f.c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.c.Metas[leader].Stop(); err != nil {
		t.Fatal(err)
	}
	release()
	waitState(t, ctx, f.cl, id, client.MoveDone)
	tp, err := f.cl.Pull(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if tb := tp.Tables[0]; tb.PartitionCount != 2 || tb.Partitions[0].SlotEnd != 8192 || tb.Partitions[1].SlotBegin != 8192 {
		t.Fatalf("after the split under a new leader: %+v", tb)
	}
	if err := f.cl.Set(ctx, "r", []byte(upperKey(8192)), []byte("after"), 0); err != nil {
		t.Fatal(err)
	}
}

// splitFixture is a cluster with taps and a one-partition table of 3
// replicas (min_sync_replicas=1) whose slaves can be held, so that a
// split stays in PREPARE: the fence waits for a slave.
type splitFixture struct {
	c      *inproc.Cluster
	cl     *client.Client
	master *inproc.Node
}

func newSplitFixture(t *testing.T, ctx context.Context, tune func(*server.Config)) *splitFixture {
	t.Helper()
	c := inproc.StartTest(t, inproc.Options{Taps: true, MetaConfig: func(_ int, cfg *server.Config) {
		if tune != nil {
			tune(cfg)
		}
	}})
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "r", Partitions: 1, Replicas: 3, MinSyncReplicas: 1}); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	tp, err := cl.Pull(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	f := &splitFixture{c: c, cl: cl}
	for _, n := range c.Nodes {
		if n.Addr == tp.Tables[0].Partitions[0].Master {
			f.master = n
		}
	}
	return f
}

// holdSlaves keeps every slave of the master's partitions from getting
// records until release.
func (f *splitFixture) holdSlaves() (release func()) {
	tap := f.master.Tap()
	tap.SetHook(func(req *zppb.Request) *zppb.Response {
		if p := req.GetBinlogPull(); p != nil {
			return tap.HoldSlave(p.Slave)(req)
		}
		return nil
	})
	// A pull already waiting at the master would bring the next records
	// past the hook: its connection goes, and the slave pulls again
	// through the hook.
	tap.CloseConns()
	return func() { tap.SetHook(nil) }
}

// waitState waits until move id is in state want.
func waitState(t *testing.T, ctx context.Context, cl *client.Client, id uint64, want client.MoveState) client.Move {
	t.Helper()
	var last client.Move
	for {
		moves, _ := cl.MoveStatus(ctx, true)
		for _, m := range moves {
			if m.ID == id {
				last = m
				if m.State == want {
					return m
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("move %d: %+v, want %s", id, last, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// upperKey returns a key whose slot is in [at, 16384).
func upperKey(at uint16) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("up%d", i)
		if keyspace.Slot([]byte(k)) >= at {
			return k
		}
	}
}

// assertWhole checks that table r has its one partition with its whole
// range and no split, and that a key of the range a split would have
// moved takes writes, and no node holds a child's directory (once the
// nodes are done with it).
func (f *splitFixture) assertWhole(t *testing.T, ctx context.Context) {
	t.Helper()
	tp, err := f.cl.Pull(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	tb := tp.Tables[0]
	if tb.PartitionCount != 1 || tb.Partitions[0].SlotBegin != 0 || tb.Partitions[0].SlotEnd != keyspace.Slots {
		t.Fatalf("after the rollback: %+v", tb)
	}
	if err := f.cl.Set(ctx, "r", []byte(upperKey(8192)), []byte("after"), 0); err != nil {
		t.Fatalf("write to the range after the rollback: %v", err)
	}
	// A slave released with the rollback may still be staging the child
	// (it applies the fence after it applied the rollback's topology): it
	// removes the child once staged.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var left []string
		for _, n := range f.c.Nodes {
			matches, _ := filepath.Glob(filepath.Join(n.Dir, "*", "r", "1"))
			more, _ := filepath.Glob(filepath.Join(n.Dir, "r", "1"))
			left = append(append(left, matches...), more...)
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child directories kept after the rollback: %v", left)
		}
	}
}

// TestSplitRollsBack: a split held in PREPARE (its fence waits for a
// slave) refuses writes to the moving range; cancelled, or with the
// parent's master failed over, it rolls back: the partition keeps its
// whole range and takes writes to it, and no child is left on disk.
func TestSplitRollsBack(t *testing.T) {
	for _, how := range []string{"cancel", "failover"} {
		t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			f := newSplitFixture(t, ctx, func(cfg *server.Config) {
				cfg.DownTimeout = 1500 * time.Millisecond
			})
			release := f.holdSlaves()
			moves, err := f.cl.Split(ctx, "r", 0, 0, false, 0)
			if err != nil {
				t.Fatal(err)
			}
			id := moves[0].ID
			waitState(t, ctx, f.cl, id, client.MovePrepare)
			// (Refused by the fence, or unacknowledged by the held slaves;
			// TestSplitFence tests the fence itself.)
			wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
			err = f.cl.Set(wctx, "r", []byte(upperKey(8192)), []byte("during"), 0)
			wcancel()
			if err == nil {
				t.Fatal("a write to the moving range succeeded during PREPARE")
			}
			switch how {
			case "cancel":
				res, err := f.cl.CancelMoves(ctx, []uint64{id})
				if err != nil || len(res.Cancelled) != 1 {
					t.Fatalf("cancel: %+v, %v", res, err)
				}
				release()
			case "failover":
				if err := f.master.Stop(); err != nil {
					t.Fatal(err)
				}
				release()
				m := waitState(t, ctx, f.cl, id, client.MoveFailed)
				t.Logf("split failed: %s", m.Error)
			}
			f.assertWhole(t, ctx)
		})
	}
}

// TestSplitNeedsNodesThatRouteByRange: the meta leader refuses SPLIT, with
// FAILED_PRECONDITION naming them, while UP nodes holding the table's
// replicas have not reported buildinfo.FeatureSlotRanges in their PINGs
// (the simulated nodes here PING as a release before it does: no
// features), whether asked directly or through a follower; LIST_NODES
// shows what each node reported; once every node reports it, the split
// is queued.
func TestSplitNeedsNodesThatRouteByRange(t *testing.T) {
	c, leader, f, nodes, _, _, _ := livenessCluster(t, 3*time.Second, 100*time.Millisecond)
	split := &zppb.Request{Cmd: &zppb.Request_Split{Split: &zppb.SplitRequest{Table: "t"}}}
	refused := func(i int, want ...string) {
		t.Helper()
		resp := c.call(i, split)
		if resp.Code != zppb.Code_FAILED_PRECONDITION {
			t.Fatalf("SPLIT through member %d: %v %s, want FAILED_PRECONDITION", i, resp.Code, resp.Msg)
		}
		for _, a := range fakeNodes[:3] {
			if named := strings.Contains(resp.Msg, a); named != slices.Contains(want, a) {
				t.Fatalf("SPLIT refused with %q: names %s: %v, want %v", resp.Msg, a, named, !named)
			}
		}
		if moves := c.mustOK(leader, &zppb.Request{Cmd: &zppb.Request_MoveStatus{MoveStatus: &zppb.MoveStatusRequest{All: true}}}).GetMoves().GetMoves(); len(moves) != 0 {
			t.Fatalf("a refused split queued moves: %v", moves)
		}
	}
	refused(leader, fakeNodes[:3]...)
	refused(f, fakeNodes[:3]...)

	reported := func(addr string) bool {
		return slices.Contains(c.leaderNode(leader, addr).GetFeatures(), buildinfo.FeatureSlotRanges)
	}
	for _, a := range fakeNodes[:2] {
		nodes[a].setFeatures(buildinfo.Features...)
	}
	waitFor(t, 5*time.Second, "the leader to list the features reported", func() bool {
		return reported(fakeNodes[0]) && reported(fakeNodes[1])
	})
	if reported(fakeNodes[2]) {
		t.Fatalf("%s listed with features it never reported", fakeNodes[2])
	}
	refused(leader, fakeNodes[2])

	nodes[fakeNodes[2]].setFeatures(buildinfo.Features...)
	waitFor(t, 5*time.Second, "the leader to list the last node's features", func() bool { return reported(fakeNodes[2]) })
	if moves := c.mustOK(f, split).GetMoves().GetMoves(); len(moves) != 1 || moves[0].Kind != zppb.MoveKind_SPLIT {
		t.Fatalf("SPLIT once every node routes by range: %v", moves)
	}
}

// TestSplitSlaveBehindTrimsItsParent: a slave that gets the fence only
// after the split committed (held behind; the master and the other slave
// make the commit) stages no child (it full-syncs the child instead), and
// must still trim the parent to the range it keeps: its parent ends equal
// to the others', not holding the child's keys for ever.
func TestSplitSlaveBehindTrimsItsParent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newSplitFixture(t, ctx, nil)
	for i := range 40 {
		if err := f.cl.Set(ctx, "r", fmt.Appendf(nil, "k%d", i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	tp, err := f.cl.Pull(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	held := tp.Tables[0].Partitions[0].Slaves[0]
	tap := f.master.Tap()
	tap.SetHook(tap.HoldSlave(held))
	tap.CloseConns()
	moves, err := f.cl.Split(ctx, "r", 0, 0, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, f.cl, moves[0].ID, client.MoveDone)
	tap.SetHook(nil)
	for i := 40; i < 60; i++ { // records after the fence, to both halves
		if err := f.cl.Set(ctx, "r", fmt.Appendf(nil, "k%d", i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	waitReplicasAt(t, ctx, f.c, "r", 2)
	waitTrims(t, ctx, f.c)
	for p, byNode := range splitDigests(t, f.c, "r", 2) {
		var first string
		for node, d := range byNode {
			if first == "" {
				first = d
			} else if d != first {
				t.Errorf("partition %d: replicas differ (%s, behind: %s): %v", p, node, held, byNode)
			}
		}
	}
}

// waitReplicasAt waits until every node holding a replica of table's
// partitions 0..parts-1 reports it at the same (term, lsn).
func waitReplicasAt(t *testing.T, ctx context.Context, c *inproc.Cluster, table string, parts uint32) {
	t.Helper()
	pool := rpc.NewPool(rpc.PoolOptions{ConnsPerAddr: 1})
	defer pool.Close()
	var last string
	for {
		pos := make(map[uint32]map[[2]uint64]int)
		for _, n := range c.Nodes {
			resp, err := pool.Call(ctx, n.Addr, &zppb.Request{Cmd: &zppb.Request_Info{Info: &zppb.InfoRequest{
				Section: zppb.InfoSection_INFO_REPLICATION, Table: table,
			}}})
			if err != nil {
				continue
			}
			for _, ri := range resp.GetInfo().GetReplication() {
				if pos[ri.Partition] == nil {
					pos[ri.Partition] = make(map[[2]uint64]int)
				}
				pos[ri.Partition][[2]uint64{ri.Term, ri.Lsn}]++
			}
		}
		done := true
		for p := range parts {
			if len(pos[p]) != 1 {
				done = false
			}
		}
		if done {
			return
		}
		last = fmt.Sprint(pos)
		select {
		case <-ctx.Done():
			t.Fatalf("replicas not at one position: %s", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestSplitChildMoves: after a split, the new partition moves like any
// other: its master migrates to a node added since, which then serves the
// child's keys, and the parent's keys stay readable.
func TestSplitChildMoves(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newSplitFixture(t, ctx, nil)
	keys := map[string]string{}
	for i := range 100 {
		k := fmt.Sprintf("k%d", i)
		keys[k] = fmt.Sprint("v", i)
		if err := f.cl.Set(ctx, "r", []byte(k), []byte(keys[k]), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.cl.Split(ctx, "r", 0, 8192, false, 0); err != nil {
		t.Fatal(err)
	}
	for _, m := range waitMoves(t, ctx, f.cl) {
		if m.State != client.MoveDone {
			t.Fatalf("split %+v", m)
		}
	}
	added, err := f.c.AddNode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := f.cl.Pull(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	child := tp.Tables[0].Partitions[1]
	if child.ID != 1 || child.SlotBegin != 8192 {
		t.Fatalf("child %+v", child)
	}
	if _, err := f.cl.Migrate(ctx, "r", child.ID, child.Master, added.Addr, 0); err != nil {
		t.Fatal(err)
	}
	for _, m := range waitMoves(t, ctx, f.cl) {
		if m.State != client.MoveDone {
			t.Fatalf("move %+v", m)
		}
	}
	if tp, err = f.cl.Pull(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if m := tp.Tables[0].Partitions[1].Master; m != added.Addr {
		t.Fatalf("the child's master is %s, want the added node %s", m, added.Addr)
	}
	for k, v := range keys {
		if got, err := f.cl.Get(ctx, "r", []byte(k)); err != nil || string(got) != v {
			t.Fatalf("%s = %q, %v; want %s", k, got, err, v)
		}
	}
}

// TestFlushTableAcrossSplit: a FLUSHTABLE whose client read the partition
// count before a split also flushes the partition the split made (its
// keys were its parent's), so no key is left.
func TestFlushTableAcrossSplit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newSplitFixture(t, ctx, nil)
	for i := range 100 {
		if err := f.cl.Set(ctx, "r", []byte(fmt.Sprint("k", i)), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	// Another client splits; f.cl still routes by the count of 1.
	other, err := client.New(ctx, client.Options{MetaAddrs: f.c.MetaAddrs(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Split(ctx, "r", 0, 8192, false, 0); err != nil {
		t.Fatal(err)
	}
	for _, m := range waitMoves(t, ctx, other) {
		if m.State != client.MoveDone {
			t.Fatalf("split %+v", m)
		}
	}
	waitTrims(t, ctx, f.c)
	if err := f.cl.FlushTable(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	var left []string
	for i := range 100 {
		k := fmt.Sprint("k", i)
		if _, err := other.Get(ctx, "r", []byte(k)); !errors.Is(err, status.ErrNotFound) {
			left = append(left, k)
		}
	}
	if len(left) > 0 {
		t.Fatalf("%d keys left after the flush, e.g. %v", len(left), left[:min(5, len(left))])
	}
}
