package suite

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSuiteRunRESP runs a miniature suite with the RESP cells: zpnode's
// front on 1 node (redis-benchmark without --cluster) and 3 nodes (with
// --cluster), and a one-node Redis Cluster, each with redis-benchmark and
// zpbench --redis-cluster beside zpbench's native cells.
func TestSuiteRunRESP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for _, bin := range []string{"redis-server", "redis-benchmark"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
	bin := binDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{
		BinDir:    bin,
		Systems:   []string{"zpnode-1", "zpnode-3-async", "redis-cluster"},
		Pipelines: []int{1, 4},
		Duration:  200 * time.Millisecond,
		Warmup:    50 * time.Millisecond,
		Conns:     4,
		Keyspace:  1000,
		Micro:     MicroConfig{Skip: true},
		WorkDir:   t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if left := children(t); len(left) > 0 {
		t.Errorf("processes left after the run: %v", left)
	}
	// Cells per system: ops × pipelines × clients.
	want := map[string]struct {
		cells  int
		labels []string
	}{
		"zpnode-1":       {12, []string{"zpbench --meta", "redis-benchmark", "zpbench --redis-cluster"}},
		"zpnode-3-async": {12, []string{"zpbench --meta", "redis-benchmark --cluster", "zpbench --redis-cluster"}},
		"redis-cluster":  {8, []string{"redis-benchmark", "zpbench --redis-cluster"}},
	}
	if len(res.Systems) != len(want) {
		t.Fatalf("%d systems measured", len(res.Systems))
	}
	for _, s := range res.Systems {
		w := want[s.Def.Name]
		if s.Err != "" || len(s.Cells) != w.cells {
			t.Errorf("%s: err %q, %d cells, want %d", s.Def.Name, s.Err, len(s.Cells), w.cells)
		}
		labels := map[string]bool{}
		for _, c := range s.Cells {
			labels[c.ClientLabel] = true
			if c.Err != "" || c.Report.Ops == 0 || c.Report.Errors != 0 || c.Report.Latency.P50 <= 0 {
				t.Errorf("%s %s %s P%d: err %q, %d ops, %d errors, p50 %v", s.Def.Name, c.ClientLabel, c.Op, c.Pipeline,
					c.Err, c.Report.Ops, c.Report.Errors, c.Report.Latency.P50)
			}
			// zpbench's GETs read what the native load wrote, through
			// either front.
			if c.Client != ClientRedisBenchmark && c.Op == "get" && c.Report.Misses != 0 {
				t.Errorf("%s %s GET P%d: %d misses", s.Def.Name, c.ClientLabel, c.Pipeline, c.Report.Misses)
			}
		}
		for _, l := range w.labels {
			if !labels[l] {
				t.Errorf("%s: no %s cells (have %v)", s.Def.Name, l, labels)
			}
		}
		// redis-benchmark reads its own keys where it runs without
		// --cluster.
		if loaded := s.BenchLoad != nil && s.BenchLoad.Records == 1000; loaded == (s.Def.Name == "zpnode-3-async") {
			t.Errorf("%s: redis-benchmark keys loaded: %+v", s.Def.Name, s.BenchLoad)
		}
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"## Redis protocol (issue #13)",
		"**No-regression check: SET at pipeline",
		"| zpnode: 3 nodes, 3 replicas, async | redis-benchmark --cluster | SET | 4 |",
		"redis-benchmark -h 127.0.0.1 -p ",
		" --cluster -t get -c 4 -d 100 -r 1000 -P 4 -n ",
		"zpbench --redis-cluster 127.0.0.1:",
		"--redis-table bench",
		"cluster addslotsrange 0 16383",
		"$SUITE_DIR/zpnode-1/",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md.String())
	}
}
