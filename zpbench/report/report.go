// Package report renders zpbench results: a text summary for people, JSON
// for programs (--output json), comparisons of two targets, and progress
// lines.
package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/zpbench/latency"
	"github.com/zeppelin-kv/zeppelin/zpbench/runner"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// Report is the result of one benchmark, as --output json writes it. Its
// JSON names are an interface for scripts: add fields, never rename.
type Report struct {
	Target   Target   `json:"target"`
	Workload Workload `json:"workload"`
	Config   Config   `json:"config"`
	// Ops counts every measured operation: successes, misses, errors.
	Ops       int64   `json:"ops"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	// Misses are reads that found no value; they count as successes.
	Misses int64 `json:"misses"`
	// ElapsedSec is the measured time, warm-up excluded.
	ElapsedSec float64 `json:"elapsed_s"`
	// OpsPerSec is successful operations per second.
	OpsPerSec float64 `json:"ops_per_sec"`
	// Latency is over successful operations, in microseconds.
	Latency      Latency          `json:"latency_us"`
	ByOp         map[string]OpRow `json:"by_op"`
	ErrorsByCode map[string]int64 `json:"errors_by_code"`
	// ErrorSamples holds one error message per code.
	ErrorSamples map[string]string `json:"error_samples"`
}

// Target identifies the system under test.
type Target struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Pipelining is "window" (N requests in flight per connection, each
	// answered on its own) or "batch" (N requests written together and
	// answered together).
	Pipelining string `json:"pipelining"`
}

// Workload is what was sent.
type Workload struct {
	Name         string  `json:"name"`
	Distribution string  `json:"distribution"`
	Records      uint64  `json:"records"`
	ValueSize    int     `json:"value_size"`
	Batch        int     `json:"batch"`
	ReadRatio    float64 `json:"read_ratio"`
	Seed         uint64  `json:"seed"`
}

// Config is how it was sent.
type Config struct {
	Conns     int     `json:"conns"`
	Workers   int     `json:"workers"`
	Pipeline  int     `json:"pipeline"`
	Rate      float64 `json:"rate"`
	DurationS float64 `json:"duration_s"`
	WarmupS   float64 `json:"warmup_s"`
	Ops       int64   `json:"ops"`
	TimeoutS  float64 `json:"timeout_s"`
	// Rounds is the number of interleaved rounds of a comparison; 1
	// otherwise.
	Rounds int `json:"rounds"`
}

// Latency is a latency summary in microseconds.
type Latency struct {
	Count int64   `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// OpRow is one kind of operation's share of a report.
type OpRow struct {
	Count     int64   `json:"count"`
	OpsPerSec float64 `json:"ops_per_sec"`
	Latency   Latency `json:"latency_us"`
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func latencyOf(s latency.Summary) Latency {
	return Latency{Count: s.Count, Min: us(s.Min), Mean: us(s.Mean), P50: us(s.P50), P95: us(s.P95), P99: us(s.P99), P999: us(s.P999), Max: us(s.Max)}
}

// New makes the report of res.
func New(t Target, w Workload, c Config, res *runner.Result) Report {
	r := Report{
		Target:       t,
		Workload:     w,
		Config:       c,
		Ops:          res.Ops,
		Errors:       res.Errors,
		ErrorRate:    res.ErrorRate(),
		Misses:       res.Misses,
		ElapsedSec:   res.Elapsed.Seconds(),
		OpsPerSec:    res.Throughput(),
		Latency:      latencyOf(latency.Summarize(res.All)),
		ByOp:         map[string]OpRow{},
		ErrorsByCode: res.ErrorsByCode,
		ErrorSamples: res.ErrorSamples,
	}
	for k := range workload.NumKinds {
		h := res.ByKind[k]
		if h == nil {
			continue
		}
		row := OpRow{Count: h.TotalCount(), Latency: latencyOf(latency.Summarize(h))}
		if res.Elapsed > 0 {
			row.OpsPerSec = float64(h.TotalCount()) / res.Elapsed.Seconds()
		}
		r.ByOp[k.String()] = row
	}
	return r
}

// WriteText writes r for people.
func (r Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s against %s\n", r.Workload.Name, r.Target.Name)
	fmt.Fprintf(w, "  %s\n", r.setup())
	fmt.Fprintf(w, "  throughput  %s ops/s  (%s ops in %.2fs, %s errors, %s misses)\n",
		Count(r.OpsPerSec), Count(float64(r.Ops)), r.ElapsedSec, Count(float64(r.Errors)), Count(float64(r.Misses)))
	fmt.Fprintf(w, "  latency     %s\n", r.Latency.Line())
	if len(r.ByOp) > 1 {
		fmt.Fprintf(w, "  %-8s %12s %12s %9s %9s %9s %9s %9s\n", "op", "count", "ops/s", "p50", "p95", "p99", "p99.9", "max")
		for _, name := range sortedKeys(r.ByOp) {
			o := r.ByOp[name]
			fmt.Fprintf(w, "  %-8s %12s %12s %9s %9s %9s %9s %9s\n", name, Count(float64(o.Count)), Count(o.OpsPerSec),
				Micros(o.Latency.P50), Micros(o.Latency.P95), Micros(o.Latency.P99), Micros(o.Latency.P999), Micros(o.Latency.Max))
		}
	}
	if r.Errors > 0 {
		fmt.Fprintf(w, "  errors by code (%.4f%% of operations):\n", 100*r.ErrorRate)
		for _, code := range sortedKeys(r.ErrorsByCode) {
			fmt.Fprintf(w, "    %-20s %10d  e.g. %s\n", code, r.ErrorsByCode[code], r.ErrorSamples[code])
		}
	}
}

// readKinds are the operations that can find no value (a miss).
var readKinds = []workload.Kind{workload.Get, workload.Scan, workload.ReadModifyWrite, workload.MGet}

// Reads counts the measured operations that read, and so may miss.
func (r Report) Reads() int64 {
	var n int64
	for _, k := range readKinds {
		n += r.ByOp[k.String()].Count
	}
	return n
}

func (r Report) setup() string {
	c, wl := r.Config, r.Workload
	parts := []string{
		fmt.Sprintf("%d conns", c.Conns),
		fmt.Sprintf("%d workers", c.Workers),
		fmt.Sprintf("pipeline %d (%s)", c.Pipeline, r.Target.Pipelining),
		fmt.Sprintf("%s records", Count(float64(wl.Records))),
		fmt.Sprintf("%d-byte values", wl.ValueSize),
		wl.Distribution + " keys",
	}
	if wl.Batch > 1 && (wl.Name == "mget" || wl.Name == "mset") {
		parts = append(parts, fmt.Sprintf("batch %d", wl.Batch))
	}
	if c.Rate > 0 {
		parts = append(parts, fmt.Sprintf("rate %s/s (latency from scheduled start)", Count(c.Rate)))
	}
	if c.Rounds > 1 {
		parts = append(parts, fmt.Sprintf("%d interleaved rounds", c.Rounds))
	}
	return strings.Join(parts, ", ")
}

// Line is the one-line latency summary.
func (l Latency) Line() string {
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  p99.9 %s  max %s  (mean %s)",
		Micros(l.P50), Micros(l.P95), Micros(l.P99), Micros(l.P999), Micros(l.Max), Micros(l.Mean))
}

// Micros formats microseconds with a unit that keeps 3 significant digits.
func Micros(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v < 1000:
		return fmt.Sprintf("%.0fµs", v)
	case v < 1e6:
		return fmt.Sprintf("%.2fms", v/1000)
	default:
		return fmt.Sprintf("%.2fs", v/1e6)
	}
}

