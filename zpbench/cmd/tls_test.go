package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/tlsconf/tlstest"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
	nodeserver "github.com/zeppelin-kv/zeppelin/zpnode/server"
)

// TestTLSAndAdminToken runs zpbench against a cluster with TLS on every
// port (client certificates required) and an admin token: --tls-ca,
// --tls-cert and --tls-key reach the Zeppelin target through lib/client
// and through the raw path (--pipeline above 1) and the RESP front
// (--redis), --admin-token-file lets zpbench create its table; without
// them it is refused.
func TestTLSAndAdminToken(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "cluster")
	server := ca.Issue(t, dir, "server")
	server.VerifyClients = true
	clientFiles := ca.Issue(t, dir, "client")
	token := []byte("zpbench-admin-token")
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, token, 0o600); err != nil {
		t.Fatal(err)
	}
	c := inproc.StartTest(t, inproc.Options{
		Metas: 1,
		Nodes: 1,
		TLS:   server,
		MetaConfig: func(_ int, cfg *metaserver.Config) {
			cfg.AdminToken = token
		},
		NodeConfig: func(_ int, cfg *nodeserver.Config) {
			cfg.RedisAddr = "127.0.0.1:0"
		},
	})
	meta := strings.Join(c.MetaAddrs(), ",")
	tlsArgs := []string{"--tls-ca", server.CA, "--tls-cert", clientFiles.Cert, "--tls-key", clientFiles.Key}
	common := []string{"--ops", "50", "--warmup", "0", "-q", "--log-level", "warn", "--keyspace", "100"}

	steps := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		// The RESP front serves table "default" to connections without AUTH.
		{"create the table over TLS with the token", append([]string{"--meta", meta, "--table", "default", "--keep-table", "--admin-token-file", tokenFile}, tlsArgs...),
			ExitOK, "created table default"},
		{"raw path over TLS", append([]string{"--meta", meta, "--table", "default", "--pipeline", "4"}, tlsArgs...), ExitOK, ""},
		{"RESP over TLS", append([]string{"--redis", c.Nodes[0].Server().RedisListenAddr()}, tlsArgs...), ExitOK, ""},
		{"no admin token to create a table", append([]string{"--meta", meta, "--table", "other"}, tlsArgs...),
			ExitFailed, "admin token"},
		{"no TLS", []string{"--meta", meta, "--table", "default", "--timeout", "2s"}, ExitFailed, ""},
		{"certificate without its key", []string{"--meta", meta, "--tls-cert", clientFiles.Cert}, ExitUsage, "--tls-key"},
		{"missing token file", append([]string{"--meta", meta, "--admin-token-file", filepath.Join(dir, "none")}, tlsArgs...),
			ExitUsage, "--admin-token-file"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			code, _, stderr := zpbench(t, append(st.args, common...)...)
			if code != st.wantCode {
				t.Fatalf("exit %d, want %d\n%s", code, st.wantCode, stderr)
			}
			if !strings.Contains(stderr, st.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", st.wantStderr, stderr)
			}
		})
	}
}
