package client

import (
	"errors"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/client/clienttest"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestInfoNodes(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 3)
	cl.AddTable("t", 3)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	key := keyIn(t, 3, 1, "k")
	if err := c.Set(ctx, "t", key, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	cl.Nodes[2].Stop()

	addrs := []string{cl.Nodes[0].Addr, cl.Nodes[1].Addr, cl.Nodes[2].Addr}
	got := c.InfoNodes(ctx, addrs, "")
	if len(got) != 3 {
		t.Fatalf("%d answers", len(got))
	}
	for i, ni := range got[:2] {
		if ni.Addr != addrs[i] || ni.Err != nil {
			t.Fatalf("node %d: %+v", i, ni)
		}
		info := ni.Info
		if info.GetServer().GetAddr() != addrs[i] || len(info.GetStats()) != 1 || len(info.GetCapacity()) != 1 {
			t.Fatalf("node %d: sections missing: %v", i, info)
		}
		// Node i masters partition i and slaves partition i-1.
		if len(info.GetReplication()) != 2 {
			t.Fatalf("node %d replicas: %v", i, info.GetReplication())
		}
	}
	// Partition 1 took the write: its master (node 1) and slave (node 2)
	// both report lsn 1.
	for _, ri := range got[1].Info.GetReplication() {
		if ri.GetPartition() == 1 && (ri.GetRole() != "master" || ri.GetLsn() != 1 || len(ri.GetPeers()) != 1) {
			t.Fatalf("partition 1 on its master: %v", ri)
		}
	}
	if got[1].Info.GetStats()[0].GetWrites() != 1 {
		t.Fatalf("stats: %v", got[1].Info.GetStats())
	}
	if got[2].Err == nil || got[2].Info == nil {
		t.Fatalf("stopped node: %+v", got[2])
	}

	// One section, one table; an unknown table is the node's answer.
	one := c.InfoNodes(ctx, addrs[:1], "t", zppb.InfoSection_INFO_REPLICATION)
	if one[0].Err != nil || one[0].Info.GetServer() != nil || len(one[0].Info.GetReplication()) != 2 {
		t.Fatalf("replication only: %+v", one[0])
	}
	bad := c.InfoNodes(ctx, addrs[:1], "nosuch", zppb.InfoSection_INFO_SERVER)
	if !errors.Is(bad[0].Err, status.ErrTableNotFound) {
		t.Fatalf("unknown table: %v", bad[0].Err)
	}
}

func TestListMetaLeaderSeen(t *testing.T) {
	cl := clienttest.NewCluster(t, 2, 1)
	c := newTestClient(t, cl)
	st, err := c.ListMeta(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Members {
		if m.LeaderSeen != cl.Metas[0].Addr {
			t.Fatalf("member %s sees leader %q", m.Addr, m.LeaderSeen)
		}
	}
}
