package suite

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/zpbench/noop"
	"github.com/zeppelin-kv/zeppelin/zpbench/report"
	"github.com/zeppelin-kv/zeppelin/zpbench/runner"
	"github.com/zeppelin-kv/zeppelin/zpbench/target"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// noopEnv makes the test binary act as `zpbench noop-server`, so that the
// suite can start it as a process of its own.
const noopEnv = "ZPBENCH_SUITE_TEST_NOOP"

func TestMain(m *testing.M) {
	if os.Getenv(noopEnv) != "" {
		os.Exit(serveNoop(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// serveNoop serves the no-op server with the flags the suite passes.
func serveNoop(args []string) int {
	addr, size := "", 0
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "--addr":
			addr = args[i+1]
		case "--value-size":
			size, _ = strconv.Atoi(args[i+1])
		}
	}
	srv, err := noop.NewServer(size, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv.Serve(ln) // until SIGTERM ends the process
	return 0
}

func noopCommand(t *testing.T) []string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{"env", noopEnv + "=1", self}
}

// children returns the live processes whose parent is this one.
func children(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	self := strconv.Itoa(os.Getpid())
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == self && f[0] != "Z" {
			out = append(out, e.Name()+" "+s[:strings.LastIndexByte(s, ')')+1])
		}
	}
	return out
}

// TestSuiteRun runs a miniature suite against real processes — the no-op
// server and a one-node cluster — and checks the cells, the report and
// that no process outlives the run.
func TestSuiteRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := binDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{
		BinDir:      bin,
		NoopCommand: noopCommand(t),
		Systems:     []string{"noop", "zpnode-1"},
		Clients:     []string{ClientZpbench}, // the RESP cells: TestSuiteRunRESP
		Pipelines:   []int{1, 4},
		Duration:    200 * time.Millisecond,
		Warmup:      50 * time.Millisecond,
		Conns:       4,
		Keyspace:    1000,
		Micro:       MicroConfig{Skip: true},
		WorkDir:     t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if left := children(t); len(left) > 0 {
		t.Errorf("processes left after the run: %v", left)
	}
	if len(res.Systems) != 2 {
		t.Fatalf("%d systems measured", len(res.Systems))
	}
	for _, s := range res.Systems {
		if s.Err != "" || len(s.Cells) != 4 || s.Load == nil || s.Load.Records != 1000 {
			t.Errorf("%s: err %q, %d cells, load %+v", s.Def.Name, s.Err, len(s.Cells), s.Load)
		}
		for _, c := range s.Cells {
			if c.Err != "" || c.Report.Ops == 0 || c.Report.Errors != 0 || c.Report.Misses != 0 {
				t.Errorf("%s %s P%d: err %q, %d ops, %d errors, %d misses", s.Def.Name, c.Op, c.Pipeline, c.Err, c.Report.Ops, c.Report.Errors, c.Report.Misses)
			}
		}
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| zpnode: 1 node, 1 replica | zpbench --meta | GET | 4 |", "zpbench --meta 127.0.0.1:", "zpbench load --noop"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestSuiteCleansUpOnFailure gives the suite "servers" that never become
// ready: starting fails at the deadline, and every process is gone.
func TestSuiteCleansUpOnFailure(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"zpmeta", "zpnode"} {
		script := "#!/bin/sh\nexec sleep 600\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{
		BinDir:       dir,
		Systems:      []string{"zpnode-3-async"},
		StartTimeout: 500 * time.Millisecond,
		Micro:        MicroConfig{Skip: true},
		WorkDir:      t.TempDir(),
	})
	if err == nil {
		t.Fatal("the suite succeeded with servers that never answer")
	}
	if res == nil || len(res.Systems) != 1 || !strings.Contains(res.Systems[0].Err, "start") {
		t.Fatalf("results %+v", res)
	}
	if left := children(t); len(left) > 0 {
		t.Fatalf("processes left after a failed start: %v", left)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown system", Config{Systems: []string{"cassandra"}}, "unknown system"},
		{"no binaries", Config{Systems: []string{"zpnode-1"}}, "zpmeta and zpnode"},
		{"no noop command", Config{Systems: []string{"noop"}}, "no-op server command"},
		{"bad op", Config{Systems: []string{"redis"}, Ops: []string{"flush"}}, "unknown workload"},
		{"bad pipeline", Config{Systems: []string{"redis"}, Pipelines: []int{0}}, "pipeline"},
		{"unknown client", Config{Systems: []string{"redis"}, Clients: []string{"memtier"}}, "unknown client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestProcsStopAll(t *testing.T) {
	g := &procs{}
	dir := t.TempDir()
	var started []*proc
	for i := range 3 {
		p, err := g.start(fmt.Sprintf("sleep-%d", i), filepath.Join(dir, "log"), "sleep", "600")
		if err != nil {
			t.Fatal(err)
		}
		started = append(started, p)
	}
	if err := g.stopAll(); err != nil {
		t.Fatal(err)
	}
	for _, p := range started {
		if p.running() {
			t.Errorf("%s still running", p.name)
		}
	}
	if _, err := g.start("missing", filepath.Join(dir, "log"), filepath.Join(dir, "no-such-binary")); err == nil {
		t.Error("starting a missing binary succeeded")
	}
}

func TestParseBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/zeppelin-kv/zeppelin/lib/rpc
cpu: AMD EPYC
BenchmarkCall-2             	   50000	     24000 ns/op	     512 B/op	      10 allocs/op
BenchmarkFrameRoundTrip-2   	 1000000	      1100 ns/op
PASS
ok  	github.com/zeppelin-kv/zeppelin/lib/rpc	3.1s
pkg: github.com/zeppelin-kv/zeppelin/lib/binlog
BenchmarkAppend/always-2    	    1000	   1000000 ns/op	   0.10 MB/s	  1.000 syncs/op
--- FAIL: BenchmarkBroken
FAIL	github.com/zeppelin-kv/zeppelin/lib/engine	0.1s
`
	got := parseBench(out)
	if len(got) != 3 {
		t.Fatalf("parsed %d benchmarks: %+v", len(got), got)
	}
	if got[0].Package != "github.com/zeppelin-kv/zeppelin/lib/rpc" || got[0].Name != "BenchmarkCall-2" || got[0].Iterations != 50000 {
		t.Errorf("first: %+v", got[0])
	}
	if v, ok := got[0].Metric("allocs/op"); !ok || v != 10 {
		t.Errorf("allocs/op = %v, %v", v, ok)
	}
	if v, ok := got[2].Metric("syncs/op"); !ok || v != 1 || got[2].Package != "github.com/zeppelin-kv/zeppelin/lib/binlog" {
		t.Errorf("third: %+v", got[2])
	}
	if f := failures(out); !strings.Contains(f, "BenchmarkBroken") || !strings.Contains(f, "lib/engine") {
		t.Errorf("failures: %q", f)
	}
}

// TestMarkdown renders made-up results and checks the ratios and goals.
func TestMarkdown(t *testing.T) {
	rep := func(opsPerSec float64) report.Report {
		res := runner.NewResult()
		res.Elapsed = time.Second
		for range int(opsPerSec) {
			res.Add(workload.Set, time.Millisecond, target.Outcome{})
		}
		return report.New(report.Target{}, report.Workload{}, report.Config{}, res)
	}
	sys := func(name string, setP1, setP16 float64) SystemResult {
		def, _ := systemDef(name)
		return SystemResult{Def: def, Cells: []Cell{
			{Op: "set", Pipeline: 1, Client: ClientZpbench, ClientLabel: clientLabel(def.Kind, ClientZpbench, def.Nodes), Report: rep(setP1)},
			{Op: "set", Pipeline: 16, Client: ClientZpbench, ClientLabel: clientLabel(def.Kind, ClientZpbench, def.Nodes), Report: rep(setP16)},
		}}
	}
	sync1 := sys("zpnode-3-sync1", 300, 600)
	sync1.MinSync = &Probe{Honoured: "no", Detail: "acknowledged"}
	// RESP cells: zpnode-1's fronts beside its native cells, and Redis
	// Cluster with the same clients.
	resp := func(sr SystemResult, client, label string, setP1, setP16 float64) SystemResult {
		sr.Cells = append(sr.Cells,
			Cell{Op: "set", Pipeline: 1, Client: client, ClientLabel: label, Report: rep(setP1)},
			Cell{Op: "set", Pipeline: 16, Client: client, ClientLabel: label, Report: rep(setP16)})
		return sr
	}
	zp1 := resp(resp(sys("zpnode-1", 800, 1000), ClientRedisBenchmark, "redis-benchmark", 700, 1200), ClientZpbenchCluster, "zpbench --redis-cluster", 600, 900)
	rc, _ := systemDef("redis-cluster")
	rcl := resp(resp(SystemResult{Def: rc}, ClientRedisBenchmark, "redis-benchmark", 1400, 4800), ClientZpbenchCluster, "zpbench --redis-cluster", 1200, 3600)
	res := &Results{
		Settings: Settings{Ops: []string{"set"}, Pipelines: []int{1, 16}},
		Systems: []SystemResult{
			sys("noop", 2000, 4000),
			zp1,
			sys("zpnode-3-async", 500, 700),
			sync1,
			sys("redis", 1000, 4000),
			rcl,
			{Def: Systems[0], Err: "start: boom"},
		},
		Micro: &MicroResult{Command: "go test -bench .", Benchmarks: []MicroBench{
			{Package: "github.com/zeppelin-kv/zeppelin/lib/rpc", Name: "BenchmarkCall-2", Iterations: 10,
				Metrics: []Metric{{24000, "ns/op"}, {3, "allocs/op"}, {1.5, "syncs/op"}}},
		}},
	}
	var b bytes.Buffer
	if err := WriteMarkdown(&b, res); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| 1-node SET, pipeline 1, vs Redis (zpbench) | ≥ 70% | 80% | 800 / 1,000 | n/a / n/a | met |",
		"| 1-node SET, pipeline 16, vs Redis (zpbench) | ≥ 50% | 25% | 1,000 / 4,000 | n/a / n/a | **not met** |",
		"| 3-node async SET, pipeline 1, vs 1-node | ≥ 50% | 62% | 500 / 800 | n/a / n/a | met |",
		"| 1-node GET, pipeline 1, vs Redis (zpbench) | ≥ 80% | n/a |  |  | not measured |",
		"| SET | 1 | 80% | 40% | 50% | 62% | 38% |",
		"min_sync not honoured: no",
		"Honoured: **no**",
		"failed: start: boom",
		"| lib/rpc | BenchmarkCall-2 | 24,000 |  | 3 | 1.5 syncs/op |",
		"| zpnode: 1 node, 1 replica | zpbench --meta | SET | 16 | 1,000 |",
		"| zpnode: 1 node, 1 replica | redis-benchmark | SET | 16 | 1,200 |",
		"of native (`zpbench --meta`, 1,000 ops/s): 120% with `redis-benchmark` (1,200 ops/s); 90% with `zpbench --redis-cluster` (900 ops/s).**",
		"| zpnode-1 | SET | 16 | 1,000 | 1,200 | 120% | 900 | 90% |",
		"| redis-benchmark | SET | 16 | 25% |",
		"| zpbench --redis-cluster | SET | 1 | 50% |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

// binDir returns a directory with zpmeta and zpnode: $ZP_BIN_DIR (what
// `make test` sets) or, like lib/testcluster, a fresh build.
func binDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("ZP_BIN_DIR"); dir != "" {
		return dir
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "./zpmeta", "./zpnode")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}
