// Package tlsconf builds the TLS settings of Zeppelin's servers and
// clients from PEM files, and reloads a server's certificate, key and CA
// when the files change (or on demand: SIGHUP) without a restart.
package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Files names the PEM files of one side of a TLS connection.
type Files struct {
	// Cert is the certificate (with its chain) this side presents: a
	// server's to clients, and the same one as a client certificate when
	// the server dials other servers (mTLS), so it should allow both
	// server and client authentication.
	Cert string
	// Key is Cert's private key.
	Key string
	// CA holds the certificates that the other side's certificate must
	// chain to. Empty: the system's roots (clients), no client
	// certificates accepted (servers).
	CA string
	// VerifyClients (servers) requires every client to present a
	// certificate signed by CA: mutual TLS.
	VerifyClients bool
}

// ErrConfig is wrapped by errors in the files named or their contents.
var ErrConfig = errors.New("tls")

// RegisterServerFlags adds -tls-cert, -tls-key, -tls-ca and
// -tls-verify-clients to fs, filling f.
func (f *Files) RegisterServerFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.Cert, "tls-cert", "", "PEM certificate to serve TLS with on every port (and to present to other servers); empty: plain TCP")
	fs.StringVar(&f.Key, "tls-key", "", "PEM private key of -tls-cert")
	fs.StringVar(&f.CA, "tls-ca", "", "PEM CA certificates that other servers' (and, with -tls-verify-clients, clients') certificates must chain to")
	fs.BoolVar(&f.VerifyClients, "tls-verify-clients", false, "require a client certificate signed by -tls-ca on every connection (mutual TLS)")
}

// Enabled reports whether f asks for TLS at all.
func (f Files) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" || f.VerifyClients }

// validateServer checks what a server needs: a certificate and its key,
// and a CA when clients must present certificates.
func (f Files) validateServer() error {
	switch {
	case f.Cert == "" || f.Key == "":
		return fmt.Errorf("%w: a server needs both -tls-cert and -tls-key", ErrConfig)
	case f.VerifyClients && f.CA == "":
		return fmt.Errorf("%w: -tls-verify-clients needs -tls-ca", ErrConfig)
	}
	return nil
}

// material is one load of the files.
type material struct {
	cert   *tls.Certificate // nil for a client without a certificate
	pool   *x509.CertPool   // nil: the system's roots
	stamps []stamp
}

// stamp tells whether a file changed since it was read.
type stamp struct {
	path string
	mod  time.Time
	size int64
}

func load(f Files) (*material, error) {
	m := &material{}
	for _, p := range []string{f.Cert, f.Key, f.CA} {
		if p == "" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		m.stamps = append(m.stamps, stamp{p, st.ModTime(), st.Size()})
	}
	if f.Cert != "" || f.Key != "" {
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %s and key %s: %w", ErrConfig, f.Cert, f.Key, err)
		}
		if cert.Leaf == nil && len(cert.Certificate) > 0 {
			cert.Leaf, _ = x509.ParseCertificate(cert.Certificate[0])
		}
		m.cert = &cert
	}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		m.pool = x509.NewCertPool()
		if !m.pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrConfig, f.CA)
		}
	}
	return m, nil
}

func (m *material) changed() bool {
	for _, s := range m.stamps {
		st, err := os.Stat(s.path)
		if err != nil || !st.ModTime().Equal(s.mod) || st.Size() != s.size {
			return true
		}
	}
	return false
}

// client returns a client config from m: its certificate (if any) for
// servers that verify clients, its CA for the server's.
func (m *material) client() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: m.pool}
	if m.cert != nil {
		c.Certificates = []tls.Certificate{*m.cert}
	}
	return c
}

// ClientConfig loads f for a client (lib/client, zpctl, zpbench): the
// CA that verifies servers and, for servers that verify clients, a
// certificate. A client does not reload; it is short-lived or redials.
func ClientConfig(f Files) (*tls.Config, error) {
	if (f.Cert == "") != (f.Key == "") {
		return nil, fmt.Errorf("%w: a client certificate needs both the certificate and its key", ErrConfig)
	}
	m, err := load(f)
	if err != nil {
		return nil, err
	}
	return m.client(), nil
}

