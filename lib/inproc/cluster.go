// Package inproc runs a Zeppelin-Go cluster inside one process: real meta
// servers (zpmeta/server, with real Raft) and real node servers
// (zpnode/server, with real RocksDB and binlogs) on 127.0.0.1 ports, with
// their data in a directory of the caller's. Tests use it where no process
// boundary is needed (killing with -9, SIGSTOP and real binaries are
// lib/testcluster's); a program can embed a whole cluster with it.
//
// Every server is reached over TCP exactly as in production, so the race
// detector sees the servers, the client and the test in one process.
package inproc

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/freeport"
	"github.com/zeppelin-kv/zeppelin/lib/tlsconf"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
	nodeserver "github.com/zeppelin-kv/zeppelin/zpnode/server"
)

// Options configures a Cluster.
type Options struct {
	// Dir holds every server's data, one directory each. Required.
	Dir string
	// Metas is the number of meta servers; default 3. They form one Raft
	// group, which has a leader only while a majority of its voters run:
	// 1 or 2 members tolerate none stopped (with 2, both must be up), 3
	// tolerate one. When WaitLeader (or Start) times out, its error gives
	// each member's Raft state and says when too few voters run.
	Metas int
	// Nodes is the number of node servers; default 3, none when negative.
	Nodes int
	// MetaConfig and NodeConfig, when set, adjust the i-th server's config
	// before it starts (and again before each restart).
	MetaConfig func(i int, c *metaserver.Config)
	NodeConfig func(i int, c *nodeserver.Config)
	// Proxies puts a TCP proxy in front of every node and one on its way to
	// each meta server, so that Isolate, CutFromMeta and Heal can cut and
	// restore its links, as on a real network partition.
	Proxies bool
	// Taps puts a Tap in front of every node (behind its proxy, if any):
	// the node's address in the cluster is its tap's, so that tests can
	// count the requests it gets and script answers (Node.Tap).
	Taps bool
	// Logger receives every server's log; default discard.
	Logger *slog.Logger
	// StartTimeout bounds waiting for a meta leader and for the nodes to
	// be UP; default 60s.
	StartTimeout time.Duration
	// TLS, when it names a certificate, is every server's Config.TLS, and
	// the cluster's own requests (WaitNodes) present the same files.
	TLS tlsconf.Files
}

// Cluster is a running set of meta and node servers.
type Cluster struct {
	opts  Options
	Metas []*Meta
	Nodes []*Node

	// peers are the meta servers started by Start, which bootstrap the
	// group with each other.
	peers []string

	mu     sync.Mutex
	closed bool
}

// Meta is one meta server.
type Meta struct {
	// Index is its position in Cluster.Metas.
	Index int
	// Addr is its address (and Raft id).
	Addr string
	// Dir holds its data.
	Dir string
	// joiner: started by AddMeta, it does not bootstrap.
	joiner bool
	c      *Cluster
	srv    *metaserver.Server // nil while stopped
}

// Node is one node server.
type Node struct {
	// Index is its position in Cluster.Nodes.
	Index int
	// Addr is its address in the cluster: with Options.Proxies, its
	// inbound proxy's.
	Addr string
	// Dir holds its data.
	Dir string
	// listen is where the server itself listens.
	listen string
	// inbound and metaLinks are its proxies (Options.Proxies).
	inbound   *testcluster.Proxy
	tap       *Tap
	metaLinks []*testcluster.Proxy
	c         *Cluster
	srv       *nodeserver.Server // nil while stopped
}

// Start starts opts.Metas meta servers and opts.Nodes node servers and
// waits until the meta group has a leader and every node is UP. On error
// everything it started is closed.
func Start(opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("inproc: Options.Dir is required")
	}
	if opts.Metas <= 0 {
		opts.Metas = 3
	}
	switch {
	case opts.Nodes == 0:
		opts.Nodes = 3
	case opts.Nodes < 0:
		opts.Nodes = 0
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	c := &Cluster{opts: opts}
	ctx, cancel := context.WithTimeout(context.Background(), opts.StartTimeout)
	defer cancel()
	err := c.start(ctx)
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	lns, err := c.listen(c.opts.Metas)
	if err != nil {
		return err
	}
	for i, ln := range lns {
		addr := ln.Addr().String()
		c.Metas = append(c.Metas, &Meta{Index: i, Addr: addr, Dir: filepath.Join(c.opts.Dir, fmt.Sprintf("zpmeta-%d", i+1)), c: c})
	}
	c.peers = c.MetaAddrs()
	for i, m := range c.Metas {
		if err := m.start(lns[i]); err != nil {
			for _, ln := range lns[i+1:] {
				ln.Close()
			}
			return err
		}
	}
	if _, err := c.WaitLeader(ctx); err != nil {
		return err
	}
	for range c.opts.Nodes {
		if _, err := c.addNode(); err != nil {
			return err
		}
	}
	return c.WaitNodes(ctx, zppb.NodeState_UP, c.NodeAddrs()...)
}

