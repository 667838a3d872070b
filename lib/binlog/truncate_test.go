package binlog

import (
	"errors"
	"testing"
)

func TestTruncateAfter(t *testing.T) {
	const n = 200
	tests := []struct {
		name  string
		after func(firsts []uint64) uint64 // lsn to truncate after
		err   error
	}{
		{"mid segment", func([]uint64) uint64 { return 123 }, nil},
		{"last record of a segment", func(f []uint64) uint64 { return f[5] - 1 }, nil},
		{"first record of a segment", func(f []uint64) uint64 { return f[5] }, nil},
		{"inside the active segment", func([]uint64) uint64 { return n - 1 }, nil},
		{"everything", func([]uint64) uint64 { return 0 }, nil},
		{"at last is a no-op", func([]uint64) uint64 { return n }, nil},
		{"beyond last is a no-op", func([]uint64) uint64 { return n + 50 }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, smallOpts(t))
			appendRange(t, l, 1, n)
			firsts, err := listSegments(dir)
			if err != nil {
				t.Fatal(err)
			}
			after := tt.after(firsts)
			r, err := l.NewReader(1)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}

			if err := l.TruncateAfter(after); !errors.Is(err, tt.err) {
				t.Fatalf("TruncateAfter(%d) = %v, want %v", after, err, tt.err)
			}
			want := min(after, n)
			wantTerm := uint64(0)
			if want > 0 {
				wantTerm = termFor(want)
			}
			checkLast(t, l, wantTerm, want)
			if _, err := r.Next(); (after < n) != errors.Is(err, ErrTruncated) {
				t.Fatalf("open reader after truncation: %v", err)
			}
			if want < n {
				if _, err := l.TermAt(want + 1); !errors.Is(err, ErrNotFound) {
					t.Fatalf("TermAt(%d) = %v, want ErrNotFound", want+1, err)
				}
			}
			if got := l.Durable(); after < n && got != want {
				t.Fatalf("Durable() = %d, want %d", got, want)
			}
			checkRecords(t, readAll(t, l, 1), 1, want)

			// Appends continue, with a different history if need be.
			appendRange(t, l, want+1, n+20)
			checkRecords(t, readAll(t, l, 1), 1, n+20)
			l.Close()
			l = openLog(t, dir, smallOpts(t))
			checkLast(t, l, termFor(n+20), n+20)
			checkRecords(t, readAll(t, l, 1), 1, n+20)
		})
	}
}

// TestTruncateDivergentSuffix replaces records with ones of a new term, as
// a slave does when its master changed.
func TestTruncateDivergentSuffix(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallOpts(t))
	appendRange(t, l, 1, 30)
	if err := l.TruncateAfter(25); err != nil {
		t.Fatal(err)
	}
	for lsn := uint64(26); lsn <= 40; lsn++ {
		if err := l.Append(Record{Term: 9, LSN: lsn, Payload: []byte("new")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ lsn, term uint64 }{{25, termFor(25)}, {26, 9}, {40, 9}} {
		if term, err := l.TermAt(tc.lsn); err != nil || term != tc.term {
			t.Fatalf("TermAt(%d) = %d, %v; want %d", tc.lsn, term, err, tc.term)
		}
	}
	recs := readAll(t, l, 24)
	if len(recs) != 17 || string(recs[2].Payload) != "new" || recs[2].LSN != 26 {
		t.Fatalf("read %d records after divergence repair: %+v", len(recs), recs[:3])
	}
}

func TestTruncateAfterPurged(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallOpts(t))
	appendRange(t, l, 1, 100)
	firsts, _ := listSegments(dir)
	if _, err := l.PurgeBefore(firsts[3]); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateAfter(firsts[3] - 2); !errors.Is(err, ErrPurged) {
		t.Fatalf("TruncateAfter below the base = %v, want ErrPurged", err)
	}
	// Right at the base is allowed: the log becomes empty but keeps its place.
	if err := l.TruncateAfter(firsts[3] - 1); err != nil {
		t.Fatal(err)
	}
	checkLast(t, l, termFor(firsts[3]-1), firsts[3]-1)
	if got := l.First(); got != 0 {
		t.Fatalf("First() = %d, want 0", got)
	}
	appendRange(t, l, firsts[3], firsts[3]+5)
	if got := l.First(); got != firsts[3] {
		t.Fatalf("First() = %d, want %d", got, firsts[3])
	}
}

