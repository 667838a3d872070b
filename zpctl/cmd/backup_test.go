package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/backup"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
	"github.com/zeppelin-kv/zeppelin/zpnode/dbsync"
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

// checkpointKeys returns every key and value of a backup's partition
// checkpoint, read from a copy (opening a DB writes to its directory).
func checkpointKeys(t *testing.T, dir string) map[string]string {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "db")
	if err := os.CopyFS(cp, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(cp, dbsync.CompleteFile))
	db, err := engine.Open(cp, engine.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := make(map[string]string)
	if err := db.ForEach(time.Now().UnixMilli(), func(k, v []byte, _ int64) error {
		out[string(k)] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBackupRestore takes a backup while a client writes, restores it into
// a new table (with the cluster secret) and checks that the restored
// table holds exactly the keys and values of the backup's checkpoints,
// partition by partition; that it is writable afterwards; and that its
// slaves full-sync from the restored masters.
func TestBackupRestore(t *testing.T) {
	secret := []byte("restore-test-secret")
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
	// A setting the restore must bring back (with the quota and the rest).
	if _, err := c.SetSplitSize(testCtx(t), tb.Name, 1<<30, 0); err != nil {
		t.Fatal(err)
	}
	writeKeys(t, c, tb.Name, "a", 400, 200)

	// A write load during the backup.
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				writerDone <- nil
				return
			default:
			}
			if err := c.Set(context.Background(), tb.Name, fmt.Appendf(nil, "w%d", i%500), fmt.Appendf(nil, "v%d", i), 0); err != nil {
				writerDone <- err
				return
			}
		}
	}()
	dir := t.TempDir()
	zp := func(args ...string) result {
		return run(t, invocation{args: append([]string{"--meta", leaderAddr(t, cl), "--timeout", "20s"}, args...)})
	}
	r := zp("backup", "create", tb.Name, "--to", dir, "--name", "b", "--cluster-secret-file", secretFile)
	close(stop)
	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if r.code != ExitOK {
		t.Fatalf("backup create: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	m := readManifest(t, dir, "b")

	restored := tb.Name + "-restored"
	if r := zp("backup", "restore", filepath.Join(dir, "b"), "--table", restored); r.code != ExitUnauthenticated {
		t.Fatalf("restore without the cluster secret: exit %d, want %d\n%s", r.code, ExitUnauthenticated, r.stderr)
	}
	// That attempt created the table and left it restoring: nodes
	// answer WAIT to reads and writes until the client gives up.
	shortCtx, cancel := context.WithTimeout(testCtx(t), 500*time.Millisecond)
	defer cancel()
	if _, err := c.Get(shortCtx, restored, []byte("a00001")); status.Code(err) != zppb.Code_WAIT {
		t.Fatalf("read of a table whose restore failed: %v, want WAIT", err)
	}
	if r := zp("table", "describe", restored); r.code != ExitOK || !strings.Contains(r.stdout, "restoring:") {
		t.Fatalf("describe of a restoring table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	restored += "2"
	r = zp("backup", "restore", filepath.Join(dir, "b"), "--table", restored, "--cluster-secret-file", secretFile, "-o", "json")
	var got backupRestoreJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); r.code != ExitOK || err != nil {
		t.Fatalf("restore: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	if got.Partitions != 2 || got.BytesFetched == 0 {
		t.Fatalf("restore: %+v", got)
	}
	if s := pullTable(t, cl, restored).SplitSize; s != 1<<30 {
		t.Errorf("restored split size %d, backed up 1 GiB", s)
	}
	for _, p := range m.Partitions {
		want := checkpointKeys(t, filepath.Join(dir, "b", filepath.FromSlash(p.Dir)))
		gotKeys := make(map[string]string)
		var cursor []byte
		for {
			kvs, next, err := c.ScanPartition(testCtx(t), restored, p.ID, cursor, 500, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, kv := range kvs {
				gotKeys[string(kv.Key)] = string(kv.Value)
			}
			if next == nil {
				break
			}
			cursor = next
		}
		if len(want) == 0 || len(gotKeys) != len(want) {
			t.Fatalf("partition %d: restored %d keys, the backup has %d", p.ID, len(gotKeys), len(want))
		}
		for k, v := range want {
			if gotKeys[k] != v {
				t.Fatalf("partition %d: key %q restored as %q, backed up as %q", p.ID, k, gotKeys[k], v)
			}
		}
		if pos := got.Positions[p.ID]; pos.LSN != p.LSN {
			t.Errorf("partition %d restored at lsn %d, backed up at %d", p.ID, pos.LSN, p.LSN)
		}
	}
	// Writable, and the slaves catch up from the restored masters.
	if err := c.Set(testCtx(t), restored, []byte("after"), []byte("restore"), 0); err != nil {
		t.Fatalf("write after the restore: %v", err)
	}
	waitStreaming(t, cl, pullTable(t, cl, restored))
	lc := leaderClient(t, cl)
	testcluster.Poll(t, 20*time.Second, func() error {
		for _, ni := range lc.InfoNodes(testCtx(t), cl.NodeAddrs(), restored, client.InfoReplication) {
			for _, ri := range ni.Info.Replication {
				if ri.Role == "slave" && ri.AppliedLSN < m.Partitions[ri.Partition].LSN {
					return fmt.Errorf("slave %s of %d at applied lsn %d, the backup at %d", ni.Addr, ri.Partition, ri.AppliedLSN, m.Partitions[ri.Partition].LSN)
				}
			}
		}
		return nil
	})
}

// TestBackupSkipsSlaveBehind: slaves that stream from their master but
// have not got its last writes (held at the master: they count as in
// sync, a few records behind) are refused by backup create and export,
// which read the master instead: both hold every write acknowledged
// before they began. (Seen in CI: TestBackupRestore backed up a partition
// from a slave that had just connected, with none of its keys.)
func TestBackupSkipsSlaveBehind(t *testing.T) {
	cl := ownCluster(t, inproc.Options{Metas: 1, Taps: true})
	tb := addTable(t, cl, 1, 3) // asynchronous: writes need no slave
	c := newClient(t, cl)
	p := tb.Partitions[0]
	var master *inproc.Node
	for _, n := range cl.Nodes {
		if n.Addr == p.Master {
			master = n
		}
	}
	tap := master.Tap()
	tap.SetHook(func(req *zppb.Request) *zppb.Response {
		if pull := req.GetBinlogPull(); pull != nil {
			return tap.HoldSlave(pull.Slave)(req)
		}
		return nil
	})
	// A pull already waiting at the master would take the next records
	// past the hook.
	tap.CloseConns()
	const n = 50
	writeKeys(t, c, tb.Name, "k", n, 10)
	lc := leaderClient(t, cl)
	testcluster.Poll(t, 20*time.Second, func() error {
		info, err := lc.Info(testCtx(t), p.Master, client.InfoReplication, tb.Name)
		if err != nil {
			return err
		}
		for _, ri := range info.Replication {
			if ri.Role != "master" || len(ri.Peers) != len(p.Slaves) {
				return fmt.Errorf("master's replication: %+v", info.Replication)
			}
			for _, peer := range ri.Peers {
				if peer.State != "streaming" || peer.LagRecords < 1 || peer.LagRecords > backup.MaxSyncLag {
					return fmt.Errorf("slave %s %s, %d records behind: not yet in sync and behind", peer.Addr, peer.State, peer.LagRecords)
				}
			}
		}
		return nil
	})

	dir := t.TempDir()
	if r := zpctl(t, cl, "--timeout", "20s", "backup", "create", tb.Name, "--to", dir, "--name", "b"); r.code != ExitOK {
		t.Fatalf("backup create: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	m := readManifest(t, dir, "b")
	bp := m.Partitions[0]
	if keys := checkpointKeys(t, filepath.Join(dir, "b", filepath.FromSlash(bp.Dir))); len(keys) != n || bp.Source != p.Master {
		t.Fatalf("backed up %d keys of %d from %s (%s), the master is %s", len(keys), n, bp.Source, bp.SourceRole, p.Master)
	}

	out := filepath.Join(t.TempDir(), "keys.jsonl")
	r := zpctl(t, cl, "--timeout", "20s", "export", tb.Name, "--out", out, "-o", "json")
	var sum exportJSON
	if err := json.Unmarshal([]byte(r.stdout), &sum); r.code != ExitOK || err != nil || sum.Keys != n {
		t.Fatalf("export: exit %d, %v, %+v keys, want %d\n%s%s", r.code, err, sum, n, r.stdout, r.stderr)
	}
}
