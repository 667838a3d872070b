package promexport

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zeppelin-kv/zeppelin/lib/secret"
)

func TestServesRegistry(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "promexport_test_total", Help: "A test counter."})
	c.Add(3)
	s, err := Listen("127.0.0.1:0", NewRegistry(c), secret.Token{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"promexport_test_total 3", // the daemon's own collectors
		"go_goroutines",           // the standard ones
		"process_start_time_seconds",
		"go_memstats_heap_inuse_bytes", // the memory section of zpbench reads these
		"go_gc_heap_live_bytes",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := http.Get("http://" + s.Addr().String() + "/metrics"); err == nil {
		t.Error("still serving after Close")
	}
}

// TestBearerToken: with a token, /metrics answers 401 to a scrape without
// it or with another, and the metrics to one that presents it.
func TestBearerToken(t *testing.T) {
	s, err := Listen("127.0.0.1:0", NewRegistry(), secret.NewToken([]byte("scrape-token")), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer other", http.StatusUnauthorized},
		{"Basic scrape-token", http.StatusUnauthorized},
		{"Bearer scrape-token", http.StatusOK},
	} {
		req, _ := http.NewRequest("GET", "http://"+s.Addr().String()+"/metrics", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || (tc.want == http.StatusOK) != strings.Contains(string(body), "go_goroutines") {
			t.Errorf("Authorization %q: %d, want %d", tc.auth, resp.StatusCode, tc.want)
		}
		if strings.Contains(string(body), "scrape-token") {
			t.Errorf("Authorization %q: the token is in the answer", tc.auth)
		}
	}
}

// TestPprofLoopbackOnly: profiles are served on a loopback address and
// refused anywhere else.
func TestPprofLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:0": true, "localhost:0": true, "0.0.0.0:0": false, ":0": false, "10.1.2.3:0": false} {
		s, err := ListenPprof(addr, slog.New(slog.DiscardHandler))
		if (err == nil) != ok {
			t.Errorf("ListenPprof(%q): %v, want ok %t", addr, err, ok)
		}
		if err != nil {
			continue
		}
		resp, err := http.Get("http://" + s.Addr().String() + "/debug/pprof/cmdline")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("pprof on %s: %v %v", addr, resp, err)
		} else {
			resp.Body.Close()
		}
		s.Close()
	}
}
