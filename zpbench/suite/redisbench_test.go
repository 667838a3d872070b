package suite

import (
	"math"
	"strings"
	"testing"
	"time"
)

// Outputs of redis-benchmark 7.0.15 captured on the development machine.
const (
	// redis-benchmark -p P -t set,get -c 50 -d 100 -r 1000 -P 16 -n 20000 --csv
	capturedPlain = `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","465116.25","1.040","0.120","1.007","1.647","2.671","3.791"
"GET","571428.56","0.852","0.168","0.839","1.287","1.799","2.023"
`
	// redis-benchmark --cluster -p P -t set -r 1000 -n 20000 -c 50 -P 16 -d 100 --csv
	// against a 3-node zpnode: it first lists the masters it found.
	capturedCluster = `Cluster has 3 master nodes:

Master 0: e826def55bed67bdfb8ee64ae9de91e2a6dbaa30 127.0.0.1:27121
Master 1: d27b58ddda3037af722103493c85c16ca57b6030 127.0.0.1:27122
Master 2: dec16d6c8cd8d0d23b34c2463fdba6b0be99ac26 127.0.0.1:27123

"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","25974.03","22.070","0.128","12.263","83.327","131.007","151.423"
`
	// redis-benchmark -p P -t set ... --csv against a 3-node zpnode without
	// --cluster: the first MOVED stops it (exit status 1), before the
	// header.
	capturedMoved = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n" +
		"Error from server: MOVED 13198 127.0.0.1:27123\n"
	// redis-benchmark --cluster against a one-node cluster.
	capturedOneNode = "Invalid cluster: 1 node(s).\n"
)

func TestParseRedisBenchmarkCSV(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    []benchLine
		wantErr string
	}{
		{name: "plain, two tests", out: capturedPlain, want: []benchLine{
			{Test: "SET", RPS: 465116.25, HasLatency: true, Avg: 1.040, Min: 0.120, P50: 1.007, P95: 1.647, P99: 2.671, Max: 3.791},
			{Test: "GET", RPS: 571428.56, HasLatency: true, Avg: 0.852, Min: 0.168, P50: 0.839, P95: 1.287, P99: 1.799, Max: 2.023},
		}},
		{name: "cluster preamble skipped", out: capturedCluster, want: []benchLine{
			{Test: "SET", RPS: 25974.03, HasLatency: true, Avg: 22.070, Min: 0.128, P50: 12.263, P95: 83.327, P99: 131.007, Max: 151.423},
		}},
		{name: "CRLF line ends", out: strings.ReplaceAll(capturedPlain, "\n", "\r\n"), want: []benchLine{
			{Test: "SET", RPS: 465116.25, HasLatency: true, Avg: 1.040, Min: 0.120, P50: 1.007, P95: 1.647, P99: 2.671, Max: 3.791},
			{Test: "GET", RPS: 571428.56, HasLatency: true, Avg: 0.852, Min: 0.168, P50: 0.839, P95: 1.287, P99: 1.799, Max: 2.023},
		}},
		// Before 7.0 --csv printed "test","rps" only (not captured here:
		// the machine has 7.0); columns are found by name.
		{name: "rps only", out: "\"test\",\"rps\"\n\"SET\",\"1000.50\"\n", want: []benchLine{{Test: "SET", RPS: 1000.5}}},
		{name: "stopped by an error", out: capturedMoved, wantErr: "no result"},
		{name: "refused one node", out: capturedOneNode, wantErr: "no result"},
		{name: "empty", out: "", wantErr: "no result"},
		{name: "no header", out: `"SET","1.0"` + "\n", wantErr: "no header"},
		{name: "bad number", out: "\"test\",\"rps\"\n\"SET\",\"fast\"\n", wantErr: "rps"},
		{name: "short line", out: "\"test\",\"rps\",\"p50_latency_ms\"\n\"SET\",\"1.0\"\n", wantErr: "fields"},
		{name: "no rps column", out: "\"test\",\"p50_latency_ms\"\n\"SET\",\"1.0\"\n", wantErr: "no rps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRedisBenchmarkCSV(tt.out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q (parsed %+v)", err, tt.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("line %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestBenchMeterReport merges runs: throughput over the runs' own times,
// percentiles weighted by requests, in microseconds.
func TestBenchMeterReport(t *testing.T) {
	m := &benchMeter{runs: []benchRun{
		{requests: 1000, line: benchLine{RPS: 1000, Avg: 1, Min: 0.5, P50: 1, P95: 2, P99: 4, Max: 10}, wall: 2 * time.Second},
		{requests: 3000, line: benchLine{RPS: 3000, Avg: 2, Min: 0.2, P50: 2, P95: 3, P99: 5, Max: 8}, wall: 2 * time.Second},
	}}
	r, err := m.report()
	if err != nil {
		t.Fatal(err)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	// 4000 requests in 1 s + 1 s of redis-benchmark's own time.
	if r.Ops != 4000 || !near(r.OpsPerSec, 2000) || !near(r.ElapsedSec, 2) {
		t.Errorf("ops %d, %v ops/s in %v s", r.Ops, r.OpsPerSec, r.ElapsedSec)
	}
	l := r.Latency
	if !near(l.P50, 1750) || !near(l.P95, 2750) || !near(l.P99, 4750) || !near(l.Mean, 1750) || !near(l.Min, 200) || !near(l.Max, 10000) || l.P999 != 0 {
		t.Errorf("latency %+v", l)
	}
	if _, err := (&benchMeter{}).report(); err == nil {
		t.Error("a meter without runs reported")
	}
}