// listen binds n listeners on fresh 127.0.0.1 ports, from below the
// kernel's ephemeral range (lib/freeport): a server stopped and restarted
// binds its address again, which nothing else may take meanwhile.
func (c *Cluster) listen(n int) ([]net.Listener, error) {
	lns, err := freeport.Listen(n)
	if err != nil {
		return nil, fmt.Errorf("inproc: %w", err)
	}
	return lns, nil
}

// AddMeta starts one more meta server, appended to Metas, that does not
// bootstrap (metaserver.Config.NoBootstrap, its Peers just itself): it
// belongs to no Raft group, and answers UNAVAILABLE, until a member of the
// group adds it with ADD_META (client.AddMeta). Stop and Restart work on
// it as on the others; restarted before it was added, it still waits to
// be added. Nodes started afterwards list it among their meta servers.
func (c *Cluster) AddMeta() (*Meta, error) {
	lns, err := c.listen(1)
	if err != nil {
		return nil, err
	}
	m := &Meta{Index: len(c.Metas), Addr: lns[0].Addr().String(), joiner: true, c: c}
	m.Dir = filepath.Join(c.opts.Dir, fmt.Sprintf("zpmeta-%d", m.Index+1))
	if err := m.start(lns[0]); err != nil {
		return nil, err
	}
	c.Metas = append(c.Metas, m)
	return m, nil
}

// AddNode starts one more node server and waits until it is UP.
func (c *Cluster) AddNode(ctx context.Context) (*Node, error) {
	n, err := c.addNode()
	if err != nil {
		return nil, err
	}
	return n, c.WaitNodes(ctx, zppb.NodeState_UP, n.Addr)
}

func (c *Cluster) addNode() (*Node, error) {
	lns, err := c.listen(1)
	if err != nil {
		return nil, err
	}
	ln := lns[0]
	n := &Node{Index: len(c.Nodes), Addr: ln.Addr().String(), listen: ln.Addr().String(), c: c}
	n.Dir = filepath.Join(c.opts.Dir, fmt.Sprintf("zpnode-%d", n.Index+1))
	c.Nodes = append(c.Nodes, n)
	if c.opts.Proxies {
		// The server listens on a port of its own; the cluster knows the
		// node by its inbound proxy's address.
		front, err := c.listen(1)
		if err != nil {
			ln.Close()
			return nil, err
		}
		n.Addr = front[0].Addr().String()
		front[0].Close()
		if n.inbound, err = testcluster.NewProxy(n.Addr, n.listen); err != nil {
			ln.Close()
			return nil, fmt.Errorf("inproc: %w", err)
		}
		for _, m := range c.Metas {
			links, err := c.listen(1)
			if err != nil {
				ln.Close()
				return nil, err
			}
			addr := links[0].Addr().String()
			links[0].Close()
			link, err := testcluster.NewProxy(addr, m.Addr)
			if err != nil {
				ln.Close()
				return nil, fmt.Errorf("inproc: %w", err)
			}
			n.metaLinks = append(n.metaLinks, link)
		}
	}
	if c.opts.Taps {
		if n.tap, err = NewTap("127.0.0.1:0", n.Addr); err != nil {
			ln.Close()
			return nil, err
		}
		n.Addr = n.tap.Addr()
	}
	return n, n.start(ln)
}

// MetaAddrs are the meta servers' addresses.
func (c *Cluster) MetaAddrs() []string {
	out := make([]string, len(c.Metas))
	for i, m := range c.Metas {
		out[i] = m.Addr
	}
	return out
}

// NodeAddrs are the nodes' addresses.
func (c *Cluster) NodeAddrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

