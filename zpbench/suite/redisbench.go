package suite

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zeppelin-kv/zeppelin/zpbench/report"
)

// benchLine is one test's line of `redis-benchmark --csv`.
type benchLine struct {
	Test string
	RPS  float64
	// Latencies in milliseconds; redis-benchmark before 7.0 prints rps
	// only, and then HasLatency is false.
	HasLatency                   bool
	Avg, Min, P50, P95, P99, Max float64
}

// parseRedisBenchmarkCSV reads the output of `redis-benchmark --csv`: a
// header line naming the columns ("test","rps","avg_latency_ms",...) and a
// line per test. Lines that are not CSV (in cluster mode it first prints
// the masters it found) are skipped. Columns are found by name, so an
// older redis-benchmark with "test","rps" only still parses.
func parseRedisBenchmarkCSV(out string) ([]benchLine, error) {
	var header []string
	var lines []benchLine
	for _, raw := range strings.Split(strings.ReplaceAll(out, "\r", "\n"), "\n") {
		raw = strings.TrimSpace(raw)
		if !strings.HasPrefix(raw, `"`) {
			continue
		}
		rec, err := csv.NewReader(strings.NewReader(raw)).Read()
		if err != nil {
			return nil, fmt.Errorf("redis-benchmark output %q: %w", raw, err)
		}
		if header == nil {
			if rec[0] != "test" {
				return nil, fmt.Errorf("redis-benchmark output: no header before %q", raw)
			}
			header = rec
			continue
		}
		l, err := benchLineOf(header, rec)
		if err != nil {
			return nil, err
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("redis-benchmark printed no result: %q", strings.TrimSpace(out))
	}
	return lines, nil
}

func benchLineOf(header, rec []string) (benchLine, error) {
	if len(rec) != len(header) {
		return benchLine{}, fmt.Errorf("redis-benchmark line %q: %d fields, header has %d", rec, len(rec), len(header))
	}
	l := benchLine{Test: rec[0]}
	latency := map[string]*float64{
		"avg_latency_ms": &l.Avg, "min_latency_ms": &l.Min, "p50_latency_ms": &l.P50,
		"p95_latency_ms": &l.P95, "p99_latency_ms": &l.P99, "max_latency_ms": &l.Max,
	}
	found := 0
	for i, name := range header[1:] {
		v, err := strconv.ParseFloat(rec[i+1], 64)
		if err != nil {
			return benchLine{}, fmt.Errorf("redis-benchmark %s %s %q: %w", l.Test, name, rec[i+1], err)
		}
		if name == "rps" {
			l.RPS = v
			found++
		} else if p, ok := latency[name]; ok {
			*p = v
			l.HasLatency = true
		}
	}
	if found == 0 {
		return benchLine{}, fmt.Errorf("redis-benchmark header %q has no rps", header)
	}
	return l, nil
}

// benchRun is one run of redis-benchmark: its requests and results.
type benchRun struct {
	requests int
	line     benchLine
	wall     time.Duration
}

// benchMeter measures a cell with redis-benchmark. redis-benchmark sends a
// number of requests (-n), not for a time, so each run is sized from the
// rate of the one before (requests over its wall time, connecting
// included) to fill the time asked for, and a round that ends early runs
// again for the rest. Its result is redis-benchmark's own: requests over
// the time from its first request to its last reply.
type benchMeter struct {
	bin      string
	args     []string // everything but -n and --csv
	minReq   int
	rate     float64 // requests per second of wall time, from the last run
	runs     []benchRun
	firstCmd string
}

// newBenchMeter prepares redis-benchmark for op at pipeline against sys.
func newBenchMeter(cfg *Config, sys *system, op string, pipeline int) *benchMeter {
	host, port, _ := net.SplitHostPort(sys.respAddrs[0])
	args := []string{"-h", host, "-p", port}
	if clusterMode(sys) {
		args = append(args, "--cluster")
	}
	args = append(args, "-t", op, "-c", strconv.Itoa(cfg.Conns), "-d", strconv.Itoa(cfg.ValueSize),
		"-r", strconv.FormatUint(cfg.Keyspace, 10), "-P", strconv.Itoa(pipeline))
	// At least a few pipelines per connection, so that a run is not all
	// connecting.
	return &benchMeter{bin: cfg.RedisBenchmark, args: args, minReq: 8 * cfg.Conns * pipeline}
}

// command is the command line of a run of n requests.
func (m *benchMeter) command(n int) []string {
	return append(append([]string{m.bin}, m.args...), "-n", strconv.Itoa(n), "--csv")
}

// requestsFor is how many requests should take d at the last rate.
func (m *benchMeter) requestsFor(d time.Duration) int {
	return max(int(m.rate*d.Seconds()), m.minReq)
}

// run runs redis-benchmark for n requests.
func (m *benchMeter) run(ctx context.Context, n int, expect time.Duration) (benchRun, error) {
	// redis-benchmark has no timeout of its own: a server that stops
	// answering would hang it.
	ctx, cancel := context.WithTimeout(ctx, 5*expect+30*time.Second)
	defer cancel()
	argv := m.command(n)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		// It prints the error reply that stopped it on stdout.
		return benchRun{}, fmt.Errorf("%s: %w: %s", commandLine(argv), err, lastLines(stdout.String()+stderr.String(), 5))
	}
	lines, err := parseRedisBenchmarkCSV(stdout.String())
	if err != nil {
		return benchRun{}, err
	}
	l := lines[0]
	if l.RPS <= 0 {
		return benchRun{}, fmt.Errorf("%s: rps %v", commandLine(argv), l.RPS)
	}
	m.rate = float64(n) / wall.Seconds()
	return benchRun{requests: n, line: l, wall: wall}, nil
}

