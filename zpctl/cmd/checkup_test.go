package cmd

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/health"
)

// TestCheckupAfterTopologyChange: nodes learn of a topology change with
// their next heartbeat, so a checkup right after one finds them behind the
// meta epoch for a moment. That is no problem (exit 0, for cron); a node
// that stays behind longer than --epoch-grace is one (node_epoch, exit 10).
func TestCheckupAfterTopologyChange(t *testing.T) {
	cl := ownCluster(t, inproc.Options{Metas: 1, Proxies: true, Taps: true, MetaConfig: slowDown})
	meta := cl.MetaAddrs()[0]
	zp := func(args ...string) result {
		return run(t, invocation{args: append([]string{"--meta", meta, "--timeout", "15s"}, args...)})
	}
	// One replica of one partition: one node is told of the table at
	// once (NOTIFY), the other two at their next PING.
	if r := zp("table", "create", "fresh", "--partitions", "1", "--replicas", "1", "--wait"); r.code != ExitOK {
		t.Fatalf("create: exit %d: %s", r.code, r.stderr)
	}
	if r := zp("checkup"); r.code != ExitOK {
		t.Fatalf("checkup right after a table create: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A node cut off from meta misses the next change for as long as it
	// stays cut.
	tb := pullTable(t, cl, "fresh")
	var laggard *inproc.Node
	for _, n := range cl.Nodes {
		if n.Addr != tb.Partitions[0].Master {
			laggard = n
			break
		}
	}
	if err := laggard.CutFromMeta(); err != nil {
		t.Fatal(err)
	}
	if r := zp("table", "quota", "fresh", "--ops", "100000"); r.code != ExitOK {
		t.Fatalf("quota: exit %d: %s", r.code, r.stderr)
	}
	if r := zp("checkup", "--epoch-grace", "0"); r.code != ExitUnhealthy || !strings.Contains(r.stdout, "node_epoch") {
		t.Fatalf("checkup --epoch-grace 0 with %s behind: exit %d\n%s%s", laggard.Addr, r.code, r.stdout, r.stderr)
	}

	// Behind for longer than the grace: reported, that node alone.
	start := time.Now()
	r := zp("-o", "json", "checkup", "--epoch-grace", "1s")
	var rep health.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("exit %d: %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	var got []string
	for _, p := range rep.Problems {
		got = append(got, p.Check+"@"+p.Node)
	}
	if want := []string{"node_epoch@" + laggard.Addr}; r.code != ExitUnhealthy || !slices.Equal(got, want) {
		t.Fatalf("checkup with %s cut off: exit %d, problems %v, want %v\n%s", laggard.Addr, r.code, got, want, r.stderr)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("reported after %v, within the grace", took)
	}

	// Reconnected as the checkup first asks it for INFO, it answers from
	// behind, then catches up at its next PING, within the grace: healthy.
	var heal sync.Once
	laggard.Tap().SetHook(func(req *zppb.Request) *zppb.Response {
		if req.GetInfo() != nil {
			heal.Do(func() {
				if err := laggard.Heal(); err != nil {
					t.Error(err)
				}
			})
		}
		return nil
	})
	if r := zp("checkup"); r.code != ExitOK {
		t.Fatalf("checkup after %s reconnected: exit %d\n%s%s", laggard.Addr, r.code, r.stdout, r.stderr)
	}
}

// TestCheckupFlags: --epoch-grace must fit in --timeout; --upgrading and
// ZP_UPGRADING are accepted (mixed versions are tested in zpctl/health).
func TestCheckupFlags(t *testing.T) {
	cl := sharedCluster(t)
	waitSettled(t, cl)
	for _, tt := range []struct {
		args     []string
		wantCode int
	}{
		{[]string{"checkup", "--epoch-grace", "2s"}, ExitUsage}, // zpctl() gives --timeout 2s
		{[]string{"checkup", "--epoch-grace", "-1s"}, ExitUsage},
		{[]string{"checkup", "--upgrading"}, ExitOK},
	} {
		if r := zpctl(t, cl, tt.args...); r.code != tt.wantCode {
			t.Errorf("%v: exit %d, want %d\n%s%s", tt.args, r.code, tt.wantCode, r.stdout, r.stderr)
		}
	}
	for _, tt := range []struct {
		env      string
		wantCode int
	}{{"1", ExitOK}, {"false", ExitOK}, {"soon", ExitUsage}} {
		args := []string{"--meta", leaderAddr(t, cl), "--timeout", "5s", "checkup"}
		if r := run(t, invocation{args: args, env: map[string]string{"ZP_UPGRADING": tt.env}}); r.code != tt.wantCode {
			t.Errorf("ZP_UPGRADING=%s: exit %d, want %d\n%s%s", tt.env, r.code, tt.wantCode, r.stdout, r.stderr)
		}
	}
}

// TestWriteCheckupInfo: info findings are listed under a healthy verdict.
func TestWriteCheckupInfo(t *testing.T) {
	r := health.Report{Healthy: true, Epoch: 3, Problems: []health.Problem{{Severity: health.Info, Check: health.CheckVersionMixed,
		Message: "upgrade in progress, versions differ: v1 per node a; v2 per node b"}}}
	var b strings.Builder
	if err := writeCheckup(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.HasPrefix(out, "HEALTHY (1 info)\n") || !strings.Contains(out, "INFO      version_mixed  upgrade in progress") {
		t.Errorf("output:\n%s", out)
	}
}
