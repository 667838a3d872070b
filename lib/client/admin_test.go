package client

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestTableLifecycle(t *testing.T) {
	cl := sharedCluster(t)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	users := cl.tableName("")

	tb, err := c.CreateTable(ctx, TableSpec{Name: users, Partitions: 4, Replicas: 3, MinSyncReplicas: 1})
	if err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	if tb.Name != users || tb.PartitionCount != 4 || tb.Replicas != 3 || tb.MinSyncReplicas != 1 || len(tb.Partitions) != 4 {
		t.Fatalf("created %+v", tb)
	}
	if p := tb.Partitions[3]; p.SlotBegin != 12288 || p.SlotEnd != 16384 || p.State != "ACTIVE" || len(p.Slaves) != 2 {
		t.Fatalf("partition 3 = %+v", p)
	}
	if _, err := c.CreateTable(ctx, TableSpec{Name: users, Partitions: 4, Replicas: 3}); !errors.Is(err, status.ErrTableExists) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("second CreateTable: %v, want TABLE_EXISTS", err)
	}
	if _, err := c.CreateTable(ctx, TableSpec{Name: cl.tableName("-x"), Partitions: 4, Replicas: 3, ExpectedEpoch: 1}); !errors.Is(err, status.ErrStaleEpoch) {
		t.Fatalf("CreateTable at a stale epoch: %v", err)
	}

	// The new table is usable at once: the client PULLs it.
	if err := c.WaitTableWritable(ctx, users); err != nil {
		t.Fatalf("WaitTableWritable: %v", err)
	}
	if err := c.Set(ctx, users, []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}

	// The listing is of one epoch, one that has the table: the member
	// asked may be a follower a step behind the leader.
	cl.waitMetasAt(tb.CreatedEpoch)
	tables, epoch, err := c.ListTables(ctx)
	i := slices.IndexFunc(tables, func(tb Table) bool { return tb.Name == users })
	if err != nil || i < 0 || epoch < tables[i].CreatedEpoch || epoch > cl.epoch() {
		t.Fatalf("ListTables = %+v, %d, %v", tables, epoch, err)
	}
	nodes, _, err := c.ListNodes(ctx)
	if err != nil || len(nodes) != 3 || nodes[0].State != "UP" {
		t.Fatalf("ListNodes = %+v, %v", nodes, err)
	}
	for i := 1; i < len(nodes); i++ {
		if nodes[i-1].Addr > nodes[i].Addr {
			t.Fatal("nodes not sorted")
		}
	}

	if _, err := c.DropTable(ctx, users, 0); err != nil {
		t.Fatalf("DropTable: %v", err)
	}
	if _, err := c.DropTable(ctx, users, 0); !errors.Is(err, status.ErrTableNotFound) {
		t.Fatalf("second DropTable: %v", err)
	}
	if _, err := c.Get(ctx, users, []byte("k")); !errors.Is(err, status.ErrTableNotFound) {
		t.Fatalf("Get after drop: %v", err)
	}
}

func TestTableSpecValidation(t *testing.T) {
	tests := []struct {
		name string
		spec TableSpec
	}{
		{"no name", TableSpec{Partitions: 1, Replicas: 1}},
		{"no partitions", TableSpec{Name: "t", Replicas: 1}},
		{"too many partitions", TableSpec{Name: "t", Partitions: 16385, Replicas: 1}},
		{"min sync not below replicas", TableSpec{Name: "t", Partitions: 1, Replicas: 2, MinSyncReplicas: 2}},
		{"min sync not below the default replicas", TableSpec{Name: "t", Partitions: 1, MinSyncReplicas: 3}},
		{"name with a slash", TableSpec{Name: "a/b", Partitions: 1, Replicas: 1}},
		{"name starting with a dot", TableSpec{Name: ".t", Partitions: 1, Replicas: 1}},
	}
	cl := sharedCluster(t)
	c := newTestClient(t, cl)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.CreateTable(testCtx(t), tt.spec); !errors.Is(err, status.ErrInvalidArgument) {
				t.Fatalf("CreateTable(%+v) = %v, want INVALID_ARGUMENT", tt.spec, err)
			}
		})
	}
	if got := cl.metaCalls("create_table"); got != 0 {
		t.Fatalf("%d invalid specs reached a meta server", got)
	}
	// Replicas 0 is the meta servers' default, here as there.
	tb, err := c.CreateTable(testCtx(t), TableSpec{Name: cl.tableName(""), Partitions: 1, MinSyncReplicas: 2})
	if err != nil || tb.Replicas != topo.DefaultReplicas {
		t.Fatalf("CreateTable with replicas 0: %+v, %v; want %d replicas", tb, err, topo.DefaultReplicas)
	}
}

