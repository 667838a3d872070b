package testcluster_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestTTLAcrossFailoverAndRestart: a key's expiry is an absolute time that
// replication, a failover and a kill -9 of every node (binlog replay) keep
// as it was, not restarted from when a replica applied the write; INCRBY
// keeps the expiry; a key whose time passed is gone on the promoted slave.
// INCRBY past int64 answers OVERFLOW and changes nothing.
func TestTTLAcrossFailoverAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{MetaArgs: fastFailover})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: 1, Replicas: 3, MinSyncReplicas: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const long, short = time.Hour, 2 * time.Second
	set := time.Now()
	for _, k := range []string{"long", "counter"} {
		v := map[string]string{"long": "x", "counter": "10"}[k]
		if err := cl.Set(ctx, "t", []byte(k), []byte(v), long); err != nil {
			t.Fatal(err)
		}
	}
	// The node fixed each expiry when it took the SET, before this.
	written := time.Now()
	if err := cl.Set(ctx, "t", []byte("short"), []byte("x"), short); err != nil {
		t.Fatal(err)
	}
	if n, err := cl.IncrBy(ctx, "t", []byte("counter"), 5); err != nil || n != 15 {
		t.Fatalf("INCRBY: %d, %v", n, err)
	}
	// checkExpiry fails unless key expires by written+long (the node fixes
	// the deadline when it takes the SET; a busy machine may take a
	// while, so no lower bound but a positive TTL): an INCRBY, a failover
	// or a restart that set it again would put it later.
	checkExpiry := func(when, key string) {
		t.Helper()
		ttl, err := cl.TTL(ctx, "t", []byte(key))
		if err != nil {
			t.Fatalf("%s: TTL %s: %v", when, key, err)
		}
		if left := long - time.Since(written); ttl <= 0 || ttl > left+100*time.Millisecond {
			t.Fatalf("%s: TTL of %s is %v, want about %v (expiry fixed when written)", when, key, ttl, left)
		}
	}
	checkExpiry("after INCRBY", "counter")

	old := masterOf(t, cl, "t", 0)
	if err := c.NodeByAddr(old).Kill(); err != nil {
		t.Fatal(err)
	}
	testcluster.Poll(t, 30*time.Second, func() error {
		if m := masterOf(t, cl, "t", 0); m == old {
			return fmt.Errorf("%s is still master", old)
		}
		return nil
	})
	checkExpiry("on the promoted slave", "long")
	checkExpiry("on the promoted slave", "counter")
	if n, err := cl.IncrBy(ctx, "t", []byte("counter"), 1); err != nil || n != 16 {
		t.Fatalf("INCRBY on the promoted slave: %d, %v", n, err)
	}
	checkExpiry("after INCRBY on the promoted slave", "counter")
	testcluster.Poll(t, 10*time.Second, func() error {
		if _, err := cl.Get(ctx, "t", []byte("short")); !errors.Is(err, status.ErrNotFound) {
			return fmt.Errorf("short: %v, want NOT_FOUND", err)
		}
		return nil
	})
	if since := time.Since(set); since < short {
		t.Fatalf("short gone %v after it was set, before its %v TTL", since, short)
	}

	// Every node killed and restarted: replicas replay their binlogs.
	if err := c.NodeByAddr(old).Start(); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, c, "t", 1, 3, time.Minute)
	for _, n := range c.Nodes {
		if err := n.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.WaitTableWritable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	checkExpiry("after kill -9 of every node", "long")
	checkExpiry("after kill -9 of every node", "counter")

	_, err := cl.IncrBy(ctx, "t", []byte("counter"), math.MaxInt64)
	if !errors.Is(err, status.ErrOverflow) {
		t.Fatalf("INCRBY past int64: %v, want OVERFLOW", err)
	}
	if v, err := cl.Get(ctx, "t", []byte("counter")); err != nil || string(v) != "16" {
		t.Fatalf("counter after a refused INCRBY: %q, %v; want 16", v, err)
	}
}
