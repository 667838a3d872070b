package cmd

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/zpctl/backup"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
	nodeserver "github.com/zeppelin-kv/zeppelin/zpnode/server"
)

// readManifest reads the manifest of backup dir/name.
func readManifest(t *testing.T, dir, name string) *backup.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name, backup.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m backup.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// writeKeys writes n keys prefix<i> of size bytes each.
func writeKeys(t *testing.T, cl *client.Client, table, prefix string, n, size int) {
	t.Helper()
	var kvs []client.KeyValue
	for i := range n {
		// Random letters: compression must not make the table files tiny.
		rng := rand.New(rand.NewPCG(uint64(i), uint64(len(prefix))))
		v := make([]byte, size)
		for j := range v {
			v[j] = 'a' + byte(rng.IntN(26))
		}
		kvs = append(kvs, client.KeyValue{Key: fmt.Appendf(nil, "%s%05d", prefix, i), Value: v})
		if len(kvs) == 200 || i == n-1 {
			if err := cl.MSet(testCtx(t), table, kvs, 0); err != nil {
				t.Fatal(err)
			}
			kvs = kvs[:0]
		}
	}
}

// TestBackup, on a cluster with a cluster secret: backup create needs the
// secret (exit 12 without), takes every partition from an in-sync slave
// and writes a manifest that verify accepts and list shows; an
// incremental backup copies exactly the bytes of the files the first one
// lacks; verify catches a flipped byte and a missing file (exit 13), and
// a backup without its manifest is incomplete.
func TestBackup(t *testing.T) {
	secret := []byte("backup-test-secret")
	cl := ownCluster(t, inproc.Options{
		MetaConfig: func(_ int, cfg *metaserver.Config) { cfg.ClusterSecret = secret },
		NodeConfig: func(i int, cfg *nodeserver.Config) { quiet(i, cfg); cfg.ClusterSecret = secret },
	})
	secretFile := filepath.Join(t.TempDir(), "cluster.secret")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	tb := addTable(t, cl, 2, 3)
	c := newClient(t, cl)
	writeKeys(t, c, tb.Name, "a", 600, 300)
	waitStreaming(t, cl, tb)
	dir := t.TempDir()

	if r := zpctl(t, cl, "backup", "create", tb.Name, "--to", dir, "--name", "refused"); r.code != ExitUnauthenticated {
		t.Fatalf("backup without the cluster secret: exit %d, want %d\n%s", r.code, ExitUnauthenticated, r.stderr)
	}
	r := zpctl(t, cl, "backup", "create", tb.Name, "--to", dir, "--name", "full", "--cluster-secret-file", secretFile, "-o", "json")
	var got backupCreateJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); r.code != ExitOK || err != nil {
		t.Fatalf("backup create: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	if got.Partitions != 2 || got.Bytes == 0 || got.BytesCopied != got.Bytes || got.BytesReused != 0 {
		t.Fatalf("full backup: %+v", got)
	}
	full := readManifest(t, dir, "full")
	for _, p := range full.Partitions {
		if p.SourceRole != "slave" || p.LSN == 0 || p.SlotEnd <= p.SlotBegin {
			t.Errorf("partition %d: %+v; want a slave's checkpoint with a position and slots", p.ID, p)
		}
	}
	if full.Table.PartitionCount != 2 || full.Table.Replicas != 3 || full.ToolVersion == "" || full.Epoch == 0 {
		t.Fatalf("manifest: %+v", full)
	}
	if r := zpctl(t, cl, "backup", "create", tb.Name, "--to", dir, "--name", "full", "--cluster-secret-file", secretFile); r.code != ExitConflict {
		t.Fatalf("a second backup of the same name: exit %d, want %d\n%s", r.code, ExitConflict, r.stderr)
	}

	// New keys make new table files; the old ones are linked.
	writeKeys(t, c, tb.Name, "b", 300, 300)
	r = zpctl(t, cl, "backup", "create", tb.Name, "--to", dir, "--name", "incr", "--incremental-from", "full",
		"--cluster-secret-file", secretFile, "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &got); r.code != ExitOK || err != nil {
		t.Fatalf("incremental backup: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	incr := readManifest(t, dir, "incr")
	var lacked uint64
	for _, p := range incr.Partitions {
		had := make(map[string]backup.File)
		for _, f := range full.Partitions[p.ID].Files {
			had[f.Name] = f
		}
		for _, f := range p.Files {
			if h, ok := had[f.Name]; ok && h == f && strings.HasSuffix(f.Name, ".sst") {
				continue
			}
			lacked += f.Size
		}
	}
	if got.BytesCopied != lacked || got.BytesReused == 0 || got.BytesCopied+got.BytesReused != got.Bytes {
		t.Fatalf("incremental backup copied %d bytes and linked %d of %d; the first backup lacked %d of them",
			got.BytesCopied, got.BytesReused, got.Bytes, lacked)
	}
	t.Logf("incremental: %d of %d bytes copied", got.BytesCopied, got.Bytes)

	for _, name := range []string{"full", "incr"} {
		if r := zpctl(t, cl, "backup", "verify", filepath.Join(dir, name)); r.code != ExitOK || !strings.Contains(r.stdout, "all checksums match") {
			t.Fatalf("verify %s: exit %d\n%s%s", name, r.code, r.stdout, r.stderr)
		}
	}
	r = zpctl(t, cl, "backup", "list", dir, "-o", "json")
	var rows []backupListJSON
	if err := json.Unmarshal([]byte(r.stdout), &rows); r.code != ExitOK || err != nil || len(rows) != 3 {
		t.Fatalf("list: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	// "refused" failed before fetching anything: incomplete.
	if rows[0].Name != "full" || !rows[0].Complete || rows[1].Name != "incr" || rows[1].IncrementalFrom != "full" || rows[2].Name != "refused" || rows[2].Complete {
		t.Fatalf("list: %+v", rows)
	}

	// A flipped byte in a table file.
	p0 := incr.Partitions[0]
	var sst string
	for _, f := range p0.Files {
		if strings.HasSuffix(f.Name, ".sst") {
			sst = filepath.Join(dir, "incr", filepath.FromSlash(p0.Dir), f.Name)
		}
	}
	b, err := os.ReadFile(sst)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	// Written in place: the file may be a link shared with "full", which
	// is then damaged too, as it would be on disk.
	if err := os.WriteFile(sst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r = zpctl(t, cl, "backup", "verify", filepath.Join(dir, "incr"), "-o", "json")
	var vr backupVerifyJSON
	if err := json.Unmarshal([]byte(r.stdout), &vr); r.code != ExitCorrupt || err != nil || vr.OK || len(vr.Problems) != 1 ||
		!strings.Contains(vr.Problems[0].Reason, "crc32c") || !strings.HasSuffix(sst, filepath.FromSlash(vr.Problems[0].File)) {
		t.Fatalf("verify with a flipped byte: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	// A missing file.
	if err := os.Remove(filepath.Join(dir, "incr", filepath.FromSlash(p0.Dir), "CURRENT")); err != nil {
		t.Fatal(err)
	}
	r = zpctl(t, cl, "backup", "verify", filepath.Join(dir, "incr"))
	if r.code != ExitCorrupt || !strings.Contains(r.stdout, "CURRENT: missing") {
		t.Fatalf("verify with a missing file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// No manifest: incomplete.
	if err := os.Remove(filepath.Join(dir, "full", backup.ManifestFile)); err != nil {
		t.Fatal(err)
	}
	if r := zpctl(t, cl, "backup", "verify", filepath.Join(dir, "full")); r.code != ExitCorrupt || !strings.Contains(r.stderr, "incomplete") {
		t.Fatalf("verify without a manifest: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := zpctl(t, cl, "backup", "verify", filepath.Join(dir, "nosuch")); r.code != ExitNotFound {
		t.Fatalf("verify of no backup: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