func TestPurgeBefore(t *testing.T) {
	const n = 200
	dir := t.TempDir()
	l := openLog(t, dir, smallOpts(t))
	appendRange(t, l, 1, n)
	firsts, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		before  uint64
		removed int
		first   uint64
	}{
		{"nothing old enough", firsts[1] - 1, 0, 1},
		{"one segment", firsts[1], 1, firsts[1]},
		{"again, nothing more", firsts[1] + 1, 0, firsts[1]},
		{"mid segment keeps it", firsts[4] + 2, 3, firsts[4]},
		{"never the active segment", n + 100, len(firsts) - 5, firsts[len(firsts)-1]},
	}
	for _, tt := range tests {
		sizeBefore := l.Size()
		removed, err := l.PurgeBefore(tt.before)
		if err != nil || removed != tt.removed {
			t.Fatalf("%s: PurgeBefore(%d) = %d, %v; want %d", tt.name, tt.before, removed, err, tt.removed)
		}
		if got := l.First(); got != tt.first {
			t.Fatalf("%s: First() = %d, want %d", tt.name, got, tt.first)
		}
		if removed > 0 && l.Size() >= sizeBefore {
			t.Fatalf("%s: Size() %d not below %d", tt.name, l.Size(), sizeBefore)
		}
		if _, err := l.NewReader(tt.first - 1); tt.first > 1 && !errors.Is(err, ErrPurged) {
			t.Fatalf("%s: NewReader(%d) = %v, want ErrPurged", tt.name, tt.first-1, err)
		}
		if _, err := l.TermAt(tt.first - 2); tt.first > 2 && !errors.Is(err, ErrPurged) {
			t.Fatalf("%s: TermAt(%d) = %v, want ErrPurged", tt.name, tt.first-2, err)
		}
		// The boundary position still answers TermAt, for log matching.
		if term, err := l.TermAt(tt.first - 1); err != nil || (tt.first > 1 && term != termFor(tt.first-1)) {
			t.Fatalf("%s: TermAt(%d) = %d, %v", tt.name, tt.first-1, term, err)
		}
		checkRecords(t, readAll(t, l, tt.first), tt.first, n)
	}
	checkLast(t, l, termFor(n), n)
	if got := len(segmentFiles(t, dir)); got != 1 {
		t.Fatalf("%d segment files left, want 1", got)
	}

	l.Close()
	l = openLog(t, dir, smallOpts(t))
	if got := l.First(); got != firsts[len(firsts)-1] {
		t.Fatalf("First() after reopen = %d", got)
	}
	checkLast(t, l, termFor(n), n)
}

// TestReaderSurvivesPurge checks that a reader inside a segment that is
// purged finishes it and carries on.
func TestReaderSurvivesPurge(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallOpts(t))
	appendRange(t, l, 1, 100)
	r, err := l.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if rec, err := r.Next(); err != nil || rec.LSN != 1 {
		t.Fatalf("Next() = %d, %v", rec.LSN, err)
	}
	firsts, _ := listSegments(dir)
	if n, err := l.PurgeBefore(firsts[1]); err != nil || n != 1 {
		t.Fatalf("PurgeBefore = %d, %v", n, err)
	}
	for lsn := uint64(2); lsn <= 100; lsn++ {
		if rec, err := r.Next(); err != nil || rec.LSN != lsn {
			t.Fatalf("Next() = %d, %v; want %d", rec.LSN, err, lsn)
		}
	}

	// A reader that is behind by whole purged segments cannot catch up.
	lagging, err := l.NewReader(firsts[1])
	if err != nil {
		t.Fatal(err)
	}
	defer lagging.Close()
	if _, err := l.PurgeBefore(firsts[3]); err != nil {
		t.Fatal(err)
	}
	if _, err := lagging.Next(); !errors.Is(err, ErrPurged) {
		t.Fatalf("lagging reader: %v, want ErrPurged", err)
	}
}
