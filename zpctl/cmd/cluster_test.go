package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/health"
)

// TestRealCluster runs zpctl against real zpmeta and zpnode processes:
// checkup on a healthy cluster; table flush; setmaster and migrate status; a failover
// started from `zpctl top` in tmux; `zpctl top` seeing a node killed;
// then checkup of the cluster without that node. One cluster serves all,
// in that order, to keep the suite short.
func TestRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster; skipped with -short")
	}
	c := testcluster.Start(t, testcluster.Options{
		// A node is DOWN one second after its last PING.
		MetaArgs: []string{"--down-timeout", "1s"},
	})
	meta := strings.Join(c.MetaAddrs(), ",")
	zp := func(args ...string) result {
		return run(t, invocation{args: append([]string{"--meta", meta, "--timeout", "10s"}, args...)})
	}
	if r := zp("table", "create", "orders", "--partitions", "8", "--replicas", "3", "--wait"); r.code != 0 {
		t.Fatalf("create: %d %s", r.code, r.stderr)
	}
	if r := zp("mset", "orders", "a", "1", "b", "2", "c", "3"); r.code != 0 {
		t.Fatalf("mset: %d %s", r.code, r.stderr)
	}

	t.Run("checkup healthy", func(t *testing.T) {
		// Slaves start streaming a moment after the table is writable.
		var last result
		testcluster.Poll(t, 20*time.Second, func() error {
			last = zp("checkup", "-o", "json")
			if last.code != ExitOK {
				return fmt.Errorf("exit %d: %s", last.code, last.stdout)
			}
			return nil
		})
		var r health.Report
		if err := json.Unmarshal([]byte(last.stdout), &r); err != nil || !r.Healthy || r.Summary.Replicas != 24 || r.Summary.NodesUp != 3 {
			t.Fatalf("report %v: %s", err, last.stdout)
		}
		// The other commands that read INFO agree.
		if r := zp("stats", "repl", "orders"); r.code != 0 || !strings.Contains(r.stdout, "all caught up: yes") {
			t.Fatalf("stats repl: %d %s %s", r.code, r.stdout, r.stderr)
		}
		if r := zp("table", "describe", "orders"); r.code != 0 || strings.Contains(r.stdout, "(?)") {
			t.Fatalf("describe: %d %s %s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("table flush", func(t *testing.T) {
		r := zp("table", "flush", "orders") // stdin is not a terminal
		if r.code != ExitUsage || !strings.Contains(r.stderr, "refusing without --yes") {
			t.Fatalf("flush without --yes: exit %d, want %d: %s", r.code, ExitUsage, r.stderr)
		}
		if r := zp("get", "orders", "a"); r.code != ExitOK || r.stdout != "1\n" {
			t.Fatalf("a refused flush changed the data: exit %d %q %s", r.code, r.stdout, r.stderr)
		}
		r = zp("table", "flush", "orders", "--yes", "-o", "json")
		var got tableFlushJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitOK {
			t.Fatalf("flush: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
		}
		if got.Table != "orders" || got.Partitions != 8 || fmt.Sprint(got.Flushed) != "[0 1 2 3 4 5 6 7]" {
			t.Fatalf("flush reported %+v", got)
		}
		for _, k := range []string{"a", "b", "c"} {
			if r := zp("get", "orders", k); r.code != ExitNotFound {
				t.Fatalf("get %s after the flush: exit %d %q", k, r.code, r.stdout)
			}
		}
		if r := zp("table", "flush", "nosuch", "--yes"); r.code != ExitNotFound {
			t.Fatalf("flush of an unknown table: exit %d: %s", r.code, r.stderr)
		}
		if r := zp("mset", "orders", "a", "1", "b", "2", "c", "3"); r.code != ExitOK {
			t.Fatalf("writes after the flush: exit %d: %s", r.code, r.stderr)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	// orders/0 as the freshest meta server has it: a PULL through the
	// client may be answered by a follower a moment behind.
	partition0 := func() *zppb.Partition {
		t.Helper()
		var best *zppb.Topology
		for _, addr := range c.MetaAddrs() {
			resp, err := c.Call(ctx, addr, &zppb.Request{Cmd: &zppb.Request_Pull{Pull: &zppb.PullRequest{Table: "orders"}}})
			if topo := resp.GetPull().GetTopology(); err == nil && topo != nil && (best == nil || topo.Epoch > best.Epoch) {
				best = topo
			}
		}
		if best == nil {
			t.Fatal("no meta server answered PULL")
		}
		return best.Tables[0].Partitions[0]
	}

	t.Run("setmaster", func(t *testing.T) {
		before := partition0()
		to := before.Slaves[0]
		r := zp("setmaster", "orders", "0", to, "--yes", "-o", "json")
		var got operationJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitOK {
			t.Fatalf("exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
		}
		m := got.Moves[0]
		if !got.Waited || got.Done != 1 || m.Kind != "setmaster" || m.State != "DONE" || m.From != before.Master || m.To != to || m.StuckMs <= 0 {
			t.Fatalf("json %+v", got)
		}
		if after := partition0(); after.Master != to || after.Term != before.Term+1 || !slices.Contains(after.Slaves, before.Master) {
			t.Fatalf("orders/0 before %v, after %v", before, after)
		}
		t.Logf("setmaster: STUCK %dms; progress on stderr:\n%s", m.StuckMs, r.stderr)

		r = zp("migrate", "status", "--all")
		if r.code != ExitOK || !strings.Contains(r.stdout, fmt.Sprintf("%d   setmaster  orders/0", m.ID)) || !strings.Contains(r.stdout, "DONE") {
			t.Fatalf("migrate status --all: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if r := zp("migrate", "status"); r.code != ExitOK || r.stdout != "no moves in progress\n" {
			t.Fatalf("migrate status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("failover from top", func(t *testing.T) {
		before := partition0()
		tm, waitFor := startTop(t, meta, "failover")
		waitFor("overview", "HEALTHY", "orders", "Leader")
		// The partitions view opens on orders/0.
		tm("send-keys", "-t", "failover", "4")
		waitFor("partitions view", "orders  8 partitions × 3 replicas")
		tm("send-keys", "-t", "failover", "f")
		waitFor("dialog", "Fail over orders/0", "y yes")
		tm("send-keys", "-t", "failover", "y")
		waitFor("queued", "setmaster: queued move")
		// Checked through the client, as an application sees it.
		testcluster.Poll(t, 20*time.Second, func() error {
			topo, err := cli.Pull(ctx, "orders")
			if err != nil {
				return err
			}
			if p := topo.Tables[0].Partitions[0]; p.Master == before.Master || !slices.Contains(before.Slaves, p.Master) {
				return fmt.Errorf("orders/0 master %s; before: master %s, slaves %v", p.Master, before.Master, before.Slaves)
			}
			return nil
		})
		// The panel shows the move, finished.
		tm("send-keys", "-t", "failover", "5")
		waitFor("migrations view", "setmaster", "orders/0", "DONE")
		tm("send-keys", "-t", "failover", "q")
		waitFor("quit", "zpctl exited 0")
	})

	victim := c.Nodes[1]
	kill := func() {
		if victim.Running() {
			if err := victim.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("top in tmux", func(t *testing.T) {
		topInTmux(t, meta, c.NodeAddrs(), victim.Addr, kill)
	})

	t.Run("checkup after kill", func(t *testing.T) {
		kill()
		// At once the node does not answer; a second later meta has it
		// DOWN. Both are unhealthy and name the node; wait for the second.
		var last result
		testcluster.Poll(t, 20*time.Second, func() error {
			last = zp("checkup", "-o", "json")
			if last.code != ExitUnhealthy || !strings.Contains(last.stdout, `"check": "node_down"`) {
				return fmt.Errorf("exit %d: %s", last.code, last.stdout)
			}
			return nil
		})
		var r health.Report
		if err := json.Unmarshal([]byte(last.stdout), &r); err != nil || r.Healthy {
			t.Fatalf("report %v: %s", err, last.stdout)
		}
		named := false
		for _, p := range r.Problems {
			named = named || (p.Check == health.CheckNodeDown && p.Node == victim.Addr)
		}
		if !named {
			t.Fatalf("no node_down problem for %s: %s", victim.Addr, last.stdout)
		}
		text := zp("checkup")
		if text.code != ExitUnhealthy || !strings.Contains(text.stdout, victim.Addr) || !strings.Contains(text.stderr, "cluster unhealthy") {
			t.Fatalf("text checkup: exit %d\n%s\n%s", text.code, text.stdout, text.stderr)
		}
	})
}

// topInTmux starts `zpctl top`, waits until the nodes and the table
// show, opens the partitions view, kills victim and waits for the epoch
// log to show it DOWN, quits with q and checks zpctl exited 0.
func topInTmux(t *testing.T, meta string, nodes []string, victim string, kill func()) {
	tm, waitFor := startTop(t, meta, "top")
	waitFor("overview", append([]string{"HEALTHY", "NODES", "orders", "Leader"}, nodes...)...)
	// Keys sent in one burst each count: two rows down, then shrink
	// opens its dialog for the third node (the view lists them sorted).
	sorted := slices.Sorted(slices.Values(nodes))
	tm("send-keys", "-t", "top", "2")
	waitFor("nodes view", "ZONE/RACK", "HEALTH")
	tm("send-keys", "-t", "top", "j", "j", "s")
	waitFor("shrink dialog", "Shrink: move every replica off "+sorted[2])
	tm("send-keys", "-t", "top", "n")
	waitFor("declined", "cancelled")
	tm("send-keys", "-t", "top", "4")
	waitFor("partitions view", "orders  8 partitions × 3 replicas", "MASTER (TERM,LSN)")
	kill()
	tm("send-keys", "-t", "top", "6")
	waitFor("epoch log", "node "+victim+" UP → DOWN")
	tm("send-keys", "-t", "top", "q")
	waitFor("quit", "zpctl exited 0")
}

// startTop starts `zpctl top` in a detached tmux session of 100x30 named
// session, on a tmux server of the test's own. It returns a function
// running tmux commands and one waiting until the screen shows every
// string (failing the test after 15s with the screen).
func startTop(t *testing.T, meta, session string) (tm func(args ...string) string, waitFor func(what string, want ...string)) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed")
	}
	bin := zpctlBinary(t)
	socket := fmt.Sprintf("zpctl-e2e-%d-%s", os.Getpid(), session)
	tm = func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, tmux, append([]string{"-L", socket}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { exec.Command(tmux, "-L", socket, "kill-server").Run() })
	// The shell line after zpctl shows its exit code once the TUI has
	// left the alternate screen; sleep keeps the pane open to read it.
	script := fmt.Sprintf("%s --meta %s top --interval 200ms; echo zpctl exited $?; sleep 60", bin, meta)
	tm("new-session", "-d", "-s", session, "-x", "100", "-y", "30", "sh", "-c", script)

	waitFor = func(what string, want ...string) {
		t.Helper()
		testcluster.Poll(t, 15*time.Second, func() error {
			screen := tm("capture-pane", "-p", "-t", session)
			for _, w := range want {
				if !strings.Contains(screen, w) {
					return fmt.Errorf("%s: %q not on screen:\n%s", what, w, screen)
				}
			}
			return nil
		})
	}
	return tm, waitFor
}

// zpctlBinary is $ZP_BIN_DIR/zpctl when there is one (make test builds
// it), else zpctl built into a temporary directory.
func zpctlBinary(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv(testcluster.BinDirEnv); dir != "" {
		if p := filepath.Join(dir, "zpctl"); fileExists(p) {
			return p
		}
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	out := filepath.Join(t.TempDir(), "zpctl")
	cmd := exec.Command("go", "build", "-o", out, "./zpctl")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./zpctl: %v\n%s", err, b)
	}
	return out
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// TestRealClusterQuotaAndSlowlog sets a quota with zpctl on real servers
// and reads it back with table describe; a load over it is refused with
// QUOTA_EXCEEDED, which stats qps counts; and slowlog reads the entries of
// nodes that log every request (--slowlog-threshold 1us).
func TestRealClusterQuotaAndSlowlog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster; skipped with -short")
	}
	c := testcluster.Start(t, testcluster.Options{Metas: 1, Nodes: 2, NodeArgs: []string{"--slowlog-threshold", "1us"}})
	meta := strings.Join(c.MetaAddrs(), ",")
	zp := func(args ...string) result {
		return run(t, invocation{args: append([]string{"--meta", meta, "--timeout", "10s"}, args...)})
	}
	if r := zp("table", "create", "q", "--partitions", "4", "--replicas", "2", "--ops", "1000", "--wait"); r.code != 0 || !strings.Contains(r.stdout, "quota:              1000 ops/s\n") {
		t.Fatalf("create: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := zp("table", "quota", "q", "--ops", "20"); r.code != 0 {
		t.Fatalf("quota --ops: %d %s", r.code, r.stderr)
	}
	r := zp("table", "quota", "q", "--bytes", "65536", "-o", "json")
	var set quotaJSON
	if err := json.Unmarshal([]byte(r.stdout), &set); err != nil || r.code != 0 || set.Quota != (client.Quota{OpsPerSec: 20, BytesPerSec: 65536}) {
		t.Fatalf("quota --bytes: exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	var d describeJSON
	r = zp("table", "describe", "q", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || r.code != 0 {
		t.Fatalf("describe: exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	if d.Quota != set.Quota || d.Epoch < set.Epoch {
		t.Fatalf("describe: quota %+v at epoch %d, want %+v at %d or later", d.Quota, d.Epoch, set.Quota, set.Epoch)
	}

	// 20 ops/s over 2 nodes: a tight loop meets QUOTA_EXCEEDED as soon as
	// the nodes have the new quota (a NOTIFY or PING away).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	testcluster.Poll(t, 15*time.Second, func() error {
		for i := range 200 {
			if err := cli.Set(ctx, "q", fmt.Appendf(nil, "k%d", i), []byte("v"), 0); errors.Is(err, status.ErrQuotaExceeded) {
				return nil
			}
		}
		return errors.New("200 SETs, none refused")
	})
	// zpctl exits 5 on QUOTA_EXCEEDED (the other node's bucket may still
	// hold a token or two: keep going until one is refused).
	refusedByZpctl := false
	for i := 0; i < 100 && !refusedByZpctl; i++ {
		r := zp("set", "q", fmt.Sprintf("zpctl-%d", i), "v")
		switch {
		case r.code == ExitInvalid && strings.Contains(r.stderr, "QUOTA_EXCEEDED"):
			refusedByZpctl = true
		case r.code != ExitOK:
			t.Fatalf("set over the quota: exit %d, %s", r.code, r.stderr)
		}
	}
	if !refusedByZpctl {
		t.Error("100 zpctl sets at 20 ops/s, none refused")
	}
	var qps statsJSONDoc
	r = zp("stats", "qps", "q", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &qps); err != nil || r.code != 0 {
		t.Fatalf("stats qps: exit %d, %v: %s", r.code, err, r.stderr)
	}
	refused := uint64(0)
	for _, n := range qps.Nodes {
		for _, st := range n.Stats {
			refused += st.QuotaExceeded
		}
	}
	if refused == 0 {
		t.Fatalf("stats qps counts no QUOTA_EXCEEDED: %s", r.stdout)
	}

	// Every request took more than 1µs: the SETs are in the slow log.
	var sl slowlogJSON
	r = zp("slowlog", "--table", "q", "--limit", "0", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &sl); err != nil || r.code != 0 {
		t.Fatalf("slowlog: exit %d, %v: %s", r.code, err, r.stderr)
	}
	codes := map[string]int{}
	for i, e := range sl.Entries {
		if e.Table != "q" || e.DurationUs <= 0 || (i > 0 && e.TimeMs > sl.Entries[i-1].TimeMs) {
			t.Fatalf("entry %d: %+v", i, e)
		}
		if e.Command == "set" {
			codes[e.Code]++
		}
	}
	if len(sl.Nodes) != 2 || codes["OK"] == 0 || codes["QUOTA_EXCEEDED"] == 0 {
		t.Fatalf("slowlog of %d nodes, set codes %v", len(sl.Nodes), codes)
	}
	r = zp("slowlog", c.Nodes[0].Addr, "--limit", "3")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); r.code != 0 || len(lines) != 6 || !strings.HasPrefix(lines[0], "TIME ") ||
		!strings.Contains(lines[1], c.Nodes[0].Addr) {
		t.Fatalf("slowlog of one node: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("%d requests refused; slow log of q: %d entries, SET codes %v", refused, len(sl.Entries), codes)
}
