package tests

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

var fakeNodes = []string{"10.0.0.1:9300", "10.0.0.2:9300", "10.0.0.3:9300", "10.0.0.4:9300"}

func TestElectsLeader(t *testing.T) {
	start := time.Now()
	c := startCluster(t, 3, longDown)
	leader := c.waitLeader(10 * time.Second)
	t.Logf("leader %s %v after starting", c.addr(leader), time.Since(start).Round(time.Millisecond))

	for i := range c.Metas {
		waitFor(t, 5*time.Second, "member to apply the leader's first entries", func() bool {
			return c.mustOK(i, listMetaReq()).GetListMeta().AppliedIndex > 0
		})
		lm := c.mustOK(i, listMetaReq()).GetListMeta()
		if lm.Leader != c.addr(leader) || lm.Self != c.addr(i) || lm.Term == 0 || lm.AppliedIndex == 0 {
			t.Errorf("member %d: LIST_META %v", i, lm)
		}
		wantState := "Follower"
		if i == leader {
			wantState = "Leader"
		}
		if lm.State != wantState {
			t.Errorf("member %d: state %q, want %q", i, lm.State, wantState)
		}
		if len(lm.Members) != 3 {
			t.Fatalf("member %d: %d members", i, len(lm.Members))
		}
		for _, m := range lm.Members {
			if m.Suffrage != "voter" || m.Id != m.Addr || m.Leader != (m.Addr == c.addr(leader)) {
				t.Errorf("member %d: member %v", i, m)
			}
		}
	}
}

func TestCreateTableThroughFollower(t *testing.T) {
	c := startCluster(t, 3, longDown)
	leader := c.waitLeader(10 * time.Second)
	f := c.follower(leader)
	c.ping(f, fakeNodes...)

	resp := c.mustOK(f, createReq("users", 16, 3))
	cr := resp.GetCreateTable()
	tb := cr.GetTable()
	if cr.Epoch == 0 || resp.Epoch != cr.Epoch || tb.CreatedEpoch != cr.Epoch {
		t.Fatalf("epochs: response %d, result %d, created %d", resp.Epoch, cr.Epoch, tb.CreatedEpoch)
	}
	if tb.Name != "users" || tb.PartitionCount != 16 || tb.Replicas != 3 || len(tb.Partitions) != 16 {
		t.Fatalf("created %v", tb)
	}

	// The follower that relayed the answer serves it already.
	if e := c.pull(f).Epoch; e != cr.Epoch {
		t.Errorf("relaying follower at epoch %d right after the create, want %d", e, cr.Epoch)
	}

	// Placement: distinct UP nodes per partition, term 1, masters and
	// replicas spread evenly over the four nodes.
	masters, replicas := map[string]int{}, map[string]int{}
	for i, p := range tb.Partitions {
		all := append([]string{p.Master}, p.Slaves...)
		seen := map[string]bool{}
		for _, a := range all {
			if seen[a] {
				t.Fatalf("partition %d has two replicas on %s", i, a)
			}
			seen[a] = true
			replicas[a]++
		}
		if len(all) != 3 || p.Id != uint32(i) || p.Term != 1 || p.State != zppb.PartitionState_ACTIVE {
			t.Fatalf("partition %d: %v", i, p)
		}
		masters[p.Master]++
	}
	for _, n := range fakeNodes {
		if masters[n] != 4 || replicas[n] != 12 {
			t.Errorf("node %s: %d masters, %d replicas; want 4 and 12", n, masters[n], replicas[n])
		}
	}

	// Every member serves the same table at the same epoch.
	for i := range c.Metas {
		waitFor(t, 5*time.Second, fmt.Sprintf("member %d to apply epoch %d", i, cr.Epoch), func() bool {
			return c.pull(i).Epoch == cr.Epoch
		})
		got := c.mustOK(i, pullReq("users")).GetPull().GetTopology()
		if len(got.Tables) != 1 || !proto.Equal(got.Tables[0], tb) || len(got.Nodes) != len(fakeNodes) {
			t.Errorf("member %d: PULL users: %v", i, got)
		}
		lt := c.mustOK(i, &zppb.Request{Cmd: &zppb.Request_ListTables{ListTables: &zppb.ListTablesRequest{}}}).GetListTables()
		if len(lt.Tables) != 1 || lt.Epoch != cr.Epoch {
			t.Errorf("member %d: LIST_TABLES %v", i, lt)
		}
	}

	// Drop, through the other follower, with the current epoch.
	other := 3 - leader - f
	d := c.mustOK(other, dropReq("users", cr.Epoch)).GetDropTable()
	if d.Epoch != cr.Epoch+1 {
		t.Fatalf("drop epoch %d, want %d", d.Epoch, cr.Epoch+1)
	}
	if resp := c.call(leader, pullReq("users")); resp.Code != zppb.Code_TABLE_NOT_FOUND {
		t.Fatalf("PULL of dropped table: %v", resp.Code)
	}
}

