package cmd

import (
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
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