// Node returns the node whose address is addr, nil when none.
func (c *Cluster) Node(addr string) *Node {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// WaitLeader waits until some meta server is the ready leader and returns
// its index. Its error, when ctx ends first, gives each meta server's Raft
// state and says when fewer voters run than Raft needs for a leader.
func (c *Cluster) WaitLeader(ctx context.Context) (int, error) {
	i, err := poll(ctx, "a meta leader", func() (int, error) {
		for i, m := range c.Metas {
			if m.srv != nil && m.srv.IsLeader() {
				return i, nil
			}
		}
		return 0, errors.New("no leader")
	})
	if err != nil {
		return 0, fmt.Errorf("%w; %s", err, c.metaGroup())
	}
	return i, nil
}

// metaGroup describes the meta servers for an error: each one's Raft
// state as it answers LIST_META and, when fewer of the group's voters run
// than a majority, how many run and how many a leader needs.
func (c *Cluster) metaGroup() string {
	pool := c.newPool()
	defer pool.Close()
	var parts, voters []string
	running := make(map[string]bool)
	for _, m := range c.Metas {
		if m.srv == nil {
			parts = append(parts, m.Addr+" stopped")
			continue
		}
		running[m.Addr] = true
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := pool.Call(ctx, m.Addr, &zppb.Request{Cmd: &zppb.Request_ListMeta{ListMeta: &zppb.ListMetaRequest{}}})
		cancel()
		if err == nil {
			err = status.FromResponse(resp)
		}
		if err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", m.Addr, err))
			continue
		}
		lm := resp.GetListMeta()
		parts = append(parts, fmt.Sprintf("%s %s in term %d (%d members)", m.Addr, lm.State, lm.Term, len(lm.Members)))
		if voters == nil {
			// The first running member's configuration stands for the
			// group's; a joiner not added yet has none.
			for _, mm := range lm.Members {
				if mm.Suffrage == "voter" {
					voters = append(voters, mm.Addr)
				}
			}
		}
	}
	up := 0
	for _, v := range voters {
		if running[v] {
			up++
		}
	}
	desc := strings.Join(parts, "; ")
	if need := len(voters)/2 + 1; len(voters) > 0 && up < need {
		desc = fmt.Sprintf("%d of the group's %d voters run, and a Raft leader needs %d: %s", up, len(voters), need, desc)
	}
	return "meta servers: " + desc
}

// WaitNodes waits until the meta leader reports every node of addrs in
// state want.
func (c *Cluster) WaitNodes(ctx context.Context, want zppb.NodeState, addrs ...string) error {
	pool := c.newPool()
	defer pool.Close()
	_, err := poll(ctx, fmt.Sprintf("nodes %s", want), func() (struct{}, error) {
		state := make(map[string]zppb.NodeState)
		var last error
		for _, m := range c.Metas {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			resp, err := pool.Call(cctx, m.Addr, &zppb.Request{Cmd: &zppb.Request_ListNodes{ListNodes: &zppb.ListNodesRequest{}}})
			cancel()
			if err == nil {
				err = status.FromResponse(resp)
			}
			if err != nil {
				last = err
				continue
			}
			for _, n := range resp.GetListNodes().GetNodes() {
				state[n.Addr] = n.State
			}
			break
		}
		if len(state) == 0 && last != nil {
			return struct{}{}, last
		}
		var not []string
		for _, a := range addrs {
			if st, ok := state[a]; !ok || st != want {
				not = append(not, a+"="+cmp.Or(st.String(), "unregistered"))
			}
		}
		if len(not) > 0 {
			return struct{}{}, fmt.Errorf("not %s: %s", want, strings.Join(not, ", "))
		}
		return struct{}{}, nil
	})
	return err
}

// Close stops every server and proxy. The data stays in Options.Dir.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	var errs []error
	for _, n := range c.Nodes {
		errs = append(errs, n.Stop())
		if n.tap != nil {
			errs = append(errs, n.tap.Close())
		}
		if n.inbound != nil {
			errs = append(errs, n.inbound.Close())
		}
		for _, l := range n.metaLinks {
			errs = append(errs, l.Close())
		}
	}
	for _, m := range c.Metas {
		errs = append(errs, m.Stop())
	}
	return errors.Join(errs...)
}

func (m *Meta) start(ln net.Listener) error {
	cfg := metaserver.Config{
		Addr:     m.Addr,
		Peers:    m.c.peers,
		DataDir:  m.Dir,
		Listener: ln,
		// The server names itself ("meta" attribute) in its log.
		Logger: m.c.opts.Logger,
		TLS:    m.c.opts.TLS,
	}
	if m.joiner {
		cfg.Peers, cfg.NoBootstrap = []string{m.Addr}, true
	}
	if f := m.c.opts.MetaConfig; f != nil {
		f(m.Index, &cfg)
	}
	srv, err := metaserver.New(cfg)
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		ln.Close()
		return fmt.Errorf("inproc: meta %s: %w", m.Addr, err)
	}
	m.srv = srv
	return nil
}

