package survey

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/client/clienttest"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func newClient(t *testing.T, cl *clienttest.Cluster) *client.Client {
	t.Helper()
	c, err := client.New(context.Background(), client.Options{MetaAddrs: cl.MetaAddrs(), Logger: slog.New(slog.DiscardHandler), DefaultTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTake(t *testing.T) {
	cl := clienttest.NewCluster(t, 2, 3)
	cl.AddTable("t", 3)
	c := newClient(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Set(ctx, "t", []byte("foo"), []byte("bar"), 0); err != nil {
		t.Fatal(err)
	}
	loc, err := c.Locate(ctx, "t", []byte("foo"))
	if err != nil {
		t.Fatal(err)
	}
	// The slave of foo's partition lags by the one write: its node
	// answers with lsn 0.
	slave := cl.Node(loc.Slaves[0])
	slave.SetHook(func(req *zppb.Request) *zppb.Response {
		resp := slave.Handle(req)
		for _, ri := range resp.GetInfo().GetReplication() {
			if ri.Partition == loc.Partition {
				ri.Lsn = 0
			}
		}
		return resp
	})
	cl.Metas[1].Stop()

	s := Take(ctx, c, Options{NodeTimeout: 2 * time.Second})
	if s.Topology == nil || s.Meta == nil || len(s.Nodes) != 3 || s.Epoch() != cl.Epoch() {
		t.Fatalf("snapshot %+v", s)
	}
	if s.Meta.Members[1].Reachable {
		t.Fatal("stopped meta server reachable")
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
	cl.Node(loc.Master).Stop()
	s = Take(ctx, c, Options{SkipMeta: true, Sections: []zppb.InfoSection{zppb.InfoSection_INFO_REPLICATION}})
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
	cl := clienttest.NewCluster(t, 1, 3)
	cl.AddTable("t", 3)
	c := newClient(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tb := cl.Topology().Tables[0]
	if _, err := c.SetMaster(ctx, "t", 0, tb.Partitions[0].Slaves[0], 0); err != nil {
		t.Fatal(err)
	}
	if s := Take(ctx, c, Options{SkipMeta: true}); s.Moves != nil || s.MovesErr != nil {
		t.Fatalf("moves asked: %v %v", s.Moves, s.MovesErr)
	}
	s := Take(ctx, c, Options{SkipMeta: true, Moves: true})
	if s.MovesErr != nil || len(s.Moves) != 1 || s.Moves[0].GetKind() != zppb.MoveKind_SETMASTER || s.Moves[0].GetState() != zppb.MoveState_MOVE_CATCHING_UP {
		t.Fatalf("moves %v, %v", s.Moves, s.MovesErr)
	}
}
