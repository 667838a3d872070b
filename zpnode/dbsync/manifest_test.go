package dbsync

import (
	"context"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestManifestCache checks the manifest against the files, and that a
// second checkpoint reads only the files the first did not have: its table
// files are links to the same inodes.
func TestManifestCache(t *testing.T) {
	s := newShared(t)
	root := t.TempDir()
	db := openDB(t, filepath.Join(root, "db"), s)
	for i := range 3 {
		write(t, db, 1, i*1000, 1000, 100, 100, 1)
		flush(t, db)
	}
	// Settle the LSM: a background compaction between the checkpoints
	// would replace the table files.
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	cache := newSumCache(defaultCacheEntries)
	ctx := context.Background()

	cp1 := filepath.Join(root, "cp1")
	if _, _, err := db.Checkpoint(cp1); err != nil {
		t.Fatal(err)
	}
	files, st, err := buildManifest(ctx, cp1, cache)
	if err != nil {
		t.Fatal(err)
	}
	if st.cachedHits != 0 || st.hashed != st.bytes {
		t.Fatalf("first manifest: %+v, want everything read", st)
	}
	ssts := 0
	for i, f := range files {
		if i > 0 && files[i-1].Name >= f.Name {
			t.Fatalf("manifest not sorted: %q before %q", files[i-1].Name, f.Name)
		}
		b, err := os.ReadFile(filepath.Join(cp1, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(b)) != f.Size || crc32.Checksum(b, castagnoli) != f.Crc32C {
			t.Fatalf("%s: manifest says %d bytes crc %08x, file has %d crc %08x",
				f.Name, f.Size, f.Crc32C, len(b), crc32.Checksum(b, castagnoli))
		}
		if immutable(f.Name) {
			ssts++
		}
	}
	if ssts == 0 {
		t.Fatalf("no table files in the checkpoint")
	}

	write(t, db, 1, 3000, 1000, 100, 100, 1)
	flush(t, db)
	cp2 := filepath.Join(root, "cp2")
	if _, _, err := db.Checkpoint(cp2); err != nil {
		t.Fatal(err)
	}
	files2, st2, err := buildManifest(ctx, cp2, cache)
	if err != nil {
		t.Fatal(err)
	}
	if st2.cachedHits != ssts {
		t.Fatalf("second manifest: %d cached checksums, want the %d old table files", st2.cachedHits, ssts)
	}
	var newBytes uint64
	for _, f := range files2 {
		if old := find(files, f.Name); old == nil || !immutable(f.Name) {
			newBytes += f.Size
		} else if old.Crc32C != f.Crc32C || old.Size != f.Size {
			t.Fatalf("%s changed between checkpoints", f.Name)
		}
	}
	if st2.hashed != newBytes {
		t.Fatalf("second manifest read %d bytes, want %d (new and mutable files only)", st2.hashed, newBytes)
	}

	// A cancelled context abandons checksumming.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := buildManifest(cancelled, cp2, newSumCache(8)); !errors.Is(err, context.Canceled) {
		t.Fatalf("buildManifest with a cancelled context = %v", err)
	}
}

func find(files []*zppb.SyncFile, name string) *zppb.SyncFile {
	for _, f := range files {
		if f.Name == name {
			return f
		}
	}
	return nil
}

func TestCheckManifest(t *testing.T) {
	files := func(names ...string) []*zppb.SyncFile {
		var fs []*zppb.SyncFile
		for _, n := range names {
			fs = append(fs, &zppb.SyncFile{Name: n})
		}
		return fs
	}
	for _, tc := range []struct {
		name  string
		files []*zppb.SyncFile
		ok    bool
	}{
		{"checkpoint", files("CURRENT", "MANIFEST-000005", "OPTIONS-000007", "000004.log", "000009.sst"), true},
		{"subdirectory", files("CURRENT", "blobs/000010.blob"), true},
		{"no CURRENT", files("MANIFEST-000005"), false},
		{"parent", files("CURRENT", "../x"), false},
		{"absolute", files("CURRENT", "/x"), false},
		{"parent inside", files("CURRENT", "a/../../x"), false},
		{"unclean", files("CURRENT", "./x"), false},
		{"trailing slash", files("CURRENT", "x/"), false},
		{"backslash", files("CURRENT", `..\x`), false},
		{"empty", files("CURRENT", ""), false},
		{"duplicate", files("CURRENT", "a", "a"), false},
		{"file and directory", files("CURRENT", "a", "a/b"), false},
		{"marker", files("CURRENT", CompleteFile), false},
		{"part", files("CURRENT", "000009.sst.part"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkManifest(tc.files)
			if tc.ok && err != nil {
				t.Fatalf("checkManifest = %v, want ok", err)
			}
			if !tc.ok && !errors.Is(err, ErrBadManifest) {
				t.Fatalf("checkManifest = %v, want ErrBadManifest", err)
			}
		})
	}
}
