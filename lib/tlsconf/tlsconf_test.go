package tlsconf_test

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/tlsconf"
	"github.com/zeppelin-kv/zeppelin/lib/tlsconf/tlstest"
)

// serve accepts TLS connections with cfg on loopback, completing each
// handshake, until the test ends.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				buf := make([]byte, 1)
				c.Read(buf)
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// peerSerial dials addr and returns the serial of the certificate the
// server presented.
func peerSerial(addr string, cfg *tls.Config) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	// A TLS 1.3 client learns that the server refused its certificate
	// only on its first read.
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return "", err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

func TestReloadOnFileChange(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "cluster")
	files := ca.Issue(t, dir, "node")
	r, err := tlsconf.NewReloader(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Watch(10 * time.Millisecond)
	addr := serve(t, r.ServerConfig())
	client, err := tlsconf.ClientConfig(tlsconf.Files{CA: files.CA})
	if err != nil {
		t.Fatal(err)
	}
	first, err := peerSerial(addr, client)
	if err != nil {
		t.Fatal(err)
	}
	if first != r.Serial() {
		t.Fatalf("server presented serial %s, reloader holds %s", first, r.Serial())
	}

	// A broken file is not taken: the server keeps its certificate.
	if err := os.WriteFile(files.Cert, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); !errors.Is(err, tlsconf.ErrConfig) {
		t.Fatalf("Reload of a broken certificate = %v, want ErrConfig", err)
	}
	if got, err := peerSerial(addr, client); err != nil || got != first {
		t.Fatalf("after a broken rotation: serial %s, %v; want the old %s", got, err, first)
	}

	// A new certificate is served without a restart.
	ca.Issue(t, dir, "node")
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := peerSerial(addr, client)
		if err != nil {
			t.Fatal(err)
		}
		if got != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rotated certificate was never served")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestVerifyClients(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "cluster")
	other := tlstest.NewCA(t, dir, "other")
	files := ca.Issue(t, dir, "node")
	files.VerifyClients = true
	r, err := tlsconf.NewReloader(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r.ServerConfig())
	stranger := other.Issue(t, dir, "stranger")
	tests := []struct {
		name   string
		client tlsconf.Files
		ok     bool
	}{
		{"certificate from the cluster's CA", tlsconf.Files{CA: files.CA, Cert: files.Cert, Key: files.Key}, true},
		{"no certificate", tlsconf.Files{CA: files.CA}, false},
		{"certificate from another CA", tlsconf.Files{CA: files.CA, Cert: stranger.Cert, Key: stranger.Key}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tlsconf.ClientConfig(tt.client)
			if err != nil {
				t.Fatal(err)
			}
			_, err = peerSerial(addr, cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("dial: %v, want ok=%v", err, tt.ok)
			}
		})
	}
	// A client that does not trust the server's CA refuses it.
	cfg, err := tlsconf.ClientConfig(tlsconf.Files{CA: other.CAFile, Cert: files.Cert, Key: files.Key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := peerSerial(addr, cfg); err == nil {
		t.Fatal("a client trusting another CA accepted the server")
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "cluster")
	files := ca.Issue(t, dir, "node")
	tests := []struct {
		name  string
		files tlsconf.Files
	}{
		{"certificate without key", tlsconf.Files{Cert: files.Cert}},
		{"key without certificate", tlsconf.Files{Key: files.Key}},
		{"verify clients without CA", tlsconf.Files{Cert: files.Cert, Key: files.Key, VerifyClients: true}},
		{"missing file", tlsconf.Files{Cert: files.Cert + ".gone", Key: files.Key}},
		{"key of another certificate", tlsconf.Files{Cert: files.Cert, Key: ca.Issue(t, dir, "other").Key}},
		{"CA that is not PEM", tlsconf.Files{Cert: files.Cert, Key: files.Key, CA: files.Key + ".none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tlsconf.NewReloader(tt.files, nil); !errors.Is(err, tlsconf.ErrConfig) {
				t.Fatalf("NewReloader = %v, want ErrConfig", err)
			}
		})
	}
}
