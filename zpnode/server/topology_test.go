package server_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestDeltaThatDoesNotFitPullsWhole: a node PULLs deltas against the
// topology it holds; when a delta leaves out a table as unchanged that the
// node's topology lacks (here its saved topology lost it), the node pulls
// the whole topology instead of staying behind, and serves the table.
func TestDeltaThatDoesNotFitPullsWhole(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := inproc.StartTest(t, inproc.Options{Metas: 1, Nodes: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, name := range []string{"kept", "lost"} {
		if _, err := cl.CreateTable(ctx, client.TableSpec{Name: name, Partitions: 2, Replicas: 1}); err != nil {
			t.Fatal(err)
		}
		if err := cl.WaitTableWritable(ctx, name); err != nil {
			t.Fatal(err)
		}
	}

	node := c.Node(c.NodeAddrs()[0])
	if err := node.Stop(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(node.Dir, "topology.pb")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	saved := &zppb.Topology{}
	if err := proto.Unmarshal(data, saved); err != nil {
		t.Fatal(err)
	}
	saved.Tables = slices.DeleteFunc(saved.Tables, func(tb *zppb.Table) bool { return tb.Name == "lost" })
	if data, err = proto.Marshal(saved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// A newer epoch, so that the restarted node PULLs.
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "new", Partitions: 1, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kept", "lost", "new"} {
		if err := cl.Set(ctx, name, []byte("k"), []byte("v"), 0); err != nil {
			t.Fatalf("SET on table %s after the restart: %v", name, err)
		}
	}
}
