// Package promexport exposes a daemon's Prometheus metrics: a registry with
// the Go runtime and process collectors every daemon reports, and the HTTP
// server that serves it at /metrics on its own port, behind a bearer token
// when the daemon has one; and Go's /debug/pprof, on loopback only.
package promexport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"regexp"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/protect"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zeppelin-kv/zeppelin/lib/secret"
)

// shutdownTimeout bounds how long Close waits for scrapes in flight.
const shutdownTimeout = 2 * time.Second

// NewRegistry returns a registry holding the Go runtime and process
// collectors and cs. Besides the default Go metrics it exports
// go_gc_heap_live_bytes, the heap the last GC marked live: heap in use
// swings up to GOGC above it between collections, so a leak shows in the
// live heap first.
func NewRegistry(cs ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	goc := collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)}))
	reg.MustRegister(goc, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(cs...)
	return reg
}

// Server serves a registry at /metrics.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// Listen listens on addr and serves reg at /metrics until Close; with a
// token set, only to scrapes that present it ("Authorization: Bearer
// TOKEN", Prometheus's bearer_token_file), and over TLS with tlsCfg when
// it is not nil. Errors of the HTTP server after the listen go to logger.
func Listen(addr string, reg *prometheus.Registry, token secret.Token, tlsCfg *tls.Config, logger *slog.Logger) (*Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", requireBearer(token, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	return serve(addr, mux, "metrics", tlsCfg, logger)
}

// ListenPprof serves Go's /debug/pprof on addr, which must be a loopback
// address: profiles show what the process does and take CPU to make, so
// they are for someone logged in on the machine (or an SSH tunnel).
func ListenPprof(addr string, logger *slog.Logger) (*Server, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("pprof address %q: %w", addr, err)
	}
	if !protect.Loopback(addr) {
		return nil, fmt.Errorf("pprof address %q: only a loopback address (127.0.0.1, ::1, localhost) may serve profiles", addr)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return serve(addr, mux, "pprof", nil, logger)
}

// requireBearer passes only requests that present token (none needed
// without one).
func requireBearer(token secret.Token, h http.Handler) http.Handler {
	if !token.Set() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !token.Matches([]byte(got)) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="zeppelin metrics"`)
			http.Error(w, "metrics need the bearer token (--metrics-token-file)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func serve(addr string, h http.Handler, what string, tlsCfg *tls.Config, logger *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listen: %w", what, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s := &Server{
		ln:   ln,
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(what+" server failed", "err", err)
		}
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server, giving scrapes in flight a moment to finish, and
// returns once its goroutine has ended.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	<-s.done
	return err
}
