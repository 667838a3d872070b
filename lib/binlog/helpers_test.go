package binlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// testLogger discards output unless the test runs with -v.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// smallOpts gives segments of about eight records of the test payloads.
func smallOpts(t testing.TB) Options {
	return Options{SegmentSize: MinSegmentSize, Sync: SyncNone, Logger: testLogger(t)}
}

// termFor gives the test records a term that changes every 50 records.
func termFor(lsn uint64) uint64 { return 1 + lsn/50 }

// payloadFor gives each test record a distinct payload of 20 to 120 bytes.
func payloadFor(lsn uint64) []byte {
	p := fmt.Appendf(nil, "record-%d|", lsn)
	for len(p) < 20+int(lsn%100) {
		p = append(p, byte('a'+lsn%26))
	}
	return p
}

func recordFor(lsn uint64) Record {
	return Record{Term: termFor(lsn), LSN: lsn, Payload: payloadFor(lsn)}
}

func openLog(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// appendRange appends the test records from..to inclusive.
func appendRange(t testing.TB, l *Log, from, to uint64) {
	t.Helper()
	for lsn := from; lsn <= to; lsn++ {
		if err := l.Append(recordFor(lsn)); err != nil {
			t.Fatalf("Append(%d): %v", lsn, err)
		}
	}
}

// readAll reads from lsn from to the current end and checks every record
// against recordFor.
func readAll(t testing.TB, l *Log, from uint64) []Record {
	t.Helper()
	r, err := l.NewReader(from)
	if err != nil {
		t.Fatalf("NewReader(%d): %v", from, err)
	}
	defer r.Close()
	var out []Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next after %d records from %d: %v", len(out), from, err)
		}
		out = append(out, rec)
	}
}

func checkRecords(t testing.TB, recs []Record, from, to uint64) {
	t.Helper()
	want := 0
	if from <= to {
		want = int(to - from + 1)
	}
	if len(recs) != want {
		t.Fatalf("read %d records, want lsn %d..%d", len(recs), from, to)
	}
	for i, rec := range recs {
		want := recordFor(from + uint64(i))
		if rec.LSN != want.LSN || rec.Term != want.Term || !bytes.Equal(rec.Payload, want.Payload) {
			t.Fatalf("record %d = {term %d lsn %d %q}, want {term %d lsn %d %q}",
				i, rec.Term, rec.LSN, rec.Payload, want.Term, want.LSN, want.Payload)
		}
	}
}

func checkLast(t testing.TB, l *Log, term, lsn uint64) {
	t.Helper()
	if gt, gl := l.Last(); gt != term || gl != lsn {
		t.Fatalf("Last() = (%d, %d), want (%d, %d)", gt, gl, term, lsn)
	}
}

// segmentFiles lists the segment files in dir, oldest first.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, ok := parseSegmentName(d.Name()); ok {
			names = append(names, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}
