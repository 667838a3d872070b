package cmd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/tlsconf/tlstest"
	"github.com/zeppelin-kv/zeppelin/zpctl/bulkload"
)

// TestBackupRestoreTLS: on a mutual-TLS cluster, backup create fetches
// over TLS, and restore serves the backup to the masters over TLS with
// zpctl's certificate (the masters dial it as they dial each other, with
// theirs); every key reads back from the restored table. Without a
// certificate to serve with, restore is a usage error and creates no
// table. A bulk load stages its chunks over TLS too (as attachments the
// connection copies, where plain TCP sends them by sendfile).
func TestBackupRestoreTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "cluster")
	files := ca.Issue(t, dir, "server")
	files.VerifyClients = true
	cl := ownCluster(t, inproc.Options{TLS: files})
	cert := ca.Issue(t, dir, "zpctl")
	tlsFlags := []string{"--tls-ca", cert.CA, "--tls-cert", cert.Cert, "--tls-key", cert.Key}
	zp := func(flags []string, args ...string) result {
		base := append([]string{"--meta", strings.Join(cl.MetaAddrs(), ","), "--timeout", "20s"}, flags...)
		return run(t, invocation{args: append(base, args...)})
	}
	tb := tableName(t)
	if r := zp(tlsFlags, "table", "create", tb, "--partitions", "2", "--replicas", "3", "--wait"); r.code != ExitOK {
		t.Fatalf("table create: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	const keys = 50
	for i := range keys {
		if r := zp(tlsFlags, "set", tb, fmt.Sprintf("k%02d", i), fmt.Sprintf("v%02d", i)); r.code != ExitOK {
			t.Fatalf("set: exit %d\n%s", r.code, r.stderr)
		}
	}
	backups := t.TempDir()
	if r := zp(tlsFlags, "backup", "create", tb, "--to", backups, "--name", "b"); r.code != ExitOK {
		t.Fatalf("backup create over TLS: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	restored := tb + "-restored"
	if r := zp([]string{"--tls-ca", cert.CA}, "backup", "restore", filepath.Join(backups, "b"), "--table", restored); r.code != ExitUsage {
		t.Fatalf("restore over TLS without a certificate: exit %d, want %d\n%s", r.code, ExitUsage, r.stderr)
	}
	if r := zp(tlsFlags, "table", "describe", restored); r.code != ExitNotFound {
		t.Fatalf("a refused restore left table %s: describe exit %d\n%s", restored, r.code, r.stdout)
	}
	if r := zp(tlsFlags, "backup", "restore", filepath.Join(backups, "b"), "--table", restored, "--listen", "127.0.0.1:0"); r.code != ExitOK {
		t.Fatalf("restore over TLS: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for i := range keys {
		r := zp(tlsFlags, "get", restored, fmt.Sprintf("k%02d", i))
		if want := fmt.Sprintf("v%02d", i); r.code != ExitOK || strings.TrimSpace(r.stdout) != want {
			t.Fatalf("get k%02d from the restored table: exit %d %q, want %q\n%s", i, r.code, r.stdout, want, r.stderr)
		}
	}

	// 130,000 records of 100 pseudo-random bytes: each partition's table
	// file is over one 4 MiB chunk, staged as several attachments.
	path := filepath.Join(t.TempDir(), "load.tsv")
	var b strings.Builder
	value := func(i int) string {
		v := make([]byte, 100)
		x := uint64(i)*0x9e3779b97f4a7c15 + 1
		for j := range v {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			v[j] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[x%62]
		}
		return string(v)
	}
	const records = 130000
	for i := range records {
		fmt.Fprintf(&b, "b%06d\t%s\n", i, value(i))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	bulk := tb + "-bulk"
	if r := zp(tlsFlags, "table", "create", bulk, "--partitions", "2", "--replicas", "3", "--wait"); r.code != ExitOK {
		t.Fatalf("table create: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := zp(tlsFlags, "-o", "json", "bulkload", bulk, path)
	var res bulkload.Result
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != ExitOK || res.Records != records {
		t.Fatalf("bulkload over TLS: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	for _, p := range res.Partitions {
		if p.Bytes <= bulkload.ChunkSize {
			t.Fatalf("partition %d's table file has %d bytes: one chunk, want several", p.ID, p.Bytes)
		}
	}
	for _, i := range []int{0, 4999, 65000, records - 1} {
		r := zp(tlsFlags, "get", bulk, fmt.Sprintf("b%06d", i))
		if want := value(i); r.code != ExitOK || strings.TrimSpace(r.stdout) != want {
			t.Fatalf("get b%06d from the bulk loaded table: exit %d %q, want %q\n%s", i, r.code, r.stdout, want, r.stderr)
		}
	}
}
