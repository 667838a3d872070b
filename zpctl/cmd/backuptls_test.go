package cmd

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/tlsconf/tlstest"
)

// TestBackupRestoreTLS: on a mutual-TLS cluster, backup create fetches
// over TLS, and restore serves the backup to the masters over TLS with
// zpctl's certificate (the masters dial it as they dial each other, with
// theirs); every key reads back from the restored table. Without a
// certificate to serve with, restore is a usage error and creates no
// table.
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
}
