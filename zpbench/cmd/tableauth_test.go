package cmd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

// TestTablePasswordFile: against a table with a password, a run without
// --table-password-file fails, and one with it runs clean, through the
// client (pipeline 1) and the raw path (pipeline 4); load too. One meta,
// one node, in process.
func TestTablePasswordFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := inproc.StartTest(t, inproc.Options{Metas: 1, Nodes: 1,
		MetaConfig: func(_ int, cfg *metaserver.Config) { cfg.TablePasswordCost = tableauth.Cheap }})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "p", Partitions: 2, Replicas: 1, Passwords: [][]byte{[]byte("pw")}}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	meta := strings.Join(c.MetaAddrs(), ",")
	if code, _, stderr := zpbench(t, "--meta", meta, "--table", "p", "--ops", "50", "--warmup", "0", "-q", "--log-level", "warn"); code == ExitOK || !strings.Contains(stderr, "UNAUTHENTICATED") {
		t.Errorf("a run without the password: exit %d, stderr %s", code, stderr)
	}
	for _, pipeline := range []string{"1", "4"} {
		checkRun(t, runJSON(t, "--meta", meta, "--table", "p", "--table-password-file", file, "--workload", "mixed", "--ops", "50", "--conns", "2", "--pipeline", pipeline), 50)
	}
	if code, _, stderr := zpbench(t, "load", "--meta", meta, "--table", "p", "--table-password-file", file, "--keyspace", "20", "--conns", "2", "--log-level", "warn"); code != ExitOK {
		t.Errorf("load with the password: exit %d, stderr %s", code, stderr)
	}
}