func TestBadRequestsChangeNothing(t *testing.T) {
	c := startCluster(t, 3, longDown)
	leader := c.waitLeader(10 * time.Second)
	f := c.follower(leader)
	c.ping(leader, fakeNodes[:3]...)
	c.mustOK(leader, createReq("t1", 4, 3))
	before := c.pull(leader)
	epoch := before.Epoch
	waitFor(t, 5*time.Second, "follower to catch up", func() bool { return c.pull(f).Epoch == epoch })

	create := func(name string, partitions, replicas, minSync uint32, expected uint64) *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_CreateTable{CreateTable: &zppb.CreateTableRequest{
			Name: name, Partitions: partitions, Replicas: replicas, MinSyncReplicas: minSync, ExpectedEpoch: expected,
		}}}
	}
	tests := []struct {
		name string
		req  *zppb.Request
		want zppb.Code
	}{
		{"empty name", create("", 4, 3, 0, 0), zppb.Code_INVALID_ARGUMENT},
		{"bad chars", create("a/b", 4, 3, 0, 0), zppb.Code_INVALID_ARGUMENT},
		{"space", create("a b", 4, 3, 0, 0), zppb.Code_INVALID_ARGUMENT},
		{"name too long", create(strings.Repeat("x", 65), 4, 3, 0, 0), zppb.Code_INVALID_ARGUMENT},
		{"zero partitions", create("t2", 0, 3, 0, 0), zppb.Code_INVALID_ARGUMENT},
		{"too many partitions", create("t2", 16385, 3, 0, 0), zppb.Code_INVALID_ARGUMENT},
		{"replicas > nodes", create("t2", 4, 4, 0, 0), zppb.Code_NOT_ENOUGH_NODES},
		{"min_sync = replicas", create("t2", 4, 3, 3, 0), zppb.Code_INVALID_ARGUMENT},
		{"min_sync > default replicas", create("t2", 4, 0, 5, 0), zppb.Code_INVALID_ARGUMENT},
		{"stale expected epoch", create("t2", 4, 3, 0, epoch-1), zppb.Code_STALE_EPOCH},
		{"future expected epoch", create("t2", 4, 3, 0, epoch+1), zppb.Code_STALE_EPOCH},
		{"table exists", create("t1", 4, 3, 0, 0), zppb.Code_TABLE_EXISTS},
		{"drop unknown", dropReq("nope", 0), zppb.Code_TABLE_NOT_FOUND},
		{"drop stale epoch", dropReq("t1", epoch-1), zppb.Code_STALE_EPOCH},
		{"drop empty name", dropReq("", 0), zppb.Code_INVALID_ARGUMENT},
		{"pull unknown", pullReq("nope"), zppb.Code_TABLE_NOT_FOUND},
		{"ping without addr", pingReq(""), zppb.Code_INVALID_ARGUMENT},
		{"ping bad addr", pingReq("nocolon"), zppb.Code_INVALID_ARGUMENT},
		{"data command", &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: "t1", Key: []byte("k")}}}, zppb.Code_INVALID_ARGUMENT},
		{"no command", &zppb.Request{}, zppb.Code_INVALID_ARGUMENT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Through a follower (forwarded) and at the leader alike.
			for _, m := range []int{f, leader} {
				resp := c.call(m, tt.req)
				if resp.Code != tt.want {
					t.Errorf("member %d: %v %q, want %v", m, resp.Code, resp.Msg, tt.want)
				}
				if resp.Epoch != epoch {
					t.Errorf("member %d: response epoch %d, want %d", m, resp.Epoch, epoch)
				}
			}
			if after := c.pull(leader); !proto.Equal(after, before) {
				t.Errorf("state changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	if t.Failed() {
		return
	}
	// The same requests with the current epoch go through.
	c.mustOK(f, create("t2", 4, 3, 2, epoch))
	c.mustOK(f, dropReq("t2", epoch+1))
}

// TestLeaderFailover closes the leader while fake nodes are silent: a new
// leader takes over within seconds, serves writes, and gives the nodes a full
// down-timeout from its election before marking them DOWN. Then with two of
// three members gone writes fail with NO_LEADER and reads still work.
func TestLeaderFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out elections and a down-timeout")
	}
	const downTimeout = 2 * time.Second
	c := startCluster(t, 3, func(cfg *server.Config) { cfg.DownTimeout = downTimeout })
	old := c.waitLeader(10 * time.Second)
	c.ping(old, fakeNodes[:3]...)
	c.mustOK(old, createReq("t1", 4, 3))

	killed := time.Now()
	c.stop(old)
	leader := c.waitLeader(10 * time.Second)
	elected := time.Now()
	t.Logf("new leader %s %v after the old one closed", c.addr(leader), elected.Sub(killed).Round(time.Millisecond))
	if elected.Sub(killed) > 5*time.Second {
		t.Errorf("new leader took %v", elected.Sub(killed))
	}

	// Writes work through the surviving follower, on the nodes that are
	// still UP in their grace period.
	f := c.follower(leader)
	tb := c.mustOK(f, createReq("t2", 4, 3)).GetCreateTable().GetTable()
	if len(tb.Partitions) != 4 {
		t.Fatalf("t2: %v", tb)
	}

	// The nodes have not pinged since before the failover. The new leader
	// must not count that against them: they stay UP for a down-timeout
	// from its election, then go DOWN (after the hold for most nodes
	// silent at once).
	for time.Since(elected) < downTimeout*3/4 {
		for _, n := range fakeNodes[:3] {
			if st := c.nodeState(leader, n); st != zppb.NodeState_UP {
				t.Fatalf("node %s %v %v after the election, before the down-timeout", n, st, time.Since(elected))
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitFor(t, (massSilenceHold+1)*downTimeout+3*time.Second, "silent nodes to go DOWN", func() bool {
		for _, n := range fakeNodes[:3] {
			if c.nodeState(leader, n) != zppb.NodeState_DOWN {
				return false
			}
		}
		return true
	})
	t.Logf("nodes DOWN %v after the election", time.Since(elected).Round(time.Millisecond))

	// One member of three cannot elect a leader: writes fail with
	// NO_LEADER within their deadline, reads go on.
	c.stop(leader)
	last := c.follower(-1)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	resp, err := c.pool.Call(ctx, c.addr(last), createReq("t3", 1, 1))
	if err != nil || resp.Code != zppb.Code_NO_LEADER {
		t.Fatalf("create without quorum: %v %v", resp, err)
	}
	t.Logf("NO_LEADER after %v", time.Since(start).Round(time.Millisecond))
	if topo := c.pull(last); len(topo.Tables) != 2 {
		t.Fatalf("PULL without quorum: %v", topo)
	}
}

func TestNodeLiveness(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a down-timeout")
	}
	const downTimeout = time.Second
	c := startCluster(t, 3, func(cfg *server.Config) { cfg.DownTimeout = downTimeout; cfg.Lease = 600 * time.Millisecond })
	leader := c.waitLeader(10 * time.Second)
	f := c.follower(leader)
	node := fakeNodes[0]

	// An unknown node's first PING, through a follower, registers it UP.
	e0 := c.pull(leader).Epoch
	pr := c.ping(f, node).GetPing()
	if pr.LeaseMs != 600 || pr.Epoch != e0+1 {
		t.Fatalf("first ping: %v (epoch before %d)", pr, e0)
	}
	nodes := c.mustOK(leader, listNodesReq()).GetListNodes().GetNodes()
	if len(nodes) != 1 || nodes[0].State != zppb.NodeState_UP || nodes[0].Weight != 1 ||
		time.Since(time.UnixMilli(nodes[0].LastHeartbeatUnixMs)) > 5*time.Second {
		t.Fatalf("leader LIST_NODES %v", nodes)
	}
	waitFor(t, 5*time.Second, "follower to apply the registration", func() bool { return c.pull(f).Epoch == pr.Epoch })
	if n := c.mustOK(f, listNodesReq()).GetListNodes().GetNodes()[0]; n.LastHeartbeatUnixMs == 0 || n.State != zppb.NodeState_UP {
		t.Fatalf("follower LIST_NODES %v: want the leader's heartbeat, relayed", n)
	}

	// Pinging for twice the down-timeout keeps it UP without touching the
	// epoch.
	var lastPing time.Time
	for end := time.Now().Add(2 * downTimeout); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		lastPing = time.Now()
		if e := c.ping(f, node).GetPing().Epoch; e != pr.Epoch {
			t.Fatalf("epoch moved to %d while pinging", e)
		}
		if st := c.nodeState(leader, node); st != zppb.NodeState_UP {
			t.Fatalf("pinging node %v", st)
		}
	}

	// Silent: DOWN after the down-timeout, not before.
	waitFor(t, downTimeout+3*time.Second, "silent node to go DOWN", func() bool {
		return c.nodeState(leader, node) == zppb.NodeState_DOWN
	})
	if since := time.Since(lastPing); since < downTimeout {
		t.Fatalf("DOWN %v after the last ping, before the down-timeout %v", since, downTimeout)
	}
	t.Logf("DOWN %v after the last ping", time.Since(lastPing).Round(time.Millisecond))
	downEpoch := c.pull(leader).Epoch
	if downEpoch != pr.Epoch+1 {
		t.Fatalf("epoch %d after DOWN, want %d", downEpoch, pr.Epoch+1)
	}

	// Back: a PING carrying an epoch from before the DOWN decision could
	// have been sent before it, so it does not count; its answer names the
	// new epoch, and one PING carrying it marks the node UP again.
	stale := &zppb.Request{Cmd: &zppb.Request_Ping{Ping: &zppb.PingRequest{Addr: node, Epoch: pr.Epoch}}}
	if e := c.mustOK(leader, stale).GetPing().Epoch; e != downEpoch || c.nodeState(leader, node) != zppb.NodeState_DOWN {
		t.Fatalf("PING from before the DOWN decision: epoch %d state %v", e, c.nodeState(leader, node))
	}
	back := &zppb.Request{Cmd: &zppb.Request_Ping{Ping: &zppb.PingRequest{Addr: node, Epoch: downEpoch}}}
	if e := c.mustOK(leader, back).GetPing().Epoch; e != downEpoch+1 || c.nodeState(leader, node) != zppb.NodeState_UP {
		t.Fatalf("after returning: epoch %d state %v", e, c.nodeState(leader, node))
	}

	// New zone, rack, weight: updated through Raft, bumping the epoch once.
	req := &zppb.Request{Cmd: &zppb.Request_Ping{Ping: &zppb.PingRequest{Addr: node, Epoch: downEpoch + 1, Zone: "z1", Rack: "r1", Weight: 5}}}
	e := c.mustOK(f, req).GetPing().Epoch
	if again := c.mustOK(f, req).GetPing().Epoch; e != downEpoch+2 || again != e {
		t.Fatalf("zone change epochs %d then %d, want %d twice", e, again, downEpoch+2)
	}
	n := c.mustOK(leader, listNodesReq()).GetListNodes().GetNodes()[0]
	if n.Zone != "z1" || n.Rack != "r1" || n.Weight != 5 {
		t.Fatalf("node after zone change: %v", n)
	}
}

