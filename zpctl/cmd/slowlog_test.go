package cmd

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

// t0 is when the canned slow requests below start, in Unix milliseconds.
const t0 = 1_790_000_000_000

// TestTableQuotaRetries: changing one limit reads the other and sets both
// at the epoch read; when the epoch moves in between, zpctl reads again
// and retries, unless --expected-epoch was given.
func TestTableQuotaRetries(t *testing.T) {
	cl := sharedCluster(t)
	tbl := addTable(t, cl, 2, 2).Name
	admin := leaderClient(t, cl)
	if _, err := admin.SetQuota(testCtx(t), tbl, client.Quota{BytesPerSec: 4096}, 0); err != nil {
		t.Fatal(err)
	}
	// zpctl asks the leader through a tap, which counts its requests and
	// lets the test act between its read and its write.
	tap := leaderTap(t, cl)
	meta := addrs{tap.Addr()}
	epoch := func() uint64 {
		topo, err := admin.Pull(testCtx(t), "")
		if err != nil {
			t.Fatal(err)
		}
		return topo.Epoch
	}
	quota := func() client.Quota {
		topo, err := admin.Pull(testCtx(t), tbl)
		if err != nil {
			t.Fatal(err)
		}
		return topo.Tables[0].Quota
	}
	var sets, bumps atomic.Int32
	tap.SetHook(func(req *zppb.Request) *zppb.Response {
		if req.GetSetQuota() != nil {
			if sets.Add(1) == 1 {
				// Something else changes the topology after zpctl read it.
				bumps.Add(1)
				if _, err := admin.CreateTable(testCtx(t), client.TableSpec{Name: tableName(t), Partitions: 1, Replicas: 1}); err != nil {
					t.Error(err)
				}
			}
		}
		return nil
	})
	r := zpctl(t, meta, "-o", "json", "table", "quota", tbl, "--ops", "300")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got quotaJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if now := epoch(); got.Quota.OpsPerSec != 300 || got.Quota.BytesPerSec != 4096 || got.Epoch != now || sets.Load() != 2 {
		t.Fatalf("got %+v at epoch %d after %d SET_QUOTA; cluster at %d", got.Quota, got.Epoch, sets.Load(), now)
	}
	if q := quota(); q.OpsPerSec != 300 || q.BytesPerSec != 4096 {
		t.Fatalf("topology quota %+v", q)
	}

	// With --expected-epoch the caller decided: a stale epoch is exit 6.
	sets.Store(0)
	r = zpctl(t, meta, "table", "quota", tbl, "--ops", "1", "--expected-epoch", strconv.FormatUint(epoch(), 10))
	if r.code != ExitConflict || sets.Load() != 1 {
		t.Fatalf("exit %d after %d SET_QUOTA: %s", r.code, sets.Load(), r.stderr)
	}
	// Both limits given: no read, no condition.
	tap.SetHook(nil)
	pulls := tap.Calls("pull")
	if r := zpctl(t, meta, "table", "quota", tbl, "--ops", "0", "--bytes", "0"); r.code != ExitOK || !strings.Contains(r.stdout, "ops/s:    unlimited") {
		t.Fatalf("exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if after := tap.Calls("pull"); after != pulls {
		t.Fatalf("%d PULLs for a quota with both limits", after-pulls)
	}
	if q := quota(); q != (client.Quota{}) {
		t.Fatalf("quota %+v after removing both limits", q)
	}
}

// TestSlowlog merges the slow logs of the UP nodes, newest first, names a
// node that does not answer (exit 4) and still prints the others'.
func TestSlowlog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of its own and waits for a node to be DOWN")
	}
	cl := ownCluster(t, inproc.Options{Nodes: 4, Taps: true,
		MetaConfig: func(_ int, cfg *metaserver.Config) { cfg.DownTimeout = time.Second }})
	for _, name := range []string{"t", "u"} {
		if r := zpctl(t, cl, "table", "create", name, "--partitions", "4", "--replicas", "2", "--wait"); r.code != ExitOK {
			t.Fatalf("create %s: exit %d: %s", name, r.code, r.stderr)
		}
	}
	n0, n1, n2, n3 := cl.Nodes[0], cl.Nodes[1], cl.Nodes[2], cl.Nodes[3]
	// The entries' times, durations and keys are the output's subject:
	// the nodes' taps answer INFO SLOWLOG with them, as a node that logged
	// them would (the table's entries only, newest first).
	cannedSlowlog(t, n0.Tap(),
		&zppb.SlowlogEntry{TimeMs: t0 + 1000, Command: "set", Table: "t", Key: []byte("user:1"), DurationUs: 15_000, Code: "OK"},
		&zppb.SlowlogEntry{TimeMs: t0 + 3000, Command: "get", Table: "t", Key: []byte("user:2"), DurationUs: 12_500, Code: "NOT_FOUND"},
	)
	cannedSlowlog(t, n1.Tap(),
		&zppb.SlowlogEntry{TimeMs: t0 + 2000, Command: "set", Table: "t", Key: []byte{0xff, 0x00, 0x01}, DurationUs: 250_000, Code: "NOT_ENOUGH_REPLICAS"},
		&zppb.SlowlogEntry{TimeMs: t0 + 4000, Command: "mget", Table: "u", DurationUs: 11_000, Code: "OK"},
	)
	cannedSlowlog(t, n3.Tap(), &zppb.SlowlogEntry{TimeMs: t0 + 5000, Command: "set", Table: "t", Key: []byte("never asked"), DurationUs: 1, Code: "OK"})
	// n2 is UP in the topology but does not answer; n3 is DOWN, so not
	// asked.
	n2.Tap().Down()
	if err := n3.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitNodes(testCtx(t), zppb.NodeState_DOWN, n3.Addr); err != nil {
		t.Fatal(err)
	}

	r := zpctl(t, cl, "-o", "json", "slowlog")
	if r.code != ExitUnavailable || !strings.Contains(r.stderr, n2.Addr) {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	var doc slowlogJSON
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	var order []int64
	for _, e := range doc.Entries {
		order = append(order, e.TimeMs-t0)
	}
	byAddr := map[string]slowlogNodeJSON{}
	for _, n := range doc.Nodes {
		byAddr[n.Addr] = n
	}
	if len(doc.Nodes) != 3 || byAddr[n2.Addr].Error == "" || byAddr[n0.Addr].Error != "" || byAddr[n0.Addr].Entries != 2 || byAddr[n1.Addr].Entries != 2 ||
		len(order) != 4 || order[0] != 4000 || order[1] != 3000 || order[2] != 2000 || order[3] != 1000 || doc.Truncated {
		t.Fatalf("nodes %+v, entries at %v, truncated %v", doc.Nodes, order, doc.Truncated)
	}
	if e := doc.Entries[2]; e.Node != n1.Addr || e.Key == nil || e.Key.Encoding != "base64" || e.Code != "NOT_ENOUGH_REPLICAS" || e.DurationUs != 250_000 {
		t.Fatalf("binary entry %+v", e)
	}
	if doc.Entries[0].Key != nil {
		t.Fatalf("mget entry has a key: %+v", doc.Entries[0].Key)
	}

	// One table, two nodes named, the newest two.
	r = zpctl(t, cl, "slowlog", n0.Addr, n1.Addr, "--table", "t", "--limit", "2")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "TIME ") || !strings.Contains(lines[1], "user:2") ||
		!strings.Contains(lines[2], "0xff0001") || !strings.Contains(lines[2], "250ms") || lines[4] != "newest 2 entries shown (--limit 0 for all)" {
		t.Fatalf("stdout:\n%s", r.stdout)
	}
}

