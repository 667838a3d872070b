package server_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
)

// TestManyReplicasRestartParked: a node creates a table of 4,096
// partitions (500 under the race detector) without creating their DBs,
// restarts without opening the DBs written since (each was closed with a
// park mark), holds no descriptor per idle replica afterwards, and serves
// every key of a sample, reopening the DBs it reads.
func TestManyReplicasRestartParked(t *testing.T) {
	if testing.Short() {
		t.Skip("a thousand replicas")
	}
	parts := 4096
	if raceEnabled {
		parts = 500
	}
	c := inproc.StartTest(t, inproc.Options{Metas: 1, Nodes: 1, StartTimeout: 2 * time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fdsBefore := countFDs(t)
	start := time.Now()
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "many", Partitions: uint32(parts), Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, "many"); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d partitions writable in %v, %.2f descriptors per replica",
		parts, time.Since(start).Round(time.Millisecond), float64(countFDs(t)-fdsBefore)/float64(parts))
	const sample = 300
	for i := range sample {
		if err := cl.Set(ctx, "many", sampleKey(i), sampleKey(i), 0); err != nil {
			t.Fatal(err)
		}
	}

	node := c.Node(c.NodeAddrs()[0])
	if err := node.Stop(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	// A parked replica holds no descriptor (the node locks its data
	// directory once); an open DB would add at least 7, its binlog 1.
	perReplica := float64(countFDs(t)-fdsBefore) / float64(parts)
	t.Logf("restarted in %v, %.2f descriptors per replica", took.Round(time.Millisecond), perReplica)
	if perReplica > 0.1 {
		t.Errorf("%.2f descriptors per replica after a restart, want none: the DBs or binlogs stayed open", perReplica)
	}
	for i := range sample {
		v, err := cl.Get(ctx, "many", sampleKey(i))
		if err != nil || string(v) != string(sampleKey(i)) {
			t.Fatalf("%s after the restart = %q, %v", sampleKey(i), v, err)
		}
	}
}

func sampleKey(i int) []byte { return fmt.Appendf(nil, "sample:%d", i) }

// countFDs counts this process's open descriptors.
func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
