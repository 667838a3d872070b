package testcluster_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestTableCreateAndDropReachNodesAtOnce: nodes that PING only every 30s
// still open a new table's replicas, and remove a dropped table's data,
// within seconds, because the meta leader NOTIFYs them when the change
// commits. Without the NOTIFY they would learn at their next PING.
func TestTableCreateAndDropReachNodesAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	const (
		table = "notified"
		// Far below the ping interval: only a NOTIFY gets the news
		// there in time.
		within = 8 * time.Second
	)
	c := testcluster.Start(t, testcluster.Options{
		// A long lease and down-timeout, so that silent nodes stay UP
		// and their masters keep serving between PINGs.
		MetaArgs: []string{"--down-timeout", "120s", "--lease", "90s"},
		NodeArgs: []string{"--ping-interval", "30s"},
	})
	cl := newClient(t, c)

	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	begin := time.Now()
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: table, Partitions: 4, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, table); err != nil {
		t.Fatalf("table not writable %v after CREATE_TABLE: %v", time.Since(begin).Round(time.Millisecond), err)
	}
	t.Logf("writable %v after CREATE_TABLE", time.Since(begin).Round(time.Millisecond))
	// Replicas 3 on 3 nodes: every node holds one, and knows the table.
	for _, n := range c.Nodes {
		if _, err := os.Stat(filepath.Join(n.DataDir, table, "TABLE")); err != nil {
			t.Errorf("%s: %v", n.Name, err)
		}
	}
	if err := cl.Set(ctx, table, []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}

	begin = time.Now()
	if _, err := cl.DropTable(context.Background(), table, 0); err != nil {
		t.Fatal(err)
	}
	testcluster.Poll(t, within, func() error {
		for _, n := range c.Nodes {
			if _, err := os.Stat(filepath.Join(n.DataDir, table)); !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s still has the dropped table's data (%v)", n.Name, err)
			}
		}
		return nil
	})
	t.Logf("data removed from every node %v after DROP_TABLE", time.Since(begin).Round(time.Millisecond))
}
