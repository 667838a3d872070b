package cmd

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/tui"
)

// The TUI's Slowlog view reads the slow logs as `zpctl slowlog` does:
// merged newest first, keys as text or hex, a node that does not answer
// named in the error.
func TestTUISlowLog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of its own")
	}
	cl := ownCluster(t, inproc.Options{Nodes: 2, Taps: true})
	n0, n1 := cl.Nodes[0], cl.Nodes[1]
	cannedSlowlog(t, n0.Tap(),
		&zppb.SlowlogEntry{TimeMs: t0 + 1000, Command: "set", Table: "t", Key: []byte("user:1"), DurationUs: 15_000, Code: "OK"})
	cannedSlowlog(t, n1.Tap(),
		&zppb.SlowlogEntry{TimeMs: t0 + 2000, Command: "set", Table: "t", Key: []byte{0xff, 0x00, 0x01}, DurationUs: 250_000, Code: "NOT_ENOUGH_REPLICAS"})
	read := tuiSlowLog(newClient(t, cl), 2*time.Second)
	sl := read(testCtx(t), []string{n0.Addr, n1.Addr})
	if sl.Err != nil || sl.Nodes != 2 || len(sl.Entries) != 2 {
		t.Fatalf("%+v", sl)
	}
	if e := sl.Entries[0]; e.Node != n1.Addr || e.Key != "0xff0001" || e.Duration != 250*time.Millisecond || !e.Time.Equal(time.UnixMilli(t0+2000)) {
		t.Fatalf("newest entry %+v", e)
	}
	if e := sl.Entries[1]; e.Node != n0.Addr || e.Key != "user:1" || e.Command != "set" || e.Table != "t" || e.Code != "OK" {
		t.Fatalf("oldest entry %+v", e)
	}
	n1.Tap().Down()
	sl = read(testCtx(t), []string{n0.Addr, n1.Addr})
	if sl.Err == nil || !strings.Contains(sl.Err.Error(), n1.Addr) || len(sl.Entries) != 1 {
		t.Fatalf("with %s down: %+v", n1.Addr, sl)
	}
}

// The TUI's Log view reads a node's log as `zpctl node logs` does: oldest
// first, with what the node logged; a node that does not answer is named
// in the error.
func TestTUINodeLog(t *testing.T) {
	cl := sharedCluster(t)
	tb := addTable(t, cl, 1, 1)
	node := tb.Partitions[0].Master
	read := tuiNodeLog(newClient(t, cl), 2*time.Second)
	nl := read(testCtx(t), node)
	if nl.Err != nil || nl.Node != node || len(nl.Lines) == 0 || len(nl.Lines) > tuiNodeLogLines {
		t.Fatalf("%+v", nl)
	}
	if !slices.ContainsFunc(nl.Lines, func(l tui.LogLine) bool { return l.Message == "new topology" && l.Level == "INFO" && !l.Time.IsZero() }) {
		t.Fatalf("no new topology line: %+v", nl.Lines)
	}
	if nl = read(testCtx(t), "127.0.0.1:1"); nl.Err == nil || !strings.Contains(nl.Err.Error(), "127.0.0.1:1") {
		t.Fatalf("unreachable node: %+v", nl)
	}
}
