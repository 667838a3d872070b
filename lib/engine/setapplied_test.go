package engine

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestSetApplied: SetApplied moves the position to a lower term (what a
// restore needs), Apply then takes records of that term after it, and the
// position survives a flush and reopen (the DB has no WAL).
func TestSetApplied(t *testing.T) {
	s := newShared(t)
	dir := filepath.Join(t.TempDir(), "db")
	d, err := Open(dir, Options{Shared: s, Logger: testLogger(t), DisableWAL: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(7, 5, &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("a", "1", 0)}}); err != nil {
		t.Fatal(err)
	}
	// A record of a lower term is refused...
	if err := d.Apply(8, 2, &zppb.WriteRecord{}); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("Apply of a lower term: %v, want ErrOutOfOrder", err)
	}
	// ... until the position says that term.
	if err := d.SetApplied(2, 7); err != nil {
		t.Fatal(err)
	}
	if term, lsn := d.Applied(); term != 2 || lsn != 7 {
		t.Fatalf("Applied = (%d, %d), want (2, 7)", term, lsn)
	}
	if err := d.Apply(8, 2, &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("b", "2", 0)}}); err != nil {
		t.Fatalf("Apply after SetApplied: %v", err)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openTestDB(t, dir, s).DB
	if term, lsn := d.Applied(); term != 2 || lsn != 8 {
		t.Fatalf("after reopen Applied = (%d, %d), want (2, 8)", term, lsn)
	}
	if v, _, err := d.Get([]byte("a"), 0); err != nil || string(v) != "1" {
		t.Fatalf("a = %q, %v", v, err)
	}
}
