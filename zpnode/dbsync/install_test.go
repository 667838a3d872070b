package dbsync

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// makeDB creates a closed DB in dir whose key "which" says name, at lsn.
func makeDB(t *testing.T, s *engine.Shared, dir, name string, lsn uint64) {
	t.Helper()
	db, err := engine.Open(dir, engine.Options{Shared: s, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	rec := &zppb.WriteRecord{Mutations: []*zppb.Mutation{{Kind: zppb.Mutation_PUT, Key: []byte("which"), Value: []byte(name)}}}
	if err := db.Apply(lsn, 1, rec); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRecover puts a replica directory in each state a crash can leave
// Install (and a few more), runs Recover and checks that exactly one good
// DB is left, the one Install was installing whenever that is complete.
func TestRecover(t *testing.T) {
	s := newShared(t)
	protos := t.TempDir()
	oldDB := filepath.Join(protos, "old")
	newDB := filepath.Join(protos, "new")
	makeDB(t, s, oldDB, "old", 5)
	makeDB(t, s, newDB, "new", 9)

	// Layout pieces, applied in order.
	type piece int
	const (
		dbOld          piece = iota // db/ holds the old DB
		dbNew                       // db/ holds the new DB (with its marker: after Install step 2)
		dbNewNoMarker               // db/ holds the new DB, marker moved out (after step 4)
		installed                   // sync.installed (after step 4)
		oldOld                      // db.old/ holds the old DB
		oldPartial                  // db.old/ is half removed (during step 5)
		stagingDone                 // sync.tmp/ holds the new DB and COMPLETE
		stagingPartial              // sync.tmp/ holds part of the new DB, no COMPLETE
	)
	build := func(t *testing.T, dir string, pieces []piece) {
		for _, p := range pieces {
			switch p {
			case dbOld:
				copyDir(t, oldDB, filepath.Join(dir, DBDir))
			case dbNew, dbNewNoMarker:
				copyDir(t, newDB, filepath.Join(dir, DBDir))
				if p == dbNew {
					if err := writeComplete(filepath.Join(dir, DBDir), 1, 9); err != nil {
						t.Fatal(err)
					}
				}
			case installed:
				if err := writeComplete(dir, 1, 9); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(filepath.Join(dir, CompleteFile), filepath.Join(dir, InstalledFile)); err != nil {
					t.Fatal(err)
				}
			case oldOld, oldPartial:
				copyDir(t, oldDB, filepath.Join(dir, OldDBDir))
				if p == oldPartial {
					os.Remove(filepath.Join(dir, OldDBDir, "CURRENT"))
				}
			case stagingDone, stagingPartial:
				copyDir(t, newDB, filepath.Join(dir, StagingDir))
				if p == stagingDone {
					if err := writeComplete(filepath.Join(dir, StagingDir), 1, 9); err != nil {
						t.Fatal(err)
					}
				} else {
					os.Remove(filepath.Join(dir, StagingDir, "CURRENT"))
				}
			}
		}
	}

	for _, tc := range []struct {
		name        string
		layout      []piece
		want        string // the DB left in db/, "" for none
		wantStaging bool   // sync.tmp/ kept
		wantPending bool   // PendingInstall reports the new DB's (1, 9)
	}{
		{"install not started", []piece{dbOld, stagingDone}, "old", true, false},
		{"after rename db to db.old", []piece{oldOld, stagingDone}, "new", false, true},
		{"after rename sync.tmp to db", []piece{dbNew, oldOld}, "new", false, true},
		{"after moving the marker", []piece{dbNewNoMarker, installed, oldOld}, "new", false, true},
		{"while removing db.old", []piece{dbNewNoMarker, installed, oldPartial}, "new", false, true},
		{"installed", []piece{dbNewNoMarker, installed}, "new", false, true},
		{"installed and binlog reset", []piece{dbNewNoMarker}, "new", false, false},
		{"new replica", nil, "", false, false},
		{"new replica, sync complete", []piece{stagingDone}, "new", false, true},
		{"new replica, sync interrupted", []piece{stagingPartial}, "", true, false},
		{"db missing, only db.old", []piece{oldOld}, "old", false, false},
		{"db missing, db.old, sync interrupted", []piece{oldOld, stagingPartial}, "old", true, false},
		{"sync interrupted", []piece{dbOld, stagingPartial}, "old", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			build(t, dir, tc.layout)
			if err := Recover(dir); err != nil {
				t.Fatalf("Recover: %v", err)
			}
			for _, gone := range []string{OldDBDir, filepath.Join(DBDir, CompleteFile)} {
				if _, err := os.Stat(filepath.Join(dir, gone)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left after Recover: %v", gone, err)
				}
			}
			_, err := os.Stat(filepath.Join(dir, StagingDir))
			if got := err == nil; got != tc.wantStaging {
				t.Errorf("staging kept = %v, want %v", got, tc.wantStaging)
			}
			term, lsn, pending, err := PendingInstall(dir)
			if err != nil || pending != tc.wantPending || pending && (term != 1 || lsn != 9) {
				t.Errorf("PendingInstall = (%d, %d, %v, %v), want pending %v at (1, 9)", term, lsn, pending, err, tc.wantPending)
			}
			if tc.want == "" {
				if _, err := os.Stat(filepath.Join(dir, DBDir)); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("db/ after Recover: %v, want none", err)
				}
				return
			}
			db := openDB(t, filepath.Join(dir, DBDir), s)
			v, _, err := db.Get([]byte("which"), 0)
			if err != nil || string(v) != tc.want {
				t.Fatalf("db/ holds %q (%v), want %q", v, err, tc.want)
			}
			// Recover is idempotent.
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if err := Recover(dir); err != nil {
				t.Fatalf("second Recover: %v", err)
			}
		})
	}
}

// TestInstall covers Install's preconditions and a replica without a DB.
func TestInstall(t *testing.T) {
	s := newShared(t)
	protos := t.TempDir()
	oldDB := filepath.Join(protos, "old")
	newDB := filepath.Join(protos, "new")
	makeDB(t, s, oldDB, "old", 5)
	makeDB(t, s, newDB, "new", 9)

	t.Run("no staging", func(t *testing.T) {
		dir := t.TempDir()
		copyDir(t, oldDB, filepath.Join(dir, DBDir))
		before := snapshotDir(t, filepath.Join(dir, DBDir))
		if _, _, err := Install(dir); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("Install = %v, want ErrIncomplete", err)
		}
		sameDir(t, snapshotDir(t, filepath.Join(dir, DBDir)), before)
	})
	t.Run("staging not complete", func(t *testing.T) {
		dir := t.TempDir()
		copyDir(t, oldDB, filepath.Join(dir, DBDir))
		copyDir(t, newDB, filepath.Join(dir, StagingDir))
		if _, _, err := Install(dir); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("Install = %v, want ErrIncomplete", err)
		}
	})
	t.Run("bad marker", func(t *testing.T) {
		dir := t.TempDir()
		copyDir(t, newDB, filepath.Join(dir, StagingDir))
		if err := os.WriteFile(filepath.Join(dir, StagingDir, CompleteFile), []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Install(dir); err == nil || errors.Is(err, ErrIncomplete) {
			t.Fatalf("Install = %v, want a marker error", err)
		}
	})
	for _, tc := range []struct {
		name   string
		haveDB bool
	}{{"replace", true}, {"no db yet", false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.haveDB {
				copyDir(t, oldDB, filepath.Join(dir, DBDir))
			}
			copyDir(t, newDB, filepath.Join(dir, StagingDir))
			if err := writeComplete(filepath.Join(dir, StagingDir), 1, 9); err != nil {
				t.Fatal(err)
			}
			term, lsn, err := Install(dir)
			if err != nil || term != 1 || lsn != 9 {
				t.Fatalf("Install = (%d, %d, %v), want (1, 9)", term, lsn, err)
			}
			if pt, pl, ok, err := PendingInstall(dir); err != nil || !ok || pt != 1 || pl != 9 {
				t.Fatalf("PendingInstall after Install = (%d, %d, %v, %v), want (1, 9, true)", pt, pl, ok, err)
			}
			if err := FinishInstall(dir); err != nil {
				t.Fatal(err)
			}
			if _, _, ok, err := PendingInstall(dir); err != nil || ok {
				t.Fatalf("PendingInstall after FinishInstall = %v, %v", ok, err)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 || entries[0].Name() != DBDir {
				t.Fatalf("replica directory after Install: %v, want db only", entries)
			}
			db := openDB(t, filepath.Join(dir, DBDir), s)
			if v, _, err := db.Get([]byte("which"), 0); err != nil || string(v) != "new" {
				t.Fatalf("installed DB holds %q, %v", v, err)
			}
		})
	}
	t.Run("discard", func(t *testing.T) {
		dir := t.TempDir()
		copyDir(t, newDB, filepath.Join(dir, StagingDir))
		if err := Discard(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, StagingDir)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("staging after Discard: %v", err)
		}
	})
}
