package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestOpenProgress: a node shows in INFO how far it is in opening its
// replicas; while it opens a table of many partitions it keeps PINGing
// meta (which marks a silent node DOWN within seconds) and serves the
// partitions already open.
func TestOpenProgress(t *testing.T) {
	const parts = 80 // past openInBackground
	c := inproc.StartTest(t, inproc.Options{Metas: 1, Nodes: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	addr := c.NodeAddrs()[0]
	node := c.Node(addr)
	counts := func() (*client.ReplicaCounts, int64) {
		t.Helper()
		ni := cl.InfoNodes(ctx, []string{addr}, "", client.InfoServer)[0]
		if ni.Err != nil {
			t.Fatal(ni.Err)
		}
		if ni.Info.Server.Replicas == nil {
			t.Fatal("INFO server without replica counts")
		}
		return ni.Info.Server.Replicas, ni.Info.Server.LastPingMs
	}

	release := testcluster.HoldOpen(t, filepath.Join(node.Dir, "big", "7"))
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "big", Partitions: parts, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	var since time.Time
	testcluster.Poll(t, time.Minute, func() error {
		if rc, _ := counts(); rc.Assigned != parts || rc.Opening == 0 {
			return fmt.Errorf("replicas %+v, want %d assigned, partition 7 opening", rc, parts)
		}
		since = time.Now()
		return nil
	})
	// Meta still hears from the node, and the open partitions serve.
	testcluster.Poll(t, time.Minute, func() error {
		if rc, ping := counts(); ping < since.Add(time.Second).UnixMilli() || rc.Opening == 0 {
			return fmt.Errorf("last ping %v, replicas %+v: want a ping a second after %v, partition 7 still opening",
				time.UnixMilli(ping), rc, since)
		}
		return nil
	})
	key := keyIn(parts, 0)
	if err := cl.Set(ctx, "big", key, key, 0); err != nil {
		t.Fatalf("partition 0 while partition 7 opens: %v", err)
	}
	release()
	testcluster.Poll(t, time.Minute, func() error {
		// Partition 0 opened its DB for the write.
		if rc, _ := counts(); rc.Open != parts || rc.Parked != parts-1 || rc.Opening != 0 {
			return fmt.Errorf("replicas %+v, want %d open, all but one parked, none opening", rc, parts)
		}
		return nil
	})
	if err := cl.WaitTableWritable(ctx, "big"); err != nil {
		t.Fatal(err)
	}

	if v, err := cl.Get(ctx, "big", key); err != nil || string(v) != string(key) {
		t.Fatalf("%s = %q, %v", key, v, err)
	}
}

// keyIn returns a key of partition id of a table of n partitions.
func keyIn(n, id uint32) []byte {
	for i := 0; ; i++ {
		k := fmt.Appendf(nil, "k%d", i)
		if keyspace.Partition(k, n) == id {
			return k
		}
	}
}

// TestNewerTopologyWhileOpening: while a node opens the many new replicas
// of one table in the background, a newer topology (another table
// created) applies at once: the node runs its epoch and serves the new
// table while a partition of the first is still opening, which then
// serves too.
func TestNewerTopologyWhileOpening(t *testing.T) {
	const parts = 80 // past openInBackground
	c := inproc.StartTest(t, inproc.Options{Metas: 1, Nodes: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	addr := c.NodeAddrs()[0]
	node := c.Node(addr)
	server := func() *client.ServerInfo {
		t.Helper()
		ni := cl.InfoNodes(ctx, []string{addr}, "", client.InfoServer)[0]
		if ni.Err != nil {
			t.Fatal(ni.Err)
		}
		return ni.Info.Server
	}
	release := testcluster.HoldOpen(t, filepath.Join(node.Dir, "big", "7"))
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "big", Partitions: parts, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	testcluster.Poll(t, time.Minute, func() error {
		if rc := server().Replicas; rc.Assigned != parts || rc.Opening == 0 {
			return fmt.Errorf("replicas %+v, want %d assigned, partition 7 opening", rc, parts)
		}
		return nil
	})
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "small", Partitions: 2, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := cl.WaitTableWritable(wctx, "small"); err != nil {
		t.Fatalf("a table created while another opens: %v", err)
	}
	if rc := server().Replicas; rc.Opening == 0 || rc.Assigned != parts+2 {
		t.Fatalf("replicas %+v, want %d assigned, partition 7 of big still opening", rc, parts+2)
	}
	release()
	if err := cl.WaitTableWritable(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	testcluster.Poll(t, time.Minute, func() error {
		if rc := server().Replicas; rc.Open != parts+2 || rc.Opening != 0 {
			return fmt.Errorf("replicas %+v, want all %d open", rc, parts+2)
		}
		return nil
	})
}