// TestRestartKeepsState restarts a follower that missed a change, then the
// whole group, from their data directories.
func TestRestartKeepsState(t *testing.T) {
	c := startCluster(t, 3, longDown)
	leader := c.waitLeader(10 * time.Second)
	c.ping(leader, fakeNodes...)
	c.mustOK(leader, createReq("t1", 8, 3))
	c.mustOK(leader, createReq("t2", 2, 2))
	c.mustOK(leader, dropReq("t1", 0))

	f := c.follower(leader)
	c.stop(f)
	c.mustOK(leader, createReq("t3", 3, 1))
	want := withoutHeartbeats(c.pull(leader))
	c.restart(f)
	waitFor(t, 10*time.Second, "restarted follower to catch up", func() bool { return c.pull(f).Epoch == want.Epoch })
	if got := withoutHeartbeats(c.pull(f)); !proto.Equal(got, want) {
		t.Fatalf("restarted follower:\n got %v\nwant %v", got, want)
	}

	for i := range c.Metas {
		c.stop(i)
	}
	for i := range c.Metas {
		c.restart(i)
	}
	leader = c.waitLeader(10 * time.Second)
	for i := range c.Metas {
		waitFor(t, 10*time.Second, fmt.Sprintf("member %d to replay", i), func() bool { return c.pull(i).Epoch == want.Epoch })
		if got := withoutHeartbeats(c.pull(i)); !proto.Equal(got, want) {
			t.Errorf("member %d after restart:\n got %v\nwant %v", i, got, want)
		}
	}
	// And the group still takes writes.
	c.mustOK(c.follower(leader), createReq("t4", 1, 3))
}

