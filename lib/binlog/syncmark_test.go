package binlog

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOpenSyncsUnlessMarkedSynced: Open skips its fdatasync of the last
// segment only when Park or Close synced it at exactly the size it has, or
// it is a new log's segment without a record;
// after a crash with appends since, a repaired tail, a truncation that
// grew back to the marked size, or a damaged mark, it syncs. Every case
// reads back all of its records as durable.
func TestOpenSyncsUnlessMarkedSynced(t *testing.T) {
	tests := []struct {
		name  string
		leave func(t *testing.T, l *Log, dir string) uint64 // returns the last lsn
		sync  bool
	}{
		{"closed", func(t *testing.T, l *Log, _ string) uint64 {
			appendRange(t, l, 1, 10)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			return 10
		}, false},
		{"parked then crashed", func(t *testing.T, l *Log, _ string) uint64 {
			appendRange(t, l, 1, 10)
			park(t, l)
			return 10
		}, false},
		// A new log's segment holds no record: nothing to sync (fresh).
		{"never written, crashed", func(*testing.T, *Log, string) uint64 { return 0 }, false},
		{"never written, parked (without a sync), crashed", func(t *testing.T, l *Log, _ string) uint64 {
			if err := l.Park(); err != nil {
				t.Fatal(err)
			}
			return 0
		}, false},
		{"appended then crashed", func(t *testing.T, l *Log, _ string) uint64 {
			appendRange(t, l, 1, 10)
			return 10
		}, true},
		{"appended after a park, crashed", func(t *testing.T, l *Log, _ string) uint64 {
			appendRange(t, l, 1, 10)
			park(t, l)
			appendRange(t, l, 11, 12)
			return 12
		}, true},
		{"rolled after a park, crashed", func(t *testing.T, l *Log, _ string) uint64 {
			appendRange(t, l, 1, 10)
			park(t, l)
			appendRange(t, l, 11, 40) // several segments
			return 40
		}, true},
		{"truncated after a park and grown back to its size, crashed", func(t *testing.T, l *Log, _ string) uint64 {
			appendRange(t, l, 1, 10)
			park(t, l)
			if err := l.TruncateAfter(9); err != nil {
				t.Fatal(err)
			}
			appendRange(t, l, 10, 10)
			return 10
		}, true},
		{"torn tail after a close", func(t *testing.T, l *Log, dir string) uint64 {
			appendRange(t, l, 1, 10)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			files := segmentFiles(t, dir)
			appendBytes(t, files[len(files)-1], []byte("torn"))
			return 10
		}, true},
		{"damaged mark", func(t *testing.T, l *Log, dir string) uint64 {
			appendRange(t, l, 1, 10)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			flipByte(t, filepath.Join(dir, syncedMarkFile), 0)
			return 10
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := smallOpts(t)
			opts.NoLock = true // a crashed process's log stays open
			last := tt.leave(t, openLog(t, dir, opts), dir)
			l := openLog(t, dir, opts)
			if got := l.Stats().Syncs; (got == 1) != tt.sync || got > 1 {
				t.Errorf("Open made %d syncs, want %d", got, map[bool]int{false: 0, true: 1}[tt.sync])
			}
			if last > 0 {
				checkLast(t, l, termFor(last), last)
				checkRecords(t, readAll(t, l, 1), 1, last)
			}
			if d := l.Durable(); d != last {
				t.Errorf("durable %d after Open, want %d", d, last)
			}
		})
	}
}

func park(t *testing.T, l *Log) {
	t.Helper()
	if err := l.Park(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), syncedMarkFile)); err != nil {
		t.Fatalf("no synced mark after Park: %v", err)
	}
}
