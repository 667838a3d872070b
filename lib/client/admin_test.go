package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client/clienttest"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestTableLifecycle(t *testing.T) {
	cl := clienttest.NewCluster(t, 3, 3)
	c := newTestClient(t, cl)
	ctx := testCtx(t)

	tb, err := c.CreateTable(ctx, TableSpec{Name: "users", Partitions: 4, Replicas: 3, MinSyncReplicas: 1})
	if err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	if tb.Name != "users" || tb.PartitionCount != 4 || tb.Replicas != 3 || tb.MinSyncReplicas != 1 || len(tb.Partitions) != 4 {
		t.Fatalf("created %+v", tb)
	}
	if p := tb.Partitions[3]; p.SlotBegin != 12288 || p.SlotEnd != 16384 || p.State != "ACTIVE" || len(p.Slaves) != 2 {
		t.Fatalf("partition 3 = %+v", p)
	}
	if _, err := c.CreateTable(ctx, TableSpec{Name: "users", Partitions: 4, Replicas: 3}); !errors.Is(err, status.ErrTableExists) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("second CreateTable: %v, want TABLE_EXISTS", err)
	}
	if _, err := c.CreateTable(ctx, TableSpec{Name: "x", Partitions: 4, Replicas: 3, ExpectedEpoch: 1}); !errors.Is(err, status.ErrStaleEpoch) {
		t.Fatalf("CreateTable at a stale epoch: %v", err)
	}

	// The new table is usable at once: the client PULLs it.
	if err := c.WaitTableWritable(ctx, "users"); err != nil {
		t.Fatalf("WaitTableWritable: %v", err)
	}
	if err := c.Set(ctx, "users", []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}

	tables, epoch, err := c.ListTables(ctx)
	if err != nil || len(tables) != 1 || tables[0].Name != "users" || epoch != cl.Epoch() {
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

	if _, err := c.DropTable(ctx, "users", 0); err != nil {
		t.Fatalf("DropTable: %v", err)
	}
	if _, err := c.DropTable(ctx, "users", 0); !errors.Is(err, status.ErrTableNotFound) {
		t.Fatalf("second DropTable: %v", err)
	}
	if _, err := c.Get(ctx, "users", []byte("k")); !errors.Is(err, status.ErrTableNotFound) {
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
		{"no replicas", TableSpec{Name: "t", Partitions: 1}},
		{"min sync not below replicas", TableSpec{Name: "t", Partitions: 1, Replicas: 2, MinSyncReplicas: 2}},
	}
	cl := clienttest.NewCluster(t, 1, 1)
	c := newTestClient(t, cl)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.CreateTable(testCtx(t), tt.spec); !errors.Is(err, status.ErrInvalidArgument) {
				t.Fatalf("CreateTable(%+v) = %v, want INVALID_ARGUMENT", tt.spec, err)
			}
		})
	}
	if got := metaCalls(cl, "create_table"); got != 0 {
		t.Fatalf("%d invalid specs reached a meta server", got)
	}
}

// Meta writes go through leader elections: NO_LEADER is retried.
func TestCreateTableRetriesNoLeader(t *testing.T) {
	cl := clienttest.NewCluster(t, 2, 1)
	c := newTestClient(t, cl)
	for _, m := range cl.Metas {
		m.SetHook(times(2, "create_table", func(*zppb.Request) *zppb.Response {
			return &zppb.Response{Code: zppb.Code_NO_LEADER, Msg: "election"}
		}))
	}
	if _, err := c.CreateTable(testCtx(t), TableSpec{Name: "t", Partitions: 1, Replicas: 1}); err != nil {
		t.Fatalf("CreateTable through an election: %v", err)
	}
	if got := metaCalls(cl, "create_table"); got != 5 {
		t.Fatalf("%d create calls, want 5 (4 NO_LEADER, 1 OK)", got)
	}
}

// A creation whose first attempt may have been applied reports
// TABLE_EXISTS as possibly its own doing.
func TestCreateTableAmbiguousExists(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 1)
	c := newTestClient(t, cl)
	m := cl.Metas[0]
	m.SetHook(times(1, "create_table", func(req *zppb.Request) *zppb.Response {
		resp := m.Handle(req) // applied; the reply is lost
		m.CloseConns()
		return resp
	}))
	_, err := c.CreateTable(testCtx(t), TableSpec{Name: "t", Partitions: 1, Replicas: 1})
	if !errors.Is(err, ErrUnknownOutcome) || !errors.Is(err, status.ErrTableExists) {
		t.Fatalf("CreateTable = %v, want TABLE_EXISTS wrapped with ErrUnknownOutcome", err)
	}
	if got := m.Calls("create_table"); got != 2 {
		t.Fatalf("%d create calls, want 2", got)
	}
}

