package cmd

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestBulkloadThroughput compares zpctl bulkload with zpctl load (MSET
// batches) end to end on real processes (3 nodes, 4 partitions x 3
// replicas): ZP_BULKLOAD_BENCH_RECORDS records (default 1,000,000) of
// 100-byte values from one TSV file, each into a new table. It logs both
// times and the ratio; docs/benchmarks.md has the figures. Only with
// ZP_BULKLOAD_BENCH=1:
//
//	ZP_BULKLOAD_BENCH=1 go test -run TestBulkloadThroughput -v -timeout 30m ./zpctl/cmd
func TestBulkloadThroughput(t *testing.T) {
	if os.Getenv("ZP_BULKLOAD_BENCH") == "" || testing.Short() {
		t.Skip("a benchmark: set ZP_BULKLOAD_BENCH=1")
	}
	n := 1_000_000
	if v := os.Getenv("ZP_BULKLOAD_BENCH_RECORDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "bench.tsv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	v := make([]byte, 100)
	for i := range n {
		for j := range v {
			v[j] = letters[rng.IntN(len(letters))]
		}
		fmt.Fprintf(w, "key%09d\t%s\n", i, v)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	c := testcluster.Start(t, testcluster.Options{})
	meta := strings.Join(c.MetaAddrs(), ",")
	zp := func(args ...string) result {
		var stdout, stderr strings.Builder
		code := Main(context.Background(), Env{Args: append([]string{"--meta", meta, "--timeout", "60s"}, args...),
			Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" },
			IsTerminal: func() bool { return false }, StderrIsTerminal: func() bool { return false }})
		return result{code, stdout.String(), stderr.String()}
	}
	for _, tb := range []string{"mset", "bulk"} {
		if r := zp("table", "create", tb, "--partitions", "4", "--replicas", "3", "--wait"); r.code != ExitOK {
			t.Fatalf("create: %d %s", r.code, r.stderr)
		}
	}
	// CPU seconds of zpctl (this process) and of the nodes, so that the
	// figures say where the time went on a machine they share.
	cpu := func() (client, nodes float64) {
		client = cpuSeconds(t, os.Getpid())
		for _, n := range c.Nodes {
			nodes += cpuSeconds(t, n.Pid())
		}
		return client, nodes
	}
	// The bulk load first: the nodes' flushes and compactions after the
	// MSETs would otherwise run during it.
	stopPerf := perfRecord(t, c)
	c0, n0 := cpu()
	t0 := time.Now()
	r := zp("bulkload", "bulk", path)
	if r.code != ExitOK {
		t.Fatalf("bulkload: %d %s", r.code, r.stderr)
	}
	bulkTime := time.Since(t0)
	c1, n1 := cpu()
	stopPerf()
	t.Logf("bulkload: %s\n%s", strings.TrimSpace(r.stdout), r.stderr)
	t0 = time.Now()
	if r := zp("load", "mset", path); r.code != ExitOK {
		t.Fatalf("load: %d %s", r.code, r.stderr)
	}
	msetTime := time.Since(t0)
	c2, n2 := cpu()
	t.Logf("CPU seconds: zpctl bulkload: zpctl %.1f, nodes %.1f; zpctl load: zpctl %.1f, nodes %.1f", c1-c0, n1-n0, c2-c1, n2-n1)

	cl, err := client.New(context.Background(), client.Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, i := range []int{0, n / 2, n - 1} {
		k := []byte(fmt.Sprintf("key%09d", i))
		a, err1 := cl.Get(context.Background(), "mset", k)
		b, err2 := cl.Get(context.Background(), "bulk", k)
		if err1 != nil || err2 != nil || string(a) != string(b) || len(a) != 100 {
			t.Fatalf("%s: mset %q %v, bulk %q %v", k, a, err1, b, err2)
		}
	}
	t.Logf("%d records of 100 bytes: zpctl load (MSET) %v (%.0f keys/s), zpctl bulkload %v (%.0f keys/s): %.1fx",
		n, msetTime.Round(time.Millisecond), float64(n)/msetTime.Seconds(), bulkTime.Round(time.Millisecond), float64(n)/bulkTime.Seconds(),
		msetTime.Seconds()/bulkTime.Seconds())
}

// perfRecord, with ZP_BULKLOAD_BENCH_PERF=FILE, samples zpctl (this
// process) and the nodes with perf (call graphs, Go and RocksDB alike)
// until the returned function is called: perf report -i FILE --sort comm,dso,sym.
func perfRecord(t *testing.T, c *testcluster.Cluster) func() {
	out := os.Getenv("ZP_BULKLOAD_BENCH_PERF")
	if out == "" {
		return func() {}
	}
	pids := []string{strconv.Itoa(os.Getpid())}
	for _, n := range c.Nodes {
		pids = append(pids, strconv.Itoa(n.Pid()))
	}
	cmd := exec.Command("perf", "record", "-F", "999", "-g", "-o", out, "-p", strings.Join(pids, ","))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("perf: %v", err)
	}
	// perf writes its file's header once it has attached to the processes.
	testcluster.Poll(t, 10*time.Second, func() error {
		if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
			return fmt.Errorf("perf has not attached yet (%s empty)", out)
		}
		return nil
	})
	return func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
}

// cpuSeconds returns the user and system CPU time process pid has used.
func cpuSeconds(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14 and stime 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}
