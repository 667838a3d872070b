package inproc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

// TestCluster runs the harness through what tests do with it: data on every
// node, a node stopped and restarted with its data, and a master cut off
// the network failed over, then healed back into the cluster.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := inproc.StartTest(t, inproc.Options{
		Proxies:    true,
		MetaConfig: func(_ int, cfg *metaserver.Config) { cfg.DownTimeout = 1500 * time.Millisecond },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "t", Partitions: 4, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	write := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			k := fmt.Appendf(nil, "k%d", i)
			wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := cl.Set(wctx, "t", k, k, 0)
			cancel()
			if err != nil {
				t.Fatalf("set %s: %v", k, err)
			}
		}
	}
	readAll := func(n int) {
		t.Helper()
		for i := range n {
			k := fmt.Appendf(nil, "k%d", i)
			if v, err := cl.Get(ctx, "t", k); err != nil || string(v) != string(k) {
				t.Fatalf("get %s: %q, %v", k, v, err)
			}
		}
	}
	write(0, 100)

	// A node stopped and restarted keeps its data and comes back UP.
	n := c.Nodes[1]
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitNodes(ctx, zppb.NodeState_UP, n.Addr); err != nil {
		t.Fatal(err)
	}
	write(100, 200)
	readAll(200)

	// The master of partition 0, cut off the network, is replaced.
	topo, err := cl.Pull(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	victim := c.Node(topo.Tables[0].Partitions[keyspace.Partition([]byte("k0"), 4)].Master)
	if err := victim.Isolate(); err != nil {
		t.Fatal(err)
	}
	// Writes go on at once: the first goes to the isolated master, which
	// never answers; its attempt times out and the call, whose deadline is
	// far off, retries at the new master once meta has failed over.
	write(200, 300)
	if err := c.WaitNodes(ctx, zppb.NodeState_DOWN, victim.Addr); err != nil {
		t.Fatal(err)
	}
	readAll(300)
	if err := victim.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitNodes(ctx, zppb.NodeState_UP, victim.Addr); err != nil {
		t.Fatal(err)
	}
	topo, err = cl.Pull(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range topo.Tables[0].Partitions {
		if p.Master == victim.Addr {
			t.Errorf("partition %d still mastered by the isolated node", p.ID)
		}
	}
}

// TestHoldSlave: a slave held on its master's tap stays connected and
// streaming as the master sees it but gets no record, while the other
// slave keeps up; released, it catches up.
func TestHoldSlave(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := inproc.StartTest(t, inproc.Options{Taps: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "t", Partitions: 1, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	topo, err := cl.Pull(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	p := topo.Tables[0].Partitions[0]
	held, other := p.Slaves[0], p.Slaves[1]
	tap := c.Node(p.Master).Tap()
	tap.SetHook(tap.HoldSlave(held))

	pool := rpc.NewPool(rpc.PoolOptions{ConnsPerAddr: 1})
	defer pool.Close()
	// peers returns the master's lsn and its slaves as it sees them.
	peers := func() (uint64, map[string]*zppb.PeerPosition) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := pool.Call(cctx, p.Master, &zppb.Request{Cmd: &zppb.Request_Info{Info: &zppb.InfoRequest{
			Section: zppb.InfoSection_INFO_REPLICATION, Table: "t",
		}}})
		if err == nil {
			err = status.FromResponse(resp)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, ri := range resp.GetInfo().GetReplication() {
			if ri.Role == "master" {
				out := make(map[string]*zppb.PeerPosition)
				for _, pp := range ri.Peers {
					out[pp.Addr] = pp
				}
				return ri.Lsn, out
			}
		}
		t.Fatalf("%s is not master of t/0", p.Master)
		return 0, nil
	}
	write := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := cl.Set(ctx, "t", fmt.Appendf(nil, "k%d", i), []byte("v"), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	// caughtUp waits until the master lists slave streaming at its lsn and
	// held streaming, and returns held's position.
	caughtUp := func(slave string) (last, heldAt uint64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var ps map[string]*zppb.PeerPosition
			last, ps = peers()
			var why string
			switch {
			case ps[slave] == nil || ps[slave].State != "streaming" || ps[slave].Lsn != last:
				why = fmt.Sprintf("master at %d, %s at %+v", last, slave, ps[slave])
			case ps[held] == nil || ps[held].State != "streaming":
				why = fmt.Sprintf("held slave %+v", ps[held])
			default:
				return last, ps[held].Lsn
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s to catch up: %s", slave, why)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// A pull already waiting on the master when the hook went in (an idle
	// slave's waits up to 30 s) may still bring the held slave records of
	// the first batch, acknowledged with its next pull; after that it gets
	// none.
	write(0, 5)
	caughtUp(other)
	write(5, 10)
	_, h1 := caughtUp(other)
	write(10, 15)
	last, h2 := caughtUp(other)
	t.Logf("held slave at %d, then %d; master at %d", h1, h2, last)
	if h2 != h1 || h2 >= last {
		t.Fatalf("held slave went from %d to %d (master at %d)", h1, h2, last)
	}
	tap.SetHook(nil)
	caughtUp(held)
}

// TestAddMeta: a meta server started by AddMeta belongs to no Raft group
// and makes none of its own, even restarted, until ADD_META adds it; then
// it serves the group's topology, and restarted it is still a member.
func TestAddMeta(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := inproc.StartTest(t, inproc.Options{Metas: 1, Nodes: -1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool := rpc.NewPool(rpc.PoolOptions{ConnsPerAddr: 1})
	defer pool.Close()
	// call sends a read-only request. The joiner restarts below: the
	// pool's connection to the old process may not have seen its EOF yet
	// when a call goes out on it, and fails; a new one reaches the new
	// process.
	call := func(addr string, req *zppb.Request) *zppb.Response {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for {
			resp, err := pool.Call(cctx, addr, req)
			if err == nil {
				return resp
			}
			if !errors.Is(err, rpc.ErrTransport) || cctx.Err() != nil {
				t.Fatal(err)
			}
		}
	}
	listMeta := &zppb.Request{Cmd: &zppb.Request_ListMeta{ListMeta: &zppb.ListMetaRequest{}}}
	pull := &zppb.Request{Cmd: &zppb.Request_Pull{Pull: &zppb.PullRequest{}}}
	// members is the Raft configuration as addr has it.
	members := func(addr string) []string {
		t.Helper()
		resp := call(addr, listMeta)
		if err := status.FromResponse(resp); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range resp.GetListMeta().GetMembers() {
			out = append(out, m.Addr+" "+m.Suffrage)
		}
		return out
	}

	j, err := c.AddMeta()
	if err != nil {
		t.Fatal(err)
	}
	if j.Index != 1 || len(c.Metas) != 2 || c.MetaAddrs()[1] != j.Addr {
		t.Fatalf("joiner %d %s; metas %v", j.Index, j.Addr, c.MetaAddrs())
	}
	// A member that bootstrapped would list itself at once.
	for range 2 {
		if m := members(j.Addr); len(m) != 0 {
			t.Fatalf("joiner not added yet lists members %v", m)
		}
		if resp := call(j.Addr, pull); resp.Code != zppb.Code_UNAVAILABLE {
			t.Fatalf("joiner not added yet: PULL %v %q, want UNAVAILABLE", resp.Code, resp.Msg)
		}
		if err := j.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := j.Restart(); err != nil {
			t.Fatal(err)
		}
	}

	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs()[:1], LazyPull: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.AddMeta(ctx, j.Addr, false); err != nil {
		t.Fatal(err)
	}
	want := []string{c.Metas[0].Addr + " voter", j.Addr + " voter"}
	if m := members(c.Metas[0].Addr); !slices.Equal(m, want) {
		t.Fatalf("members %v, want %v", m, want)
	}
	waitOK := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for resp := call(j.Addr, pull); resp.Code != zppb.Code_OK; resp = call(j.Addr, pull) {
			if time.Now().After(deadline) {
				t.Fatalf("added joiner: PULL %v %q", resp.Code, resp.Msg)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitOK()
	if err := j.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := j.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	waitOK()
	if m := members(j.Addr); !slices.Equal(m, want) {
		t.Fatalf("restarted joiner lists %v, want %v", m, want)
	}
}

// TestTwoMetas: a group of two has a leader only while both run; with one
// stopped, WaitLeader's error says that too few voters run.
func TestTwoMetas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := inproc.StartTest(t, inproc.Options{Metas: 2, Nodes: -1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The leader, not the follower: a leader goes on leading for a lease
	// after losing its quorum.
	if err := c.Metas[l].Stop(); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = c.WaitLeader(wctx)
	wcancel()
	t.Log(err)
	if err == nil {
		t.Fatal("a leader with one of two meta servers stopped")
	}
	for _, want := range []string{"1 of the group's 2 voters run, and a Raft leader needs 2", c.Metas[l].Addr + " stopped", c.Metas[1-l].Addr + " Candidate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := c.Metas[l].Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
}
