package report

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpbench/runner"
	"github.com/zeppelin-kv/zeppelin/zpbench/target"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// sample is a report of 1000 GETs (1..1000 µs), 10 SETs, 5 WAIT errors
// and 20 misses over 2 seconds.
func sample(t *testing.T) Report {
	t.Helper()
	res := runner.NewResult()
	res.Elapsed = 2 * time.Second
	for i := 1; i <= 1000; i++ {
		res.Add(workload.Get, time.Duration(i)*time.Microsecond, target.Outcome{Miss: i <= 20})
	}
	for range 10 {
		res.Add(workload.Set, time.Millisecond, target.Outcome{})
	}
	for range 5 {
		res.Add(workload.Set, 0, target.Outcome{Err: status.New(zppb.Code_WAIT, "busy")})
	}
	return New(Target{Kind: "noop", Name: "noop 127.0.0.1:1", Pipelining: "window"},
		Workload{Name: "mixed", Distribution: "uniform", Records: 100, ValueSize: 10, Batch: 1, ReadRatio: 0.99, Seed: 3},
		Config{Conns: 2, Workers: 2, Pipeline: 1, DurationS: 2, Rounds: 1}, res)
}

func TestJSONShape(t *testing.T) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(sample(t)); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"target", "workload", "config", "ops", "errors", "error_rate", "misses",
		"elapsed_s", "ops_per_sec", "latency_us", "by_op", "errors_by_code", "error_samples"} {
		if _, ok := m[key]; !ok {
			t.Errorf("no %q in %s", key, buf.String())
		}
	}
	if m["ops"].(float64) != 1015 || m["errors"].(float64) != 5 || m["misses"].(float64) != 20 {
		t.Errorf("ops %v errors %v misses %v", m["ops"], m["errors"], m["misses"])
	}
	if got := m["ops_per_sec"].(float64); got != 505 {
		t.Errorf("ops_per_sec = %v, want 505 (1010 successes in 2s)", got)
	}
	lat := m["latency_us"].(map[string]any)
	keys := make([]string, 0, len(lat))
	for k := range lat {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"count", "max", "mean", "min", "p50", "p95", "p99", "p999"}; !slices.Equal(keys, want) {
		t.Errorf("latency keys %v, want %v", keys, want)
	}
	get := m["by_op"].(map[string]any)["get"].(map[string]any)
	if get["count"].(float64) != 1000 {
		t.Errorf("by_op.get = %v", get)
	}
	if p50 := get["latency_us"].(map[string]any)["p50"].(float64); p50 < 499 || p50 > 501 {
		t.Errorf("get p50 = %vµs, want 500", p50)
	}
	if m["errors_by_code"].(map[string]any)["WAIT"].(float64) != 5 {
		t.Errorf("errors_by_code = %v", m["errors_by_code"])
	}
}

func TestText(t *testing.T) {
	var buf bytes.Buffer
	sample(t).WriteText(&buf)
	out := buf.String()
	for _, want := range []string{"mixed against noop 127.0.0.1:1", "throughput  505 ops/s", "p99.9", "WAIT", "busy", "get", "set"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
}

func TestCompare(t *testing.T) {
	a, b := sample(t), sample(t)
	b.OpsPerSec *= 2
	b.Latency.P99 /= 2
	c := Compare(a, b)
	if c.Ratios.OpsPerSec != 0.5 || c.Ratios.P99 != 2 {
		t.Fatalf("ratios %+v", c.Ratios)
	}
	var buf bytes.Buffer
	c.WriteText(&buf)
	if !strings.Contains(buf.String(), "A/B  throughput 0.50x") {
		t.Errorf("comparison text:\n%s", buf.String())
	}
}

func TestFormats(t *testing.T) {
	tests := []struct{ got, want string }{
		{Count(0), "0"},
		{Count(999), "999"},
		{Count(1000), "1,000"},
		{Count(1234567.6), "1,234,568"},
		{Micros(0), "-"},
		{Micros(12.4), "12µs"},
		{Micros(1234), "1.23ms"},
		{Micros(2_500_000), "2.50s"},
		{Short(0), "0"},
		{Short(999.4), "999"},
		{Short(999.5), "1.0k"},
		{Short(12_345), "12.3k"},
		{Short(999_949), "999.9k"},
		{Short(999_950), "1.0M"},
		{Short(1_234_567), "1.2M"},
		{Short(5e12), "5000.0G"},
		{ProgressLine("zeppelin", runner.Progress{Elapsed: 1500 * time.Millisecond, Rate: 12345, Warmup: true}), "zeppelin [   2s] warm-up  12.3k ops/s"},
		{ProgressLine("zeppelin", runner.Progress{Elapsed: 12 * time.Second, Rate: 52_300, Ops: 627_600, P99: 1250 * time.Microsecond}),
			"zeppelin [  12s] run      52.3k ops/s p99   1.25ms ops 627.6k err 0"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// TestProgressLineFits80Columns: a progress line fits an 80-column
// terminal for every target label and the widest numbers a run can show.
func TestProgressLineFits80Columns(t *testing.T) {
	widest := runner.Progress{Elapsed: 9999 * time.Second, Rate: 999_949, Ops: 999_949_999, Errors: 999_949_999, P99: 999_990 * time.Microsecond}
	for _, label := range []string{"zeppelin", "redis", "redis-cluster", "noop"} {
		for _, warmup := range []bool{true, false} {
			p := widest
			p.Warmup = warmup
			line := ProgressLine(label, p)
			if n := utf8.RuneCountInString(line); n > ProgressWidth {
				t.Errorf("%d columns: %q", n, line)
			}
		}
	}
}
