package engine

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestPutGetDelete(t *testing.T) {
	d := newTestDB(t)
	const now = 1000
	if got := d.mustGet("k", now); got != "<nil>" {
		t.Fatalf("Get on a new DB = %q", got)
	}
	d.apply(put("k", "v1", 0), put("{t}a", "ta", 0), put("empty", "", 0))
	if got := d.mustGet("k", now); got != "v1" {
		t.Fatalf("Get(k) = %q, want v1", got)
	}
	v, exp, err := d.Get([]byte("empty"), now)
	if err != nil || v == nil || len(v) != 0 || exp != 0 {
		t.Fatalf("Get(empty) = %q (nil %v), %d, %v; want a non-nil empty value", v, v == nil, exp, err)
	}
	d.apply(put("k", "v2", 0))
	if got := d.mustGet("k", now); got != "v2" {
		t.Fatalf("Get(k) after overwrite = %q, want v2", got)
	}
	d.apply(del("k"), del("never-existed"))
	if got := d.mustGet("k", now); got != "<nil>" {
		t.Fatalf("Get(k) after delete = %q", got)
	}
	if got := d.mustGet("{t}a", now); got != "ta" {
		t.Fatalf("Get({t}a) = %q", got)
	}

	// The caller owns returned values.
	v, _, _ = d.Get([]byte("{t}a"), now)
	v[0] = 'X'
	if got := d.mustGet("{t}a", now); got != "ta" {
		t.Fatalf("modifying a returned value changed the DB: %q", got)
	}

	for _, bad := range [][]byte{nil, {}, make([]byte, 64<<10+1)} {
		if _, _, err := d.Get(bad, now); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Get(%d-byte key) = %v, want ErrInvalidArgument", len(bad), err)
		}
	}
}

func TestTTL(t *testing.T) {
	d := newTestDB(t)
	d.apply(
		put("forever", "a", 0),
		put("soon", "b", 1000),
		put("later", "c", 5000),
		put("past", "d", 1), // replayed records may carry expiries long gone
	)
	tests := []struct {
		key     string
		now     int64
		want    string
		wantExp int64
	}{
		{"forever", 1 << 50, "a", 0},
		{"soon", 999, "b", 1000},
		{"soon", 1000, "<nil>", 0},
		{"soon", 1001, "<nil>", 0},
		{"later", 1000, "c", 5000},
		{"later", 5000, "<nil>", 0},
		{"past", 2, "<nil>", 0},
		{"past", 0, "d", 1},
	}
	for _, tt := range tests {
		v, exp, err := d.Get([]byte(tt.key), tt.now)
		got := string(v)
		if errors.Is(err, ErrNotFound) {
			got = "<nil>"
		} else if err != nil {
			t.Fatal(err)
		}
		if got != tt.want || exp != tt.wantExp {
			t.Errorf("Get(%q, now=%d) = %q, exp %d; want %q, exp %d", tt.key, tt.now, got, exp, tt.want, tt.wantExp)
		}
		isExp, err := d.Expired([]byte(tt.key), tt.now)
		if err != nil || isExp != (tt.want == "<nil>") {
			t.Errorf("Expired(%q, %d) = %v, %v", tt.key, tt.now, isExp, err)
		}
	}
	if isExp, err := d.Expired([]byte("absent"), 0); err != nil || isExp {
		t.Errorf("Expired(absent) = %v, %v; want false", isExp, err)
	}

	// Rewriting without a TTL clears it.
	d.apply(put("soon", "b2", 0))
	if got := d.mustGet("soon", 1<<50); got != "b2" {
		t.Fatalf("Get(soon) after rewrite = %q", got)
	}
}