func TestListMetaShowsWhoIsDown(t *testing.T) {
	cl := clienttest.NewCluster(t, 3, 1)
	c := newTestClient(t, cl)
	cl.Metas[2].Stop()
	st, err := c.ListMeta(testCtx(t))
	if err != nil {
		t.Fatalf("ListMeta: %v", err)
	}
	if st.Leader != cl.Metas[0].Addr || st.Epoch != cl.Epoch() || len(st.Members) != 3 {
		t.Fatalf("ListMeta = %+v", st)
	}
	for i, m := range st.Members {
		down := i == 2
		if m.Addr != cl.Metas[i].Addr || m.Reachable == down || (m.Error != "") != down || m.Leader != (i == 0) || m.Suffrage != "voter" {
			t.Fatalf("member %d = %+v", i, m)
		}
	}
	if st.Members[0].State != "Leader" || st.Members[1].State != "Follower" {
		t.Fatalf("states %q %q", st.Members[0].State, st.Members[1].State)
	}

	for _, m := range cl.Metas {
		m.Stop()
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
	cl := clienttest.NewCluster(t, 1, 2)
	c := newTestClient(t, cl)
	cl.AddTable("t", 8)
	// One node is still opening its replicas.
	cl.Nodes[1].SetHook(times(6, "exists", func(*zppb.Request) *zppb.Response {
		return &zppb.Response{Code: zppb.Code_WAIT}
	}))
	if err := c.WaitTableWritable(testCtx(t), "t"); err != nil {
		t.Fatal(err)
	}
	if got := calls(cl.Nodes, "exists"); got < 8+6 {
		t.Fatalf("%d probes, want at least 14", got)
	}

	// A partition without a master never becomes writable.
	cl.Update(func(topo *zppb.Topology) { topo.Tables[0].Partitions[5].Master = "" })
	ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
	defer cancel()
	err := c.WaitTableWritable(ctx, "t")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrNoMaster) || !strings.Contains(err.Error(), "partitions 5 ") {
		t.Fatalf("WaitTableWritable = %v, want a deadline naming partition 5 without master", err)
	}

	if err := c.WaitTableWritable(testCtx(t), "nosuch"); !errors.Is(err, status.ErrTableNotFound) {
		t.Fatalf("WaitTableWritable of an unknown table: %v", err)
	}
}

func TestPullAndInfo(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 1)
	cl.AddTable("a", 2)
	cl.AddTable("b", 3)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	topo, err := c.Pull(ctx, "b")
	if err != nil || len(topo.Tables) != 1 || topo.Tables[0].Name != "b" || topo.Tables[0].PartitionCount != 3 {
		t.Fatalf("Pull(b) = %+v, %v", topo, err)
	}
	if _, err := c.Pull(ctx, "nosuch"); !errors.Is(err, status.ErrTableNotFound) {
		t.Fatalf("Pull(nosuch) = %v", err)
	}
	info, err := c.Info(ctx, cl.Nodes[0].Addr, zppb.InfoSection_INFO_SERVER, "")
	if err != nil || info.GetServer().GetAddr() != cl.Nodes[0].Addr || len(info.GetServer().GetTables()) != 2 {
		t.Fatalf("Info = %v, %v", info, err)
	}
}

// Meta followers answer PULL from their own copy. A table this client just
// created is not reported missing because the meta servers asked next still
// lag behind the epoch that created it.
func TestNewTableSeenThroughLaggingMetas(t *testing.T) {
	cl := clienttest.NewCluster(t, 2, 1)
	c := newTestClient(t, cl)
	stale := cl.Topology()
	for _, m := range cl.Metas {
		m.SetHook(times(2, "pull", func(*zppb.Request) *zppb.Response {
			return &zppb.Response{Epoch: stale.GetEpoch(), Result: &zppb.Response_Pull{Pull: &zppb.PullResponse{Topology: stale}}}
		}))
	}
	if _, err := c.CreateTable(testCtx(t), TableSpec{Name: "new", Partitions: 2, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(testCtx(t), "new", []byte("k"), []byte("v"), 0); err != nil {
		t.Fatalf("Set on a table just created: %v", err)
	}
	if got := metaCalls(cl, "pull"); got < 5 {
		t.Fatalf("%d PULLs; the lagging answers were not all consumed", got)
	}
}
