package binlog

import (
	"errors"
	"os"
	"testing"
)

// TestTornTail damages the end of the last segment the ways a crash or a
// bad disk can, and checks that Open keeps every record before the damage
// and that appends continue after it.
func TestTornTail(t *testing.T) {
	const n = 20 // all in the first, only, segment with 64 KiB segments
	tests := []struct {
		name   string
		damage func(t *testing.T, path string, size int64)
		last   uint64 // Last lsn after reopening
	}{
		{"cut mid payload", func(t *testing.T, path string, size int64) {
			truncateFile(t, path, size-5)
		}, n - 1},
		{"cut mid header", func(t *testing.T, path string, size int64) {
			truncateFile(t, path, size-encodedSize(recordFor(n))+10)
		}, n - 1},
		{"cut whole record", func(t *testing.T, path string, size int64) {
			truncateFile(t, path, size-encodedSize(recordFor(n)))
		}, n - 1},
		{"flip payload byte", func(t *testing.T, path string, size int64) {
			flipByte(t, path, size-3)
		}, n - 1},
		{"flip length byte", func(t *testing.T, path string, size int64) {
			flipByte(t, path, size-encodedSize(recordFor(n))+4)
		}, n - 1},
		{"flip byte in an earlier record", func(t *testing.T, path string, size int64) {
			flipByte(t, path, size-encodedSize(recordFor(n))-encodedSize(recordFor(n-1))+recordHeaderSize+2)
		}, n - 2},
		{"zeroed tail", func(t *testing.T, path string, size int64) {
			appendBytes(t, path, make([]byte, 4096))
		}, n},
		{"garbage tail", func(t *testing.T, path string, size int64) {
			appendBytes(t, path, []byte("\x01\x02\x03\x04\xff\xff\xff\x7f garbage"))
		}, n},
		{"cut to header", func(t *testing.T, path string, size int64) {
			truncateFile(t, path, segmentHeaderSize)
		}, 0},
		{"cut into header of a record-less tail", func(t *testing.T, path string, size int64) {
			truncateFile(t, path, segmentHeaderSize+recordHeaderSize-1)
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := smallOpts(t)
			opts.SegmentSize = 64 << 10
			l, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			appendRange(t, l, 1, n)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			files := segmentFiles(t, dir)
			path := files[len(files)-1]
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(t, path, fi.Size())

			l = openLog(t, dir, opts)
			wantTerm := termFor(tt.last)
			if tt.last == 0 {
				wantTerm = 0
			}
			checkLast(t, l, wantTerm, tt.last)
			checkRecords(t, readAll(t, l, 1), 1, tt.last)
			appendRange(t, l, tt.last+1, n+10)
			checkRecords(t, readAll(t, l, 1), 1, n+10)
			l.Close()

			// The repair stuck: a second reopen finds a clean log.
			l = openLog(t, dir, opts)
			checkLast(t, l, termFor(n+10), n+10)
		})
	}
}

// TestTornTailAfterRoll damages the newest of several segments.
func TestTornTailAfterRoll(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, smallOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, 1, 100)
	l.Close()
	files := segmentFiles(t, dir)
	last := files[len(files)-1]
	first, _ := parseSegmentName(baseName(last))
	fi, _ := os.Stat(last)
	truncateFile(t, last, fi.Size()-1)

	l = openLog(t, dir, smallOpts(t))
	checkLast(t, l, termFor(99), 99)
	if first == 100 {
		t.Log("last segment held only the damaged record")
	}
	appendRange(t, l, 100, 150)
	checkRecords(t, readAll(t, l, 1), 1, 150)
}

func TestCorruptSealedSegment(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, smallOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, 1, 100)
	l.Close()
	files := segmentFiles(t, dir)
	flipByte(t, files[1], segmentHeaderSize+recordHeaderSize+2) // first record of the second segment
	second, _ := parseSegmentName(baseName(files[1]))

	// Open only checks the last segment; the damage shows when read.
	l = openLog(t, dir, smallOpts(t))
	checkLast(t, l, termFor(100), 100)
	r, err := l.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for lsn := uint64(1); lsn < second; lsn++ {
		if rec, err := r.Next(); err != nil || rec.LSN != lsn {
			t.Fatalf("Next() = %d, %v; want %d", rec.LSN, err, lsn)
		}
	}
	if _, err := r.Next(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Next() on the damaged record = %v, want ErrCorrupt", err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Reader errors are sticky; got %v", err)
	}
	if _, err := l.TermAt(second); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("TermAt(%d) = %v, want ErrCorrupt", second, err)
	}
	// Segments before and after are fine.
	if term, err := l.TermAt(1); err != nil || term != termFor(1) {
		t.Fatalf("TermAt(1) = %d, %v", term, err)
	}
}

func TestCorruptSegmentHeader(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, smallOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, 1, 30)
	l.Close()
	files := segmentFiles(t, dir)
	flipByte(t, files[0], 9) // first lsn field
	if _, err := Open(dir, smallOpts(t)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a damaged segment header = %v, want ErrCorrupt", err)
	}
}

func TestLeftoverTempSegment(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, smallOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, 1, 5)
	l.Close()
	tmp := dir + "/" + segmentName(6) + tmpExt
	if err := os.WriteFile(tmp, []byte("half a header"), 0o644); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, smallOpts(t))
	checkLast(t, l, termFor(5), 5)
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("leftover temp segment still there: %v", err)
	}
}

func baseName(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[i+1:]
		}
	}
	return path
}

func truncateFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}
