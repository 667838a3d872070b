package cmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/tlsconf/tlstest"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

// TestAdminTokenFile: against meta servers with an admin token, a command
// that changes the cluster exits 12 without it; the token file given by
// flag, environment or config file lets it through; reads need none; a
// file others may read is warned about; the token is printed nowhere.
func TestAdminTokenFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	const token = "zpctl-admin-token-7f3a"
	cl := ownCluster(t, inproc.Options{MetaConfig: func(_ int, c *metaserver.Config) { c.AdminToken = []byte(token) }})
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openFile := filepath.Join(dir, "open-token")
	if err := os.WriteFile(openFile, []byte(token), 0o644); err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(dir, "wrong-token")
	if err := os.WriteFile(wrongFile, []byte("not-the-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	configFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(configFile, []byte("admin_token_file: "+tokenFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	metas := strings.Join(cl.MetaAddrs(), ",")
	zp := func(env map[string]string, args ...string) result {
		t.Helper()
		return run(t, invocation{args: append([]string{"--meta", metas, "--timeout", "5s"}, args...), env: env})
	}
	create := func(name string) []string {
		return []string{"table", "create", name, "--partitions", "1", "--replicas", "1", "--min-sync", "0"}
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"no token", nil, create("t1"), ExitUnauthenticated},
		{"wrong token", nil, append([]string{"--admin-token-file", wrongFile}, create("t1")...), ExitUnauthenticated},
		{"missing file", nil, append([]string{"--admin-token-file", filepath.Join(dir, "nosuch")}, create("t1")...), ExitUsage},
		{"flag", nil, append([]string{"--admin-token-file", tokenFile}, create("t1")...), ExitOK},
		{"environment", map[string]string{envAdminToken: tokenFile}, create("t2"), ExitOK},
		{"config file", nil, append([]string{"--config", configFile}, create("t3")...), ExitOK},
		{"a read needs none", nil, []string{"table", "list"}, ExitOK},
	} {
		r := zp(tc.env, tc.args...)
		if r.code != tc.want {
			t.Errorf("%s: exit %d, want %d: %s %s", tc.name, r.code, tc.want, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, token) {
			t.Errorf("%s: the token is in the output", tc.name)
		}
	}
	r := zp(nil, append([]string{"--admin-token-file", openFile}, create("t4")...)...)
	if r.code != ExitOK || !strings.Contains(r.stderr, "chmod 600") {
		t.Errorf("world-readable token file: exit %d, stderr %q; want it used and warned about", r.code, r.stderr)
	}
	if r := zp(nil, "--config", configFile, "config"); !strings.Contains(r.stdout, tokenFile) || strings.Contains(r.stdout, token+"\n") {
		t.Errorf("zpctl config:\n%s", r.stdout)
	}
}

// TestTLSSettings: against a mutual-TLS cluster, zpctl works with the CA
// and a client certificate from flags, the environment or its config
// file; without them, or with a certificate file missing, it fails with
// the exit codes scripts branch on.
func TestTLSSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "cluster")
	files := ca.Issue(t, dir, "server")
	files.VerifyClients = true
	cl := ownCluster(t, inproc.Options{TLS: files})
	cert := ca.Issue(t, dir, "zpctl")
	configFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(configFile, []byte("tls_ca: "+cert.CA+"\ntls_cert: "+cert.Cert+"\ntls_key: "+cert.Key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--tls-ca", cert.CA, "--tls-cert", cert.Cert, "--tls-key", cert.Key}
	metas := strings.Join(cl.MetaAddrs(), ",")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"flags", nil, flags, ExitOK},
		{"environment", map[string]string{envTLSCA: cert.CA, envTLSCert: cert.Cert, envTLSKey: cert.Key}, nil, ExitOK},
		{"config file", nil, []string{"--config", configFile}, ExitOK},
		{"plain TCP", nil, nil, ExitUnavailable},
		{"no client certificate", nil, []string{"--tls-ca", cert.CA}, ExitUnavailable},
		{"certificate without its key", nil, []string{"--tls-ca", cert.CA, "--tls-cert", cert.Cert}, ExitUsage},
		{"missing CA file", nil, []string{"--tls-ca", filepath.Join(dir, "nosuch.pem")}, ExitUsage},
	} {
		args := append([]string{"--meta", metas, "--timeout", "3s"}, tc.args...)
		r := run(t, invocation{args: append(args, "table", "list"), env: tc.env})
		if r.code != tc.want {
			t.Errorf("%s: exit %d, want %d: %s %s", tc.name, r.code, tc.want, r.stdout, r.stderr)
		}
	}
	// The test certificates live a day: checkup reports each server's.
	r := run(t, invocation{args: append(append([]string{"--meta", metas, "--timeout", "10s"}, flags...), "checkup", "-o", "json")})
	var report struct {
		Problems []struct{ Check, Node string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil {
		t.Fatalf("checkup -o json: %v: %s %s", err, r.stdout, r.stderr)
	}
	expiring := make(map[string]bool)
	for _, p := range report.Problems {
		if p.Check == "certificate" {
			expiring[p.Node] = true
		}
	}
	for _, addr := range append(cl.MetaAddrs(), cl.NodeAddrs()...) {
		if !expiring[addr] {
			t.Errorf("checkup did not report the certificate of %s expiring within a day: %s", addr, r.stdout)
		}
	}
}
