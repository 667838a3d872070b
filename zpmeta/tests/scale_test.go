package tests

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/lib/topodelta"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/server"
	nodeserver "github.com/zeppelin-kv/zeppelin/zpnode/server"
)

// scaleEnv runs TestMetaScale at full size.
const scaleEnv = "ZP_SCALE"

// scale is the size of a TestMetaScale run.
type scale struct {
	nodes, tables, partitions int
	// batch is how many nodes start together.
	batch                     int
	pingInterval, downTimeout time.Duration
	// steady is how long the steady state is measured.
	steady time.Duration
	// processes: real zpmeta processes (lib/testcluster), whose CPU
	// /proc tells apart from the simulated nodes'.
	processes bool
	// scheduler runs the metas' scheduler (processes only).
	scheduler bool
}

var (
	smallScale = scale{nodes: 30, batch: 30, tables: 6, partitions: 100, pingInterval: 200 * time.Millisecond,
		downTimeout: time.Second, steady: 500 * time.Millisecond}
	// smallRaceScale is smallScale under -race: on a loaded machine PINGs
	// took 100-200 ms (p99) and gaps over a second, so with a 200 ms
	// interval and a 1 s down-timeout live nodes went DOWN and failed
	// over mid-test, moving the epoch the checks compare at.
	smallRaceScale = scale{nodes: 30, batch: 30, tables: 6, partitions: 100, pingInterval: 500 * time.Millisecond,
		downTimeout: 3 * time.Second, steady: time.Second}
	// 10 tables of 3,334 partitions x 3 replicas: 100,020 replicas, 100
	// per node; the meta servers' defaults (ping 1 s, down-timeout 3 s).
	fullScale = scale{nodes: 1000, batch: 100, tables: 10, partitions: 3334, pingInterval: time.Second,
		downTimeout: 3 * time.Second, steady: 20 * time.Second, processes: true}
)

