package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func clearAll() *zppb.Mutation { return &zppb.Mutation{Kind: zppb.Mutation_CLEAR} }

// fillForClear writes keys of every sort: plain, hashtagged, with a TTL,
// already expired, empty; some in table files, some only in the memtable.
func fillForClear(d *testDB, now int64) {
	d.t.Helper()
	// The expiry filter runs in background compactions, whenever RocksDB
	// starts one: its clock is set before every expiry here, so that
	// compaction drops nothing behind the test's back ("gone" must stay
	// for the sweep to find until a CLEAR removes it). On the wall clock
	// it would drop every key with an expiry.
	d.expiry.set(1)
	d.apply(put("plain", "1", 0), put("{tag}a", "2", 0), put("{tag}b", "3", now+60_000), put("gone", "4", now-1))
	if err := d.Flush(); err != nil {
		d.t.Fatal(err)
	}
	d.apply(put("{tag}c", "5", 0), put("empty", "", 0), put("\xff\xff", "6", 0))
}

// liveKeys lists what every read path sees at now.
func liveKeys(t *testing.T, d *testDB, now int64) map[string][]string {
	t.Helper()
	seen := map[string][]string{}
	for _, k := range []string{"plain", "{tag}a", "{tag}b", "{tag}c", "gone", "empty", "\xff\xff", "after"} {
		if d.mustGet(k, now) != "<nil>" {
			seen["get"] = append(seen["get"], k)
		}
	}
	for _, tag := range []string{"", "tag"} {
		entries, _, err := d.Scan([]byte(tag), nil, MaxScanCount, now)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			seen["scan"] = append(seen["scan"], string(e.Key))
		}
	}
	if err := d.ForEach(now, func(k, _ []byte, _ int64) error {
		seen["foreach"] = append(seen["foreach"], string(k))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The sweep must not find the expired key either: it is gone, not
	// merely expired.
	keys, _, err := d.ExpiredKeys(nil, now, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		seen["expired"] = append(seen["expired"], string(k))
	}
	return seen
}

func TestClear(t *testing.T) {
	const now = 1_000_000
	tests := []struct {
		name string
		// recs after the fill; the first is at lsn 3.
		recs [][]*zppb.Mutation
		want []string // keys Get finds afterwards
	}{
		{name: "alone", recs: [][]*zppb.Mutation{{clearAll()}}},
		{name: "writes before and after in one batch", recs: [][]*zppb.Mutation{
			{put("before", "x", 0)}, {clearAll()}, {put("after", "y", 0)},
		}, want: []string{"after"}},
		{name: "inside one record", recs: [][]*zppb.Mutation{
			{put("{tag}a", "new", 0), clearAll(), put("after", "y", 0), del("plain")},
		}, want: []string{"after"}},
		{name: "twice", recs: [][]*zppb.Mutation{{clearAll()}, {clearAll()}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "db")
			s := newShared(t)
			d := openTestDB(t, dir, s)
			fillForClear(d, now)
			recs := make([]Record, len(tt.recs))
			for i, muts := range tt.recs {
				recs[i] = Record{LSN: d.lsn + 1 + uint64(i), Term: 2, Rec: &zppb.WriteRecord{Mutations: muts}}
			}
			if err := d.ApplyBatch(recs); err != nil {
				t.Fatal(err)
			}
			last := recs[len(recs)-1].LSN
			check := func(when string) {
				t.Helper()
				seen := liveKeys(t, d, now)
				if fmt.Sprint(seen["get"]) != fmt.Sprint(tt.want) || len(seen["scan"]) != len(tt.want) ||
					len(seen["foreach"]) != len(tt.want) || len(seen["expired"]) != 0 {
					t.Fatalf("%s: read paths see %v, want only %v", when, seen, tt.want)
				}
				if term, lsn := d.Applied(); term != 2 || lsn != last {
					t.Fatalf("%s: applied (%d, %d), want (2, %d)", when, term, lsn, last)
				}
			}
			check("after the clear")
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			// The position and the layout version are metadata, which the
			// clear keeps: the DB reopens at the same place.
			d = openTestDB(t, dir, s)
			check("after reopening")
		})
	}
}

