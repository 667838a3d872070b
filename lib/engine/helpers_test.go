package engine

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// newShared returns a small Shared closed at the end of the test.
func newShared(t testing.TB) *Shared {
	t.Helper()
	s, err := NewShared(SharedOptions{BlockCacheSize: 16 << 20, WriteBufferSize: 64 << 20, BackgroundJobs: 2})
	if err != nil {
		t.Fatalf("NewShared: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Shared.Close: %v", err)
		}
	})
	return s
}

// testDB is a DB with a write helper that numbers records itself.
type testDB struct {
	*DB
	t    testing.TB
	lsn  uint64
	term uint64
}

func openTestDB(t testing.TB, dir string, s *Shared) *testDB {
	t.Helper()
	d, err := Open(dir, Options{Shared: s, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// Registered after newShared's cleanup, so it runs first.
	t.Cleanup(func() {
		if err := d.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	term, lsn := d.Applied()
	return &testDB{DB: d, t: t, lsn: lsn, term: max(term, 1)}
}

func newTestDB(t testing.TB) *testDB {
	return openTestDB(t, filepath.Join(t.TempDir(), "db"), newShared(t))
}

// apply applies one record of mutations at the next lsn.
func (d *testDB) apply(muts ...*zppb.Mutation) {
	d.t.Helper()
	d.lsn++
	if err := d.Apply(d.lsn, d.term, &zppb.WriteRecord{Mutations: muts}); err != nil {
		d.t.Fatalf("Apply(%d): %v", d.lsn, err)
	}
}

func put(key, value string, expireAtMs int64) *zppb.Mutation {
	return &zppb.Mutation{Kind: zppb.Mutation_PUT, Key: []byte(key), Value: []byte(value), ExpireAtMs: expireAtMs}
}

func del(key string) *zppb.Mutation {
	return &zppb.Mutation{Kind: zppb.Mutation_DELETE, Key: []byte(key)}
}

// mustGet returns the value of key at nowMs, or "<nil>" when not found.
func (d *testDB) mustGet(key string, nowMs int64) string {
	d.t.Helper()
	v, _, err := d.Get([]byte(key), nowMs)
	if errors.Is(err, ErrNotFound) {
		return "<nil>"
	}
	if err != nil {
		d.t.Fatalf("Get(%q): %v", key, err)
	}
	return string(v)
}

// rawDataKeys counts the data keys RocksDB holds, expired ones included.
func (d *testDB) rawDataKeys() int {
	d.t.Helper()
	it := d.db.NewIterator(d.ro)
	defer it.Close()
	n := 0
	for it.Seek([]byte{dataPrefix}); it.Valid() && it.Key().Data()[0] == dataPrefix; it.Next() {
		n++
	}
	if err := it.Err(); err != nil {
		d.t.Fatal(err)
	}
	return n
}