// TestSnapshotRestore forces a snapshot that compacts the log, restarts, and
// finds the state restored from the snapshot plus the entries after it.
func TestSnapshotRestore(t *testing.T) {
	c := startCluster(t, 1, func(cfg *server.Config) {
		longDown(cfg)
		cfg.TrailingLogs = 1
	})
	c.waitLeader(10 * time.Second)
	c.ping(0, fakeNodes...)
	for i := range 5 {
		c.mustOK(0, createReq(fmt.Sprintf("t%d", i), uint32(i+1), 3))
	}
	c.mustOK(0, dropReq("t2", 0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.server(0).Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	// After the snapshot: replayed from the log on restart.
	c.mustOK(0, createReq("late", 2, 2))
	want := withoutHeartbeats(c.pull(0))
	c.stop(0)

	snaps, err := filepath.Glob(filepath.Join(c.Metas[0].Dir, "snapshots", "*", "state.bin"))
	if err != nil || len(snaps) == 0 {
		t.Fatalf("no snapshot on disk: %v %v", snaps, err)
	}
	// The log no longer starts at 1: the state must come from the snapshot.
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(c.Metas[0].Dir, "raft.db")})
	if err != nil {
		t.Fatal(err)
	}
	first, err := store.FirstIndex()
	store.Close()
	if err != nil || first <= 2 {
		t.Fatalf("log starts at %d (%v); the snapshot did not compact it", first, err)
	}

	c.restart(0)
	c.waitLeader(10 * time.Second)
	if got := withoutHeartbeats(c.pull(0)); !proto.Equal(got, want) {
		t.Fatalf("after restore:\n got %v\nwant %v", got, want)
	}
}

