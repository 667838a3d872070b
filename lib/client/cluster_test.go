package client

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

// The client's tests run against real meta and node servers in this
// process (lib/inproc), never against a re-implementation of them. Most
// share one cluster, each with tables of its own; tests that stop servers
// start their own. Faults are injected for real: servers stopped, links
// cut, and inproc taps in front of the nodes and the metas that count
// requests and, where a test needs an answer a healthy cluster would not
// give on cue (WAIT, a MOVE naming nobody), give it in the server's place.

var shared = inproc.Shared{Options: clusterOptions(3)}

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Close()
	os.Exit(code)
}

// cluster is a test's view of a real cluster: the servers, a tap of the
// test's own in front of each meta server (its clients' MetaAddrs), and an
// admin client that reaches the metas directly, for setting up and for
// moves the test's clients must not be told about.
type cluster struct {
	*inproc.Cluster
	Metas []*inproc.Tap
	admin *Client
	t     *testing.T
}

// clusterOptions are every test cluster's.
func clusterOptions(nodes int) inproc.Options {
	return inproc.Options{Metas: 3, Nodes: nodes, Taps: true}
}

// sharedCluster returns the package's cluster (3 metas, 3 nodes), started
// on first use; the test's hooks and call counts start clean.
func sharedCluster(t *testing.T) *cluster {
	t.Helper()
	return newView(t, shared.Cluster(t))
}

// ownCluster starts a cluster of nodes nodes (none when negative) for t
// alone: for tests that stop servers or need a server configured or empty.
func ownCluster(t *testing.T, nodes int, mods ...func(*inproc.Options)) *cluster {
	t.Helper()
	opts := clusterOptions(nodes)
	// Nodes stopped are declared DOWN soon, so that failovers happen
	// within a test's time. Not in the shared cluster: a node of a busy
	// machine that misses its PINGs for a moment must not fail over there.
	opts.MetaConfig = func(_ int, cfg *metaserver.Config) { cfg.DownTimeout = 1500 * time.Millisecond }
	for _, m := range mods {
		m(&opts)
	}
	return newView(t, inproc.StartTest(t, opts))
}

func newView(t *testing.T, c *inproc.Cluster) *cluster {
	t.Helper()
	cl := &cluster{Cluster: c, t: t}
	for _, n := range c.Nodes {
		n.Tap().SetHook(nil)
		n.Tap().ResetCalls()
	}
	t.Cleanup(func() {
		for _, n := range c.Nodes {
			n.Tap().SetHook(nil)
		}
	})
	for _, m := range c.Metas {
		tap, err := inproc.NewTap("127.0.0.1:0", m.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tap.Close() })
		cl.Metas = append(cl.Metas, tap)
	}
	admin, err := New(testCtx(t), Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: testTimeout, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	cl.admin = admin
	return cl
}

// MetaAddrs are the meta servers' taps: what the test's clients know.
func (cl *cluster) MetaAddrs() []string {
	out := make([]string, len(cl.Metas))
	for i, m := range cl.Metas {
		out[i] = m.Addr()
	}
	return out
}

// stopMetas makes every meta server unreachable for the test's clients
// (their taps refuse connections), as if they were all down; the cluster
// itself goes on.
func (cl *cluster) stopMetas() {
	for _, m := range cl.Metas {
		m.Close()
	}
}

var (
	tableChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)
	tableSeq   atomic.Int64
)

// tableName names a table after the test and suffix, uniquely in the
// process (tests may run more than once on the shared cluster).
func (cl *cluster) tableName(suffix string) string {
	name := strings.TrimPrefix(cl.t.Name(), "Test") + suffix
	return fmt.Sprintf("%s-%d", tableChars.ReplaceAllString(name, "_"), tableSeq.Add(1))
}

// addTable creates a table named after the test (and suffix) with parts
// partitions and replicas copies, waits until it is writable, and returns
// it as meta has it.
func (cl *cluster) addTable(suffix string, parts, replicas uint32) *zppb.Table {
	t := cl.t
	t.Helper()
	name := cl.tableName(suffix)
	ctx := testCtx(t)
	if _, err := cl.admin.CreateTable(ctx, TableSpec{Name: name, Partitions: parts, Replicas: replicas}); err != nil {
		t.Fatalf("CreateTable %s: %v", name, err)
	}
	if err := cl.admin.WaitTableWritable(ctx, name); err != nil {
		t.Fatalf("WaitTableWritable %s: %v", name, err)
	}
	tb := cl.table(name)
	cl.waitMetasAt(cl.epoch())
	return tb
}

// table returns a table as the meta leader has it now.
func (cl *cluster) table(name string) *zppb.Table {
	cl.t.Helper()
	return cl.pull(name).GetTables()[0]
}

// epoch is the meta leader's epoch now.
func (cl *cluster) epoch() uint64 {
	cl.t.Helper()
	return cl.pull("").GetEpoch()
}

// pull asks the meta leader, not any member as a client does: a follower
// answers from a copy that may lag behind a change just made.
func (cl *cluster) pull(table string) *zppb.Topology {
	t := cl.t
	t.Helper()
	ctx := testCtx(t)
	for {
		leader, err := cl.WaitLeader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := cl.admin.c.pool.Call(ctx, cl.Cluster.Metas[leader].Addr, &zppb.Request{Cmd: &zppb.Request_Pull{Pull: &zppb.PullRequest{Table: table}}})
		if err == nil {
			err = status.FromResponse(resp)
		}
		if err == nil {
			return resp.GetPull().GetTopology()
		}
		if ctx.Err() != nil {
			t.Fatalf("PULL %q from the meta leader: %v", table, err)
		}
	}
}

