package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	nodeserver "github.com/zeppelin-kv/zeppelin/zpnode/server"
)

// TestIdleSlavesWatchInCluster: in 3 nodes, the slave replicas of an idle
// table end up waiting in their node's BINLOG_WATCH (INFO server counts
// them as watched); writes with min_sync_replicas=1 are acknowledged, and
// every replica applies them, both then and after a node restarts; the
// slaves go back to the watch each time.
func TestIdleSlavesWatchInCluster(t *testing.T) {
	const parts = 4
	c := inproc.StartTest(t, inproc.Options{Nodes: 3, NodeConfig: func(_ int, cfg *nodeserver.Config) {
		cfg.PullWait = 300 * time.Millisecond
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "w", Partitions: parts, Replicas: 3, MinSyncReplicas: 1}); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	// Every node holds every partition: 2 slaves a partition.
	allWatched := func() {
		t.Helper()
		testcluster.Poll(t, time.Minute, func() error {
			var watched uint32
			for _, ni := range cl.InfoNodes(ctx, c.NodeAddrs(), "", client.InfoServer) {
				if ni.Err != nil {
					return ni.Err
				}
				watched += ni.Info.Server.Replicas.Watched
			}
			if watched != 2*parts {
				return fmt.Errorf("%d slave replicas watched, want %d", watched, 2*parts)
			}
			return nil
		})
	}
	write := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			k := fmt.Appendf(nil, "key%d", i)
			if err := cl.Set(ctx, "w", k, k, 0); err != nil {
				t.Fatalf("set %s: %v", k, err)
			}
		}
	}
	caughtUp := func() {
		t.Helper()
		testcluster.Poll(t, time.Minute, func() error {
			for _, ni := range cl.InfoNodes(ctx, c.NodeAddrs(), "w", client.InfoReplication) {
				if ni.Err != nil {
					return ni.Err
				}
				for _, r := range ni.Info.Replication {
					if r.Role == "master" && r.LagRecords != 0 {
						return fmt.Errorf("%s partition %d: a slave lags %d records", ni.Addr, r.Partition, r.LagRecords)
					}
				}
			}
			return nil
		})
	}
	write(0, 8)
	allWatched()
	write(8, 16)
	caughtUp()
	allWatched()

	n := c.Nodes[0]
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	write(16, 24)
	caughtUp()
	allWatched()
}