// TestMetaScale runs simulated nodes against three meta servers with real
// Raft: each node PINGs every ping interval with its replicas' positions,
// PULLs deltas when a PING or a NOTIFY names a newer epoch, and PINGs again.
// It creates the tables, then checks that every node converges to the
// leader's epoch and topology, that the deltas after a table create carry
// that table only, and that the masters of a node that stops PINGing fail
// over; it logs the leader's CPU (full size only), the PING round trips to
// the leader, the delta and whole-topology sizes and the times to converge
// and fail over.
//
// By default 30 nodes and 6 tables of 100 partitions x 3 on in-process
// meta servers (a few seconds; under -race with a longer ping interval
// and down-timeout, smallRaceScale). Full size, 1,000 nodes and 100,020
// replicas on real zpmeta processes (built by lib/testcluster), about
// three minutes on an idle machine:
//
//	ZP_SCALE=1 go test -run TestMetaScale -v -timeout 30m ./zpmeta/tests/
//
// ZP_SCALE=N, N > 1, runs N nodes the same way, with 100 replicas each.
// ZP_SCALE_INPROC=1 runs the meta servers in the test's process instead,
// for a profile of both (-cpuprofile); the leader's CPU is then not told.
// ZP_SCALE_SCHEDULER=1 runs the metas with their scheduler on, as zpmeta
// runs by default in production.
func TestMetaScale(t *testing.T) {
	sc := smallScale
	if raceEnabled {
		sc = smallRaceScale
	}
	if v := os.Getenv(scaleEnv); v != "" {
		sc = fullScale
		if n, err := strconv.Atoi(v); err == nil && n > 1 {
			sc.nodes, sc.partitions = n, (n*100/3+sc.tables-1)/sc.tables
		}
		sc.processes = os.Getenv(scaleEnv+"_INPROC") == ""
		sc.scheduler = os.Getenv(scaleEnv+"_SCHEDULER") != ""
		if testing.Short() {
			t.Skip("a thousand simulated nodes")
		}
	}
	metas, leaderPid := startScaleMetas(t, sc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	admin := rpc.NewPool(rpc.PoolOptions{ConnsPerAddr: 1})
	defer admin.Close()
	call := func(req *zppb.Request) *zppb.Response {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		resp, err := admin.Call(cctx, metas[0], req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Code != zppb.Code_OK {
			t.Fatalf("%v: %v %s", req, resp.Code, resp.Msg)
		}
		return resp
	}

	cache := &tableCache{tables: map[string]*zppb.Table{}}
	nodes := make([]*scaleNode, sc.nodes)
	t.Cleanup(func() {
		// All at once: one by one, a thousand PINGs in flight would
		// take minutes to end.
		var wg sync.WaitGroup
		for _, n := range nodes {
			if n != nil {
				wg.Go(func() { n.stop() })
			}
		}
		wg.Wait()
	})
	start := time.Now()
	// Nodes join a batch at a time: a thousand registering at once would
	// make a thousand epochs within a ping interval, each one a PULL of
	// the node list by every node.
	for i := range nodes {
		nodes[i] = startScaleNode(t, metas, sc.pingInterval, cache)
		if (i+1)%sc.batch != 0 && i+1 != len(nodes) {
			continue
		}
		waitFor(t, 2*time.Minute, fmt.Sprintf("%d simulated nodes UP", i+1), func() bool {
			up := 0
			for _, n := range call(listNodesReq()).GetListNodes().GetNodes() {
				if n.State == zppb.NodeState_UP {
					up++
				}
			}
			return up == i+1
		})
	}
	t.Logf("%d nodes registered in %v", sc.nodes, time.Since(start).Round(time.Millisecond))

	// create creates a table and returns the epoch of its creation. A
	// leader lost meanwhile (on a loaded machine the Raft group can lose
	// its leader at 1,000 nodes) is retried, on the next meta server, as
	// a client would: TABLE_EXISTS then means an earlier try applied.
	leaderLosses := 0
	create := func(name string) uint64 {
		t.Helper()
		deadline := time.Now().Add(5 * time.Minute)
		for try := 0; ; try++ {
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			resp, err := admin.Call(cctx, metas[try%len(metas)], createReq(name, uint32(sc.partitions), 3))
			cancel()
			switch {
			case err == nil && resp.Code == zppb.Code_OK:
				return resp.Epoch
			case err == nil && resp.Code == zppb.Code_TABLE_EXISTS && try > 0:
				return call(pullReq(name)).GetPull().GetTopology().GetTables()[0].GetCreatedEpoch()
			case err == nil && resp.Code != zppb.Code_NO_LEADER && resp.Code != zppb.Code_ERROR && resp.Code != zppb.Code_UNAVAILABLE:
				t.Fatalf("create %s: %v %s", name, resp.Code, resp.Msg)
			case time.Now().After(deadline):
				t.Fatalf("create %s: no leader took it for 5 minutes: %v %v", name, err, resp)
			}
			leaderLosses++
			t.Logf("create %s: %v %v %s; trying again", name, err, resp.GetCode(), resp.GetMsg())
		}
	}
	var epoch uint64
	for i := range sc.tables - 1 {
		epoch = create(fmt.Sprintf("t%02d", i))
	}
	waitConverged(t, nodes, epoch)
	// The last table alone, so that every node's last PULL is its delta.
	created := time.Now()
	epoch = create(fmt.Sprintf("t%02d", sc.tables-1))
	t.Logf("%d tables of %d partitions x 3 created (%d tries again after a leader was lost)", sc.tables, sc.partitions, leaderLosses)
	converged := waitConverged(t, nodes, epoch)
	t.Logf("every node at epoch %d %v after the last table create", epoch, converged.Sub(created).Round(time.Millisecond))
	checkViews(t, nodes, func() *zppb.Topology { return call(pullReq("")).GetPull().GetTopology() }, sc)

	// The delta that brought the last create carries that table and
	// nothing else. A node that went DOWN meanwhile (a loaded machine)
	// may have skipped that epoch, its PULL bringing a failover too.
	full := proto.Size(call(pullReq("")).GetPull())
	last := fmt.Sprintf("t%02d", sc.tables-1)
	var deltaMax, skipped int
	for _, n := range nodes {
		ps, ok := n.pullTo(epoch)
		if !ok {
			skipped++
			continue
		}
		if !ps.delta || !slices.Equal(ps.tables, []string{last}) || len(ps.partial) > 0 {
			t.Fatalf("node %s: PULL to epoch %d %+v, want a delta carrying %s only", n.addr, epoch, ps, last)
		}
		deltaMax = max(deltaMax, ps.bytes)
	}
	// A tenth skipped it in a passing 1,000-node run at load 14-49.
	if skipped > len(nodes)/2 {
		t.Fatalf("%d of %d nodes skipped the epoch of the last create", skipped, len(nodes))
	}
	if deltaMax*sc.tables > full*3/2 {
		t.Errorf("a delta of one table of %d is %d bytes, the whole topology %d", sc.tables, deltaMax, full)
	}
	t.Logf("PULL: whole topology %d bytes, delta after a table create %d bytes (%d nodes skipped its epoch)", full, deltaMax, skipped)

	// Steady state: PINGs only.
	for _, n := range nodes {
		n.record(true)
	}
	var cpu0 float64
	if leaderPid != nil {
		cpu0 = testcluster.CPUSeconds(t, leaderPid())
	}
	began := time.Now()
	time.Sleep(sc.steady) // a measurement window, not a wait for anything
	window := time.Since(began)
	var rtts []time.Duration
	for _, n := range nodes {
		rtts = append(rtts, n.record(false)...)
	}
	slices.Sort(rtts)
	if len(rtts) == 0 {
		t.Fatal("no PING in the steady window")
	}
	msg := fmt.Sprintf("steady %v: %d PINGs (%.0f/s), round trip to the leader p50 %v p99 %v max %v",
		window.Round(time.Millisecond), len(rtts), float64(len(rtts))/window.Seconds(),
		rtts[len(rtts)/2], rtts[len(rtts)*99/100], rtts[len(rtts)-1])
	if leaderPid != nil {
		msg += fmt.Sprintf(", leader CPU %.2f cores", (testcluster.CPUSeconds(t, leaderPid())-cpu0)/window.Seconds())
	}
	t.Log(msg)

	// Failover: one node stops; every partition it mastered gets a new
	// master, and the others converge on the result.
	victim := nodes[0]
	before := call(pullReq("")).GetPull().GetTopology()
	masters := masteredBy(before, victim.addr)
	lastPing := victim.stop()
	var failedOver time.Time
	// Polled with deltas against the topology before the stop: a whole
	// topology of 1,000 nodes is 2 MB, and pulling and decoding it for
	// every poll took longer than the failover's own steps.
	since := &zppb.Request{Cmd: &zppb.Request_Pull{Pull: &zppb.PullRequest{SinceEpoch: before.Epoch, PartitionDeltas: true}}}
	waitFor(t, time.Minute, "the stopped node's masters to fail over", func() bool {
		pr := call(since).GetPull()
		if pr.GetTopology().GetEpoch() == before.Epoch {
			return false
		}
		topo, err := topodelta.Apply(before, pr)
		if err != nil {
			t.Fatalf("delta since the stop: %v", err)
		}
		if masteredBy(topo, victim.addr) > 0 {
			return false
		}
		failedOver, epoch = time.Now(), topo.Epoch
		return true
	})
	t.Logf("%d masters of the stopped node failed over %v after its last PING (down-timeout %v)",
		masters, failedOver.Sub(lastPing).Round(time.Millisecond), sc.downTimeout)
	converged = waitConverged(t, nodes[1:], epoch)
	t.Logf("every running node at epoch %d %v after the failover was seen", epoch, converged.Sub(failedOver).Round(time.Millisecond))
	// The failover changed a few partitions of every table: the deltas
	// carry those partitions, not the tables.
	deltaMax = 0
	for _, n := range nodes[1:] {
		ps := n.lastPull()
		if ps.delta && len(ps.tables) > 0 {
			t.Errorf("node %s: last PULL after the failover carries whole tables %v", n.addr, ps.tables)
		}
		deltaMax = max(deltaMax, ps.bytes)
	}
	t.Logf("PULL: largest last delta after the failover %d bytes", deltaMax)
	checkViews(t, nodes[1:], func() *zppb.Topology { return call(pullReq("")).GetPull().GetTopology() }, sc)
}

// startScaleMetas starts three meta servers and returns their addresses,
// leader first, and at full size the leader's process id.
func startScaleMetas(t *testing.T, sc scale) (addrs []string, leaderPid func() int) {
	if !sc.processes {
		c := startCluster(t, 3, func(cfg *server.Config) { cfg.DownTimeout = sc.downTimeout; cfg.Lease = sc.downTimeout * 2 / 3 })
		leader := c.waitLeader(10 * time.Second)
		addrs = append(addrs, c.addr(leader))
		for i := range c.Metas {
			if i != leader {
				addrs = append(addrs, c.addr(i))
			}
		}
		return addrs, nil
	}
	c := testcluster.Start(t, testcluster.Options{Metas: 3, Nodes: -1, Scheduler: sc.scheduler, MetaArgs: []string{"--log-level", "info"}})
	t.Logf("meta scheduler on: %v", sc.scheduler)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	addrs = append(addrs, c.Metas[leader].Addr)
	for i, m := range c.Metas {
		if i != leader {
			addrs = append(addrs, m.Addr)
		}
	}
	return addrs, c.Metas[leader].Pid
}

// waitConverged waits until every node has applied epoch, and returns when
// the last one had.
func waitConverged(t *testing.T, nodes []*scaleNode, epoch uint64) time.Time {
	t.Helper()
	var last time.Time
	deadline := time.Now().Add(2 * time.Minute)
	for {
		last = time.Time{}
		behind, lowest := 0, epoch
		for _, n := range nodes {
			e, at := n.applied()
			if e < epoch {
				behind++
				lowest = min(lowest, e)
			}
			if at.After(last) {
				last = at
			}
		}
		if behind == 0 {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 2m waiting for every node at epoch %d: %d of %d behind, the furthest at %d", epoch, behind, len(nodes), lowest)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkViews checks that nodes hold the tables of the leader's topology
// (all nodes at small size, a sample of 20 at full size). When the
// topology moves on meanwhile (a node of a loaded machine went DOWN and
// failed over), the nodes converge again and are compared with the new
// one.
func checkViews(t *testing.T, nodes []*scaleNode, leaderTopology func() *zppb.Topology, sc scale) {
	t.Helper()
	step := max(1, len(nodes)/20)
	if !sc.processes {
		step = 1
	}
	var sample []*scaleNode
	for i := 0; i < len(nodes); i += step {
		sample = append(sample, nodes[i])
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		want := leaderTopology()
		waitConverged(t, sample, want.Epoch)
		moved := false
		// The nodes share their tables (tableCache): each one is
		// compared once.
		same := map[*zppb.Table]bool{}
		for _, n := range sample {
			got := n.view()
			if got.GetEpoch() != want.Epoch {
				moved = true
				break
			}
			if len(got.GetTables()) != len(want.Tables) {
				t.Fatalf("node %s: epoch %d with %d tables, want %d", n.addr, got.GetEpoch(), len(got.GetTables()), len(want.Tables))
			}
			for j, tb := range want.Tables {
				if same[got.Tables[j]] {
					continue
				}
				same[got.Tables[j]] = proto.Equal(got.Tables[j], tb)
				if !same[got.Tables[j]] {
					t.Fatalf("node %s: table %s differs from the leader's", n.addr, tb.Name)
				}
			}
		}
		if !moved {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the topology kept moving for 2 minutes (epoch %d)", want.Epoch)
		}
	}
}

func masteredBy(topo *zppb.Topology, addr string) int {
	n := 0
	for _, tb := range topo.GetTables() {
		for _, p := range tb.Partitions {
			if p.Master == addr {
				n++
			}
		}
	}
	return n
}

// tableCache lets the simulated nodes share one copy of each version of a
// table (by name and change epoch), as a thousand real nodes would each
// hold their own: the test's memory stays that of a few topologies.
type tableCache struct {
	mu     sync.Mutex
	tables map[string]*zppb.Table
}

// intern replaces the tables of topo, which a delta pr brought, by the
// copies already held of the same versions.
func (c *tableCache) intern(topo *zppb.Topology, pr *zppb.PullResponse) {
	if !pr.GetDelta() {
		return
	}
	changed := make(map[string]uint64, len(pr.Tables))
	for _, st := range pr.Tables {
		changed[st.Name] = st.ChangedEpoch
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, tb := range topo.GetTables() {
		key := fmt.Sprintf("%s@%d", tb.Name, changed[tb.Name])
		if have := c.tables[key]; have != nil {
			topo.Tables[i] = have
		} else {
			c.tables[key] = tb
		}
	}
}

// pullStat is what one PULL brought.
type pullStat struct {
	delta  bool
	tables []string
	// partial names the partial tables (partition deltas).
	partial []string
	bytes   int
}

// scaleNode is a simulated node: zpnode's heartbeat (heartbeat.go) over the
// real protocol, without replicas. It answers NOTIFY on its address.
type scaleNode struct {
	addr     string
	metas    []string
	interval time.Duration
	pool     *rpc.Pool
	srv      *rpc.Server
	cache    *tableCache
	wake     chan struct{}
	// next is the index in metas to PING first (loop's goroutine only).
	next    int
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once

	mu        sync.Mutex
	topo      *zppb.Topology
	appliedAt time.Time
	positions []*zppb.ReplicaPosition
	last      pullStat
	// pulls is the PULL that brought each epoch the node applied.
	pulls    map[uint64]pullStat
	lastPing time.Time
	// seq numbers the PINGs; acked is the one whose positions the leader
	// holds (0: none), so the next PINGs are deltas on it.
	seq, acked uint64
	recording  bool
	rtts       []time.Duration
}

func startScaleNode(t *testing.T, metas []string, interval time.Duration, cache *tableCache) *scaleNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &scaleNode{addr: ln.Addr().String(), metas: metas, interval: interval, cache: cache,
		pool: rpc.NewPool(rpc.PoolOptions{ConnsPerAddr: 1, AbandonGrace: rpc.DefaultAbandonGrace}), topo: &zppb.Topology{},
		wake: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	n.srv, err = rpc.NewServer(rpc.ServerConfig{Handler: n.handle})
	if err != nil {
		t.Fatal(err)
	}
	go n.srv.Serve(ln)
	go n.loop()
	return n
}

// handle answers NOTIFY: heartbeat now.
func (n *scaleNode) handle(_ context.Context, req *zppb.Request) *zppb.Response {
	if nt := req.GetNotify(); nt != nil && nt.Epoch > n.epoch() {
		select {
		case n.wake <- struct{}{}:
		default:
		}
	}
	return &zppb.Response{}
}

// stop stops PINGing and answering, and returns when the last PING went out.
func (n *scaleNode) stop() time.Time {
	n.once.Do(func() {
		close(n.done)
		n.srv.Close()
		<-n.stopped
		n.pool.Close()
	})
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastPing
}

func (n *scaleNode) loop() {
	defer close(n.stopped)
	tick := time.NewTicker(n.interval)
	defer tick.Stop()
	for {
		n.heartbeat()
		select {
		case <-n.done:
			return
		case <-tick.C:
		case <-n.wake:
		}
	}
}

// heartbeat PINGs the meta servers from the one NextMeta chose until one
// answers and PULLs when the answer names a newer epoch, then PINGs again
// at once, as zpnode does.
func (n *scaleNode) heartbeat() {
	for i := range n.metas {
		at := (n.next + i) % len(n.metas)
		meta := n.metas[at]
		pr, err := n.ping(meta)
		if err != nil {
			continue
		}
		if pr.Epoch > n.epoch() {
			if err := n.pull(meta); err == nil {
				n.ping(meta)
			}
		}
		n.next = nodeserver.NextMeta(n.metas, n.next, at, pr.Leader)
		return
	}
}

func (n *scaleNode) epoch() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.topo.Epoch
}

func (n *scaleNode) ping(meta string) (*zppb.PingResponse, error) {
	n.mu.Lock()
	// As zpnode: all positions, or once the leader holds them a delta,
	// here empty (a simulated replica moves only when a PULL changes its
	// role or term, which sends them all again).
	n.seq++
	ping := &zppb.PingRequest{Addr: n.addr, Epoch: n.topo.Epoch, PositionsSeq: n.seq}
	if n.acked != 0 {
		ping.PositionsBase = n.acked
	} else {
		ping.Positions = n.positions
	}
	req := &zppb.Request{Cmd: &zppb.Request_Ping{Ping: ping}}
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), max(n.interval/2, 100*time.Millisecond))
	defer cancel()
	sent := time.Now()
	resp, err := n.pool.Call(ctx, meta, req)
	rtt := time.Since(sent)
	if err != nil {
		return nil, err
	}
	if resp.Code != zppb.Code_OK {
		return nil, fmt.Errorf("PING: %v %s", resp.Code, resp.Msg)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if pr := resp.GetPing(); pr.GetPositionsDelta() && pr.GetPositionsSeq() == ping.PositionsSeq && ping.PositionsSeq == n.seq {
		n.acked = n.seq
	} else {
		n.acked = 0
	}
	n.lastPing = sent
	if n.recording {
		n.rtts = append(n.rtts, rtt)
	}
	return resp.GetPing(), nil
}

// pull asks for a delta against the node's topology and applies it; one
// that does not fit is replaced by the whole topology, as in zpnode.
func (n *scaleNode) pull(meta string) error {
	n.mu.Lock()
	cur := n.topo
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pr, err := n.callPull(ctx, meta, cur.Epoch)
	if err != nil {
		return err
	}
	topo, err := topodelta.Apply(cur, pr)
	if err != nil {
		if pr, err = n.callPull(ctx, meta, 0); err != nil {
			return err
		}
		topo = pr.Topology
	}
	if topo.Epoch <= cur.Epoch {
		return nil
	}
	n.cache.intern(topo, pr)
	stat := pullStat{delta: pr.Delta, bytes: proto.Size(pr)}
	for _, tb := range pr.Topology.Tables {
		stat.tables = append(stat.tables, tb.Name)
	}
	for _, tb := range pr.PartialTables {
		stat.partial = append(stat.partial, tb.Name)
	}
	var positions []*zppb.ReplicaPosition
	for _, tb := range topo.Tables {
		for _, p := range tb.Partitions {
			if p.Master == n.addr || slices.Contains(p.Slaves, n.addr) {
				positions = append(positions, &zppb.ReplicaPosition{Table: tb.Name, Partition: p.Id, Term: p.Term, Lsn: 1, AppliedLsn: 1, Master: p.Master == n.addr})
			}
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.topo, n.appliedAt, n.positions, n.last = topo, time.Now(), positions, stat
	n.acked = 0 // the positions changed: all of them next
	if n.pulls == nil {
		n.pulls = map[uint64]pullStat{}
	}
	n.pulls[topo.Epoch] = stat
	return nil
}

func (n *scaleNode) callPull(ctx context.Context, meta string, since uint64) (*zppb.PullResponse, error) {
	// As topodelta.Pull asks.
	resp, err := n.pool.Call(ctx, meta, &zppb.Request{Cmd: &zppb.Request_Pull{Pull: &zppb.PullRequest{SinceEpoch: since, PartitionDeltas: since != 0}}})
	if err != nil {
		return nil, err
	}
	if resp.Code != zppb.Code_OK || resp.GetPull().GetTopology() == nil {
		return nil, fmt.Errorf("PULL: %v %s", resp.Code, resp.Msg)
	}
	return resp.GetPull(), nil
}

func (n *scaleNode) applied() (uint64, time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.topo.Epoch, n.appliedAt
}

func (n *scaleNode) view() *zppb.Topology {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.topo
}

// pullTo returns the PULL that brought epoch, if the node applied it.
func (n *scaleNode) pullTo(epoch uint64) (pullStat, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ps, ok := n.pulls[epoch]
	return ps, ok
}

func (n *scaleNode) lastPull() pullStat {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.last
}

// record starts or stops recording PING round trips and returns those
// recorded.
func (n *scaleNode) record(on bool) []time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.recording = on
	out := n.rtts
	n.rtts = nil
	return out
}
