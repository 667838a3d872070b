package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/tlsconf"
	"github.com/zeppelin-kv/zeppelin/lib/tlsconf/tlstest"
	nodeserver "github.com/zeppelin-kv/zeppelin/zpnode/server"
)

// TestTLSEverywhere runs a cluster with mutual TLS on every port: meta
// (protocol and Raft), nodes (native, RESP, metrics), node to node
// replication and node to meta. Clients with a certificate of the
// cluster's CA work on both protocols; a plain client, one without a
// certificate and one with another CA's are refused. The servers'
// certificate is then rotated without a restart: new connections get
// the new one, connections made before keep working, and replication
// goes on.
func TestTLSEverywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "cluster")
	files := ca.Issue(t, dir, "server")
	files.VerifyClients = true
	clientFiles := ca.Issue(t, dir, "client")
	stranger := tlstest.NewCA(t, dir, "stranger").Issue(t, dir, "stranger")
	c := inproc.StartTest(t, inproc.Options{
		TLS: files,
		NodeConfig: func(_ int, cfg *nodeserver.Config) {
			cfg.RedisAddr, cfg.MetricsAddr = "127.0.0.1:0", "127.0.0.1:0"
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clientTLS, err := tlsconf.ClientConfig(tlsconf.Files{CA: files.CA, Cert: clientFiles.Cert, Key: clientFiles.Key})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: 30 * time.Second, TLS: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "t", Partitions: 1, Replicas: 3, MinSyncReplicas: 2}); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	// Two slaves acknowledge: replication runs over TLS.
	if err := cl.Set(ctx, "t", []byte("k"), []byte("v1"), 0); err != nil {
		t.Fatalf("a write acknowledged by two slaves over TLS: %v", err)
	}

	// Refused: no TLS, TLS without a client certificate, a certificate of
	// another CA, and a client that does not trust the cluster's CA.
	refused := []struct {
		name  string
		files *tlsconf.Files
	}{
		{"plain TCP", nil},
		{"no client certificate", &tlsconf.Files{CA: files.CA}},
		{"certificate of another CA", &tlsconf.Files{CA: files.CA, Cert: stranger.Cert, Key: stranger.Key}},
		{"server not trusted", &tlsconf.Files{CA: stranger.CA, Cert: clientFiles.Cert, Key: clientFiles.Key}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			opts := client.Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: 2 * time.Second}
			if tt.files != nil {
				if opts.TLS, err = tlsconf.ClientConfig(*tt.files); err != nil {
					t.Fatal(err)
				}
			}
			if bad, err := client.New(ctx, opts); err == nil {
				bad.Close()
				t.Fatal("the client pulled the topology")
			}
		})
	}

	// RESP and metrics on a node, over TLS.
	node := c.Nodes[0].Server()
	rc := redis.NewClient(&redis.Options{Addr: node.RedisListenAddr(), TLSConfig: clientTLS, MaxRetries: -1})
	defer rc.Close()
	if err := rc.Ping(ctx).Err(); err != nil {
		t.Fatalf("RESP PING over TLS: %v", err)
	}
	plain := redis.NewClient(&redis.Options{Addr: node.RedisListenAddr(), MaxRetries: -1, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("RESP PING without TLS answered")
	}
	if _, err := exec.LookPath("redis-cli"); err == nil {
		host, port, _ := net.SplitHostPort(node.RedisListenAddr())
		tlsArgs := []string{"--tls", "--cacert", files.CA, "--cert", clientFiles.Cert, "--key", clientFiles.Key, "-h", host, "-p", port, "PING"}
		out, err := exec.CommandContext(ctx, "redis-cli", tlsArgs...).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "PONG" {
			t.Fatalf("redis-cli --tls PING: %q, %v", out, err)
		}
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}, Timeout: 10 * time.Second}
	resp, err := hc.Get("https://" + node.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatalf("metrics over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics over TLS: %s", resp.Status)
	}

	// Rotation: a new certificate in the same files, picked up without a
	// restart (the servers watch the files; SIGHUP calls ReloadTLS).
	old := serialAt(t, c.MetaAddrs()[0], clientTLS)
	ca.Issue(t, dir, "server")
	for _, n := range c.Nodes {
		if err := n.Server().ReloadTLS(); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range c.Metas {
		if err := m.Server().ReloadTLS(); err != nil {
			t.Fatal(err)
		}
	}
	for _, addr := range append(c.MetaAddrs(), c.NodeAddrs()...) {
		if got := serialAt(t, addr, clientTLS); got == old {
			t.Fatalf("%s still presents the old certificate %s", addr, old)
		}
	}
	// Connections made before the rotation and new ones both work, and
	// replication goes on.
	if err := rc.Ping(ctx).Err(); err != nil {
		t.Fatalf("RESP connection from before the rotation: %v", err)
	}
	if err := cl.Set(ctx, "t", []byte("k"), []byte("v2"), 0); err != nil {
		t.Fatalf("a write acknowledged by two slaves after the rotation: %v", err)
	}
	cl2, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: 30 * time.Second, TLS: clientTLS})
	if err != nil {
		t.Fatalf("a new client after the rotation: %v", err)
	}
	defer cl2.Close()
	if v, err := cl2.Get(ctx, "t", []byte("k")); err != nil || string(v) != "v2" {
		t.Fatalf("get after the rotation: %q, %v", v, err)
	}
}

// serialAt returns the serial of the certificate addr presents now.
func serialAt(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	d := tls.Dialer{Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	defer nc.Close()
	certs := nc.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		t.Fatal(errors.New("no certificate"))
	}
	return certs[0].SerialNumber.String()
}