func TestKeyText(t *testing.T) {
	cut := strings.Repeat("a", slowlogKeyBytes-1) + "é" // é is 2 bytes: the node kept its first
	tests := []struct {
		key  []byte
		want string
	}{
		{[]byte("user:1"), "user:1"},
		{[]byte("with space"), "with space"},
		{[]byte("tab\there"), "0x7461620968657265"},
		{[]byte{0xff}, "0xff"},
		{[]byte("日本"), "日本"},
		{[]byte(cut[:slowlogKeyBytes]), strings.Repeat("a", slowlogKeyBytes-1)},
	}
	for _, tt := range tests {
		if got := keyText(tt.key); got != tt.want {
			t.Errorf("keyText(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

// cannedSlowlog makes tap answer INFO SLOWLOG with entries.
func cannedSlowlog(t *testing.T, tap *inproc.Tap, entries ...*zppb.SlowlogEntry) {
	tap.SetHook(func(req *zppb.Request) *zppb.Response {
		info := req.GetInfo()
		if info == nil || info.GetSection() != zppb.InfoSection_INFO_SLOWLOG {
			return nil
		}
		resp, err := tap.Forward(testCtx(t), req)
		if err != nil {
			return nil
		}
		var out []*zppb.SlowlogEntry
		for _, e := range entries {
			if info.GetTable() == "" || e.GetTable() == info.GetTable() {
				out = append(out, e)
			}
		}
		slices.SortFunc(out, func(a, b *zppb.SlowlogEntry) int { return cmp.Compare(b.GetTimeMs(), a.GetTimeMs()) })
		resp.GetInfo().Slowlog = out
		return resp
	})
}

// When no node answers there is nothing to list: stdout stays empty
// rather than saying that no slow requests were logged.
func TestSlowlogNoAnswer(t *testing.T) {
	cl := sharedCluster(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	node := cl.Nodes[0].Addr
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string // the whole of stderr, one line
	}{
		{"nothing listening", []string{"slowlog", dead}, ExitUnavailable, "zpctl: dial tcp " + dead + ": connect: connection refused\n"},
		{"unknown table, one node", []string{"slowlog", "--table", "nosuch", node}, ExitNotFound, "zpctl: TABLE_NOT_FOUND: table \"nosuch\" not found\n"},
		{"unknown table, every node", []string{"slowlog", "--table", "nosuch"}, ExitNotFound,
			fmt.Sprintf("zpctl: %d of %d nodes failed; first: TABLE_NOT_FOUND: table \"nosuch\" not found\n", len(cl.Nodes), len(cl.Nodes))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, format := range []string{"table", "json"} {
				r := zpctl(t, cl, append([]string{"-o", format}, tt.args...)...)
				if r.code != tt.wantCode || r.stdout != "" {
					t.Fatalf("-o %s: exit %d, want %d; stdout %q, want none\nstderr: %s", format, r.code, tt.wantCode, r.stdout, r.stderr)
				}
				if format == "table" && r.stderr != tt.wantStderr {
					t.Fatalf("stderr %q, want %q", r.stderr, tt.wantStderr)
				}
			}
		})
	}
}
