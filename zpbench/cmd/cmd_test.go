package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/zpbench/noop"
)

// zpbench runs Main with args and returns its exit code, stdout and
// stderr.
func zpbench(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := Main(ctx, Env{Args: args, Stdout: &stdout, Stderr: &stderr})
	return code, stdout.String(), stderr.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no target", []string{"--workload", "get"}, "exactly one target"},
		{"two targets", []string{"--noop", "a:1", "--redis", "b:2"}, "--compare"},
		{"compare one", []string{"--noop", "a:1", "--compare"}, "exactly two"},
		{"bad workload", []string{"--noop", "a:1", "--workload", "ycsb-z"}, "unknown workload"},
		{"bad output", []string{"--noop", "a:1", "--output", "xml"}, "--output"},
		{"bad pipeline", []string{"--noop", "a:1", "--pipeline", "0"}, "--pipeline"},
		{"bad ratio", []string{"--noop", "a:1", "--workload", "mixed", "--read-ratio", "2"}, "read ratio"},
		{"bad distribution", []string{"--noop", "a:1", "--distribution", "pareto"}, "distribution"},
		{"unknown flag", []string{"--noop", "a:1", "--frobnicate"}, "frobnicate"},
		{"stray argument", []string{"--noop", "a:1", "get"}, "unknown command"},
		{"load without target", []string{"load"}, "exactly one target"},
		{"bad log level", []string{"--noop", "a:1", "--log-level", "loud"}, "--log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := zpbench(t, tt.args...)
			if code != ExitUsage {
				t.Errorf("exit code %d, want %d", code, ExitUsage)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not mention %q", stderr, tt.want)
			}
		})
	}
}

// TestVersionFlag: --version prints the line every binary prints and exits
// 0 without a target.
func TestVersionFlag(t *testing.T) {
	code, stdout, stderr := zpbench(t, "--version")
	if want := buildinfo.Line("zpbench") + "\n"; code != ExitOK || stdout != want {
		t.Errorf("--version: exit %d, stdout %q, want %q\n%s", code, stdout, want, stderr)
	}
}

func TestUnreachableTargetFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	code, _, stderr := zpbench(t, "--redis", addr, "--ops", "10", "-q", "--timeout", "1s")
	if code != ExitFailed {
		t.Fatalf("exit code %d, want %d; stderr %s", code, ExitFailed, stderr)
	}
}

