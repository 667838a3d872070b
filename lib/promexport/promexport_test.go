package promexport

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestServesRegistry(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "promexport_test_total", Help: "A test counter."})
	c.Add(3)
	s, err := Listen("127.0.0.1:0", NewRegistry(c), slog.New(slog.NewTextHandler(io.Discard, nil)))
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