// Count formats a number with thousands separators.
func Count(v float64) string {
	n := int64(v + 0.5)
	s := fmt.Sprintf("%d", n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ProgressWidth is the most columns a progress line takes, label
// included, so that it fits an 80-column terminal: numbers are abbreviated
// (Short) and the longest target label is "redis-cluster".
const ProgressWidth = 80

// ProgressLine is one progress report of the target labelled label:
//
//	zeppelin [  12s] run      52.3k ops/s p99   1.25ms ops 627.6k err 0
func ProgressLine(label string, p runner.Progress) string {
	phase := "run"
	if p.Warmup {
		phase = "warm-up"
	}
	line := fmt.Sprintf("%s [%4.0fs] %-7s %6s ops/s", label, p.Elapsed.Seconds(), phase, Short(p.Rate))
	if !p.Warmup {
		line += fmt.Sprintf(" p99 %8s ops %6s err %s", Micros(us(p.P99)), Short(float64(p.Ops)), Short(float64(p.Errors)))
	}
	return line
}

// Short formats a count in at most 6 characters: 999, 12.3k, 999.9k,
// 1.2M, 3.4G.
func Short(v float64) string {
	n := math.Round(v)
	if n < 1000 {
		return fmt.Sprintf("%.0f", n)
	}
	units := []string{"k", "M", "G"}
	x, i := n/1000, 0
	// 999,950 would round to 1000.0k: the next unit says it shorter.
	for ; i < len(units)-1 && math.Round(x*10) >= 10_000; i++ {
		x /= 1000
	}
	return fmt.Sprintf("%.1f%s", x, units[i])
}
