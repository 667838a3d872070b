package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
)

// splitFixture is a master replica holding n keys of both halves of the
// slot space, a third of them in hashtag groups, with incompressible
// values of size bytes; its DB compacted.
func splitFixture(t testing.TB, n, size int) (*Replica, *engine.Shared, map[string]bool) {
	t.Helper()
	shared := newShared(t)
	r, err := Open(Options{Dir: filepath.Join(t.TempDir(), "3"), Table: "t", ID: 3, Shared: shared})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 2})
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make(map[string]bool, n)
	const batch = 100
	for i := 0; i < n; i += batch {
		rec := put("", "", 0)
		rec.Mutations = rec.Mutations[:0]
		for j := i; j < min(i+batch, n); j++ {
			k := fmt.Sprintf("key:%d", j)
			if j%3 == 0 {
				k = fmt.Sprintf("{user%d}:%d", j/30, j)
			}
			v := make([]byte, size)
			for b := range v {
				v[b] = byte(rng.Uint32())
			}
			rec.Mutations = append(rec.Mutations, put(k, string(v), 0).Mutations...)
			keys[k] = true
		}
		if err := r.Write(context.Background(), nil, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.WithDB(func(db *engine.DB) error {
		if err := db.Flush(); err != nil {
			return err
		}
		return db.Compact()
	}); err != nil {
		t.Fatal(err)
	}
	return r, shared, keys
}

// sstBytes is the disk the table files of the DBs of replicas use, each
// file once however many DBs link it.
func sstBytes(t testing.TB, replicas ...*Replica) int64 {
	t.Helper()
	var seen []os.FileInfo
	var total int64
	for _, r := range replicas {
		files, err := filepath.Glob(filepath.Join(r.opts.Dir, "db", "*.sst"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(seen, func(o os.FileInfo) bool { return os.SameFile(o, fi) }) {
				seen = append(seen, fi)
				total += fi.Size()
			}
		}
	}
	return total
}

// keysOf lists the keys of r's DB.
func keysOf(t testing.TB, r *Replica) []string {
	t.Helper()
	var out []string
	if err := r.WithDB(func(db *engine.DB) error {
		return db.ForEach(0, func(k, _ []byte, _ int64) error { out = append(out, string(k)); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// waitCompacted waits for the compaction a trim started and compacts what
// is left, so that the table files hold the live keys only.
func waitCompacted(t testing.TB, r *Replica) {
	t.Helper()
	if err := r.WithDB(func(db *engine.DB) error {
		if err := db.Flush(); err != nil { // waits for the trim's compaction
			return err
		}
		return db.Compact()
	}); err != nil {
		t.Fatal(err)
	}
}

// TestSplit splits a replica holding keys of both halves at its binlog
// position: the new replica starts at that position with its own binlog
// and takes writes after it; once each trims the other's range, each
// holds exactly its own keys, and after compaction the two use the disk
// the one did (within 10%).
func TestSplit(t *testing.T) {
	r, shared, keys := splitFixture(t, 6000, 200)
	before := sstBytes(t, r)
	term, lsn, _ := r.Position()

	if _, err := r.Split(term, lsn-1, Options{Dir: filepath.Join(t.TempDir(), "x"), Table: "t", ID: 4, Shared: shared}); !errors.Is(err, ErrSplitPosition) {
		t.Fatalf("split at another position: %v", err)
	}
	childDir := filepath.Join(filepath.Dir(r.opts.Dir), "4")
	var warnings bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&warnings, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := r.Split(term, lsn, Options{Dir: childDir, Table: "t", ID: 4, Shared: shared, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if warnings.Len() > 0 {
		t.Errorf("the new replica opened with warnings:\n%s", warnings.String())
	}
	if ct, cl, applied := c.Position(); ct != term || cl != lsn || applied != lsn {
		t.Fatalf("new replica at term %d lsn %d applied %d, want %d %d %d", ct, cl, applied, term, lsn, lsn)
	}
	if both := sstBytes(t, r, c); both != before {
		t.Errorf("after the checkpoint the two use %d bytes of table files, the one %d: not hard links", both, before)
	}

	const mid = keyspace.Slots / 2
	ctx := context.Background()
	if err := r.TrimSlots(ctx, 0, mid); err != nil {
		t.Fatal(err)
	}
	if err := c.TrimSlots(ctx, mid, keyspace.Slots); err != nil {
		t.Fatal(err)
	}
	var low, high []string
	for k := range keys {
		if keyspace.Slot([]byte(k)) < mid {
			low = append(low, k)
		} else {
			high = append(high, k)
		}
	}
	slices.Sort(low)
	slices.Sort(high)
	if got := keysOf(t, r); !slices.Equal(got, low) {
		t.Errorf("parent holds %d keys, want its %d", len(got), len(low))
	}
	if got := keysOf(t, c); !slices.Equal(got, high) {
		t.Errorf("new replica holds %d keys, want its %d", len(got), len(high))
	}

	waitCompacted(t, r)
	waitCompacted(t, c)
	after := sstBytes(t, r, c)
	t.Logf("table files: %d bytes before the split, %d after it and compaction (%+.1f%%)", before, after, 100*float64(after-before)/float64(before))
	if after > before*11/10 || after < before*9/10 {
		t.Errorf("table files %d bytes after, %d before: not within 10%%", after, before)
	}

	c.SetRole(Assignment{Role: Master, Master: "self", Term: term})
	if err := c.Write(ctx, nil, put(high[0], "new", 0)); err != nil {
		t.Fatal(err)
	}
	if _, cl, _ := c.Position(); cl != lsn+1 {
		t.Errorf("new replica's first write at lsn %d, want %d", cl, lsn+1)
	}
}

// TestTrimResumesAfterCrash: a trim that did not finish (here, cancelled)
// is reported by PendingTrim after the replica opens again, and finishes
// when run again.
func TestTrimResumesAfterCrash(t *testing.T) {
	r, shared, _ := splitFixture(t, 300, 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.TrimSlots(ctx, 0, 100); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled trim: %v", err)
	}
	r.Close()
	r, err := Open(Options{Dir: r.opts.Dir, Table: "t", ID: 3, Shared: shared})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	begin, end, ok, err := r.PendingTrim()
	if err != nil || !ok || begin != 0 || end != 100 {
		t.Fatalf("PendingTrim = %d, %d, %v, %v; want 0, 100, true", begin, end, ok, err)
	}
	if n := len(keysOf(t, r)); n < 250 {
		t.Fatalf("%d keys before the trim ran again, want the 300 (a few in slots below 100)", n)
	}
	// Meanwhile scans list only the keys the replica keeps.
	for cursor, pages := []byte(nil), 0; pages == 0 || len(cursor) > 0; pages++ {
		kvs, next, err := r.ScanAll(cursor, 1000, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			if s := keyspace.Slot(kv.Key); s >= 100 {
				t.Fatalf("scan during the trim lists %s (slot %d)", kv.Key, s)
			}
		}
		cursor = next
	}
	if err := r.TrimSlots(context.Background(), begin, end); err != nil {
		t.Fatal(err)
	}
	for _, k := range keysOf(t, r) {
		if s := keyspace.Slot([]byte(k)); s >= 100 {
			t.Fatalf("%s (slot %d) kept", k, s)
		}
	}
	if _, _, ok, err := r.PendingTrim(); ok || err != nil {
		t.Fatalf("trim still pending after it finished: %v", err)
	}
}

// TestConcurrentTrims: the same trim run twice at once (after a restart,
// the parent's resumed trim and its child's trim of both halves) succeeds
// both times. Unserialised, the two wrote the same temporary record and
// one rename failed, which once left a child's marker for good.
func TestConcurrentTrims(t *testing.T) {
	r, _, _ := splitFixture(t, 300, 10)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 4 {
		wg.Go(func() {
			for range 10 {
				errs <- r.TrimSlots(context.Background(), 0, 100)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent trim: %v", err)
		}
	}
	if r.Trimming() {
		t.Error("a trim is still in progress after every trim returned")
	}
	if _, _, ok, err := r.PendingTrim(); ok || err != nil {
		t.Errorf("trim still pending after every trim returned: %v", err)
	}
	for _, k := range keysOf(t, r) {
		if s := keyspace.Slot([]byte(k)); s >= 100 {
			t.Fatalf("%s (slot %d) kept", k, s)
		}
	}
}