// runFor runs redis-benchmark for about d, at least once: runs sized from
// the last rate until less than a tenth of d is left. measured keeps the
// runs for the report.
func (m *benchMeter) runFor(ctx context.Context, d time.Duration, measured bool) error {
	start := time.Now()
	left := d
	for {
		n := m.minReq
		if m.rate > 0 {
			n = m.requestsFor(left)
		}
		r, err := m.run(ctx, n, left)
		if err != nil {
			return err
		}
		if measured {
			if m.firstCmd == "" {
				m.firstCmd = commandLine(m.command(n))
			}
			m.runs = append(m.runs, r)
		}
		if left = d - time.Since(start); left < d/10 {
			return nil
		}
	}
}

// warmup runs redis-benchmark for about d, and at least once, to learn
// the rate the rounds are sized from.
func (m *benchMeter) warmup(ctx context.Context, d time.Duration) error {
	return m.runFor(ctx, d, false)
}

// round runs redis-benchmark for about d, measured.
func (m *benchMeter) round(ctx context.Context, d time.Duration) error {
	return m.runFor(ctx, d, true)
}

// report merges the measured runs: throughput is all requests over the
// sum of the runs' measured times; percentiles are the runs' weighted by
// their requests (redis-benchmark prints no histogram to merge), max the
// largest.
func (m *benchMeter) report() (report.Report, error) {
	var r report.Report
	if len(m.runs) == 0 {
		return r, errors.New("no round measured")
	}
	var secs float64
	lat := &r.Latency
	lat.Min = -1
	for _, b := range m.runs {
		n := float64(b.requests)
		secs += n / b.line.RPS
		r.Ops += int64(b.requests)
		lat.Mean += n * b.line.Avg
		lat.P50 += n * b.line.P50
		lat.P95 += n * b.line.P95
		lat.P99 += n * b.line.P99
		lat.Max = max(lat.Max, b.line.Max)
		if lat.Min < 0 || b.line.Min < lat.Min {
			lat.Min = b.line.Min
		}
	}
	total := float64(r.Ops)
	// Milliseconds to the report's microseconds.
	lat.Mean, lat.P50, lat.P95, lat.P99 = 1000*lat.Mean/total, 1000*lat.P50/total, 1000*lat.P95/total, 1000*lat.P99/total
	lat.Min, lat.Max = 1000*lat.Min, 1000*lat.Max
	lat.Count = r.Ops
	r.ElapsedSec = secs
	r.OpsPerSec = total / secs
	return r, nil
}

// lastLines returns the last n non-empty lines of s, on one line.
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r", "\n"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
