package replica

import (
	"context"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fetchConn answers a slave's BULK_FETCH from a master replica.
type fetchConn struct{ m *Replica }

func (c fetchConn) Call(_ context.Context, req *zppb.Request) (*zppb.Response, error) {
	f := req.GetBulkFetch()
	data, eof, err := c.m.ReadStaged(f.Id, f.Offset, int(f.MaxBytes))
	if errors.Is(err, ErrNotStaged) {
		return status.Response(status.New(zppb.Code_NOT_FOUND, "%v", err)), nil
	}
	if err != nil {
		return nil, err
	}
	return &zppb.Response{Result: &zppb.Response_BulkFetch{BulkFetch: &zppb.BulkFetchResponse{Data: data, Eof: eof}}}, nil
}

func (fetchConn) Close() error { return nil }

// makeSST writes keys with value v into a table file and returns its
// bytes.
func makeSST(t *testing.T, v string, keys ...string) []byte {
	t.Helper()
	slices.SortFunc(keys, func(a, b string) int { return slices.Compare(engine.SortKey([]byte(a)), engine.SortKey([]byte(b))) })
	p := filepath.Join(t.TempDir(), "f.sst")
	w, err := engine.CreateSST(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := w.Put([]byte(k), []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBulkIngest: a staged file checked against its size and checksum is
// ingested at its record's place among writes; a slave that lacks the file
// fetches it from the master and ends with the master's data; a slave
// whose master has dropped it is told so (and full-syncs).
func TestBulkIngest(t *testing.T) {
	ctx := context.Background()
	shared := newShared(t)
	m := openReplica(t, t.TempDir(), shared, nil)
	defer m.Close()
	m.SetRole(Assignment{Role: Master, Master: "m", Term: 1})
	for _, k := range []string{"a", "b"} {
		if err := m.Write(ctx, nil, put(k, "before", 0)); err != nil {
			t.Fatal(err)
		}
	}
	file := makeSST(t, "file", "a", "b", "c")
	crc := crc32.Checksum(file, castagnoli)
	f := &zppb.IngestFile{Id: "load1", Size: uint64(len(file)), Crc32C: crc, Records: 3}

	// Not staged yet: refused. Bad ids, offsets and checksums: refused.
	if _, _, err := m.Ingest(ctx, f, 0, 0); !errors.Is(err, ErrNotStaged) {
		t.Fatalf("Ingest of an unstaged file: %v", err)
	}
	if _, err := m.Stage(ctx, "../x", 0, file, true, f.Size, crc); !errors.Is(err, ErrStaging) {
		t.Errorf("Stage with a path as id: %v", err)
	}
	half := len(file) / 2
	if _, err := m.Stage(ctx, "load1", 0, file[:half], false, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Stage(ctx, "load1", 1, file[half:], true, f.Size, crc); !errors.Is(err, ErrStaging) {
		t.Errorf("chunk at a wrong offset: %v", err)
	}
	if _, err := m.Stage(ctx, "load1", uint64(half), file[half:], true, f.Size, crc+1); !errors.Is(err, ErrStaging) {
		t.Errorf("wrong checksum: %v", err)
	}
	if _, err := m.Stage(ctx, "load1", 0, file[:half], false, 0, 0); err != nil {
		t.Fatal(err)
	}
	if have, err := m.Stage(ctx, "load1", uint64(half), file[half:], true, f.Size, crc); err != nil || have != f.Size {
		t.Fatalf("Stage: %d, %v", have, err)
	}
	// Routed for the whole table, while the partition has given part of
	// it away since (a split committed): refused, nothing logged.
	m.SetSlots(0, 8192, 8192)
	_, before, _ := m.Position()
	if _, _, err := m.Ingest(ctx, f, 0, keyspace.Slots); !errors.Is(err, ErrSplitting) {
		t.Fatalf("Ingest routed for slots the partition no longer has: %v, want ErrSplitting", err)
	}
	if _, after, _ := m.Position(); after != before {
		t.Fatalf("a refused ingest logged a record (lsn %d -> %d)", before, after)
	}
	m.SetSlots(0, keyspace.Slots, keyspace.Slots)
	_, lsn, err := m.Ingest(ctx, f, 0, keyspace.Slots)
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	// A retry (its answer lost) gets the same record, not a second one.
	if _, again, err := m.Ingest(ctx, f, 0, 0); err != nil || again != lsn {
		t.Fatalf("Ingest retried: lsn %d, %v; want %d", again, err, lsn)
	}
	if _, last, _ := m.Position(); last != lsn {
		t.Fatalf("the retry logged lsn %d", last)
	}
	if err := m.Write(ctx, nil, put("b", "after", 0)); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "file", "b": "after", "c": "file"}
	check := func(r *Replica, who string) {
		t.Helper()
		for k, v := range want {
			got, _, err := r.Get([]byte(k))
			if err != nil || string(got) != v {
				t.Errorf("%s: %s = %q, %v; want %q", who, k, got, err, v)
			}
		}
	}
	check(m, "master")

	// A slave without the file, fed the master's records.
	pr, err := m.Pull(ctx, &zppb.BinlogPullRequest{Slave: "s", FromLsn: 1, PrevTerm: 0})
	if err != nil || uint64(len(pr.Records)) != lsn+1 {
		t.Fatalf("pull: %d records, %v", len(pr.GetRecords()), err)
	}
	s := openReplica(t, t.TempDir(), shared, nil)
	defer s.Close()
	s.SetRole(Assignment{Role: Slave, Term: 1})
	if err := s.applyReplicated(ctx, fetchConn{m}, pr.Records); err != nil {
		t.Fatalf("slave apply: %v", err)
	}
	check(s, "slave")

	// A slave replays it after a restart: reopen and read again.
	dir := s.opts.Dir
	s.Close()
	s = openReplica(t, dir, shared, nil)
	defer s.Close()
	check(s, "reopened slave")

	// The master drops its copy: a new slave is told (and full-syncs).
	for _, p := range []string{m.stagedPath("load1")} {
		os.Remove(p)
	}
	s2 := openReplica(t, t.TempDir(), shared, nil)
	defer s2.Close()
	s2.SetRole(Assignment{Role: Slave, Term: 1})
	if err := s2.applyReplicated(ctx, fetchConn{m}, pr.Records); !errors.Is(err, ErrNotStaged) {
		t.Fatalf("slave apply without the file anywhere: %v, want ErrNotStaged", err)
	}
	if _, lsn, _ := s2.Position(); lsn != 0 {
		t.Errorf("the slave logged records up to %d it could not apply", lsn)
	}
}

// TestBulkIngestReplay: a crash after the file was ingested but before the
// DB's position reached disk (the DB's table files hold the file, not its
// record): the reopened replica replays the record, ingesting the applied
// file again at its place, and writes after it still win.
func TestBulkIngestReplay(t *testing.T) {
	ctx := context.Background()
	shared := newShared(t)
	dir := t.TempDir()
	m := openReplica(t, dir, shared, nil)
	m.SetRole(Assignment{Role: Master, Master: "m", Term: 1})
	if err := m.Write(ctx, nil, put("a", "before", 0)); err != nil {
		t.Fatal(err)
	}
	file := makeSST(t, "file", "a", "b")
	f := &zppb.IngestFile{Id: "load2", Size: uint64(len(file)), Crc32C: crc32.Checksum(file, castagnoli)}
	if _, err := m.Stage(ctx, f.Id, 0, file, true, f.Size, f.Crc32C); err != nil {
		t.Fatal(err)
	}
	_, lsn, err := m.Ingest(ctx, f, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Write(ctx, nil, put("b", "after", 0)); err != nil {
		t.Fatal(err)
	}
	// The crash: the DB's persisted position is the one before the
	// ingest record (the file is in its table files all the same).
	if err := m.WithDB(func(db *engine.DB) error {
		if err := db.SetApplied(1, lsn-1); err != nil {
			return err
		}
		return db.Flush()
	}); err != nil {
		t.Fatal(err)
	}
	m.Close()
	m = openReplica(t, dir, shared, nil)
	defer m.Close()
	if _, last, applied := m.Position(); applied != last || last != lsn+1 {
		t.Fatalf("after replay: applied %d of %d, want %d", applied, last, lsn+1)
	}
	for k, want := range map[string]string{"a": "file", "b": "after"} {
		if got, _, err := m.Get([]byte(k)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", k, got, err, want)
		}
	}
}

// TestStaleStagedFilesDropped: at open, a file staged over an hour ago that
// no record ingested (its load died) is removed; a fresh one, which a load
// in progress may still ingest, and an applied one stay.
func TestStaleStagedFilesDropped(t *testing.T) {
	ctx := context.Background()
	shared := newShared(t)
	dir := t.TempDir()
	m := openReplica(t, dir, shared, nil)
	m.SetRole(Assignment{Role: Master, Master: "m", Term: 1})
	file := makeSST(t, "v", "a")
	crc := crc32.Checksum(file, castagnoli)
	for _, id := range []string{"old", "fresh", "ingested"} {
		if _, err := m.Stage(ctx, id, 0, file, true, uint64(len(file)), crc); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := m.Ingest(ctx, &zppb.IngestFile{Id: "ingested", Size: uint64(len(file)), Crc32C: crc, Records: 1}, 0, 0); err != nil {
		t.Fatal(err)
	}
	m.Close()
	old := time.Now().Add(-2 * staleStagedAge)
	if err := os.Chtimes(filepath.Join(dir, "bulk", "old.sst"), old, old); err != nil {
		t.Fatal(err)
	}
	m = openReplica(t, dir, shared, nil)
	defer m.Close()
	for id, want := range map[string]bool{"old": false, "fresh": true, "ingested": true} {
		if got := m.stagedPath(id) != ""; got != want {
			t.Errorf("%s staged: %v, want %v", id, got, want)
		}
	}
}
