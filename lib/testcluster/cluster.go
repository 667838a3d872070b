package testcluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/failpoint"
	"github.com/zeppelin-kv/zeppelin/lib/freeport"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// KeepDirEnv names a directory under which clusters keep their data and logs
// after the test, for debugging; by default they go with the test's temp dir.
const KeepDirEnv = "ZP_TEST_KEEP"

// Options configures a Cluster.
type Options struct {
	// Metas is the number of meta servers; default 3.
	Metas int
	// Nodes is the number of node servers; default 3.
	Nodes int
	// MetaArgs and NodeArgs are extra flags for every zpmeta and zpnode.
	MetaArgs, NodeArgs []string
	// NodeArgsFor, when set, gives extra flags for the i-th node (from 0,
	// counting nodes added later), e.g. its zone.
	NodeArgsFor func(i int) []string
	// StartTimeout bounds waiting for a leader and for nodes to be UP;
	// default 60s.
	StartTimeout time.Duration
	// Proxies puts controllable TCP proxies around every node: one in
	// front of it (clients and other nodes reach it through that) and one
	// on its way to each meta server, so a test can cut it off from meta,
	// from everyone else, or both (Process.CutFromMeta and friends).
	Proxies bool
	// Metrics gives every process a Prometheus /metrics port
	// (Process.MetricsAddr).
	Metrics bool
	// Redis gives every node a RESP port (Process.RedisAddr,
	// --redis-addr), which it reports to meta.
	Redis bool
	// Scheduler runs meta's scheduler (zpmeta --scheduler): repairs and
	// master balance make moves of their own, which tests of other things
	// do not expect, so it is off unless asked for.
	Scheduler bool
	// Failpoints lets the test hold processes at the points of
	// lib/failpoint (Cluster.Arm, HeldBy, Release).
	Failpoints bool
}

// Cluster is a set of real zpmeta and zpnode processes on 127.0.0.1.
type Cluster struct {
	t     testing.TB
	opts  Options
	dir   string
	bin   string
	Metas []*Process
	Nodes []*Process
	pool  *rpc.Pool
	// failpoints is the directory of armed points (Options.Failpoints).
	failpoints string
}

// Start starts the cluster and waits until the meta group has a leader and
// every node is UP. The test's cleanup kills every process.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Metas <= 0 {
		opts.Metas = 3
	}
	if opts.Nodes < 0 {
		opts.Nodes = 0
	} else if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	bin, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if keep := os.Getenv(KeepDirEnv); keep != "" {
		// Debugging: keep data and logs after the test.
		var err error
		if dir, err = os.MkdirTemp(keep, strings.ReplaceAll(t.Name(), "/", "_")+"-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("cluster data and logs kept in %s", dir)
	}
	c := &Cluster{t: t, opts: opts, dir: dir, bin: bin, pool: rpc.NewPool(rpc.PoolOptions{ConnsPerAddr: 1})}
	t.Cleanup(c.cleanup)
	if opts.Failpoints {
		c.failpoints = filepath.Join(dir, "failpoints")
		if err := os.Mkdir(c.failpoints, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	metaAddrs := c.freeAddrs(opts.Metas)
	for _, addr := range metaAddrs {
		c.startMeta(addr, "--peers", strings.Join(metaAddrs, ","))
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.StartTimeout)
	defer cancel()
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for range opts.Nodes {
		c.addNode()
	}
	if err := c.WaitNodesUp(ctx, c.NodeAddrs()...); err != nil {
		t.Fatal(err)
	}
	return c
}

// StartJoiningMeta starts one more zpmeta, without bootstrapping
// (--bootstrap=false), for a test to add to the running group (ADD_META),
// and waits until it answers LIST_META. It is appended to Metas, so nodes
// started later list it; it answers nothing else until the group has added
// it.
func (c *Cluster) StartJoiningMeta() *Process {
	c.t.Helper()
	p := c.startMeta(c.freeAddrs(1)[0], "--bootstrap=false")
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.StartTimeout)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		_, err := c.Call(cctx, p.Addr, &zppb.Request{Cmd: &zppb.Request_ListMeta{ListMeta: &zppb.ListMetaRequest{}}})
		ccancel()
		if err == nil {
			return p
		}
		if werr := pollWait(ctx); werr != nil {
			c.t.Fatalf("testcluster: %s does not answer: %v", p.Name, err)
		}
	}
}

// startMeta starts a zpmeta on addr with the cluster's meta flags and extra.
func (c *Cluster) startMeta(addr string, extra ...string) *Process {
	c.t.Helper()
	name := fmt.Sprintf("zpmeta-%d", len(c.Metas)+1)
	args := append([]string{"--addr", addr, "--data", filepath.Join(c.dir, name), "--log-level", "debug",
		fmt.Sprintf("--scheduler=%t", c.opts.Scheduler)}, extra...)
	args = append(args, c.opts.MetaArgs...)
	p := newProcess(filepath.Join(c.bin, "zpmeta"), c.dir, name, addr, args)
	c.withMetrics(p)
	c.withFailpoints(p)
	c.Metas = append(c.Metas, p)
	c.start(p, addr)
	return p
}

