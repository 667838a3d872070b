package client

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	nodeserver "github.com/zeppelin-kv/zeppelin/zpnode/server"
)

// A quota set at create and changed with SetQuota is the table's, as
// ListTables and Pull return it; the zero Quota removes it.
func TestQuota(t *testing.T) {
	cl := sharedCluster(t)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	q := cl.tableName("")
	tb, err := c.CreateTable(ctx, TableSpec{Name: q, Partitions: 2, Replicas: 2, Quota: Quota{OpsPerSec: 500}})
	if err != nil {
		t.Fatal(err)
	}
	if tb.Quota != (Quota{OpsPerSec: 500}) {
		t.Fatalf("created with quota %+v", tb.Quota)
	}
	before := cl.epoch()
	epoch, err := c.SetQuota(ctx, q, Quota{OpsPerSec: 10, BytesPerSec: 1 << 20}, 0)
	if err != nil || epoch != before+1 {
		t.Fatalf("SetQuota: epoch %d (before %d), %v", epoch, before, err)
	}
	tables, _, err := c.ListTables(ctx)
	i := slices.IndexFunc(tables, func(tb Table) bool { return tb.Name == q })
	if err != nil || i < 0 || tables[i].Quota != (Quota{OpsPerSec: 10, BytesPerSec: 1 << 20}) {
		t.Fatalf("ListTables: %+v, %v", tables, err)
	}
	// Setting the same quota again changes nothing.
	if again, err := c.SetQuota(ctx, q, Quota{OpsPerSec: 10, BytesPerSec: 1 << 20}, 0); err != nil || again != epoch {
		t.Fatalf("same quota again: epoch %d, %v", again, err)
	}
	if _, err := c.SetQuota(ctx, q, Quota{OpsPerSec: 1}, epoch-1); !errors.Is(err, status.ErrStaleEpoch) {
		t.Fatalf("stale epoch: %v", err)
	}
	if _, err := c.SetQuota(ctx, "nosuch", Quota{OpsPerSec: 1}, 0); !errors.Is(err, status.ErrTableNotFound) {
		t.Fatalf("unknown table: %v", err)
	}
	if _, err := c.SetQuota(ctx, q, Quota{}, 0); err != nil {
		t.Fatal(err)
	}
	topo, err := c.Pull(ctx, q)
	if err != nil || topo.Tables[0].Quota != (Quota{}) || cl.table(q).Quota != nil {
		t.Fatalf("after removing: %+v, %v", topo, err)
	}
}

// InfoNodes returns the slow log section: each node's, newest first, for
// one table or all.
func TestInfoNodesSlowlog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of its own")
	}
	// Node 0 logs every request, node 1 none.
	cl := ownCluster(t, 2, func(o *inproc.Options) {
		o.NodeConfig = func(i int, cfg *nodeserver.Config) {
			cfg.SlowlogThreshold = time.Hour
			if i == 0 {
				cfg.SlowlogThreshold = time.Nanosecond
			}
		}
	})
	n0 := cl.Nodes[0].Addr
	// A key of each table that node 0 masters.
	keyOn := func(tb *zppb.Table, prefix string) []byte {
		for _, p := range tb.Partitions {
			if p.Master == n0 {
				return keyIn(t, tb.PartitionCount, p.Id, prefix)
			}
		}
		t.Fatalf("node 0 masters no partition of %v", tb)
		return nil
	}
	tt, tu := cl.addTable("-t", 2, 1), cl.addTable("-u", 2, 1)
	a, b, k := keyOn(tt, "a"), keyOn(tu, "b"), keyOn(tt, "c")
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	if err := c.Set(ctx, tt.Name, a, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, tu.Name, b); !errors.Is(err, status.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := c.Del(ctx, tt.Name, k); err != nil {
		t.Fatal(err)
	}
	// Node 0 also logged the requests that set the tables up; only the
	// three above are the test's.
	ours := func(s []SlowlogEntry) []SlowlogEntry {
		return slices.DeleteFunc(slices.Clone(s), func(e SlowlogEntry) bool {
			return !bytes.Equal(e.Key, a) && !bytes.Equal(e.Key, b) && !bytes.Equal(e.Key, k)
		})
	}
	addrs := []string{n0, cl.Nodes[1].Addr}
	all := c.InfoNodes(ctx, addrs, "", InfoSlowlog)
	if all[0].Err != nil || all[1].Err != nil || len(all[1].Info.Slowlog) != 0 {
		t.Fatalf("%+v", all)
	}
	var got []string
	for _, e := range ours(all[0].Info.Slowlog) {
		got = append(got, e.Command)
	}
	if !slices.Equal(got, []string{"del", "get", "set"}) {
		t.Fatalf("entries %v, want newest first", got)
	}
	one := c.InfoNodes(ctx, addrs[:1], tt.Name, InfoSlowlog)
	if s := ours(one[0].Info.Slowlog); len(s) != 2 || s[0].Command != "del" || s[1].Command != "set" {
		t.Fatalf("table %s: %v", tt.Name, s)
	}
}
