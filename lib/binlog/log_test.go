package binlog

import (
	"errors"
	"os"
	"testing"
)

func TestAppendReadAcrossSegments(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := t.TempDir()
			opts := smallOpts(t)
			opts.Sync = policy
			l := openLog(t, dir, opts)
			const n = 300
			appendRange(t, l, 1, n)
			checkLast(t, l, termFor(n), n)
			if got := l.First(); got != 1 {
				t.Fatalf("First() = %d, want 1", got)
			}
			st := l.Stats()
			if st.Segments < 10 {
				t.Fatalf("only %d segments for %d records with %d-byte segments", st.Segments, n, opts.SegmentSize)
			}
			if files := segmentFiles(t, dir); len(files) != st.Segments {
				t.Fatalf("%d segment files, Stats says %d", len(files), st.Segments)
			}
			var onDisk int64
			for _, f := range segmentFiles(t, dir) {
				fi, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Size() > opts.SegmentSize {
					t.Errorf("%s is %d bytes, above SegmentSize", f, fi.Size())
				}
				onDisk += fi.Size()
			}
			if got := l.Size(); got != onDisk {
				t.Fatalf("Size() = %d, files hold %d", got, onDisk)
			}

			// Start reading at the first record, mid-segment, at a segment
			// boundary, at the last record and at the end.
			firsts, err := listSegments(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, from := range []uint64{1, 2, 37, firsts[3], firsts[3] - 1, n, n + 1} {
				checkRecords(t, readAll(t, l, from), from, n)
			}
			for lsn := uint64(1); lsn <= n; lsn++ {
				term, err := l.TermAt(lsn)
				if err != nil || term != termFor(lsn) {
					t.Fatalf("TermAt(%d) = %d, %v; want %d", lsn, term, err, termFor(lsn))
				}
			}
		})
	}
}

func TestNewLog(t *testing.T) {
	l := openLog(t, t.TempDir(), smallOpts(t))
	checkLast(t, l, 0, 0)
	if got := l.First(); got != 0 {
		t.Fatalf("First() of empty log = %d, want 0", got)
	}
	if term, err := l.TermAt(0); err != nil || term != 0 {
		t.Fatalf("TermAt(0) = %d, %v; want 0, nil", term, err)
	}
	if _, err := l.TermAt(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TermAt(1) error = %v, want ErrNotFound", err)
	}
	if recs := readAll(t, l, 1); len(recs) != 0 {
		t.Fatalf("read %d records from an empty log", len(recs))
	}
	if _, err := l.NewReader(2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("NewReader(2) error = %v, want ErrNotFound", err)
	}
}

func TestReopenPreservesLog(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, smallOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, 1, 120)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	if err := l.Append(recordFor(121)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}

	l = openLog(t, dir, smallOpts(t))
	checkLast(t, l, termFor(120), 120)
	if got := l.Durable(); got != 120 {
		t.Fatalf("Durable() after reopen = %d, want 120", got)
	}
	// Terms of segments sealed before Open are learned lazily.
	for _, lsn := range []uint64{1, 49, 50, 51, 99, 100, 120} {
		if term, err := l.TermAt(lsn); err != nil || term != termFor(lsn) {
			t.Fatalf("TermAt(%d) = %d, %v; want %d", lsn, term, err, termFor(lsn))
		}
	}
	if err := l.Append(recordFor(122)); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("Append(122) after reopen = %v, want ErrOutOfOrder", err)
	}
	appendRange(t, l, 121, 200)
	checkRecords(t, readAll(t, l, 1), 1, 200)
}