// withoutHeartbeats clears last_heartbeat_unix_ms and version, which are the
// answering leader's memory rather than replicated state.
func withoutHeartbeats(topo *zppb.Topology) *zppb.Topology {
	for _, n := range topo.Nodes {
		n.LastHeartbeatUnixMs = 0
		n.Version = ""
	}
	return topo
}

// TestListNodesOfFollowerHasLeaderLiveness: what the nodes' PINGs report
// (heartbeat, version) is the leader's memory, yet LIST_NODES asked of a
// follower has it, so that `zpctl node list` shows it whichever member
// answers; a follower that cannot reach a leader answers from its own state
// at once. Every member reports its own version in LIST_META.
func TestListNodesOfFollowerHasLeaderLiveness(t *testing.T) {
	c := startCluster(t, 3, longDown)
	leader := c.waitLeader(10 * time.Second)
	f := c.follower(leader)
	ping := &zppb.Request{Cmd: &zppb.Request_Ping{Ping: &zppb.PingRequest{Addr: fakeNodes[0], Version: "v9.9.9-test"}}}
	epoch := c.mustOK(f, ping).GetPing().GetEpoch()
	for i := range c.Metas {
		waitFor(t, 5*time.Second, "member to apply the registration", func() bool { return c.pull(i).Epoch >= epoch })
		ns := c.mustOK(i, listNodesReq()).GetListNodes().GetNodes()
		if len(ns) != 1 || ns[0].LastHeartbeatUnixMs == 0 || ns[0].Version != "v9.9.9-test" {
			t.Errorf("LIST_NODES of member %d (leader %d): %v", i, leader, ns)
		}
		if v := c.mustOK(i, listMetaReq()).GetListMeta().GetVersion(); v != buildinfo.Version {
			t.Errorf("LIST_META of member %d: version %q, want %q", i, v, buildinfo.Version)
		}
	}

	// Without a quorum there is no leader to ask: the last member answers
	// from its own state, without the leader's memory, well within the
	// deadline.
	for i := range c.Metas {
		if i != f {
			c.stop(i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := c.pool.Call(ctx, c.addr(f), listNodesReq())
	if err != nil || resp.Code != zppb.Code_OK {
		t.Fatalf("LIST_NODES without a leader: %v %v", resp, err)
	}
	if ns := resp.GetListNodes().GetNodes(); len(ns) != 1 || ns[0].Addr != fakeNodes[0] {
		t.Errorf("LIST_NODES without a leader: %v", ns)
	}
	t.Logf("LIST_NODES without a leader answered in %v", time.Since(start).Round(time.Millisecond))
}

// TestForwardedRequestIsNotForwardedAgain checks the hop marker: a follower
// given a request another member already forwarded answers NO_LEADER at
// once instead of passing it on, so requests cannot loop between members
// that disagree about the leader during an election.
func TestForwardedRequestIsNotForwardedAgain(t *testing.T) {
	c := startCluster(t, 3, longDown)
	leader := c.waitLeader(10 * time.Second)
	f := c.follower(leader)
	epoch := c.pull(leader).Epoch

	req := createReq("looped", 4, 1)
	req.Forwarded = true
	resp := c.call(f, req)
	if resp.Code != zppb.Code_NO_LEADER {
		t.Fatalf("forwarded request to a follower: %v %q, want NO_LEADER", resp.Code, resp.Msg)
	}
	if e := c.pull(leader).Epoch; e != epoch {
		t.Fatalf("epoch moved from %d to %d: the forwarded request was applied", epoch, e)
	}
	// The same request, not marked, is forwarded and applied.
	c.ping(f, fakeNodes[:1]...)
	c.mustOK(f, createReq("looped", 4, 1))
}
