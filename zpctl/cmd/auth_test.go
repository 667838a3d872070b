package cmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
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

// TestTablePasswordFiles: a table created with --password-file is listed
// and described as protected; data commands exit 12 without its password
// or with a wrong one and work with --table-password-file (flag,
// environment or config file); table auth list/add/remove need the admin
// token and rotate the password; no password is ever printed. One meta,
// one node.
func TestTablePasswordFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	const token, pw, pw2 = "zpctl-admin-token-7f3a", "table-password-1c9e", "table-password-2b8d"
	cl := ownCluster(t, inproc.Options{Metas: 1, Nodes: 1, MetaConfig: func(_ int, c *metaserver.Config) {
		c.AdminToken, c.TablePasswordCost = []byte(token), tableauth.Cheap
	}})
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokenFile, pwFile, pw2File, wrongFile := file("token", token), file("pw", pw), file("pw2", pw2), file("wrong", "not-it")
	configFile := file("config.yaml", "table_password_file: "+pw2File)
	metas := strings.Join(cl.MetaAddrs(), ",")
	zp := func(env map[string]string, args ...string) result {
		t.Helper()
		r := run(t, invocation{args: append([]string{"--meta", metas, "--timeout", "10s"}, args...), env: env})
		for _, secret := range []string{token, pw, pw2} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("%v: a secret is in the output: %s %s", args, r.stdout, r.stderr)
			}
		}
		return r
	}
	admin := []string{"--admin-token-file", tokenFile}
	if r := zp(nil, append(admin, "table", "create", "p", "--partitions", "1", "--replicas", "1", "--password-file", pwFile, "--wait")...); r.code != ExitOK || !strings.Contains(r.stdout, "protected:") {
		t.Fatalf("create: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if r := zp(nil, "-o", "json", "table", "list"); r.code != ExitOK || !strings.Contains(r.stdout, `"protected": true`) {
		t.Errorf("table list: exit %d: %s", r.code, r.stdout)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"no password", nil, []string{"set", "p", "k", "v"}, ExitUnauthenticated},
		{"wrong password", nil, []string{"--table-password-file", wrongFile, "set", "p", "k", "v"}, ExitUnauthenticated},
		{"flag", nil, []string{"--table-password-file", pwFile, "set", "p", "k", "v"}, ExitOK},
		{"flag, get", nil, []string{"--table-password-file", pwFile, "get", "p", "k"}, ExitOK},
		{"environment", map[string]string{envTablePassword: pwFile}, []string{"get", "p", "k"}, ExitOK},
		{"node info of the table, no password", nil, []string{"node", "info", cl.NodeAddrs()[0], "--table", "p", "--section", "stats"}, ExitUnauthenticated},
		{"node info of the table", nil, []string{"--table-password-file", pwFile, "node", "info", cl.NodeAddrs()[0], "--table", "p", "--section", "stats"}, ExitOK},
		{"list without the admin token", nil, []string{"table", "auth", "list", "p"}, ExitUnauthenticated},
		{"add without the admin token", nil, []string{"table", "auth", "add", "p", "--password-file", pw2File}, ExitUnauthenticated},
		{"add", nil, append(admin, "table", "auth", "add", "p", "--password-file", pw2File), ExitOK},
		{"remove neither", nil, append(admin, "table", "auth", "remove", "p"), ExitUsage},
		{"remove one it has not", nil, append(admin, "table", "auth", "remove", "p", "--password-file", wrongFile), ExitNotFound},
		{"remove the first", nil, append(admin, "table", "auth", "remove", "p", "--password-file", pwFile), ExitOK},
	} {
		if r := zp(tc.env, tc.args...); r.code != tc.want {
			t.Errorf("%s: exit %d, want %d: %s %s", tc.name, r.code, tc.want, r.stdout, r.stderr)
		}
	}
	r := zp(nil, append(admin, "-o", "json", "table", "auth", "list", "p")...)
	if r.code != ExitOK || strings.Count(r.stdout, `"id"`) != 1 || !strings.Contains(r.stdout, "argon2id") {
		t.Errorf("auth list after the rotation: exit %d: %s", r.code, r.stdout)
	}
	// The new password, from the config file, once the node has it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := zp(nil, "--config", configFile, "get", "p", "k")
		if r.code == ExitOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the added password from the config file: exit %d: %s", r.code, r.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := zp(nil, "--config", configFile, "config"); !strings.Contains(r.stdout, pw2File) {
		t.Errorf("zpctl config does not show the table password file:\n%s", r.stdout)
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
	ca.Validity = 24 * time.Hour // for checkup's expiry warning below
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
	// The servers' certificates live a day: checkup reports each one.
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
