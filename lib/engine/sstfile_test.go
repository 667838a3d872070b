package engine

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/linxGnu/grocksdb"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// writeSST writes kvs (key, value pairs) in SortKey order with expiry exp.
func writeSST(t *testing.T, path string, exp int64, kvs ...string) {
	t.Helper()
	type kv struct{ k, v string }
	var list []kv
	for i := 0; i < len(kvs); i += 2 {
		list = append(list, kv{kvs[i], kvs[i+1]})
	}
	slices.SortFunc(list, func(a, b kv) int { return compareBytes(SortKey([]byte(a.k)), SortKey([]byte(b.k))) })
	w, err := CreateSST(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list {
		if err := w.Put([]byte(e.k), []byte(e.v), exp); err != nil {
			t.Fatalf("Put(%q): %v", e.k, err)
		}
	}
	if ok, err := w.Finish(); err != nil || !ok {
		t.Fatalf("Finish: %v %v", ok, err)
	}
}

func compareBytes(a, b []byte) int { return slices.Compare(a, b) }

// TestIngest: a record that ingests a table file applies at its place in
// the log: it overwrites writes before it, later writes overwrite it, the
// position moves to it, and the data survives a reopen.
func TestIngest(t *testing.T) {
	dir := t.TempDir()
	s := newShared(t)
	d := openTestDB(t, filepath.Join(dir, "db"), s)
	d.apply(put("before", "old", 0), put("after", "old", 0), put("{tag}x", "old", 0))

	sst := filepath.Join(dir, "load.sst")
	writeSST(t, sst, 0, "before", "file", "after", "file", "{tag}x", "file", "new", "file")
	expiring := filepath.Join(dir, "exp.sst")
	writeSST(t, expiring, 5000, "ttl", "v")

	staged, err := os.ReadFile(sst)
	if err != nil {
		t.Fatal(err)
	}
	// One batch: a write, the ingest, a write after it.
	d.lsn++
	recs := []Record{
		{LSN: d.lsn, Term: d.term, Rec: &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("new", "before-ingest", 0)}}},
		{LSN: d.lsn + 1, Term: d.term, Rec: &zppb.WriteRecord{Ingest: &zppb.IngestFile{Id: "a"}}, IngestPath: sst},
		{LSN: d.lsn + 2, Term: d.term, Rec: &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("after", "later", 0)}}},
		{LSN: d.lsn + 3, Term: d.term, Rec: &zppb.WriteRecord{Ingest: &zppb.IngestFile{Id: "b"}}, IngestPath: expiring},
	}
	d.lsn += 3
	if err := d.ApplyBatch(recs); err != nil {
		t.Fatalf("ApplyBatch: %v", err)
	}
	check := func(d *testDB) {
		t.Helper()
		for k, want := range map[string]string{"before": "file", "after": "later", "{tag}x": "file", "new": "file"} {
			if got := d.mustGet(k, 1); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if got := d.mustGet("ttl", 4999); got != "v" {
			t.Errorf("ttl before expiry = %q", got)
		}
		if got := d.mustGet("ttl", 5000); got != "<nil>" {
			t.Errorf("ttl at expiry = %q", got)
		}
		if _, lsn := d.Applied(); lsn != d.lsn {
			t.Errorf("applied lsn %d, want %d", lsn, d.lsn)
		}
	}
	check(d)
	// The staged file stays as it was, for slaves and replays.
	if after, err := os.ReadFile(sst); err != nil || !bytes.Equal(after, staged) {
		t.Errorf("the staged file changed or went: %v", err)
	}

	// An ingest at or below the applied position is refused, as Apply.
	err = d.Apply(d.lsn, d.term, &zppb.WriteRecord{Ingest: &zppb.IngestFile{Id: "c"}})
	if !errors.Is(err, ErrOutOfOrder) {
		t.Errorf("ingest at the applied lsn: %v, want ErrOutOfOrder", err)
	}
	// Without a file: refused, position unchanged.
	if err := d.Apply(d.lsn+1, d.term, &zppb.WriteRecord{Ingest: &zppb.IngestFile{Id: "c"}}); !errors.Is(err, ErrIngestFile) {
		t.Errorf("ingest without a file: %v, want ErrIngestFile", err)
	}
	if err := d.ApplyBatch([]Record{{LSN: d.lsn + 1, Term: d.term, Rec: &zppb.WriteRecord{Ingest: &zppb.IngestFile{Id: "d"}, Mutations: []*zppb.Mutation{put("x", "y", 0)}}, IngestPath: sst}}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ingest with mutations: %v, want ErrInvalidArgument", err)
	}
	check(d)

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2 := openTestDB(t, filepath.Join(dir, "db"), s)
	d2.lsn = d.lsn
	check(d2)
}

// TestSSTWriterChecks: keys out of order, repeated, empty or too long are
// refused; an empty writer makes no file.
func TestSSTWriterChecks(t *testing.T) {
	dir := t.TempDir()
	w, err := CreateSST(filepath.Join(dir, "a.sst"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	a, b := []byte("a"), []byte("b")
	if compareBytes(SortKey(a), SortKey(b)) > 0 {
		a, b = b, a
	}
	if err := w.Put(b, nil, 0); err != nil {
		t.Fatal(err)
	}
	for _, k := range [][]byte{a, b, nil, make([]byte, 64<<10+1)} {
		if err := w.Put(k, nil, 0); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Put(%.10q): %v, want ErrInvalidArgument", k, err)
		}
	}
	if err := w.Put([]byte("c"), nil, -1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("negative expiry: %v", err)
	}

	empty := filepath.Join(dir, "empty.sst")
	e, err := CreateSST(empty)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := e.Finish(); ok || err != nil {
		t.Errorf("empty Finish = %v, %v", ok, err)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("empty writer left a file: %v", err)
	}
}

// TestKeepFiles: the shim can tell RocksDB to hard-link an ingested file
// without writing to it (else every ingestion copies the file).
func TestKeepFiles(t *testing.T) {
	io := grocksdb.NewDefaultIngestExternalFileOptions()
	defer io.Destroy()
	io.SetAllowGlobalSeqNo(true)
	if !keepFiles(io) {
		t.Fatal("keepFiles failed: the layout of rocksdb_ingestexternalfileoptions_t changed?")
	}
}
