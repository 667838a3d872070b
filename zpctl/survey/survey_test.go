package survey

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// The snapshots are of real servers (lib/inproc), each test's own: they
// stop servers and list every table.

func newClient(t *testing.T, cl *inproc.Cluster) *client.Client {
	t.Helper()
	c, err := client.New(context.Background(), client.Options{MetaAddrs: cl.MetaAddrs(), Logger: slog.New(slog.DiscardHandler), DefaultTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// addTable creates table t, of 3 partitions of 2 replicas, and waits
// until it is writable.
func addTable(ctx context.Context, t *testing.T, c *client.Client) {
	t.Helper()
	if _, err := c.CreateTable(ctx, client.TableSpec{Name: "t", Partitions: 3, Replicas: 2}); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitTableWritable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
}

// streamed reports whether the node at addr streams its replica of
// t/partition and has its first record.
func streamed(ctx context.Context, c *client.Client, addr string, partition uint32) bool {
	info, err := c.Info(ctx, addr, client.InfoReplication, "t")
	if err != nil {
		return false
	}
	for _, ri := range info.Replication {
		if ri.Partition == partition && ri.State == "streaming" && ri.LSN >= 1 {
			return true
		}
	}
	return false
}

func TestTake(t *testing.T) {
	cl := inproc.StartTest(t, inproc.Options{Taps: true})
	c := newClient(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addTable(ctx, t, c)
	if err := c.Set(ctx, "t", []byte("foo"), []byte("bar"), 0); err != nil {
		t.Fatal(err)
	}
	loc, err := c.Locate(ctx, "t", []byte("foo"))
	if err != nil {
		t.Fatal(err)
	}
	// WaitTableWritable waits for masters only: wait for the slave to
	// stream the write, so that its INFO describes the replica.
	deadline := time.Now().Add(15 * time.Second)
	for !streamed(ctx, c, loc.Slaves[0], loc.Partition) {
		if time.Now().After(deadline) {
			t.Fatalf("slave %s of t/%d does not stream lsn 1", loc.Slaves[0], loc.Partition)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The slave of foo's partition lags by the one write: its node's
	// INFO says lsn 0.
	slave := cl.Node(loc.Slaves[0]).Tap()
	slave.SetHook(func(req *zppb.Request) *zppb.Response {
		if req.GetInfo() == nil {
			return nil
		}
		resp, err := slave.Forward(ctx, req)
		if err != nil {
			return nil
		}
		for _, ri := range resp.GetInfo().GetReplication() {
			if ri.GetPartition() == loc.Partition {
				ri.Lsn = 0
			}
		}
		return resp
	})
	leader, err := cl.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stopped := cl.Metas[(leader+1)%3]
	if err := stopped.Stop(); err != nil {
		t.Fatal(err)
	}
	topo, err := c.Pull(ctx, "")
	if err != nil {
		t.Fatal(err)
	}

	s := Take(ctx, c, Options{NodeTimeout: 2 * time.Second})
	if s.Topology == nil || s.Meta == nil || len(s.Nodes) != 3 || s.Epoch() != topo.Epoch {
		t.Fatalf("snapshot %+v", s)
	}
	for _, m := range s.Meta.Members {
		if m.Reachable == (m.Addr == stopped.Addr) {
			t.Fatalf("member %+v reachable = %v, stopped %s", m, m.Reachable, stopped.Addr)
		}
	}
	for i := 1; i < len(s.Nodes); i++ {
		if s.Nodes[i-1].Addr >= s.Nodes[i].Addr {
			t.Fatal("nodes not sorted")
		}
	}
	tb, ok := s.Table("t")
	if !ok {
		t.Fatal("no table t")
	}
	reps := s.Replicas(tb, tb.Partitions[loc.Partition])
	if len(reps) != 2 || reps[0].Role != "master" || reps[0].Addr != loc.Master || reps[0].LSN != 1 || reps[0].Lag != 0 {
		t.Fatalf("master replica %+v", reps)
	}
	if r := reps[1]; r.Role != "slave" || !r.Reported || r.State != "streaming" || r.Lag != 1 || r.NodeState != "UP" {
		t.Fatalf("slave replica %+v", r)
	}

	loads := s.Loads("t")
	masters, replicas := 0, 0
	for _, l := range loads {
		masters += l.Masters
		replicas += l.Replicas
	}
	if masters != 3 || replicas != 6 {
		t.Fatalf("loads %+v", loads)
	}

	// A node that does not answer: its replicas say why.
	if err := cl.Node(loc.Master).Stop(); err != nil {
		t.Fatal(err)
	}
	s = Take(ctx, c, Options{SkipMeta: true, Sections: []client.InfoSection{client.InfoReplication}})
	if s.Meta != nil {
		t.Fatal("meta asked")
	}
	reps = s.Replicas(tb, tb.Partitions[loc.Partition])
	if reps[0].Reported || reps[0].Error == "" || s.Node(loc.Master).Err == nil {
		t.Fatalf("stopped master %+v", reps[0])
	}
	if s.Node("nosuch") != nil || s.ReplicaInfo("nosuch", "t", 0) != nil {
		t.Fatal("unknown node found")
	}
}

func TestTakeMoves(t *testing.T) {
	cl := inproc.StartTest(t, inproc.Options{Taps: true})
	c := newClient(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addTable(ctx, t, c)
	topo, err := c.Pull(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	p := topo.Tables[0].Partitions[0]
	// The slave stops getting the master's binlog and misses a write, so
	// that the SETMASTER to it cannot hand over: it stays CATCHING_UP, or
	// SLOWDOWN or STUCK when the master counts the slave one record
	// behind.
	cl.Node(p.Master).Tap().SetHook(func(req *zppb.Request) *zppb.Response {
		if req.GetBinlogPull() != nil {
			return inproc.NoAnswer
		}
		return nil
	})
	var key []byte
	for i := 0; key == nil; i++ {
		k := fmt.Appendf(nil, "k%d", i)
		if keyspace.Partition(k, 3) == 0 {
			key = k
		}
	}
	if err := c.Set(ctx, "t", key, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetMaster(ctx, "t", 0, p.Slaves[0], 0); err != nil {
		t.Fatal(err)
	}
	if s := Take(ctx, c, Options{SkipMeta: true}); s.Moves != nil || s.MovesErr != nil {
		t.Fatalf("moves asked: %v %v", s.Moves, s.MovesErr)
	}
	// Meta starts the move a moment after queueing it.
	for {
		moves, err := c.MoveStatus(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(moves) == 1 && moves[0].State != client.MovePending {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s := Take(ctx, c, Options{SkipMeta: true, Moves: true})
	if s.MovesErr != nil || len(s.Moves) != 1 || s.Moves[0].Kind != client.MoveSetMaster || !s.Moves[0].State.Running() {
		t.Fatalf("moves %v, %v", s.Moves, s.MovesErr)
	}
}

// TestSetStarting: a node's start-up progress comes from the meta
// leader's list only, what the node had before is dropped.
func TestSetStarting(t *testing.T) {
	p := &client.StartupProgress{Opened: 1, Total: 2}
	pulled := func() []NodeReport {
		return []NodeReport{{Node: client.Node{Addr: "a", Starting: p}}, {Node: client.Node{Addr: "b"}}}
	}
	tests := []struct {
		name   string
		listed []client.Node
		want   map[string]bool
	}{
		{"not asked or no answer", nil, map[string]bool{"a": false, "b": false}},
		{"a started since", []client.Node{{Addr: "a"}, {Addr: "b"}}, map[string]bool{"a": false, "b": false}},
		{"b starting", []client.Node{{Addr: "a"}, {Addr: "b", Starting: p}}, map[string]bool{"a": false, "b": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes := pulled()
			setStarting(nodes, tt.listed)
			for _, n := range nodes {
				if got := n.Starting != nil; got != tt.want[n.Addr] {
					t.Errorf("%s starting: %v, want %v", n.Addr, got, tt.want[n.Addr])
				}
			}
		})
	}
}

func TestStartupText(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    client.StartupProgress
		want string
	}{
		{"none opened yet", client.StartupProgress{Total: 10000, ElapsedMs: 1000}, "opened 0 of 10,000 replicas"},
		{"under way", client.StartupProgress{Opened: 4512, Total: 10000, ElapsedMs: 5000}, "opened 4,512 of 10,000 replicas, 902/s, ETA 6s"},
		{"all opened", client.StartupProgress{Opened: 10, Total: 10, ElapsedMs: 1000}, "opened 10 of 10 replicas, 10/s, ETA 0s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := StartupText(tt.p); got != tt.want {
				t.Errorf("StartupText(%+v) = %q, want %q", tt.p, got, tt.want)
			}
		})
	}
}