// A record with a CLEAR and a bad mutation is refused whole: nothing is
// deleted, the position does not move.
func TestClearAtomic(t *testing.T) {
	const now = 1_000_000
	d := newTestDB(t)
	fillForClear(d, now)
	before := liveKeys(t, d, now)
	bad := [][]Record{
		{{LSN: 3, Term: 1, Rec: &zppb.WriteRecord{Mutations: []*zppb.Mutation{clearAll(), put("", "x", 0)}}}},
		{{LSN: 3, Term: 1, Rec: &zppb.WriteRecord{Mutations: []*zppb.Mutation{clearAll()}}},
			{LSN: 4, Term: 1, Rec: &zppb.WriteRecord{Mutations: []*zppb.Mutation{{Kind: 9}}}}},
		{{LSN: 3, Term: 1, Rec: &zppb.WriteRecord{Mutations: []*zppb.Mutation{{Kind: zppb.Mutation_CLEAR, Key: []byte("k")}}}}},
	}
	for i, b := range bad {
		if err := d.ApplyBatch(b); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("bad batch %d: %v, want ErrInvalidArgument", i, err)
		}
		if after := liveKeys(t, d, now); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("bad batch %d changed the data: %v, was %v", i, after, before)
		}
		if _, lsn := d.Applied(); lsn != 2 {
			t.Fatalf("bad batch %d moved the position to %d", i, lsn)
		}
	}
}

// After a CLEAR the background compaction gives the disk space back, even
// when the data sat in the bottom level where nothing would compact it.
func TestClearReclaimsDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and compacts a few MB; skipped with -short")
	}
	d := newTestDB(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 4000 {
		// Random values, so that compression cannot make the data vanish.
		v := make([]byte, 1000)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		d.apply(&zppb.Mutation{Kind: zppb.Mutation_PUT, Key: fmt.Appendf(nil, "key-%06d", i), Value: v})
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := d.Compact(); err != nil {
		t.Fatal(err)
	}
	st, err := d.Stats()
	if err != nil || st.SSTBytes < 100<<10 {
		t.Fatalf("SST bytes before the clear %d, %v; want the data on disk", st.SSTBytes, err)
	}
	before := st.SSTBytes
	d.apply(clearAll())
	testcluster.Poll(t, 30*time.Second, func() error {
		if st, err = d.Stats(); err != nil || st.SSTBytes >= before/10 {
			return fmt.Errorf("SST bytes %d after the clear, %d before (%v)", st.SSTBytes, before, err)
		}
		return nil
	})
	if _, lsn := d.Applied(); lsn != d.lsn {
		t.Fatalf("applied %d, want %d", lsn, d.lsn)
	}
	t.Logf("SST bytes %d before the clear, %d after", before, st.SSTBytes)
}

// TestFlushForCloseRightAfterClear flushes for a close while the
// compaction a CLEAR starts may still be flushing: the two flushes must not
// meet (a RocksDB built with assertions, as Debian's is, aborts the
// process when they do), and the flush must leave the cleared state.
func TestFlushForCloseRightAfterClear(t *testing.T) {
	s := newShared(t)
	dir := t.TempDir()
	for i := range 20 {
		d := openTestDB(t, filepath.Join(dir, fmt.Sprint(i)), s)
		d.apply(put("a", "1", 0))
		if err := d.Flush(); err != nil {
			t.Fatal(err)
		}
		d.apply(put("b", "2", 0))
		d.apply(clearAll())
		d.apply(put("c", "3", 0))
		if err := d.FlushForClose(); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{"a": "<nil>", "b": "<nil>", "c": "3"} {
			if got := d.mustGet(k, 0); got != want {
				t.Errorf("round %d: %s = %q after the flush, want %q", i, k, got, want)
			}
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFlushRightAfterClear: a flush (purge asks for one) while the
// compaction a CLEAR starts may still be flushing must not meet that
// flush (RocksDB built with assertions aborts the process when it does).
func TestFlushRightAfterClear(t *testing.T) {
	d := newTestDB(t)
	for i := range 20 {
		d.apply(put("a", fmt.Sprint(i), 0))
		if err := d.Flush(); err != nil {
			t.Fatal(err)
		}
		d.apply(put("b", "2", 0))
		d.apply(clearAll())
		d.apply(put("c", "3", 0))
		if err := d.Flush(); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{"a": "<nil>", "b": "<nil>", "c": "3"} {
			if got := d.mustGet(k, 0); got != want {
				t.Errorf("round %d: %s = %q after the flush, want %q", i, k, got, want)
			}
		}
	}
}