func TestApplyAtomicAndOrdered(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	s := newShared(t)
	d := openTestDB(t, dir, s)
	if term, lsn := d.Applied(); term != 0 || lsn != 0 {
		t.Fatalf("Applied() on a new DB = (%d, %d)", term, lsn)
	}
	d.apply(put("a", "1", 0), put("b", "1", 0))
	d.term = 3
	d.apply(put("a", "2", 0))

	tests := []struct {
		name      string
		lsn, term uint64
		rec       *zppb.WriteRecord
		err       error
	}{
		{"bad key in the middle", 3, 3, &zppb.WriteRecord{Mutations: []*zppb.Mutation{
			put("a", "3", 0), put("", "x", 0), put("b", "3", 0)}}, ErrInvalidArgument},
		{"negative expiry", 3, 3, &zppb.WriteRecord{Mutations: []*zppb.Mutation{
			put("a", "3", 0), put("b", "3", -5)}}, ErrInvalidArgument},
		{"unknown kind", 3, 3, &zppb.WriteRecord{Mutations: []*zppb.Mutation{
			put("a", "3", 0), {Kind: 7, Key: []byte("b")}}}, ErrInvalidArgument},
		{"repeated lsn", 2, 3, &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("a", "3", 0)}}, ErrOutOfOrder},
		{"older lsn", 1, 3, &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("a", "3", 0)}}, ErrOutOfOrder},
		{"term goes back", 3, 2, &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("a", "3", 0)}}, ErrOutOfOrder},
	}
	for _, tt := range tests {
		if err := d.Apply(tt.lsn, tt.term, tt.rec); !errors.Is(err, tt.err) {
			t.Fatalf("%s: Apply = %v, want %v", tt.name, err, tt.err)
		}
		// Nothing of a rejected record is visible.
		if a, b := d.mustGet("a", 0), d.mustGet("b", 0); a != "2" || b != "1" {
			t.Fatalf("%s: a=%q b=%q after a rejected record", tt.name, a, b)
		}
		if term, lsn := d.Applied(); term != 3 || lsn != 2 {
			t.Fatalf("%s: Applied() = (%d, %d), want (3, 2)", tt.name, term, lsn)
		}
	}

	// Gaps are allowed (records the node does not apply), and so are empty
	// records, which only move the position.
	if err := d.Apply(10, 4, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(11, 4, &zppb.WriteRecord{Mutations: []*zppb.Mutation{del("b"), put("c", "x", 0)}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d = openTestDB(t, dir, s)
	if term, lsn := d.Applied(); term != 4 || lsn != 11 {
		t.Fatalf("Applied() after reopen = (%d, %d), want (4, 11)", term, lsn)
	}
	for key, want := range map[string]string{"a": "2", "b": "<nil>", "c": "x"} {
		if got := d.mustGet(key, 0); got != want {
			t.Errorf("Get(%q) after reopen = %q, want %q", key, got, want)
		}
	}
}

func TestConcurrentApplyAndGet(t *testing.T) {
	d := newTestDB(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				key := string(rune('a'+w)) + string(rune('0'+i%10))
				mu.Lock()
				d.apply(put(key, "v", 0))
				mu.Unlock()
				if got := d.mustGet(key, 0); got != "v" {
					t.Errorf("Get(%q) = %q", key, got)
					return
				}
			}
		})
	}
	wg.Wait()
	if _, lsn := d.Applied(); lsn != 800 {
		t.Fatalf("Applied lsn = %d, want 800", lsn)
	}
}