// setMaster makes addr (a slave) the master of a partition through meta
// and waits until meta has done it.
func (cl *cluster) setMaster(table string, id uint32, addr string) {
	t := cl.t
	t.Helper()
	ctx := testCtx(t)
	if _, err := cl.admin.SetMaster(ctx, table, id, addr, 0); err != nil {
		t.Fatalf("SetMaster %s/%d to %s: %v", table, id, addr, err)
	}
	poll(t, fmt.Sprintf("%s/%d mastered by %s", table, id, addr), func() bool {
		return cl.table(table).Partitions[id].Master == addr
	})
	// Every member and node has the change, so that a test sees the
	// settled answers (the MOVE of the old master, not the WAIT it gives
	// while it learns of its demotion).
	epoch := cl.epoch()
	cl.waitMetasAt(epoch)
	cl.waitNodesAt(epoch)
}

// waitMetasAt waits until every running meta server answers PULL at epoch
// or later. Followers apply what the leader committed a moment later, and
// a client asks any of them: a test that made a change through the leader
// waits for this before its clients look.
func (cl *cluster) waitMetasAt(epoch uint64) {
	t := cl.t
	t.Helper()
	for _, m := range cl.Cluster.Metas {
		if m.Server() == nil {
			continue
		}
		poll(t, fmt.Sprintf("meta %s at epoch %d", m.Addr, epoch), func() bool {
			resp, err := cl.admin.c.pool.Call(testCtx(t), m.Addr, &zppb.Request{Cmd: &zppb.Request_Pull{Pull: &zppb.PullRequest{}}})
			return err == nil && resp.GetPull().GetTopology().GetEpoch() >= epoch
		})
	}
}

// allParts, as spreadMasters' except, is no partition.
const allParts = ^uint32(0)

// spreadMasters makes every node of nodes master at least one partition of
// the table other than except (allParts: none), moving masters from nodes that have more
// than one (the table's replicas must be on every node), and returns the
// table as meta has it then. Meta places masters by its own rules, over
// every table of the cluster; a test that needs a node to master some
// partition says so.
func (cl *cluster) spreadMasters(tb *zppb.Table, except uint32, nodes ...*inproc.Node) *zppb.Table {
	cl.t.Helper()
	for _, n := range nodes {
		count := make(map[string]int)
		for _, p := range tb.Partitions {
			if p.Id != except {
				count[p.Master]++
			}
		}
		if count[n.Addr] > 0 {
			continue
		}
		for _, p := range tb.Partitions {
			if p.Id != except && count[p.Master] > 1 {
				cl.setMaster(tb.Name, p.Id, n.Addr)
				break
			}
		}
		tb = cl.table(tb.Name)
	}
	return tb
}

// masterOf returns the node meta names as the master of key.
func (cl *cluster) masterOf(table string, key []byte) *inproc.Node {
	cl.t.Helper()
	tb := cl.table(table)
	return cl.Node(tb.Partitions[keyspace.Partition(key, tb.PartitionCount)].Master)
}

// otherNode returns a node that is not n.
func (cl *cluster) otherNode(n *inproc.Node) *inproc.Node {
	for _, o := range cl.Nodes {
		if o != n {
			return o
		}
	}
	return nil
}

// calls sums a command's requests over the nodes' taps.
func (cl *cluster) calls(cmd string) int {
	total := 0
	for _, n := range cl.Nodes {
		total += n.Tap().Calls(cmd)
	}
	return total
}

// metaCalls sums a command's requests over the test's meta taps.
func (cl *cluster) metaCalls(cmd string) int {
	total := 0
	for _, m := range cl.Metas {
		total += m.Calls(cmd)
	}
	return total
}

// resetCalls sets every node tap's counts back to zero.
func (cl *cluster) resetCalls() {
	for _, n := range cl.Nodes {
		n.Tap().ResetCalls()
	}
}

// applyThenDrop lets the node execute the first request of cmd and then
// closes the client's connection instead of answering it: the answer is
// lost after the write was applied.
func applyThenDrop(t *testing.T, tap *inproc.Tap, cmd string) {
	var dropped atomic.Bool
	tap.SetHook(func(req *zppb.Request) *zppb.Response {
		if cmdOf(req) != cmd || dropped.Swap(true) {
			return nil
		}
		resp, err := tap.Forward(testCtx(t), req)
		if err != nil {
			t.Errorf("forwarding %s: %v", cmd, err)
		}
		tap.CloseConns()
		return resp
	})
}

// poll waits until cond holds, failing the test at testTimeout.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// get reads key through a client of its own: what the cluster has.
func (cl *cluster) get(table string, key []byte) ([]byte, error) {
	return cl.admin.Get(testCtx(cl.t), table, key)
}

// waitNodesAt waits until every running node has applied epoch: nodes
// learn the topology from their PINGs, after meta has changed it.
func (cl *cluster) waitNodesAt(epoch uint64) {
	t := cl.t
	t.Helper()
	for _, n := range cl.Nodes {
		if n.Server() == nil {
			continue
		}
		poll(t, fmt.Sprintf("node %s at epoch %d", n.Addr, epoch), func() bool {
			info, err := cl.admin.Info(testCtx(t), n.Addr, InfoServer, "")
			return err == nil && info.Server != nil && info.Server.Epoch >= epoch
		})
	}
}

// stored counts the keys of kvs that the cluster has, with their values.
func (cl *cluster) stored(table string, kvs []KeyValue) int {
	t := cl.t
	t.Helper()
	res, err := cl.admin.MGet(testCtx(t), table, keysOf(kvs))
	if err != nil {
		t.Fatalf("MGet: %v", err)
	}
	n := 0
	for i, r := range res {
		if r.Found && bytes.Equal(r.Value, kvs[i].Value) {
			n++
		}
	}
	return n
}
