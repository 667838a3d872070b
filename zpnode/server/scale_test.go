package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/zpnode/server"
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
	fdsBefore := testcluster.OpenFDs(t, 0, "")
	start := time.Now()
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "many", Partitions: uint32(parts), Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, "many"); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d partitions writable in %v, %.2f descriptors per replica",
		parts, time.Since(start).Round(time.Millisecond), float64(testcluster.OpenFDs(t, 0, "")-fdsBefore)/float64(parts))
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
	perReplica := float64(testcluster.OpenFDs(t, 0, "")-fdsBefore) / float64(parts)
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

// TestMaxOpenDBs: past --max-open-dbs the least recently used DBs close,
// busy or idle, and every key still reads back.
func TestMaxOpenDBs(t *testing.T) {
	const parts, maxOpen = 16, 4
	c := inproc.StartTest(t, inproc.Options{Metas: 1, Nodes: 1, NodeConfig: func(_ int, cfg *server.Config) {
		cfg.MaxOpenDBs, cfg.IdleClose, cfg.ParkInterval = maxOpen, -1, 200*time.Millisecond
		cfg.MetricsAddr = "127.0.0.1:0"
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "capped", Partitions: parts, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, "capped"); err != nil {
		t.Fatal(err)
	}
	const keys = 64 // spread over the partitions
	for i := range keys {
		if err := cl.Set(ctx, "capped", sampleKey(i), sampleKey(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	metrics := c.Node(c.NodeAddrs()[0]).Server().MetricsAddr()
	deadline := time.Now().Add(30 * time.Second)
	for {
		parked := scrapeValue(t, metrics, "zeppelin_node_replicas_parked")
		if parked >= parts-maxOpen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v of %d replicas parked after 30 s with a cap of %d open", parked, parts, maxOpen)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range keys {
		v, err := cl.Get(ctx, "capped", sampleKey(i))
		if err != nil || string(v) != string(sampleKey(i)) {
			t.Fatalf("%s = %q, %v", sampleKey(i), v, err)
		}
	}
}

// scrapeValue reads one unlabelled sample from a /metrics page.
func scrapeValue(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s on %s", name, addr)
	return 0
}