func TestOpenTwiceAndClosed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	s := newShared(t)
	d := openTestDB(t, dir, s)
	if _, err := Open(dir, Options{Shared: s, Logger: testLogger(t)}); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open = %v, want ErrInUse", err)
	}
	if err := s.Close(); !errors.Is(err, ErrInUse) {
		t.Fatalf("Shared.Close with an open DB = %v, want ErrInUse", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	calls := map[string]func() error{
		"Get":         func() error { _, _, err := d.Get([]byte("k"), 0); return err },
		"Apply":       func() error { return d.Apply(1, 1, nil) },
		"Scan":        func() error { _, _, err := d.Scan(nil, nil, 10, 0); return err },
		"ExpiredKeys": func() error { _, _, err := d.ExpiredKeys(nil, 0, 10); return err },
		"Flush":       d.Flush,
		"Checkpoint":  func() error { _, _, err := d.Checkpoint(filepath.Join(t.TempDir(), "cp")); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	// The directory can be opened again.
	openTestDB(t, dir, s)
}

func TestShared(t *testing.T) {
	s := newShared(t)
	root := t.TempDir()
	var dbs []*testDB
	for i := range 3 {
		d := openTestDB(t, filepath.Join(root, string(rune('a'+i))), s)
		for range 100 {
			d.apply(put("key", string(make([]byte, 4096)), 0))
		}
		dbs = append(dbs, d)
	}
	st := s.Stats()
	if st.OpenDBs != 3 {
		t.Fatalf("OpenDBs = %d, want 3", st.OpenDBs)
	}
	if st.WriteBufferLimit != 64<<20 || st.WriteBufferUsage == 0 {
		t.Fatalf("write buffer manager not charged: %+v", st)
	}
	if st.BlockCacheCapacity != 16<<20 {
		t.Fatalf("BlockCacheCapacity = %d", st.BlockCacheCapacity)
	}
	for _, d := range dbs {
		if err := d.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := d.mustGet("key", 0); len(got) != 4096 {
			t.Fatalf("Get after flush: %d bytes", len(got))
		}
		ds, err := d.Stats()
		if err != nil || ds.SSTBytes == 0 {
			t.Fatalf("Stats() = %+v, %v", ds, err)
		}
	}
	if st := s.Stats(); st.BlockCacheUsage == 0 {
		t.Fatalf("block cache unused after reads: %+v", st)
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"tiny memtable", Options{MemtableSize: 1000}},
		{"few open files", Options{MaxOpenFiles: 3}},
		{"bad open files", Options{MaxOpenFiles: -2}},
	}
	for _, tt := range tests {
		if _, err := Open(filepath.Join(t.TempDir(), "db"), tt.opts); err == nil {
			t.Errorf("%s: Open succeeded", tt.name)
		}
	}
	if _, err := NewShared(SharedOptions{BackgroundJobs: -1}); err == nil {
		t.Error("NewShared with negative BackgroundJobs succeeded")
	}
	// No Shared at all works too.
	d, err := Open(filepath.Join(t.TempDir(), "db"), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(1, 1, &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("k", "v", 0)}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDisableWALKeepsDataAcrossClose checks that a DB without a WAL flushes
// its memtable on Close, so a clean stop loses nothing.
func TestDisableWALKeepsDataAcrossClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	s := newShared(t)
	d, err := Open(dir, Options{Shared: s, Logger: testLogger(t), DisableWAL: true})
	if err != nil {
		t.Fatal(err)
	}
	rec := &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("k", "v", 0)}}
	if err := d.Apply(1, 1, rec); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = Open(dir, Options{Shared: s, Logger: testLogger(t), DisableWAL: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if v, _, err := d.Get([]byte("k"), 0); err != nil || string(v) != "v" {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
	if _, lsn := d.Applied(); lsn != 1 {
		t.Fatalf("applied lsn %d after reopen, want 1", lsn)
	}
}

func TestApplyBatch(t *testing.T) {
	d := newTestDB(t)
	recs := []Record{
		{LSN: 1, Term: 1, Rec: &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("a", "1", 0)}}},
		{LSN: 2, Term: 1, Rec: &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("a", "2", 0), put("b", "3", 0)}}},
		{LSN: 3, Term: 2, Rec: &zppb.WriteRecord{Mutations: []*zppb.Mutation{{Kind: zppb.Mutation_DELETE, Key: []byte("b")}}}},
	}
	if err := d.ApplyBatch(recs); err != nil {
		t.Fatal(err)
	}
	if term, lsn := d.Applied(); term != 2 || lsn != 3 {
		t.Fatalf("applied (%d, %d), want (2, 3)", term, lsn)
	}
	if v, _, err := d.Get([]byte("a"), 0); err != nil || string(v) != "2" {
		t.Fatalf("a = %q, %v; the later record must win", v, err)
	}
	if _, _, err := d.Get([]byte("b"), 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b: %v, want deleted by lsn 3", err)
	}

	// A batch out of order, or with one bad mutation, applies nothing.
	bad := [][]Record{
		{{LSN: 5, Term: 2, Rec: &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("c", "1", 0)}}}, {LSN: 4, Term: 2, Rec: &zppb.WriteRecord{}}},
		{{LSN: 4, Term: 2, Rec: &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("c", "1", 0)}}}, {LSN: 5, Term: 1, Rec: &zppb.WriteRecord{}}},
		{{LSN: 4, Term: 2, Rec: &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("c", "1", 0)}}}, {LSN: 5, Term: 2, Rec: &zppb.WriteRecord{Mutations: []*zppb.Mutation{{Key: nil}}}}},
		{{LSN: 3, Term: 2, Rec: &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("c", "1", 0)}}}},
	}
	for i, b := range bad {
		if err := d.ApplyBatch(b); err == nil {
			t.Errorf("bad batch %d applied", i)
		}
		if _, _, err := d.Get([]byte("c"), 0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("bad batch %d wrote c", i)
		}
	}
}

// TestPersistedAppliedSkipsMemtable checks that without a WAL the persisted
// position trails the applied one until a flush.
func TestPersistedAppliedSkipsMemtable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	d, err := Open(dir, Options{Shared: newShared(t), Logger: testLogger(t), DisableWAL: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for lsn := uint64(1); lsn <= 3; lsn++ {
		if err := d.Apply(lsn, 1, &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("k", "v", 0)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, lsn, err := d.PersistedApplied(); err != nil || lsn != 0 {
		t.Fatalf("persisted lsn before flush %d, %v; want 0", lsn, err)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, lsn, err := d.PersistedApplied(); err != nil || lsn != 3 {
		t.Fatalf("persisted lsn after flush %d, %v; want 3", lsn, err)
	}
}
