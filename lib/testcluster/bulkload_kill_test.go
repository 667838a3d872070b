package testcluster_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/failpoint"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	zpctl "github.com/zeppelin-kv/zeppelin/zpctl/cmd"
)

// bulkKill is a case of TestBulkloadSurvivesKills: where the load is held
// and what happens to the node held there.
type bulkKill struct {
	name  string
	point string
	// failover: the node stays down until meta has failed its masters
	// over; otherwise it is started again at once (a crash meta may not
	// even notice).
	failover bool
}

var bulkKills = []bulkKill{
	// The master holds the staged file and is to log its record.
	{"master-to-log/failover", failpoint.BulkIngest, true},
	{"master-to-log/restart", failpoint.BulkIngest, false},
	// A slave got the record (and the file) and is to log and apply it.
	{"slave-to-apply/restart", failpoint.BulkApply, false},
}

// TestBulkloadSurvivesKills runs `zpctl bulkload` into a 4 x 3 table
// (min_sync_replicas=1) and kills a node (SIGKILL, real processes) held
// during the ingestion: a master about to log the record, then failed over
// or back at once, and a slave about to apply it. The load ends with every
// partition ingested once (the loader retries at the partition's master
// of the moment), every key reads back, and every replica of each
// partition ends with the same data and position.
func TestBulkloadSurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("kills nodes during bulk loads (about 30 s); skipped with -short")
	}
	c := testcluster.Start(t, testcluster.Options{
		Failpoints: true,
		MetaArgs:   []string{"--down-timeout", "2s"},
	})
	cl := newClient(t, c)
	const records, parts = 20000, 4
	var tables []string
	for i, k := range bulkKills {
		table := fmt.Sprintf("bulk%d", i)
		tables = append(tables, table)
		t.Run(k.name, func(t *testing.T) {
			createTable(t, cl, client.TableSpec{Name: table, Partitions: parts, Replicas: 3, MinSyncReplicas: 1})
			path := filepath.Join(t.TempDir(), "load.tsv")
			writeBulkFile(t, path, table, records)

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c.Arm(k.point)
			defer c.Release(k.point)
			type result struct {
				code           int
				stdout, stderr string
			}
			done := make(chan result, 1)
			go func() {
				var stdout, stderr strings.Builder
				code := zpctl.Main(ctx, zpctl.Env{
					Args:  []string{"--meta", strings.Join(c.MetaAddrs(), ","), "--timeout", "30s", "bulkload", table, path},
					Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" },
					IsTerminal: func() bool { return false }, StderrIsTerminal: func() bool { return false },
				})
				done <- result{code, stdout.String(), stderr.String()}
			}()
			var victim *testcluster.Process
			testcluster.Poll(t, time.Minute, func() error {
				for _, n := range c.Nodes {
					if c.HeldBy(k.point, n) {
						victim = n
						return nil
					}
				}
				return fmt.Errorf("no node at %s", k.point)
			})
			if err := victim.Kill(); err != nil {
				t.Fatal(err)
			}
			c.Release(k.point)
			if k.failover {
				if err := c.WaitNodesDown(ctx, victim.Addr); err != nil {
					t.Fatal(err)
				}
			}
			if err := victim.Start(); err != nil {
				t.Fatal(err)
			}
			if err := c.WaitNodesUp(ctx, c.NodeAddrs()...); err != nil {
				t.Fatal(err)
			}
			var r result
			select {
			case r = <-done:
			case <-ctx.Done():
				t.Fatal("the bulk load did not end")
			}
			t.Logf("killed %s at %s; bulkload: exit %d\n%s%s", victim.Name, k.point, r.code, r.stdout, r.stderr)
			if r.code != zpctl.ExitOK {
				t.Fatalf("bulkload: exit %d", r.code)
			}
			for i := 0; i < records; i += 7 {
				k, v := bulkKV(table, i)
				got, err := cl.Get(ctx, table, []byte(k))
				if err != nil || string(got) != v {
					t.Fatalf("%s = %q, %v; want %q", k, got, err, v)
				}
			}
			waitConverged(t, c, table, parts, 3, time.Minute)
		})
	}
	for _, table := range tables {
		assertReplicasEqual(t, replicaDigests(t, c, table, parts), parts, records)
	}
}

func bulkKV(table string, i int) (key, value string) {
	return fmt.Sprintf("key%06d", i), fmt.Sprintf("%s-value-%d", table, i)
}

// writeBulkFile writes n records of table as a TSV file at path.
func writeBulkFile(t *testing.T, path, table string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range n {
		k, v := bulkKV(table, i)
		fmt.Fprintf(w, "%s\t%s\n", k, v)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