// startNoop serves the no-op server on a free port for the test.
func startNoop(t *testing.T) string {
	t.Helper()
	srv, err := noop.NewServer(100, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// runJSON runs a bounded benchmark with --output json and decodes it.
func runJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	args = append(args, "--output", "json", "-q", "--warmup", "0", "--log-level", "warn")
	code, stdout, stderr := zpbench(t, args...)
	if code != ExitOK {
		t.Fatalf("zpbench %s: exit code %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout, stderr)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	return out
}

// workloadCases are the workloads and pipeline depths the end-to-end
// tests run: every kind of operation, through the client (pipeline 1) and
// the raw path (pipeline 4).
var workloadCases = []struct {
	workload string
	pipeline string
	extra    []string
}{
	{"set", "1", nil},
	{"get", "1", nil},
	{"get", "4", nil},
	{"mixed", "4", []string{"--read-ratio", "0.9"}},
	{"mget", "1", []string{"--batch", "5"}},
	{"mset", "4", []string{"--batch", "5"}},
	{"incr", "1", nil},
	{"ycsb-a", "4", nil},
	{"ycsb-d", "1", nil},
	{"ycsb-e", "1", nil},
	{"ycsb-e", "4", nil},
	{"ycsb-f", "4", nil},
}

// checkRun asserts a JSON report of a clean run of ops operations.
func checkRun(t *testing.T, out map[string]any, ops int) {
	t.Helper()
	if got := out["ops"].(float64); int(got) != ops {
		t.Errorf("ops = %v, want %d", got, ops)
	}
	if got := out["errors"].(float64); got != 0 {
		t.Errorf("errors = %v (%v)", got, out["error_samples"])
	}
	if out["ops_per_sec"].(float64) <= 0 {
		t.Errorf("ops_per_sec = %v", out["ops_per_sec"])
	}
}

// TestEndToEnd runs every workload for a few hundred operations against a
// real one-node cluster and against the no-op server.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Metas: 1, Nodes: 1})
	meta := strings.Join(c.MetaAddrs(), ",")
	noopAddr := startNoop(t)

	code, stdout, stderr := zpbench(t, "load", "--meta", meta, "--keyspace", "2000", "--batch", "50", "--conns", "4", "--log-level", "warn")
	if code != ExitOK || !strings.Contains(stdout, "loaded 2,000 records") {
		t.Fatalf("load: exit code %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	const ops = 300
	for _, target := range []struct{ flag, addr string }{{"--meta", meta}, {"--noop", noopAddr}} {
		for _, tc := range workloadCases {
			t.Run(target.flag[2:]+"/"+tc.workload+"/P"+tc.pipeline, func(t *testing.T) {
				args := append([]string{target.flag, target.addr, "--workload", tc.workload, "--keyspace", "2000",
					"--conns", "3", "--workers", "5", "--pipeline", tc.pipeline, "--ops", "300"}, tc.extra...)
				out := runJSON(t, args...)
				checkRun(t, out, ops)
				if target.flag == "--meta" && (tc.workload == "get" || tc.workload == "ycsb-e") {
					// Everything was loaded: reads hit.
					if m := out["misses"].(float64); m != 0 {
						t.Errorf("%v misses after loading the keyspace", m)
					}
				}
			})
		}
	}

	t.Run("compare", func(t *testing.T) {
		out := runJSON(t, "--meta", meta, "--noop", noopAddr, "--compare", "--rounds", "3", "--workload", "get",
			"--keyspace", "2000", "--conns", "2", "--ops", "301")
		for _, side := range []string{"a", "b"} {
			checkRun(t, out[side].(map[string]any), 301)
		}
		if kind := out["a"].(map[string]any)["target"].(map[string]any)["kind"]; kind != "zeppelin" {
			t.Errorf("A is %v, want zeppelin", kind)
		}
		if r := out["ratios"].(map[string]any)["ops_per_sec"].(float64); r <= 0 {
			t.Errorf("throughput ratio %v", r)
		}
	})
}

// TestTableLifecycle: zpbench says when it creates its table, drops a
// table it created when the run ends unless --keep-table, keeps one that
// existed unless --drop-table, and load keeps what it fills. A GET run on
// an empty table names the load command that fills it.
func TestTableLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Metas: 1, Nodes: 1})
	meta := strings.Join(c.MetaAddrs(), ",")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	exists := func(table string) bool {
		t.Helper()
		_, err := cl.Pull(ctx, table)
		if err != nil && !errors.Is(err, status.ErrTableNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	bench := func(args ...string) (int, string) {
		t.Helper()
		code, _, stderr := zpbench(t, append([]string{"--meta", meta, "--ops", "50", "--warmup", "0", "-q", "--log-level", "warn"}, args...)...)
		return code, stderr
	}

	steps := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr []string // substrings
		notStderr  []string
		wantTable  bool // whether table t exists afterwards
	}{
		{name: "created, then dropped", args: []string{"--table", "t1"},
			wantStderr: []string{"zpbench: created table t1 (partitions 16, replicas 1, min_sync_replicas 0)", "it is dropped when the run ends (--keep-table keeps it)", "zpbench: dropped table t1 (which zpbench created"}},
		{name: "created and kept", args: []string{"--table", "t2", "--keep-table"},
			wantStderr: []string{"zpbench: created table t2", "it is kept (--keep-table)", "zpbench: kept table t2"}, wantTable: true},
		{name: "existing, kept", args: []string{"--table", "t2"},
			notStderr: []string{"created table", "dropped table", "kept table"}, wantTable: true},
		{name: "existing, dropped on request", args: []string{"--table", "t2", "--drop-table"},
			wantStderr: []string{"zpbench: dropped table t2 (--drop-table)"}, notStderr: []string{"created table"}},
		{name: "both flags", args: []string{"--table", "t2", "--keep-table", "--drop-table"}, wantCode: ExitUsage,
			wantStderr: []string{"contradict"}},
		{name: "GET on an empty table", args: []string{"--table", "t3", "--workload", "get", "--keyspace", "1000", "-d", "10"},
			wantStderr: []string{"zpbench: 50 of 50 reads (100%) found no value", "zpbench load --meta " + meta + " --table t3 --keyspace 1000 --value-size 10"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			code, stderr := bench(st.args...)
			if code != st.wantCode {
				t.Fatalf("exit %d, want %d\n%s", code, st.wantCode, stderr)
			}
			for _, w := range st.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, w := range st.notStderr {
				if strings.Contains(stderr, w) {
					t.Errorf("stderr has %q:\n%s", w, stderr)
				}
			}
			if table := st.args[1]; st.wantCode == ExitOK && exists(table) != st.wantTable {
				t.Errorf("table %s exists: %v, want %v", table, !st.wantTable, st.wantTable)
			}
		})
	}

	// load keeps the table it creates; reads then hit, and say nothing.
	code, _, stderr := zpbench(t, "load", "--meta", meta, "--table", "t4", "--keyspace", "200", "--log-level", "warn")
	if code != ExitOK || !strings.Contains(stderr, "zpbench: created table t4") || !strings.Contains(stderr, "load keeps it") || !exists("t4") {
		t.Fatalf("load: exit %d, table kept %v\n%s", code, exists("t4"), stderr)
	}
	if code, stderr := bench("--table", "t4", "--workload", "get", "--keyspace", "200"); code != ExitOK || strings.Contains(stderr, "found no value") {
		t.Errorf("GET after load: exit %d\n%s", code, stderr)
	}
}
