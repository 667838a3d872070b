package replica

import (
	"log/slog"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/binlog"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestIdleReplicaCost opens many new replicas as a node does (binlogs
// without their own lock, masters) and checks what each costs idle: no
// descriptor, and under 100 KB of RSS (issue 16's bound). 2,000 here cost
// 6.2 KB of RSS, 2.9 KB of Go heap and one goroutine (the binlog's
// syncer) each.
func TestIdleReplicaCost(t *testing.T) {
	if testing.Short() {
		t.Skip("opens thousands of replicas")
	}
	n := 2000
	if raceEnabled {
		n = 300
	}
	shared := newShared(t)
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	runtime.GC()
	debug.FreeOSMemory()
	rss0, fds0 := testcluster.ResidentBytes(t, 0), testcluster.OpenFDs(t, 0, "")
	var heap0 runtime.MemStats
	runtime.ReadMemStats(&heap0)
	rs := make([]*Replica, n)
	for i := range rs {
		r, err := Open(Options{Dir: filepath.Join(dir, strconv.Itoa(i)), Table: "t", ID: uint32(i), Shared: shared,
			Binlog: binlog.Options{NoLock: true, Logger: logger}, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		r.SetRole(Assignment{Role: Master, Master: "self", Term: 1})
		rs[i] = r
	}
	runtime.GC()
	debug.FreeOSMemory()
	var heap1 runtime.MemStats
	runtime.ReadMemStats(&heap1)
	rss := float64(testcluster.ResidentBytes(t, 0)-rss0) / float64(n)
	heap := float64(heap1.HeapAlloc-heap0.HeapAlloc) / float64(n)
	fds := float64(testcluster.OpenFDs(t, 0, "")-fds0) / float64(n)
	t.Logf("%d idle replicas: %.1f KB RSS, %.1f KB Go heap, %.2f fds, %d goroutines each",
		n, rss/1000, heap/1000, fds, (runtime.NumGoroutine())/n)
	if fds > 0.01 {
		t.Errorf("%.2f descriptors per idle replica, want 0", fds)
	}
	if rss > 100_000 {
		t.Errorf("%.1f KB of RSS per idle replica, want under 100", rss/1000)
	}
	for _, r := range rs {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