// AddNode starts one more node and waits until meta has it UP.
func (c *Cluster) AddNode() *Process {
	c.t.Helper()
	p := c.addNode()
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.StartTimeout)
	defer cancel()
	if err := c.WaitNodesUp(ctx, p.Addr); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func (c *Cluster) addNode() *Process {
	c.t.Helper()
	addrs := c.freeAddrs(2)
	addr, listen := addrs[0], addrs[0]
	name := fmt.Sprintf("zpnode-%d", len(c.Nodes)+1)
	metas := c.MetaAddrs()
	var inbound *Proxy
	var links []*Proxy
	if c.opts.Proxies {
		listen = addrs[1]
		var err error
		if inbound, err = NewProxy(addr, listen); err != nil {
			c.t.Fatal(err)
		}
		c.t.Cleanup(func() { inbound.Close() })
		// The links' ports come from freeAddrs too: a port the kernel
		// picked for ":0" may be one handed out to a process that has
		// not bound it yet.
		for i, m := range metas {
			link, err := NewProxy(c.freeAddrs(1)[0], m)
			if err != nil {
				c.t.Fatal(err)
			}
			c.t.Cleanup(func() { link.Close() })
			links = append(links, link)
			metas[i] = link.Addr()
		}
	}
	args := append([]string{
		"--addr", addr, "--listen", listen, "--meta", strings.Join(metas, ","),
		"--data", filepath.Join(c.dir, name), "--log-level", "debug",
		"--ping-interval", "200ms",
	}, c.opts.NodeArgs...)
	if c.opts.NodeArgsFor != nil {
		args = append(args, c.opts.NodeArgsFor(len(c.Nodes))...)
	}
	p := newProcess(filepath.Join(c.bin, "zpnode"), c.dir, name, addr, args)
	p.Inbound, p.MetaLinks = inbound, links
	c.withMetrics(p)
	c.withFailpoints(p)
	if c.opts.Redis {
		p.RedisAddr = c.freeAddrs(1)[0]
		p.args = append(p.args, "--redis-addr", p.RedisAddr)
	}
	c.Nodes = append(c.Nodes, p)
	c.start(p, listen)
	return p
}

// start starts p and waits until it listens on addr (and its metrics
// port): only then are the ports it was given surely its own.
func (c *Cluster) start(p *Process, addr string) {
	c.t.Helper()
	if err := p.Start(); err != nil {
		c.t.Fatal(err)
	}
	addrs := []string{addr}
	if p.MetricsAddr != "" {
		addrs = append(addrs, p.MetricsAddr)
	}
	if err := p.waitListening(c.opts.StartTimeout, addrs...); err != nil {
		c.t.Fatal(err)
	}
}

// withMetrics gives p a metrics port when the cluster has them.
func (c *Cluster) withMetrics(p *Process) {
	if c.opts.Metrics {
		p.MetricsAddr = c.freeAddrs(1)[0]
		p.args = append(p.args, "--metrics-addr", p.MetricsAddr)
	}
}

// withFailpoints lets p be held at failpoints when the cluster has them.
func (c *Cluster) withFailpoints(p *Process) {
	if c.failpoints != "" {
		p.env = append(p.env, failpoint.DirEnv+"="+c.failpoints)
	}
}

