package client

import (
	"errors"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/client/clienttest"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// A quota set at create and changed with SetQuota is the table's, as
// ListTables and Pull return it; the zero Quota removes it.
func TestQuota(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 2)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	tb, err := c.CreateTable(ctx, TableSpec{Name: "q", Partitions: 2, Replicas: 2, Quota: Quota{OpsPerSec: 500}})
	if err != nil {
		t.Fatal(err)
	}
	if tb.Quota != (Quota{OpsPerSec: 500}) {
		t.Fatalf("created with quota %+v", tb.Quota)
	}
	before := cl.Epoch()
	epoch, err := c.SetQuota(ctx, "q", Quota{OpsPerSec: 10, BytesPerSec: 1 << 20}, 0)
	if err != nil || epoch != before+1 {
		t.Fatalf("SetQuota: epoch %d (before %d), %v", epoch, before, err)
	}
	tables, _, err := c.ListTables(ctx)
	if err != nil || len(tables) != 1 || tables[0].Quota != (Quota{OpsPerSec: 10, BytesPerSec: 1 << 20}) {
		t.Fatalf("ListTables: %+v, %v", tables, err)
	}
	// Setting the same quota again changes nothing.
	if again, err := c.SetQuota(ctx, "q", Quota{OpsPerSec: 10, BytesPerSec: 1 << 20}, 0); err != nil || again != epoch {
		t.Fatalf("same quota again: epoch %d, %v", again, err)
	}
	if _, err := c.SetQuota(ctx, "q", Quota{OpsPerSec: 1}, epoch-1); !errors.Is(err, status.ErrStaleEpoch) {
		t.Fatalf("stale epoch: %v", err)
	}
	if _, err := c.SetQuota(ctx, "nosuch", Quota{OpsPerSec: 1}, 0); !errors.Is(err, status.ErrTableNotFound) {
		t.Fatalf("unknown table: %v", err)
	}
	if _, err := c.SetQuota(ctx, "q", Quota{}, 0); err != nil {
		t.Fatal(err)
	}
	topo, err := c.Pull(ctx, "q")
	if err != nil || topo.Tables[0].Quota != (Quota{}) || cl.Topology().Tables[0].Quota != nil {
		t.Fatalf("after removing: %+v, %v", topo, err)
	}
}

// InfoNodes returns the slow log section: each node's, newest first, for
// one table or all.
func TestInfoNodesSlowlog(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 2)
	cl.AddTable("t", 2)
	cl.AddTable("u", 2)
	c := newTestClient(t, cl)
	cl.Nodes[0].AddSlowlog(
		&zppb.SlowlogEntry{TimeMs: 1, Command: "set", Table: "t", Key: []byte("a"), DurationUs: 20_000, Code: "OK"},
		&zppb.SlowlogEntry{TimeMs: 3, Command: "get", Table: "u", Key: []byte("b"), DurationUs: 30_000, Code: "OK"},
		&zppb.SlowlogEntry{TimeMs: 2, Command: "del", Table: "t", Key: []byte("c"), DurationUs: 40_000, Code: "OK"},
	)
	addrs := []string{cl.Nodes[0].Addr, cl.Nodes[1].Addr}
	all := c.InfoNodes(testCtx(t), addrs, "", zppb.InfoSection_INFO_SLOWLOG)
	if all[0].Err != nil || all[1].Err != nil || len(all[1].Info.GetSlowlog()) != 0 {
		t.Fatalf("%+v", all)
	}
	var got []int64
	for _, e := range all[0].Info.GetSlowlog() {
		got = append(got, e.GetTimeMs())
	}
	if len(got) != 3 || got[0] != 3 || got[1] != 2 || got[2] != 1 {
		t.Fatalf("entries at %v, want newest first", got)
	}
	one := c.InfoNodes(testCtx(t), addrs[:1], "t", zppb.InfoSection_INFO_SLOWLOG)
	if s := one[0].Info.GetSlowlog(); len(s) != 2 || s[0].GetCommand() != "del" || s[1].GetCommand() != "set" {
		t.Fatalf("table t: %v", s)
	}
}
