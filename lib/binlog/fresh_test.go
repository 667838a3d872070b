package binlog

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// countDirSyncs counts syncDir's calls for the rest of the test.
func countDirSyncs(t *testing.T) *int {
	t.Helper()
	n := new(int)
	orig := syncDir
	syncDir = func(dir string) error {
		*n++
		return orig(dir)
	}
	t.Cleanup(func() { syncDir = orig })
	return n
}

// TestFreshLogSyncsWithItsFirstRecord: a new log is created without a
// sync (no file sync, no directory sync) and parks without a synced mark;
// the sync that makes its first record durable syncs the directory too,
// once, after a park and a reopen as well, and the mark follows.
func TestFreshLogSyncsWithItsFirstRecord(t *testing.T) {
	for _, reopen := range []bool{false, true} {
		t.Run(map[bool]string{false: "open", true: "parked and reopened"}[reopen], func(t *testing.T) {
			dirSyncs := countDirSyncs(t)
			dir := t.TempDir()
			opts := Options{Sync: SyncAlways, Logger: testLogger(t)}
			l := openLog(t, dir, opts)
			if s := l.Stats().Syncs; s != 0 || *dirSyncs != 0 {
				t.Fatalf("creating a log made %d syncs and %d directory syncs, want none", s, *dirSyncs)
			}
			if err := l.Park(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, syncedMarkFile)); !os.IsNotExist(err) {
				t.Fatalf("a fresh log parked with a synced mark (%v): its segment may not be on disk", err)
			}
			if reopen {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				l = openLog(t, dir, opts)
				if s := l.Stats().Syncs; s != 0 || *dirSyncs != 0 {
					t.Fatalf("reopening a fresh log made %d syncs and %d directory syncs, want none", s, *dirSyncs)
				}
			}
			ctx := context.Background()
			for lsn := uint64(1); lsn <= 3; lsn++ {
				if err := l.Append(Record{Term: 1, LSN: lsn, Payload: []byte("v")}); err != nil {
					t.Fatal(err)
				}
				if err := l.WaitDurable(ctx, lsn); err != nil {
					t.Fatal(err)
				}
				if *dirSyncs != 1 {
					t.Fatalf("after record %d is durable: %d directory syncs, want 1", lsn, *dirSyncs)
				}
			}
			if err := l.Park(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, syncedMarkFile)); err != nil {
				t.Fatalf("no synced mark after parking a synced log: %v", err)
			}
		})
	}
}

// TestFreshLogWithUnsyncedRecordsSyncsItsDirectory: a crash after records
// went to a new log's segment but before any sync leaves them in the page
// cache; Open claims them durable only after syncing the file and the
// directory that names it.
func TestFreshLogWithUnsyncedRecordsSyncsItsDirectory(t *testing.T) {
	dirSyncs := countDirSyncs(t)
	dir := t.TempDir()
	opts := Options{Sync: SyncNone, NoLock: true, Logger: testLogger(t)}
	appendRange(t, openLog(t, dir, opts), 1, 3) // left open: a crash
	l := openLog(t, dir, opts)
	if s := l.Stats().Syncs; s != 1 || *dirSyncs != 1 {
		t.Fatalf("Open made %d syncs and %d directory syncs, want 1 and 1", s, *dirSyncs)
	}
	checkLast(t, l, termFor(3), 3)
	if d := l.Durable(); d != 3 {
		t.Fatalf("durable %d, want 3", d)
	}
}

// TestTornFirstSegment: what a crash can leave of a new log's unsynced
// first segment (nothing but a name, part of the header, zeros) opens as
// an empty log that takes records; a first segment with a valid header
// and a torn record is repaired as before, not discarded.
func TestTornFirstSegment(t *testing.T) {
	header := segmentHeader{first: 1}.encode()
	tests := []struct {
		name     string
		content  []byte
		wantLast uint64
	}{
		{"empty file", nil, 0},
		{"part of the header", header[:10], 0},
		{"zeros", make([]byte, segmentHeaderSize), 0},
		{"header only", header, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, segmentName(1)), tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			l := openLog(t, dir, Options{Sync: SyncAlways, Logger: testLogger(t)})
			checkLast(t, l, 0, 0)
			appendRange(t, l, 1, 2)
			if err := l.WaitDurable(context.Background(), 2); err != nil {
				t.Fatal(err)
			}
			checkRecords(t, readAll(t, l, 1), 1, 2)
		})
	}

	t.Run("a torn record after a valid header", func(t *testing.T) {
		dir := t.TempDir()
		opts := Options{Sync: SyncNone, NoLock: true, Logger: testLogger(t)}
		appendRange(t, openLog(t, dir, opts), 1, 3)
		appendBytes(t, filepath.Join(dir, segmentName(1)), []byte("torn"))
		l := openLog(t, dir, opts)
		checkLast(t, l, termFor(3), 3)
	})
}
