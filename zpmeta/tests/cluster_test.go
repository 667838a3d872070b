// Package tests runs meta servers in-process over real TCP and real Raft.
package tests

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

// cluster is a meta group of in-process servers.
type cluster struct {
	t       *testing.T
	addrs   []string
	dirs    []string
	servers []*server.Server // nil while stopped
	tweak   func(*server.Config)
	pool    *rpc.Pool
	// joiners are the members started to be added (ADD_META) rather than
	// bootstrapped.
	joiners map[int]bool
}

// testLogger is quiet unless the test runs with -v.
func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// startCluster starts n members on free ports; tweak adjusts each config.
func startCluster(t *testing.T, n int, tweak func(*server.Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, tweak: tweak, pool: rpc.NewPool(rpc.PoolOptions{ConnsPerAddr: 1})}
	lns := make([]net.Listener, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
		c.addrs = append(c.addrs, ln.Addr().String())
		c.dirs = append(c.dirs, filepath.Join(t.TempDir(), fmt.Sprintf("meta%d", i)))
	}
	c.servers = make([]*server.Server, n)
	t.Cleanup(c.close)
	for i := range n {
		c.startOn(i, lns[i])
	}
	return c
}

func (c *cluster) config(i int, ln net.Listener) server.Config {
	cfg := server.Config{
		Addr:     c.addrs[i],
		Peers:    c.addrs,
		DataDir:  c.dirs[i],
		Listener: ln,
		Logger:   testLogger(),
	}
	if c.joiners[i] {
		cfg.Peers, cfg.NoBootstrap = []string{c.addrs[i]}, true
	}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	return cfg
}

// join starts one more member that does not bootstrap, for ADD_META to add
// to the group, and returns its index.
func (c *cluster) join() int {
	c.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	i := len(c.servers)
	c.addrs = append(c.addrs, ln.Addr().String())
	c.dirs = append(c.dirs, filepath.Join(c.t.TempDir(), fmt.Sprintf("meta%d", i)))
	c.servers = append(c.servers, nil)
	if c.joiners == nil {
		c.joiners = make(map[int]bool)
	}
	c.joiners[i] = true
	c.startOn(i, ln)
	return i
}

func (c *cluster) startOn(i int, ln net.Listener) {
	c.t.Helper()
	s, err := server.New(c.config(i, ln))
	if err != nil {
		c.t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.servers[i] = s
}

// restart starts member i again on its address and data directory.
func (c *cluster) restart(i int) {
	c.t.Helper()
	if c.servers[i] != nil {
		c.t.Fatalf("member %d is running", i)
	}
	var ln net.Listener
	waitFor(c.t, 5*time.Second, "port "+c.addrs[i]+" to be free", func() bool {
		var err error
		ln, err = net.Listen("tcp", c.addrs[i])
		return err == nil
	})
	c.startOn(i, ln)
}

func (c *cluster) stop(i int) {
	c.t.Helper()
	if err := c.servers[i].Close(); err != nil {
		c.t.Errorf("close member %d: %v", i, err)
	}
	c.servers[i] = nil
}

func (c *cluster) close() {
	for i, s := range c.servers {
		if s != nil {
			c.stop(i)
		}
	}
	c.pool.Close()
}

// waitLeader waits until one running member is the ready leader and every
// running member knows it, and returns its index.
func (c *cluster) waitLeader(timeout time.Duration) int {
	c.t.Helper()
	leader := -1
	waitFor(c.t, timeout, "a leader all members agree on", func() bool {
		leader = -1
		for i, s := range c.servers {
			if s != nil && s.IsLeader() {
				leader = i
			}
		}
		if leader < 0 {
			return false
		}
		for _, s := range c.servers {
			if s != nil && s.Leader() != c.addrs[leader] {
				return false
			}
		}
		return true
	})
	return leader
}

// follower returns a running member other than leader.
func (c *cluster) follower(leader int) int {
	for i, s := range c.servers {
		if s != nil && i != leader {
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
	resp, err := c.pool.Call(ctx, c.addrs[i], req)
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