// Reloader holds a server's TLS material and replaces it when its files
// change: connections accepted or dialled after a reload use the new
// certificate and CA, those open before keep theirs.
type Reloader struct {
	files  Files
	logger *slog.Logger

	cur atomic.Pointer[material]
	mu  sync.Mutex // serialises reloads

	stop chan struct{}
	wg   sync.WaitGroup
}

// NewReloader loads f for a server; it fails when a file is missing or
// does not parse, so that a server never starts without what it was told
// to serve.
func NewReloader(f Files, logger *slog.Logger) (*Reloader, error) {
	if err := f.validateServer(); err != nil {
		return nil, err
	}
	m, err := load(f)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{files: f, logger: logger, stop: make(chan struct{})}
	r.cur.Store(m)
	return r, nil
}

// Reload reads the files again. On an error the material in use stays
// (a half-written rotation must not take the server's TLS away).
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := load(r.files)
	if err != nil {
		r.logger.Warn("TLS files not reloaded; keeping the certificate in use", "err", err)
		return err
	}
	r.cur.Store(m)
	attrs := []any{"cert", r.files.Cert}
	if leaf := m.cert.Leaf; leaf != nil {
		attrs = append(attrs, "serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter.UTC())
	}
	r.logger.Info("TLS certificate reloaded", attrs...)
	return nil
}

// Watch reloads the files whenever one of them changes, checking every
// interval, until Close.
func (r *Reloader) Watch(interval time.Duration) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				if r.cur.Load().changed() {
					r.Reload()
				}
			}
		}
	}()
}

// Close stops Watch.
func (r *Reloader) Close() {
	r.mu.Lock()
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// ServerConfig returns the config to accept connections with; each
// handshake takes the material current at that moment.
func (r *Reloader) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := r.cur.Load()
			c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*m.cert}, ClientCAs: m.pool}
			if r.files.VerifyClients {
				c.ClientAuth = tls.RequireAndVerifyClientCert
			}
			return c, nil
		},
	}
}

// ClientConfig returns the config for one dial to another server: the
// current CA, and the server's own certificate as its client certificate.
func (r *Reloader) ClientConfig() *tls.Config { return r.cur.Load().client() }

// AcceptConfig is ServerConfig, or nil (plain TCP) for a nil Reloader:
// servers keep a nil Reloader when TLS is off.
func (r *Reloader) AcceptConfig() *tls.Config {
	if r == nil {
		return nil
	}
	return r.ServerConfig()
}

// Listener serves ln over TLS with ServerConfig, or returns ln as it is
// (plain TCP) for a nil Reloader: every server port takes its TLS here.
func (r *Reloader) Listener(ln net.Listener) net.Listener {
	if r == nil {
		return ln
	}
	return tls.NewListener(ln, r.ServerConfig())
}

// DialConfig is ClientConfig, or nil (plain TCP) for a nil Reloader.
func (r *Reloader) DialConfig() *tls.Config {
	if r == nil {
		return nil
	}
	return r.ClientConfig()
}

// Serial returns the serial number of the certificate in use, for logs,
// INFO and tests of rotation.
func (r *Reloader) Serial() string {
	if leaf := r.cur.Load().cert.Leaf; leaf != nil {
		return leaf.SerialNumber.String()
	}
	return ""
}

// WatchInterval is how often servers look for changed TLS files.
const WatchInterval = 2 * time.Second

// HandshakeTimeout bounds a TLS handshake on an accepted connection: a
// client that connects and never finishes the handshake (slowloris before
// the first request) is closed.
const HandshakeTimeout = 10 * time.Second

// Handshake completes the TLS handshake of an accepted connection within
// HandshakeTimeout, so that a server's request timeouts start from a
// connection ready for requests. A plain connection needs none.
func Handshake(nc net.Conn) error {
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls: handshake with %s: %w", nc.RemoteAddr(), err)
	}
	return nil
}
