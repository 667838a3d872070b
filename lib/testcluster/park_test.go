package testcluster_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestIdleReplicasParkAndServe: with --idle-close, the replicas of an idle
// table close their DBs on every node (masters and slaves, fewer open
// descriptors), and the table then serves every key it had, takes writes,
// and its slaves apply them.
func TestIdleReplicasParkAndServe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	const parts = 8
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Metrics: true, NodeArgs: []string{"--idle-close", "2s"}})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "idle", Partitions: parts, Replicas: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range 200 {
		if err := cl.Set(ctx, "idle", key(i), value(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	fdsBusy := make([]int, len(c.Nodes))
	for i, n := range c.Nodes {
		fdsBusy[i] = testcluster.OpenFDs(t, n.Pid(), "")
	}
	waitParked := func(want float64) {
		t.Helper()
		testcluster.Poll(t, time.Minute, func() error {
			for _, n := range c.Nodes {
				if v, _ := metricValue(scrape(t, n.MetricsAddr), "zeppelin_node_replicas_parked", nil); v != want {
					return fmt.Errorf("node %s: %v replicas parked, want %v", n.Addr, v, want)
				}
			}
			return nil
		})
	}
	start := time.Now()
	waitParked(parts)
	t.Logf("parked in %v", time.Since(start))
	for i, n := range c.Nodes {
		// An open DB holds at least 7 descriptors (LOCK, LOG, MANIFEST,
		// WAL, its directory, table files).
		if idle := testcluster.OpenFDs(t, n.Pid(), ""); idle > fdsBusy[i]-6*parts {
			t.Errorf("node %s: %d descriptors with every DB parked, %d with them open: want %d fewer", n.Addr, idle, fdsBusy[i], 6*parts)
		}
	}

	for i := range 200 {
		v, err := cl.Get(ctx, "idle", key(i))
		if err != nil || string(v) != string(value(i)) {
			t.Fatalf("%s after parking = %q, %v", key(i), v, err)
		}
	}
	for i := 200; i < 300; i++ {
		if err := cl.Set(ctx, "idle", key(i), value(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("read and wrote after parking in %v", time.Since(start))
	// Every replica of every partition applies all of its records.
	testcluster.Poll(t, time.Minute, func() error {
		for p := range parts {
			part := strconv.Itoa(p)
			var want float64
			for _, n := range c.Nodes {
				fams := scrape(t, n.MetricsAddr)
				if v, ok := metricValue(fams, "zeppelin_node_replica_lsn", map[string]string{"table": "idle", "partition": part, "role": "master"}); ok {
					want = v
				}
			}
			for _, n := range c.Nodes {
				applied, _ := metricValue(scrape(t, n.MetricsAddr), "zeppelin_node_replica_applied_lsn", map[string]string{"table": "idle", "partition": part})
				if want == 0 || applied != want {
					return fmt.Errorf("partition %d on %s: applied %v, master at %v", p, n.Addr, applied, want)
				}
			}
		}
		return nil
	})
	t.Logf("slaves applied in %v", time.Since(start))
	waitParked(parts) // and they park again
	t.Logf("parked again in %v", time.Since(start))
}
