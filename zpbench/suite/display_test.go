package suite

import (
	"testing"

	"github.com/zeppelin-kv/zeppelin/zpbench/report"
)

func TestShow(t *testing.T) {
	sh := shower{repo: "/home/ci/repo", work: "/tmp/zpbench-suite-123", bins: []string{"/usr/bin/redis-benchmark"}}
	tests := []struct{ in, want string }{
		{"zpbench suite --bin-dir /home/ci/repo/bin --go go --out docs/benchmarks.md", "zpbench suite --bin-dir bin --go go --out docs/benchmarks.md"},
		{"/home/ci/repo/bin/zpnode --data /tmp/zpbench-suite-123/zpnode-1/zpnode-1 --addr 127.0.0.1:1", "bin/zpnode --data $SUITE_DIR/zpnode-1/zpnode-1 --addr 127.0.0.1:1"},
		{"go test -C /home/ci/repo ./lib/rpc", "go test -C . ./lib/rpc"},
		{"/usr/bin/redis-benchmark -h 127.0.0.1 -p 1 --csv", "redis-benchmark -h 127.0.0.1 -p 1 --csv"},
		// A sibling directory sharing the prefix is not the repository.
		{"/home/ci/repo2/bin/zpnode", "/home/ci/repo2/bin/zpnode"},
		{"/usr/local/bin/redis-server --port 1", "/usr/local/bin/redis-server --port 1"},
	}
	for _, tt := range tests {
		if got := sh.show(tt.in); got != tt.want {
			t.Errorf("show(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// A work directory under the repository becomes $SUITE_DIR, not a
	// relative path.
	in := shower{repo: "/home/ci/repo", work: "/home/ci/repo/var/zpbench-suite-9"}
	if got := in.show("--data /home/ci/repo/var/zpbench-suite-9/redis"); got != "--data $SUITE_DIR/redis" {
		t.Errorf("work dir under the repository: %q", got)
	}
}

// TestShowResultsMessages: failures quote commands and logs of the run's
// directory; the page shows them without this machine's paths.
func TestShowResultsMessages(t *testing.T) {
	sh := shower{repo: "/home/ci/repo", work: "/tmp/zpbench-suite-123"}
	res := &Results{
		Systems: []SystemResult{{
			Err:     "start: zpnode-1 exited: exit status 1\nopen /tmp/zpbench-suite-123/zpnode-1/LOCK: busy",
			MinSync: &Probe{Detail: "see /tmp/zpbench-suite-123/zpnode-3-sync1/zpnode-2.log"},
			Cells: []Cell{{Err: "round 1: /home/ci/repo/bin/zpnode gone",
				Report: report.Report{ErrorSamples: map[string]string{"IO": "write /tmp/zpbench-suite-123/x: no space"}}}},
		}},
		Micro: &MicroResult{Err: "# /home/ci/repo/lib/engine\nbuild failed"},
	}
	sh.showResults(res)
	s := res.Systems[0]
	for _, tt := range []struct{ got, want string }{
		{s.Err, "start: zpnode-1 exited: exit status 1\nopen $SUITE_DIR/zpnode-1/LOCK: busy"},
		{s.MinSync.Detail, "see $SUITE_DIR/zpnode-3-sync1/zpnode-2.log"},
		{s.Cells[0].Err, "round 1: bin/zpnode gone"},
		{s.Cells[0].Report.ErrorSamples["IO"], "write $SUITE_DIR/x: no space"},
		{res.Micro.Err, "# lib/engine\nbuild failed"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
