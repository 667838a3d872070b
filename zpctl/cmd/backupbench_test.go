package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestBackupThroughput measures backup create and restore on real
// processes (3 nodes): a table of 4 partitions x 3 replicas holding
// ZP_BACKUP_BENCH_MB megabytes (default 256) of 1 KiB random values. It
// logs MB/s of each; docs/benchmarks.md has the figures. Only with
// ZP_BACKUP_BENCH=1:
//
//	ZP_BACKUP_BENCH=1 go test -run TestBackupThroughput -v -timeout 30m ./zpctl/cmd
func TestBackupThroughput(t *testing.T) {
	if os.Getenv("ZP_BACKUP_BENCH") == "" || testing.Short() {
		t.Skip("a benchmark: set ZP_BACKUP_BENCH=1")
	}
	mb := 256
	if v := os.Getenv("ZP_BACKUP_BENCH_MB"); v != "" {
		var err error
		if mb, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	c := testcluster.Start(t, testcluster.Options{})
	meta := strings.Join(c.MetaAddrs(), ",")
	zp := func(args ...string) result {
		var stdout, stderr strings.Builder
		code := Main(context.Background(), Env{Args: append([]string{"--meta", meta, "--timeout", "60s"}, args...),
			Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" },
			IsTerminal: func() bool { return false }, StderrIsTerminal: func() bool { return false }})
		return result{code, stdout.String(), stderr.String()}
	}
	const table = "bench"
	if r := zp("table", "create", table, "--partitions", "4", "--replicas", "3", "--wait"); r.code != ExitOK {
		t.Fatalf("create: %d %s", r.code, r.stderr)
	}
	ctx := context.Background()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	t0 := time.Now()
	keys := mb << 10
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			var kvs []client.KeyValue
			for i := w; i < keys; i += 8 {
				v := make([]byte, 1024)
				for j := range v {
					v[j] = byte(rng.Uint32())
				}
				kvs = append(kvs, client.KeyValue{Key: fmt.Appendf(nil, "key%09d", i), Value: v})
				if len(kvs) == 256 {
					if err := cl.MSet(ctx, table, kvs, 0); err != nil {
						errs <- err
						return
					}
					kvs = kvs[:0]
				}
			}
			if len(kvs) > 0 {
				if err := cl.MSet(ctx, table, kvs, 0); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("loaded %d MB in %v", mb, time.Since(t0).Round(time.Millisecond))

	// Foreground requests (a GET and a SET of loaded keys, one after the
	// other) while idle and during backups, without and with --rate.
	probe := startLatencyProbe(ctx, t, cl, table, keys)
	probe.window("idle")
	time.Sleep(5 * time.Second) // a measuring period, not a wait for an event

	dir := t.TempDir()
	probe.window("backup")
	r := zp("backup", "create", table, "--to", dir, "--name", "b", "-o", "json")
	var b backupCreateJSON
	if err := json.Unmarshal([]byte(r.stdout), &b); r.code != ExitOK || err != nil {
		t.Fatalf("backup: %d %v %s", r.code, err, r.stderr)
	}
	t.Logf("backup create: %.1f MB in %.2fs: %.1f MB/s", float64(b.BytesCopied)/1e6, b.Seconds, b.BytesPerSec/1e6)
	probe.window("backup --rate 20M")
	if r := zp("backup", "create", table, "--to", dir, "--name", "limited", "--rate", "20M"); r.code != ExitOK {
		t.Fatalf("backup --rate 20M: %d %s", r.code, r.stderr)
	}
	for _, w := range probe.stop() {
		t.Logf("foreground GET+SET %-18s %6d requests: p50 %v, p99 %v, p99.9 %v, max %v", w.name, len(w.lat),
			w.quantile(0.5), w.quantile(0.99), w.quantile(0.999), w.quantile(1))
	}
	r = zp("backup", "create", table, "--to", dir, "--name", "i", "--incremental-from", "b", "-o", "json")
	var inc backupCreateJSON
	if err := json.Unmarshal([]byte(r.stdout), &inc); r.code != ExitOK || err != nil {
		t.Fatalf("incremental backup: %d %v %s", r.code, err, r.stderr)
	}
	t.Logf("incremental backup, no writes between: %.1f of %.1f MB copied in %.2fs", float64(inc.BytesCopied)/1e6, float64(inc.Bytes)/1e6, inc.Seconds)
	t1 := time.Now()
	if r := zp("backup", "verify", filepath.Join(dir, "b")); r.code != ExitOK {
		t.Fatalf("verify: %d %s", r.code, r.stderr)
	}
	t.Logf("backup verify: %.1f MB in %v", float64(b.Bytes)/1e6, time.Since(t1).Round(time.Millisecond))
	r = zp("backup", "restore", filepath.Join(dir, "b"), "--table", "restored", "-o", "json")
	var rs backupRestoreJSON
	if err := json.Unmarshal([]byte(r.stdout), &rs); r.code != ExitOK || err != nil {
		t.Fatalf("restore: %d %v %s", r.code, err, r.stderr)
	}
	t.Logf("backup restore (verify included): %.1f MB in %.2fs: %.1f MB/s", float64(rs.BytesFetched)/1e6, rs.Seconds, rs.BytesPerSec/1e6)
}

// latencyProbe sends foreground requests one after another and keeps
// their latencies by measuring window.
type latencyProbe struct {
	mu      sync.Mutex
	windows []*latencyWindow
	cancel  context.CancelFunc
	done    chan struct{}
}

type latencyWindow struct {
	name string
	lat  []time.Duration
}

// quantile returns the q-quantile of the window's latencies (q=1: max).
func (w *latencyWindow) quantile(q float64) time.Duration {
	if len(w.lat) == 0 {
		return 0
	}
	s := slices.Clone(w.lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func startLatencyProbe(ctx context.Context, t *testing.T, cl *client.Client, table string, keys int) *latencyProbe {
	ctx, cancel := context.WithCancel(ctx)
	p := &latencyProbe{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		rng := rand.New(rand.NewPCG(1, 2))
		v := make([]byte, 1024)
		for i := 0; ctx.Err() == nil; i++ {
			key := fmt.Appendf(nil, "key%09d", rng.IntN(keys))
			start := time.Now()
			var err error
			if i%2 == 0 {
				_, err = cl.Get(ctx, table, key)
			} else {
				err = cl.Set(ctx, table, key, v, 0)
			}
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				t.Errorf("foreground request: %v", err)
				return
			}
			p.mu.Lock()
			if n := len(p.windows); n > 0 {
				p.windows[n-1].lat = append(p.windows[n-1].lat, time.Since(start))
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// window starts a new measuring window.
func (p *latencyProbe) window(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.windows = append(p.windows, &latencyWindow{name: name})
}

// stop ends the probe and returns its windows.
func (p *latencyProbe) stop() []*latencyWindow {
	p.cancel()
	<-p.done
	return p.windows
}
