// Package tests runs meta servers in-process over real TCP and real Raft.
package tests

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

// cluster is a meta group of in-process servers (lib/inproc, without
// nodes: the tests PING as nodes themselves, the meta servers being what
// they test), with raw calls to its members by index.
type cluster struct {
	*inproc.Cluster
	t    *testing.T
	pool *rpc.Pool
}

// testLogger is quiet unless the test runs with -v.
func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// startCluster starts n members, tweak adjusting each config, and waits up
// to 10s for a leader.
func startCluster(t *testing.T, n int, tweak func(*server.Config)) *cluster {
	t.Helper()
	opts := inproc.Options{Metas: n, Nodes: -1, StartTimeout: 10 * time.Second}
	if tweak != nil {
		opts.MetaConfig = func(_ int, cfg *server.Config) { tweak(cfg) }
	}
	c := &cluster{Cluster: inproc.StartTest(t, opts), t: t, pool: rpc.NewPool(rpc.PoolOptions{ConnsPerAddr: 1})}
	t.Cleanup(func() { c.pool.Close() })
	return c
}

// addr is member i's address.
func (c *cluster) addr(i int) string { return c.Metas[i].Addr }

// server is member i's server, nil while it is stopped.
func (c *cluster) server(i int) *server.Server { return c.Metas[i].Server() }

// join starts one more member that does not bootstrap, for ADD_META to add
// to the group, and returns its index.
func (c *cluster) join() int {
	c.t.Helper()
	m, err := c.AddMeta()
	if err != nil {
		c.t.Fatal(err)
	}
	return m.Index
}

// restart starts member i again on its address and data directory.
func (c *cluster) restart(i int) {
	c.t.Helper()
	if err := c.Metas[i].Restart(); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) stop(i int) {
	c.t.Helper()
	if err := c.Metas[i].Stop(); err != nil {
		c.t.Errorf("close member %d: %v", i, err)
	}
}

// waitLeader waits until one running member is the ready leader and every
// running member knows it, and returns its index.
func (c *cluster) waitLeader(timeout time.Duration) int {
	c.t.Helper()
	leader := -1
	waitFor(c.t, timeout, "a leader all members agree on", func() bool {
		leader = -1
		for i := range c.Metas {
			if s := c.server(i); s != nil && s.IsLeader() {
				leader = i
			}
		}
		if leader < 0 {
			return false
		}
		for i := range c.Metas {
			if s := c.server(i); s != nil && s.Leader() != c.addr(leader) {
				return false
			}
		}
		return true
	})
	return leader
}

// follower returns a running member other than leader.
func (c *cluster) follower(leader int) int {
	for i := range c.Metas {
		if c.server(i) != nil && i != leader {
			return i
		}
	}
	c.t.Fatal("no running follower")
	return -1
}

// call sends req to member i and fails the test on a transport error.
func (c *cluster) call(i int, req *zppb.Request) *zppb.Response {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.pool.Call(ctx, c.addr(i), req)
	if err != nil {
		c.t.Fatalf("call member %d: %v", i, err)
	}
	return resp
}

// mustOK is call that also requires code OK.
func (c *cluster) mustOK(i int, req *zppb.Request) *zppb.Response {
	c.t.Helper()
	resp := c.call(i, req)
	if resp.Code != zppb.Code_OK {
		c.t.Fatalf("member %d: %v: %v %s", i, req, resp.Code, resp.Msg)
	}
	return resp
}

func (c *cluster) pull(i int) *zppb.Topology {
	c.t.Helper()
	return c.mustOK(i, pullReq("")).GetPull().GetTopology()
}

// ping registers or keeps alive the fake nodes through member i.
func (c *cluster) ping(i int, nodes ...string) *zppb.Response {
	c.t.Helper()
	var resp *zppb.Response
	for _, n := range nodes {
		resp = c.mustOK(i, pingReq(n))
	}
	return resp
}

// waitFor polls cond every 20ms until it holds, failing the test after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pullReq(table string) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_Pull{Pull: &zppb.PullRequest{Table: table}}}
}

func pingReq(addr string) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_Ping{Ping: &zppb.PingRequest{Addr: addr}}}
}

func createReq(name string, partitions, replicas uint32) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_CreateTable{CreateTable: &zppb.CreateTableRequest{
		Name: name, Partitions: partitions, Replicas: replicas,
	}}}
}

func dropReq(name string, expectedEpoch uint64) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_DropTable{DropTable: &zppb.DropTableRequest{Name: name, ExpectedEpoch: expectedEpoch}}}
}

func listNodesReq() *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_ListNodes{ListNodes: &zppb.ListNodesRequest{}}}
}

func listMetaReq() *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_ListMeta{ListMeta: &zppb.ListMetaRequest{}}}
}

// nodeState returns the state of addr in member i's LIST_NODES.
func (c *cluster) nodeState(i int, addr string) zppb.NodeState {
	c.t.Helper()
	for _, n := range c.mustOK(i, listNodesReq()).GetListNodes().GetNodes() {
		if n.Addr == addr {
			return n.State
		}
	}
	return zppb.NodeState_NODE_STATE_UNKNOWN
}

// longDown keeps fake nodes that stop pinging UP for the whole test, so that
// the epoch moves only by what the test does.
func longDown(cfg *server.Config) { cfg.DownTimeout = time.Minute }
