package server

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/dirlock"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		check   func(Config) bool
	}{
		{name: "defaults", cfg: Config{Addr: "127.0.0.1:9231", MetaAddrs: []string{"m:1"}, DataDir: "d"}, check: func(c Config) bool {
			return c.ListenAddr == c.Addr && c.MaxValueSize == DefaultMaxValueSize && c.PingInterval == time.Second &&
				c.SweepInterval == time.Minute && c.PurgeInterval == 10*time.Second && c.Purge.MaxSegments == 16 &&
				c.Purge.MinSegments == 2 && c.Weight == 1 && c.Logger != nil
		}},
		{name: "age-only retention keeps no segment cap", cfg: Config{Addr: "a:1", MetaAddrs: []string{"m:1"}, DataDir: "d", Insecure: true, Purge: replica.PurgePolicy{MaxAge: time.Hour}}, check: func(c Config) bool {
			return c.Purge.MaxSegments == 0 && c.Purge.MaxAge == time.Hour
		}},
		{name: "addr without port", cfg: Config{Addr: "host", MetaAddrs: []string{"m:1"}, DataDir: "d"}, wantErr: "addr"},
		{name: "no meta", cfg: Config{Addr: "a:1", DataDir: "d"}, wantErr: "no meta addresses"},
		{name: "no data dir", cfg: Config{Addr: "a:1", MetaAddrs: []string{"m:1"}}, wantErr: "no data directory"},
		{name: "value over a frame", cfg: Config{Addr: "a:1", MetaAddrs: []string{"m:1"}, DataDir: "d", MaxValueSize: 49 << 20}, wantErr: "48 MiB"},
		{name: "park pass a quarter of the idle period", cfg: Config{Addr: "a:1", MetaAddrs: []string{"m:1"}, DataDir: "d", Insecure: true, IdleClose: 20 * time.Second}, check: func(c Config) bool {
			return c.ParkInterval == 5*time.Second
		}},
		{name: "park pass without idle close", cfg: Config{Addr: "a:1", MetaAddrs: []string{"m:1"}, DataDir: "d", Insecure: true, IdleClose: -1, MaxOpenDBs: 8}, check: func(c Config) bool {
			return c.ParkInterval == 30*time.Second && c.IdleClose < 0
		}},
		{name: "beyond loopback, unguarded", cfg: Config{Addr: "10.0.0.1:9231", MetaAddrs: []string{"m:1"}, DataDir: "d"}, wantErr: "protected mode"},
		{name: "RESP beyond loopback, unguarded", cfg: Config{Addr: "127.0.0.1:9231", RedisAddr: "0.0.0.0:6379", MetaAddrs: []string{"m:1"}, DataDir: "d"}, wantErr: "protected mode"},
		{name: "beyond loopback, cluster secret", cfg: Config{Addr: "10.0.0.1:9231", MetaAddrs: []string{"m:1"}, DataDir: "d", ClusterSecret: []byte("s")}, check: func(Config) bool { return true }},
		{name: "beyond loopback, --insecure", cfg: Config{Addr: "10.0.0.1:9231", MetaAddrs: []string{"m:1"}, DataDir: "d", Insecure: true}, check: func(Config) bool { return true }},
		{name: "negative open DB cap", cfg: Config{Addr: "a:1", MetaAddrs: []string{"m:1"}, DataDir: "d", MaxOpenDBs: -1}, wantErr: "negative max open DBs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg
			got.setDefaults()
			err := got.validate()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "zpnode: ") {
					t.Fatalf("err %v, want one starting zpnode: and containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(got) {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

// TestCloseStopsEveryGoroutine starts a node with metrics and no reachable
// meta server and checks that Close leaves nothing of it running.
func TestCloseStopsEveryGoroutine(t *testing.T) {
	s, err := New(Config{
		Addr:          freeAddr(t),
		MetaAddrs:     []string{freeAddr(t)}, // nobody listens: PINGs fail
		DataDir:       t.TempDir(),
		MetricsAddr:   "127.0.0.1:0",
		PingInterval:  10 * time.Millisecond,
		SweepInterval: 10 * time.Millisecond,
		PurgeInterval: 10 * time.Millisecond,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil || !strings.HasPrefix(err.Error(), "zpnode: ") {
		t.Errorf("second Start: %v, want a zpnode: error", err)
	}
	resp, err := http.Get("http://" + s.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "zeppelin_node_epoch") || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("/metrics lacks the node's or the runtime's metrics:\n%s", body)
	}
	time.Sleep(30 * time.Millisecond) // let the loops tick a few times
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var leaked []string
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "zpnode/server.(*") || strings.Contains(g, "lib/promexport") || strings.Contains(g, "lib/rpc.(*") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after Close:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeAddr is a loopback address with a port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestStaleTopologyKeepsNewerTables: at start a node applies the topology it
// saved, which may predate tables created since (its save failed, or it
// crashed before saving). A table directory whose marker is newer than that
// topology is kept, not taken for a dropped table; one older than it is
// removed, and a table recreated under a known name is not wiped by an older
// incarnation's topology.
func TestStaleTopologyKeepsNewerTables(t *testing.T) {
	dir := t.TempDir()
	table := func(name, epoch string) string {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Join(d, "0"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, tableMarker), []byte(epoch), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	newer, dropped, recreated := table("newer", "9"), table("dropped", "3"), table("recreated", "8")
	if err := saveTopology(dir, &zppb.Topology{Epoch: 5, Tables: []*zppb.Table{{Name: "recreated", CreatedEpoch: 2}}}); err != nil {
		t.Fatal(err)
	}
	// Started with no meta server to answer: it runs on what it saved.
	s, err := New(Config{Addr: freeAddr(t), MetaAddrs: []string{freeAddr(t)}, DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tt := range []struct {
		dir  string
		kept bool
	}{{newer, true}, {dropped, false}, {recreated, true}} {
		_, err := os.Stat(filepath.Join(tt.dir, "0"))
		if kept := err == nil; kept != tt.kept {
			t.Errorf("%s after applying an older topology: kept %v, want %v (%v)", filepath.Base(tt.dir), kept, tt.kept, err)
		}
	}
}

// TestDataDirLocked: a second node on the same data directory does not
// start, and the directory is free again once the first one closes.
func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	cfg := func() Config {
		return Config{Addr: freeAddr(t), MetaAddrs: []string{freeAddr(t)}, DataDir: dir, Logger: slog.New(slog.DiscardHandler)}
	}
	first, err := New(cfg())
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	second, err := New(cfg())
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(); !errors.Is(err, dirlock.ErrLocked) {
		t.Fatalf("second node on the same data directory: Start = %v, want ErrLocked", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := New(cfg())
	if err != nil {
		t.Fatal(err)
	}
	if err := third.Start(); err != nil {
		t.Fatalf("after the first node closed: %v", err)
	}
	third.Close()
}
