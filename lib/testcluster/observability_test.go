package testcluster_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/redis/go-redis/v9"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// scrape fetches and parses a /metrics page.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// metricValue returns the value of the sample of family name whose labels
// include want, and whether there is one.
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsCountRequests runs a known workload on one node and finds the
// request counters and latency histogram with the right values, and the
// meta server's figures.
func TestMetricsCountRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Nodes: 1, Metrics: true, Redis: true, NodeArgs: []string{"--slowlog-threshold", "1us"}})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "m", Partitions: 4, Replicas: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := scrape(t, c.Nodes[0].MetricsAddr)
	base := func(cmd, code string) float64 {
		v, _ := metricValue(before, "zeppelin_node_requests_total", map[string]string{"table": "m", "command": cmd, "code": code})
		return v
	}
	for i := range 100 {
		if err := cl.Set(ctx, "m", key(i), value(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 60 {
		if _, err := cl.Get(ctx, "m", key(i*2)); err != nil && !errors.Is(err, status.ErrNotFound) {
			t.Fatal(err)
		}
	}
	// 30 of those GETs (keys 100..118 even, and so on) miss.
	after := scrape(t, c.Nodes[0].MetricsAddr)
	tests := []struct {
		cmd, code string
		want      float64
	}{
		{"set", "OK", 100},
		{"get", "OK", 50},
		{"get", "NOT_FOUND", 10},
	}
	for _, tt := range tests {
		got, ok := metricValue(after, "zeppelin_node_requests_total", map[string]string{"table": "m", "command": tt.cmd, "code": tt.code})
		if !ok || got-base(tt.cmd, tt.code) != tt.want {
			t.Errorf("requests_total{command=%s,code=%s} grew by %v (present %v), want %v", tt.cmd, tt.code, got-base(tt.cmd, tt.code), ok, tt.want)
		}
	}
	if n, ok := metricValue(after, "zeppelin_node_request_duration_seconds", map[string]string{"table": "m", "command": "set"}); !ok || n < 100 {
		t.Errorf("latency histogram of set has %v samples, want >= 100", n)
	}
	if v, ok := metricValue(after, "zeppelin_node_replica_lsn", map[string]string{"table": "m", "role": "master"}); !ok || v == 0 {
		t.Errorf("replica lsn %v (%v)", v, ok)
	}
	for _, name := range []string{"zeppelin_node_received_bytes_total", "zeppelin_node_binlog_bytes", "zeppelin_node_rocksdb_memtable_bytes",
		"zeppelin_node_block_cache_capacity_bytes", "zeppelin_node_epoch", "zeppelin_node_master_lease_valid",
		"zeppelin_node_memtable_bytes", "zeppelin_node_request_ids"} {
		if v, ok := metricValue(after, name, nil); !ok || v == 0 {
			t.Errorf("%s = %v (present %v), want > 0", name, v, ok)
		}
	}
	for _, name := range []string{"zeppelin_node_table_readers_bytes", "zeppelin_node_malloc_trims_total", "zeppelin_node_malloc_trim_seconds_total"} {
		if _, ok := metricValue(after, name, nil); !ok {
			t.Errorf("%s missing", name)
		}
	}
	// What the node runs on: the benchmark page prints these.
	if _, ok := metricValue(after, "zeppelin_node_durability_info",
		map[string]string{"binlog_fsync": "interval", "binlog_fsync_interval": "10ms", "rocksdb_wal": "off"}); !ok {
		t.Errorf("zeppelin_node_durability_info{binlog_fsync=interval,binlog_fsync_interval=10ms,rocksdb_wal=off} missing")
	}
	if _, ok := metricValue(after, "zeppelin_node_build_info", map[string]string{"rocksdb_version": engine.RocksDBVersion()}); !ok {
		t.Errorf("zeppelin_node_build_info{rocksdb_version=%q} missing", engine.RocksDBVersion())
	}

	// The RESP front's own counters: an open connection and its commands.
	rdb := redis.NewClient(&redis.Options{Addr: c.Nodes[0].RedisAddr, DisableIdentity: true})
	defer rdb.Close()
	for range 5 {
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	fams := scrape(t, c.Nodes[0].MetricsAddr)
	if v, ok := metricValue(fams, "zeppelin_node_redis_connections", nil); !ok || v < 1 {
		t.Errorf("redis_connections = %v (present %v), want >= 1 with a client connected", v, ok)
	}
	if v, ok := metricValue(fams, "zeppelin_node_connections", nil); !ok || v < 1 {
		t.Errorf("connections = %v (present %v), want >= 1 with a client connected", v, ok)
	}
	if v, ok := metricValue(fams, "zeppelin_node_connections_refused_total", nil); !ok || v != 0 {
		t.Errorf("connections_refused_total = %v (present %v), want 0 under the default bounds", v, ok)
	}
	if v, ok := metricValue(fams, "zeppelin_node_redis_commands_total", nil); !ok || v < 5 {
		t.Errorf("redis_commands_total = %v (present %v), want >= 5 after 5 PINGs", v, ok)
	}

	// The slow log (threshold 1µs) has the requests, keys cut to 64 bytes.
	resp, err := c.Call(ctx, c.Nodes[0].Addr, &zppb.Request{Cmd: &zppb.Request_Info{Info: &zppb.InfoRequest{Section: zppb.InfoSection_INFO_SLOWLOG, Table: "m"}}})
	if err != nil {
		t.Fatal(err)
	}
	slow := resp.GetInfo().GetSlowlog()
	if len(slow) == 0 || slow[0].Table != "m" || slow[0].Command == "" || slow[0].DurationUs <= 0 {
		t.Fatalf("slow log %v", slow)
	}

	// Meta: exactly one leader, the epoch, the node UP.
	leaders := 0.0
	for _, m := range c.Metas {
		fams := scrape(t, m.MetricsAddr)
		v, _ := metricValue(fams, "zeppelin_meta_leader", nil)
		leaders += v
		if up, ok := metricValue(fams, "zeppelin_meta_node_up", map[string]string{"node": c.Nodes[0].Addr}); !ok || up != 1 {
			t.Errorf("%s: node_up %v (%v)", m.Name, up, ok)
		}
	}
	if leaders != 1 {
		t.Errorf("%v members report leading", leaders)
	}
}

// TestQuotaLimitsOneTable offers 5,000 ops/s to a table with a 500 ops/s
// quota and 300 ops/s to another table on the same nodes: the first is
// served at most at its quota and refused above it, the second never
// refused. (The served rates are logged; docs/observability.md has them.)
func TestQuotaLimitsOneTable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "limited", Partitions: 8, Replicas: 1, Quota: client.Quota{OpsPerSec: 500}})
	createTable(t, cl, client.TableSpec{Name: "free", Partitions: 8, Replicas: 1})

	// offer runs rate ops/s (SET) at table for d, counting what succeeds
	// after the first second (the buckets start full) and what is refused.
	offer := func(table string, rate int, d time.Duration, served, refused *atomic.Int64) func() {
		return func() {
			// Enough workers that a slow machine (50 ms a SET) still
			// offers more than the quota.
			workers := max(16, min(64, rate/50))
			var wg sync.WaitGroup
			start := time.Now()
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					interval := time.Duration(workers) * time.Second / time.Duration(rate)
					next := start.Add(time.Duration(w) * interval / time.Duration(workers))
					for i := 0; ; i++ {
						now := time.Now()
						if now.Sub(start) > d {
							return
						}
						if wait := next.Sub(now); wait > 0 {
							time.Sleep(wait) // pacing an open-loop load, not synchronisation
						}
						next = next.Add(interval)
						ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
						err := cl.Set(ctx, table, fmt.Appendf(nil, "%d-%d", w, i), []byte("v"), 0)
						cancel()
						if time.Since(start) < time.Second {
							continue
						}
						switch {
						case err == nil:
							served.Add(1)
						case errors.Is(err, status.ErrQuotaExceeded):
							refused.Add(1)
						}
					}
				}()
			}
			wg.Wait()
		}
	}
	const d = 6 * time.Second
	var limServed, limRefused, freeServed, freeRefused atomic.Int64
	var wg sync.WaitGroup
	for _, f := range []func(){
		offer("limited", 5000, d, &limServed, &limRefused),
		offer("free", 300, d, &freeServed, &freeRefused),
	} {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	wg.Wait()
	secs := (d - time.Second).Seconds()
	lim, free := float64(limServed.Load())/secs, float64(freeServed.Load())/secs
	t.Logf("limited: %.0f ops/s served, %d refused; free: %.0f ops/s served (offered 300), %d refused",
		lim, limRefused.Load(), free, freeRefused.Load())
	// Only bounds a loaded machine cannot break: load lowers what is
	// served, never raises it, and the quota alone refuses requests.
	if lim > 600 {
		t.Errorf("limited table served %.0f ops/s, over its 500 ops/s quota (+20%%)", lim)
	}
	if limRefused.Load() == 0 {
		t.Error("no request refused with QUOTA_EXCEEDED")
	}
	if freeServed.Load() == 0 || freeRefused.Load() != 0 {
		t.Errorf("the other table served %.0f ops/s of 300 offered, %d refused", free, freeRefused.Load())
	}

	// Raising the quota takes effect within a few seconds, without restarts.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cl.SetQuota(ctx, "limited", client.Quota{}, 0); err != nil {
		t.Fatal(err)
	}
	testcluster.Poll(t, 10*time.Second, func() error {
		for i := range 600 {
			if err := cl.Set(ctx, "limited", fmt.Appendf(nil, "after-%d", i), []byte("v"), 0); err != nil {
				return err
			}
		}
		return nil
	})
}
