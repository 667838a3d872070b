package engine

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
)

// TestManyIdleDBsLeaveTheBudgetToWrites: with many DBs open on one Shared,
// the memtables of the idle ones leave the write buffer budget to writes,
// so a DB's writes stay in its memtable. When every memtable had a bloom
// filter of 2% of its 32 MiB, 120 idle DBs charged 81 MB to a 64 MiB
// budget, and the write buffer manager switched and flushed a memtable on
// every write.
func TestManyIdleDBsLeaveTheBudgetToWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 120 DBs")
	}
	s, err := NewShared(SharedOptions{BlockCacheSize: 8 << 20, WriteBufferSize: 64 << 20, BackgroundJobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Shared.Close: %v", err)
		}
	})
	const n, writes = 120, 20
	dir := t.TempDir()
	var last *testDB
	for i := range n {
		d, err := Open(filepath.Join(dir, strconv.Itoa(i)), Options{Shared: s, Logger: testLogger(t), DisableWAL: true})
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { d.Close() }) // before s's cleanup, registered earlier
		last = &testDB{DB: d, t: t, term: 1}
	}
	for i := range writes {
		last.apply(put(fmt.Sprint("k", i), "v", 0))
	}
	kept, err := strconv.Atoi(last.db.GetPropertyCF("rocksdb.num-entries-active-mem-table", last.data))
	if err != nil {
		t.Fatal(err)
	}
	if kept != writes {
		t.Errorf("%d of %d writes in the memtable (write buffer use %d of %d bytes): the idle DBs' memtables used up the budget",
			kept, writes, s.Stats().WriteBufferUsage, s.Stats().WriteBufferLimit)
	}
}

// TestSharedGrantsMemtableBlooms: memtable bloom filters go to DBs while
// the granted ones fit in an eighth of the write buffer budget; a DB that
// closes gives its filter back.
func TestSharedGrantsMemtableBlooms(t *testing.T) {
	const memtable = 32 << 20 // a filter of 671,088 bytes
	s, err := NewShared(SharedOptions{BlockCacheSize: 8 << 20, WriteBufferSize: 40 << 20, BackgroundJobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// 40 MiB / 8 = 5 MiB: seven filters fit.
	var got []bool
	for range 9 {
		bloom, err := s.acquire(memtable)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, bloom)
	}
	if want := "[true true true true true true true false false]"; fmt.Sprint(got) != want {
		t.Fatalf("granted %v, want %s", got, want)
	}
	s.release(false)
	if bloom, _ := s.acquire(memtable); bloom {
		t.Error("a filter granted after a DB without one closed")
	}
	s.release(true)
	if bloom, _ := s.acquire(memtable); !bloom {
		t.Error("no filter granted after a DB with one closed")
	}
	for _, b := range got { // what is held: a filter was swapped for a filter, none for none
		s.release(b)
	}
	if s.open != 0 || s.blooms != 0 {
		t.Errorf("%d DBs and %d filters after releasing all", s.open, s.blooms)
	}
}
