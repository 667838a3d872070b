package client

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/status"
)

func TestInfoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of its own")
	}
	// A cluster of its own: the sections list every table a node has.
	cl := ownCluster(t, 3)
	tb := cl.addTable("", 3, 2)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	key := keyIn(t, 3, 1, "k")
	if err := c.Set(ctx, tb.Name, key, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	// The node stopped is the one without a replica of partition 1.
	master1, slave1 := tb.Partitions[1].Master, tb.Partitions[1].Slaves[0]
	stopped := cl.Node(master1)
	for _, n := range cl.Nodes {
		if n.Addr != master1 && n.Addr != slave1 {
			stopped = n
		}
	}
	if err := stopped.Stop(); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, n := range cl.Nodes {
		if n != stopped {
			addrs = append(addrs, n.Addr)
		}
	}
	addrs = append(addrs, stopped.Addr)

	got := c.InfoNodes(ctx, addrs, "")
	if len(got) != 3 {
		t.Fatalf("%d answers", len(got))
	}
	for i, ni := range got[:2] {
		if ni.Addr != addrs[i] || ni.Err != nil {
			t.Fatalf("node %d: %+v", i, ni)
		}
		info := ni.Info
		if info.Server.Addr != addrs[i] || len(info.Stats) != 1 || len(info.Capacity) != 1 {
			t.Fatalf("node %d: sections missing: %v", i, info)
		}
		// 3 partitions of 2 replicas on 3 nodes: 2 each.
		if len(info.Replication) != 2 {
			t.Fatalf("node %d replicas: %v", i, info.Replication)
		}
		if addrs[i] != master1 {
			continue
		}
		// Partition 1 took the write: its master reports lsn 1.
		for _, ri := range info.Replication {
			if ri.Partition == 1 && (ri.Role != "master" || ri.LSN != 1 || len(ri.Peers) != 1) {
				t.Fatalf("partition 1 on its master: %v", ri)
			}
		}
		if info.Stats[0].Writes != 1 {
			t.Fatalf("stats: %v", info.Stats)
		}
	}
	if got[2].Err == nil {
		t.Fatalf("stopped node: %+v", got[2])
	}

	// One section, one table; an unknown table is the node's answer.
	one := c.InfoNodes(ctx, addrs[:1], tb.Name, InfoReplication)
	if one[0].Err != nil || one[0].Info.Server != nil || len(one[0].Info.Replication) != 2 {
		t.Fatalf("replication only: %+v", one[0])
	}
	bad := c.InfoNodes(ctx, addrs[:1], "nosuch", InfoServer)
	if !errors.Is(bad[0].Err, status.ErrTableNotFound) {
		t.Fatalf("unknown table: %v", bad[0].Err)
	}
}

func TestListMetaLeaderSeen(t *testing.T) {
	cl := sharedCluster(t)
	c := newTestClient(t, cl)
	leader, err := cl.WaitLeader(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.ListMeta(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Members {
		if m.LeaderSeen != cl.Cluster.Metas[leader].Addr {
			t.Fatalf("member %s sees leader %q", m.Addr, m.LeaderSeen)
		}
	}
}

// TestNodeLog: a node's INFO log holds what it logged (here the topology
// of a table just created), oldest first, cut to the lines and the level
// asked.
func TestNodeLog(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 1)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	node := tb.Partitions[0].Master
	var lines []LogLine
	poll(t, "the node to log the new topology", func() bool {
		var err error
		if lines, err = c.NodeLog(ctx, node, 0, ""); err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(lines, func(l LogLine) bool {
			// Other tests move the shared cluster's epoch too: the node
			// may have jumped past the table's.
			var epoch uint64
			_, err := fmt.Sscanf(l.Attrs, "epoch=%d ", &epoch)
			return l.Message == "new topology" && l.Level == "INFO" && err == nil && epoch >= tb.CreatedEpoch
		})
	})
	if !slices.IsSortedFunc(lines, func(a, b LogLine) int { return cmp.Compare(a.TimeMs, b.TimeMs) }) {
		t.Fatalf("not oldest first: %v", lines)
	}
	last, err := c.NodeLog(ctx, node, 1, "")
	if err != nil || len(last) != 1 {
		t.Fatalf("1 line: %v, %v", last, err)
	}
	warn, err := c.NodeLog(ctx, node, 0, "warn")
	if err != nil || slices.ContainsFunc(warn, func(l LogLine) bool { return l.Level == "INFO" }) {
		t.Fatalf("warn and above: %v, %v", warn, err)
	}
	if _, err := c.NodeLog(ctx, node, 0, "loud"); !errors.Is(err, status.ErrInvalidArgument) {
		t.Fatalf("level loud: %v", err)
	}
}
