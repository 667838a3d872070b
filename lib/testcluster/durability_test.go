package testcluster_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestKillWithWritesInFlightEveryFsyncPolicy runs one node per binlog fsync
// policy (always, interval, none), each mastering partitions of a table with
// one replica, so its own binlog is the only copy. Every node is killed with
// SIGKILL while writes are in flight; after a restart every acknowledged
// write is there: the page cache outlives the process under any policy
// (docs/durability.md).
func TestKillWithWritesInFlightEveryFsyncPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	policies := []string{"always", "interval", "none"}
	c := testcluster.Start(t, testcluster.Options{
		NodeArgsFor: func(i int) []string { return []string{"--binlog-fsync", policies[i%len(policies)]} },
	})
	cl := newClient(t, c)
	const partitions = 6
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: partitions, Replicas: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo, err := cl.Pull(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	mastered := make(map[string]int)
	for _, p := range topo.Tables[0].Partitions {
		mastered[p.Master]++
	}
	for i, n := range c.Nodes {
		if mastered[n.Addr] == 0 {
			t.Fatalf("node with --binlog-fsync %s masters no partition: %v", policies[i], mastered)
		}
	}

	var (
		mu    sync.Mutex
		acked []int
	)
	stop := startLoops(t, 8, func(w, i int) error {
		k := i*8 + w
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		defer wcancel()
		err := cl.Set(wctx, "t", key(k), value(k), 0)
		if err == nil {
			mu.Lock()
			acked = append(acked, k)
			mu.Unlock()
		}
		return err
	})
	testcluster.Poll(t, time.Minute, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 3000 {
			return fmt.Errorf("%d writes acknowledged", len(acked))
		}
		return nil
	})
	var kill sync.WaitGroup
	for _, n := range c.Nodes {
		kill.Go(func() {
			if err := n.Kill(); err != nil {
				t.Error(err)
			}
		})
	}
	kill.Wait()
	stop()

	for _, n := range c.Nodes {
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.WaitTableWritable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writes acknowledged before the kill", len(acked))
	err = parallel(len(acked), 16, func(i int) error {
		k := acked[i]
		got, err := cl.Get(ctx, "t", key(k))
		if err != nil || string(got) != string(value(k)) {
			return fmt.Errorf("acknowledged %s after kill -9: %q, %v", key(k), got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
