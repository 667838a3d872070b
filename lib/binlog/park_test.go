package binlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestParkClosesTheActiveSegment: a parked log holds no descriptor with
// NoLock, syncs what it had, takes appends again (rolling segments, under
// every sync policy), truncates, and reads back every record, then and
// after a reopen.
func TestParkClosesTheActiveSegment(t *testing.T) {
	for _, sync := range []SyncPolicy{SyncNone, SyncInterval, SyncAlways} {
		t.Run(sync.String(), func(t *testing.T) {
			dir := t.TempDir()
			opts := smallOpts(t)
			opts.Sync, opts.NoLock = sync, true
			l := openLog(t, dir, opts)
			appendRange(t, l, 1, 20)
			if testcluster.OpenFDs(t, 0, dir) == 0 {
				t.Fatal("an open log holds no descriptor: the check below proves nothing")
			}
			if err := l.Park(); err != nil {
				t.Fatal(err)
			}
			if n := testcluster.OpenFDs(t, 0, dir); n != 0 {
				t.Errorf("a parked log holds %d descriptors, want 0", n)
			}
			if d := l.Durable(); d != 20 {
				t.Errorf("durable %d after Park, want 20", d)
			}
			if err := l.Park(); err != nil { // parking twice is fine
				t.Fatal(err)
			}
			appendRange(t, l, 21, 40) // several segments' worth
			if err := l.Park(); err != nil {
				t.Fatal(err)
			}
			if err := l.TruncateAfter(35); err != nil {
				t.Fatal(err)
			}
			appendRange(t, l, 36, 38)
			checkRecords(t, readAll(t, l, 1), 1, 38)
			if err := l.Park(); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openLog(t, dir, opts)
			checkLast(t, l, termFor(38), 38)
			checkRecords(t, readAll(t, l, 1), 1, 38)
		})
	}
}

// TestNoLockLeavesNoLockFile: NoLock takes no lock (the caller holds one),
// and without it two Logs cannot share a directory.
func TestNoLockLeavesNoLockFile(t *testing.T) {
	dir := t.TempDir()
	opts := smallOpts(t)
	opts.NoLock = true
	openLog(t, dir, opts)
	if _, err := os.Stat(filepath.Join(dir, "LOCK")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LOCK file with NoLock: %v", err)
	}
	dir2 := t.TempDir()
	openLog(t, dir2, smallOpts(t))
	if _, err := Open(dir2, smallOpts(t)); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open of a locked directory = %v, want ErrLocked", err)
	}
}