// Arm makes every process that reaches failpoint name wait there until
// Release (Options.Failpoints).
func (c *Cluster) Arm(name string) {
	c.t.Helper()
	if c.failpoints == "" {
		c.t.Fatal("testcluster: Arm without Options.Failpoints")
	}
	if err := os.WriteFile(filepath.Join(c.failpoints, name), nil, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// Release lets the processes held at failpoint name go on, and those that
// reach it later pass.
func (c *Cluster) Release(name string) {
	c.t.Helper()
	if c.failpoints == "" || name == "" {
		return
	}
	if err := os.Remove(filepath.Join(c.failpoints, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.t.Fatal(err)
	}
}

// HeldBy reports whether p, running, waits at failpoint name.
func (c *Cluster) HeldBy(name string, p *Process) bool {
	pid := p.Pid()
	if c.failpoints == "" || pid == 0 {
		return false
	}
	_, err := os.Stat(failpoint.HeldPath(c.failpoints, name, pid))
	return err == nil
}

// Binary is the path of the zpmeta or zpnode binary the cluster runs.
func (c *Cluster) Binary(name string) string { return filepath.Join(c.bin, name) }

// MetaAddrs are the meta servers' addresses.
func (c *Cluster) MetaAddrs() []string { return addrs(c.Metas) }

// RedisAddrs are the nodes' RESP addresses (Options.Redis).
func (c *Cluster) RedisAddrs() []string {
	out := make([]string, len(c.Nodes))
	for i, p := range c.Nodes {
		out[i] = p.RedisAddr
	}
	return out
}

// NodeAddrs are the nodes' addresses.
func (c *Cluster) NodeAddrs() []string { return addrs(c.Nodes) }

// NodeByAddr returns the node listening on addr, or nil.
func (c *Cluster) NodeByAddr(addr string) *Process {
	for _, p := range c.Nodes {
		if p.Addr == addr {
			return p
		}
	}
	return nil
}

func addrs(ps []*Process) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Addr
	}
	return out
}

// Call sends one request to addr and returns the response, or the response's
// code as an error.
func (c *Cluster) Call(ctx context.Context, addr string, req *zppb.Request) (*zppb.Response, error) {
	resp, err := c.pool.Call(ctx, addr, req)
	if err != nil {
		return nil, err
	}
	return resp, status.FromResponse(resp)
}

// WaitLeader returns the index in Metas of the member a running member
// names as leader, polling until ctx ends.
func (c *Cluster) WaitLeader(ctx context.Context) (int, error) {
	var last error
	for {
		for _, p := range c.Metas {
			if !p.Running() {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			resp, err := c.Call(cctx, p.Addr, &zppb.Request{Cmd: &zppb.Request_ListMeta{ListMeta: &zppb.ListMetaRequest{}}})
			cancel()
			if err != nil {
				last = err
				continue
			}
			leader := resp.GetListMeta().GetLeader()
			for i, m := range c.Metas {
				if m.Addr == leader && m.Running() {
					return i, nil
				}
			}
			last = fmt.Errorf("%s reports leader %q", p.Name, leader)
		}
		if err := pollWait(ctx); err != nil {
			return -1, fmt.Errorf("testcluster: no meta leader: %w (last: %v)", err, last)
		}
	}
}

// WaitNodesUp polls meta until every node in addrs is UP.
func (c *Cluster) WaitNodesUp(ctx context.Context, addrs ...string) error {
	return c.waitNodes(ctx, zppb.NodeState_UP, addrs)
}

// WaitNodesDown polls meta until every node in addrs is DOWN.
func (c *Cluster) WaitNodesDown(ctx context.Context, addrs ...string) error {
	return c.waitNodes(ctx, zppb.NodeState_DOWN, addrs)
}

func (c *Cluster) waitNodes(ctx context.Context, want zppb.NodeState, addrs []string) error {
	var last error
	for {
		nodes, err := c.ListNodes(ctx)
		if err == nil {
			state := make(map[string]zppb.NodeState, len(nodes))
			for _, n := range nodes {
				state[n.Addr] = n.State
			}
			missing := []string{}
			for _, a := range addrs {
				if state[a] != want {
					missing = append(missing, fmt.Sprintf("%s=%v", a, state[a]))
				}
			}
			if len(missing) == 0 {
				return nil
			}
			last = fmt.Errorf("not %v: %s", want, strings.Join(missing, ", "))
		} else {
			last = err
		}
		if err := pollWait(ctx); err != nil {
			return fmt.Errorf("testcluster: waiting for nodes %v: %w (last: %v)", want, err, last)
		}
	}
}

// ListNodes asks the running meta servers in turn for the node list.
func (c *Cluster) ListNodes(ctx context.Context) ([]*zppb.Node, error) {
	resp, err := c.CallMeta(ctx, &zppb.Request{Cmd: &zppb.Request_ListNodes{ListNodes: &zppb.ListNodesRequest{}}})
	if err != nil {
		return nil, err
	}
	return resp.GetListNodes().GetNodes(), nil
}

// CallMeta sends req to the running meta servers in turn until one answers
// without a transport error.
func (c *Cluster) CallMeta(ctx context.Context, req *zppb.Request) (*zppb.Response, error) {
	var last error = fmt.Errorf("testcluster: no meta server running")
	for _, p := range c.Metas {
		if !p.Running() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := c.Call(cctx, p.Addr, req)
		cancel()
		if err == nil || !rpc.IsTransport(err) {
			return resp, err
		}
		last = err
	}
	return nil, last
}

// pollWait waits one poll interval or until ctx ends.
func pollWait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(50 * time.Millisecond):
		return nil
	}
}

// Poll calls cond every 50ms until it returns nil or timeout passes, and
// fails the test with cond's last error then.
func Poll(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		err := cond()
		if err == nil {
			return
		}
		if pollWait(ctx) != nil {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
	}
}

func (c *Cluster) cleanup() {
	for _, p := range append(append([]*Process{}, c.Nodes...), c.Metas...) {
		if err := p.Kill(); err != nil {
			c.t.Logf("%v", err)
		}
	}
	c.pool.Close()
	if c.t.Failed() || os.Getenv("ZP_TEST_LOGS") != "" {
		for _, p := range append(append([]*Process{}, c.Metas...), c.Nodes...) {
			c.t.Logf("---- last lines of %s (%s) ----\n%s", p.Name, p.Addr, p.LogTail(40))
		}
	}
}

// freeAddrs returns n 127.0.0.1 addresses whose ports were free a moment
// ago, that no cluster of this process has had before, and that the
// kernel does not hand out on its own while a process of the cluster is
// down for a restart (lib/freeport).
func (c *Cluster) freeAddrs(n int) []string {
	c.t.Helper()
	addrs, err := freeport.Addrs(n)
	if err != nil {
		c.t.Fatal(err)
	}
	return addrs
}