func TestAppendOutOfOrder(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
		err  error
	}{
		{"gap", Record{Term: termFor(12), LSN: 12}, ErrOutOfOrder},
		{"repeat", Record{Term: termFor(10), LSN: 10}, ErrOutOfOrder},
		{"zero", Record{Term: 1, LSN: 0}, ErrOutOfOrder},
		{"term goes back", Record{Term: termFor(10) - 1, LSN: 11}, ErrOutOfOrder},
		{"next", Record{Term: termFor(10), LSN: 11}, nil},
		{"next with new term", Record{Term: termFor(10) + 5, LSN: 11}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openLog(t, t.TempDir(), smallOpts(t))
			appendRange(t, l, 1, 10)
			if err := l.Append(tt.rec); !errors.Is(err, tt.err) {
				t.Fatalf("Append(%+v) = %v, want %v", tt.rec, err, tt.err)
			}
			want := uint64(10)
			if tt.err == nil {
				want = 11
			}
			if _, last := l.Last(); last != want {
				t.Fatalf("Last lsn = %d, want %d", last, want)
			}
		})
	}

	t.Run("batch is all or nothing", func(t *testing.T) {
		l := openLog(t, t.TempDir(), smallOpts(t))
		appendRange(t, l, 1, 10)
		batch := []Record{recordFor(11), recordFor(12), recordFor(14)}
		if err := l.AppendBatch(batch); !errors.Is(err, ErrOutOfOrder) {
			t.Fatalf("AppendBatch with a gap = %v, want ErrOutOfOrder", err)
		}
		checkLast(t, l, termFor(10), 10)
	})
}

func TestAppendBatch(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallOpts(t))
	var batch []Record
	next := uint64(1)
	for _, size := range []int{1, 5, 40, 3, 100} {
		batch = batch[:0]
		for range size {
			batch = append(batch, recordFor(next))
			next++
		}
		if err := l.AppendBatch(batch); err != nil {
			t.Fatalf("AppendBatch(%d records): %v", size, err)
		}
	}
	if err := l.AppendBatch(nil); err != nil {
		t.Fatalf("AppendBatch(nil): %v", err)
	}
	checkLast(t, l, termFor(next-1), next-1)
	checkRecords(t, readAll(t, l, 1), 1, next-1)
	for _, f := range segmentFiles(t, dir) {
		if fi, _ := os.Stat(f); fi.Size() > MinSegmentSize {
			t.Errorf("%s is %d bytes: batch overfilled a segment", f, fi.Size())
		}
	}
}

func TestRecordLargerThanSegment(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallOpts(t))
	appendRange(t, l, 1, 3)
	big := Record{Term: termFor(4), LSN: 4, Payload: make([]byte, 3*MinSegmentSize)}
	if err := l.Append(big); err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, 5, 6)
	r, err := l.NewReader(4)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.Next()
	if err != nil || rec.LSN != 4 || len(rec.Payload) != len(big.Payload) {
		t.Fatalf("Next() = lsn %d, %d bytes, %v", rec.LSN, len(rec.Payload), err)
	}
	if n := len(segmentFiles(t, dir)); n != 3 {
		t.Fatalf("%d segments, want 3 (before, the big record alone, after)", n)
	}
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	openLog(t, dir, smallOpts(t))
	if _, err := Open(dir, smallOpts(t)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}

func TestReset(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallOpts(t))
	appendRange(t, l, 1, 40)
	r, err := l.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	if err := l.Reset(7, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrTruncated) {
		t.Fatalf("reader after Reset: %v, want ErrTruncated", err)
	}
	check := func(l *Log) {
		t.Helper()
		checkLast(t, l, 7, 1000)
		if got := l.First(); got != 0 {
			t.Fatalf("First() = %d, want 0", got)
		}
		if term, err := l.TermAt(1000); err != nil || term != 7 {
			t.Fatalf("TermAt(1000) = %d, %v; want 7", term, err)
		}
		if _, err := l.TermAt(999); !errors.Is(err, ErrPurged) {
			t.Fatalf("TermAt(999) = %v, want ErrPurged", err)
		}
		if _, err := l.NewReader(40); !errors.Is(err, ErrPurged) {
			t.Fatalf("NewReader(40) = %v, want ErrPurged", err)
		}
	}
	check(l)
	if err := l.Append(Record{Term: 6, LSN: 1001}); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("Append with a term below the reset term = %v, want ErrOutOfOrder", err)
	}
	l.Close()

	l = openLog(t, dir, smallOpts(t))
	check(l)
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Fatalf("%d segments after Reset, want 1", n)
	}
	for lsn := uint64(1001); lsn <= 1100; lsn++ {
		if err := l.Append(Record{Term: 7, LSN: lsn, Payload: payloadFor(lsn)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.First(); got != 1001 {
		t.Fatalf("First() = %d, want 1001", got)
	}
	recs := readAll(t, l, 1001)
	if len(recs) != 100 || recs[0].LSN != 1001 || recs[99].LSN != 1100 {
		t.Fatalf("read %d records after reset", len(recs))
	}
}