// Server is the running meta server, nil while it is stopped.
func (m *Meta) Server() *metaserver.Server { return m.srv }

// Stop closes the meta server; its data stays for Restart.
func (m *Meta) Stop() error {
	if m.srv == nil {
		return nil
	}
	err := m.srv.Close()
	m.srv = nil
	return err
}

// Restart starts a stopped meta server again, on its address and data.
func (m *Meta) Restart() error {
	if m.srv != nil {
		return fmt.Errorf("inproc: meta %s is running", m.Addr)
	}
	ln, err := net.Listen("tcp", m.Addr)
	if err != nil {
		return fmt.Errorf("inproc: meta %s: %w", m.Addr, err)
	}
	return m.start(ln)
}

func (n *Node) start(ln net.Listener) error {
	metas := n.c.MetaAddrs()
	for i, l := range n.metaLinks {
		metas[i] = l.Addr()
	}
	cfg := nodeserver.Config{
		Addr:         n.Addr,
		ListenAddr:   n.listen,
		Listener:     ln,
		MetaAddrs:    metas,
		DataDir:      n.Dir,
		PingInterval: 200 * time.Millisecond,
		// Small, for many nodes in one process.
		BlockCacheSize: 8 << 20,
		Logger:         n.c.opts.Logger.With("node", n.Addr),
		TLS:            n.c.opts.TLS,
	}
	if f := n.c.opts.NodeConfig; f != nil {
		f(n.Index, &cfg)
	}
	srv, err := nodeserver.New(cfg)
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		ln.Close()
		return fmt.Errorf("inproc: node %s: %w", n.Addr, err)
	}
	n.srv = srv
	return nil
}

// Tap is the node's tap (Options.Taps), nil without one.
func (n *Node) Tap() *Tap { return n.tap }

// Server is the running node server, nil while it is stopped.
func (n *Node) Server() *nodeserver.Server { return n.srv }

// Stop closes the node server gracefully; its data stays for Restart. Its
// address refuses connections until then, tap or not.
func (n *Node) Stop() error {
	if n.srv == nil {
		return nil
	}
	if n.tap != nil {
		n.tap.Down()
	}
	err := n.srv.Close()
	n.srv = nil
	return err
}

// Restart starts a stopped node again, on its address and data.
func (n *Node) Restart() error {
	if n.srv != nil {
		return fmt.Errorf("inproc: node %s is running", n.Addr)
	}
	ln, err := net.Listen("tcp", n.listen)
	if err != nil {
		return fmt.Errorf("inproc: node %s: %w", n.Addr, err)
	}
	if err := n.start(ln); err != nil {
		return err
	}
	if n.tap != nil {
		return n.tap.Up()
	}
	return nil
}

// Isolate cuts the node off from everyone: its PINGs and its peers'
// requests time out (needs Options.Proxies).
func (n *Node) Isolate() error { return n.setLinks(testcluster.Blackhole, true, true) }

// CutFromMeta cuts the node off from the meta servers only: clients and
// other nodes still reach it, and its master lease runs out.
func (n *Node) CutFromMeta() error { return n.setLinks(testcluster.Blackhole, true, false) }

// Heal restores every link of the node.
func (n *Node) Heal() error { return n.setLinks(testcluster.Pass, true, true) }

func (n *Node) setLinks(mode testcluster.ProxyMode, meta, inbound bool) error {
	if n.inbound == nil {
		return fmt.Errorf("inproc: node %s has no proxies (Options.Proxies)", n.Addr)
	}
	if inbound {
		n.inbound.SetMode(mode)
	}
	if meta {
		for _, l := range n.metaLinks {
			l.SetMode(mode)
		}
	}
	return nil
}

// poll calls cond until it succeeds or ctx ends.
func poll[T any](ctx context.Context, what string, cond func() (T, error)) (T, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		v, err := cond()
		if err == nil {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("inproc: waiting for %s: %w (last: %v)", what, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// newPool returns a pool for the cluster's own requests, over TLS when
// the servers serve it.
func (c *Cluster) newPool() *rpc.Pool {
	opts := rpc.PoolOptions{ConnsPerAddr: 1}
	if c.opts.TLS.Enabled() {
		if cfg, err := tlsconf.ClientConfig(c.opts.TLS); err == nil {
			opts.TLS = func() *tls.Config { return cfg }
		}
	}
	return rpc.NewPool(opts)
}