// Meta writes go through leader elections: NO_LEADER is retried.
func TestCreateTableRetriesNoLeader(t *testing.T) {
	cl := sharedCluster(t)
	// Two members reachable, each answering NO_LEADER twice.
	cl.Metas[2].Close()
	c := newTestClient(t, cl)
	for _, m := range cl.Metas[:2] {
		m.SetHook(times(2, "create_table", func(*zppb.Request) *zppb.Response {
			return &zppb.Response{Code: zppb.Code_NO_LEADER, Msg: "election"}
		}))
	}
	if _, err := c.CreateTable(testCtx(t), TableSpec{Name: cl.tableName(""), Partitions: 1, Replicas: 1}); err != nil {
		t.Fatalf("CreateTable through an election: %v", err)
	}
	if got := cl.metaCalls("create_table"); got != 5 {
		t.Fatalf("%d create calls, want 5 (4 NO_LEADER, 1 OK)", got)
	}
}

// A creation whose first attempt may have been applied reports
// TABLE_EXISTS as possibly its own doing: when the reply is lost, and when
// the meta server answers that it stopped waiting for the commit.
func TestCreateTableAmbiguousExists(t *testing.T) {
	tests := []struct {
		name string
		// lose turns the answer to the first, applied, attempt into
		// what the client gets.
		lose func(m *inproc.Tap, resp *zppb.Response) *zppb.Response
	}{
		{"reply lost", func(m *inproc.Tap, resp *zppb.Response) *zppb.Response {
			m.CloseConns()
			return resp
		}},
		{"commit not awaited", func(_ *inproc.Tap, _ *zppb.Response) *zppb.Response {
			return &zppb.Response{Code: zppb.Code_TIMEOUT, Msg: "deadline passed waiting for the command to commit; it may still apply", OutcomeUnknown: true}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := sharedCluster(t)
			c := newTestClient(t, cl)
			var once sync.Once
			for _, m := range cl.Metas {
				m.SetHook(func(req *zppb.Request) *zppb.Response {
					if cmdOf(req) != "create_table" {
						return nil
					}
					var resp *zppb.Response
					once.Do(func() {
						var err error
						if resp, err = m.Forward(testCtx(t), req); err != nil {
							resp = &zppb.Response{Code: zppb.Code_ERROR, Msg: err.Error()}
						}
						resp = tt.lose(m, resp)
					})
					return resp
				})
			}
			_, err := c.CreateTable(testCtx(t), TableSpec{Name: cl.tableName(""), Partitions: 1, Replicas: 1})
			if !errors.Is(err, ErrUnknownOutcome) || !errors.Is(err, status.ErrTableExists) {
				t.Fatalf("CreateTable = %v, want TABLE_EXISTS wrapped with ErrUnknownOutcome", err)
			}
			if got := cl.metaCalls("create_table"); got != 2 {
				t.Fatalf("%d create calls, want 2", got)
			}
		})
	}
}

func TestListMetaShowsWhoIsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of its own")
	}
	// Meta servers alone: the test stops them.
	cl := ownCluster(t, -1)
	// The client knows the members by their own addresses, as the
	// membership does.
	c := newTestClient(t, cl, func(o *Options) { o.MetaAddrs = cl.Cluster.MetaAddrs() })
	leader, err := cl.WaitLeader(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	down := cl.Cluster.Metas[(leader+1)%3]
	if err := down.Stop(); err != nil {
		t.Fatal(err)
	}
	st, err := c.ListMeta(testCtx(t))
	if err != nil {
		t.Fatalf("ListMeta: %v", err)
	}
	leaderAddr := cl.Cluster.Metas[leader].Addr
	if st.Leader != leaderAddr || st.Epoch != cl.epoch() || len(st.Members) != 3 {
		t.Fatalf("ListMeta = %+v", st)
	}
	for i, m := range st.Members {
		down := m.Addr == down.Addr
		known := slices.Contains(cl.Cluster.MetaAddrs(), m.Addr)
		if !known || m.Reachable == down || (m.Error != "") != down || m.Leader != (m.Addr == leaderAddr) || m.Suffrage != "voter" {
			t.Fatalf("member %d = %+v", i, m)
		}
		want := "Follower"
		if m.Leader {
			want = "Leader"
		}
		if !down && m.State != want {
			t.Fatalf("member %d state %q, want %q", i, m.State, want)
		}
	}

	for _, m := range cl.Cluster.Metas {
		if err := m.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	st, err = c.ListMeta(testCtx(t))
	if !errors.Is(err, ErrMetaUnreachable) || st == nil || len(st.Members) != 3 {
		t.Fatalf("ListMeta with all down = %+v, %v", st, err)
	}
	for _, m := range st.Members {
		if m.Reachable || m.Error == "" {
			t.Fatalf("member %+v reachable with all down", m)
		}
	}
}

// TestNewerView: ListMeta takes the membership from the leader within a
// term, since a follower may not have the latest change yet.
func TestNewerView(t *testing.T) {
	view := func(term uint64, state string, commit uint64) *zppb.ListMetaResponse {
		return &zppb.ListMetaResponse{Term: term, State: state, CommitIndex: commit}
	}
	tests := []struct {
		name string
		a, b *zppb.ListMetaResponse
		want bool
	}{
		{"higher term", view(3, "Follower", 5), view(2, "Leader", 9), true},
		{"lower term", view(2, "Leader", 9), view(3, "Follower", 5), false},
		{"leader in the same term", view(3, "Leader", 5), view(3, "Follower", 9), true},
		{"follower in the same term", view(3, "Follower", 9), view(3, "Leader", 5), false},
		{"higher commit between followers", view(3, "Follower", 9), view(3, "Follower", 5), true},
		{"equal", view(3, "Follower", 5), view(3, "Follower", 5), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newerView(tt.a, tt.b); got != tt.want {
				t.Fatalf("newerView = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWaitTableWritable(t *testing.T) {
	cl := sharedCluster(t)
	c := newTestClient(t, cl)
	tb := cl.tableName("")
	created, err := cl.admin.CreateTable(testCtx(t), TableSpec{Name: tb, Partitions: 8, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Another client created it: this one learns of it from whichever
	// member it asks, once that member has it.
	cl.waitMetasAt(created.CreatedEpoch)
	// One node is still opening its replicas, for real and then for six
	// more probes.
	cl.Nodes[1].Tap().SetHook(times(6, "exists", func(*zppb.Request) *zppb.Response {
		return &zppb.Response{Code: zppb.Code_WAIT}
	}))
	if err := c.WaitTableWritable(testCtx(t), tb); err != nil {
		t.Fatal(err)
	}
	if got := cl.calls("exists"); got < 8+6 {
		t.Fatalf("%d probes, want at least 14", got)
	}

	// A partition without a master never becomes writable. Meta leaves
	// none only in a failure the test cannot cause on cue (every replica
	// lost): the metas' PULL answers say so in its place.
	for _, m := range cl.Metas {
		m.SetHook(func(req *zppb.Request) *zppb.Response {
			if cmdOf(req) != "pull" {
				return nil
			}
			// The whole topology, as a meta that knows no deltas
			// answers: the table is in it, unchanged or not.
			req.GetPull().SinceEpoch = 0
			resp, err := m.Forward(testCtx(t), req)
			if err != nil {
				return nil
			}
			for _, table := range resp.GetPull().GetTopology().GetTables() {
				if table.Name == tb {
					table.Partitions[5].Master = ""
				}
			}
			return resp
		})
	}
	if _, err := c.c.refreshWait(testCtx(t), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
	defer cancel()
	err = c.WaitTableWritable(ctx, tb)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrNoMaster) || !strings.Contains(err.Error(), "partitions 5 ") {
		t.Fatalf("WaitTableWritable = %v, want a deadline naming partition 5 without master", err)
	}

	if err := c.WaitTableWritable(testCtx(t), "nosuch"); !errors.Is(err, status.ErrTableNotFound) {
		t.Fatalf("WaitTableWritable of an unknown table: %v", err)
	}
}

func TestPullAndInfo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of its own")
	}
	// A node of its own, whose tables are exactly the test's.
	cl := ownCluster(t, 1)
	cl.addTable("-a", 2, 1)
	b := cl.addTable("-b", 3, 1).Name
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	topo, err := c.Pull(ctx, b)
	if err != nil || len(topo.Tables) != 1 || topo.Tables[0].Name != b || topo.Tables[0].PartitionCount != 3 {
		t.Fatalf("Pull(b) = %+v, %v", topo, err)
	}
	if _, err := c.Pull(ctx, "nosuch"); !errors.Is(err, status.ErrTableNotFound) {
		t.Fatalf("Pull(nosuch) = %v", err)
	}
	info, err := c.Info(ctx, cl.Nodes[0].Addr, InfoServer, "")
	if err != nil || info.Server == nil || info.Server.Addr != cl.Nodes[0].Addr || len(info.Server.Tables) != 2 {
		t.Fatalf("Info = %v, %v", info, err)
	}
}

// Meta followers answer PULL from their own copy. A table this client just
// created is not reported missing because the meta servers asked next still
// lag behind the epoch that created it.
func TestNewTableSeenThroughLaggingMetas(t *testing.T) {
	cl := sharedCluster(t)
	// Two members reachable, each answering two PULLs from before the
	// creation.
	cl.Metas[2].Close()
	c := newTestClient(t, cl)
	stale := cl.pull("")
	for _, m := range cl.Metas[:2] {
		m.SetHook(times(2, "pull", func(*zppb.Request) *zppb.Response {
			return &zppb.Response{Epoch: stale.GetEpoch(), Result: &zppb.Response_Pull{Pull: &zppb.PullResponse{Topology: stale}}}
		}))
	}
	tb := cl.tableName("")
	if _, err := c.CreateTable(testCtx(t), TableSpec{Name: tb, Partitions: 2, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(testCtx(t), tb, []byte("k"), []byte("v"), 0); err != nil {
		t.Fatalf("Set on a table just created: %v", err)
	}
	if got := cl.metaCalls("pull"); got < 5 {
		t.Fatalf("%d PULLs; the lagging answers were not all consumed", got)
	}
}

// A table another process created is found by a new client even when the
// meta server it asks first answers from a copy that predates the
// creation: the client has seen no epoch to wait for, so it asks each
// member for the table itself before reporting it missing (zpctl's
// TestRealCluster failed so: "table create --wait", then "mset" in a new
// process got TABLE_NOT_FOUND).
func TestNewTableOfAnotherClientThroughALaggingMeta(t *testing.T) {
	cl := sharedCluster(t)
	stale := cl.pull("")
	tb := cl.addTable("", 2, 1).Name
	// Every member answers its first two whole-topology PULLs (the
	// client's first, when it starts, and the one a miss makes) with the
	// copy from before the creation; PULLs of one table are answered as
	// they are.
	for _, m := range cl.Metas {
		var answered atomic.Int32
		m.SetHook(func(req *zppb.Request) *zppb.Response {
			if req.GetPull() == nil || req.GetPull().GetTable() != "" || answered.Add(1) > 2 {
				return nil
			}
			return &zppb.Response{Epoch: stale.GetEpoch(), Result: &zppb.Response_Pull{Pull: &zppb.PullResponse{Topology: stale}}}
		})
	}
	c := newTestClient(t, cl)
	if err := c.Set(testCtx(t), tb, []byte("k"), []byte("v"), 0); err != nil {
		t.Fatalf("Set on a table another client created: %v", err)
	}
	if _, err := c.Get(testCtx(t), "nosuch", []byte("k")); !errors.Is(err, status.ErrTableNotFound) {
		t.Fatalf("Get on a table no member has = %v, want TABLE_NOT_FOUND", err)
	}
}

// TestSecurityOfAnOpenCluster: a cluster started without secrets is
// probed as requiring neither, and the probes change nothing.
func TestSecurityOfAnOpenCluster(t *testing.T) {
	cl := sharedCluster(t)
	c := newTestClient(t, cl)
	before, _, err := c.ListNodes(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	sec, err := c.Security(testCtx(t), cl.NodeAddrs()[0])
	if err != nil || sec.AdminToken || sec.ClusterSecret {
		t.Fatalf("Security() = %+v, %v; want neither required", sec, err)
	}
	after, _, err := c.ListNodes(testCtx(t))
	if err != nil || len(after) != len(before) || slices.ContainsFunc(after, func(n Node) bool { return n.Cordoned }) {
		t.Fatalf("the probes changed the nodes: %+v", after)
	}
}
