package binlog

import (
	"slices"
	"testing"
)

func TestTerms(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{SegmentSize: MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	// Terms 1, 1, ..., 3, ..., 4 across several segments.
	terms := []uint64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4}
	payload := make([]byte, 200)
	for i, term := range terms {
		if err := l.Append(Record{Term: term, LSN: uint64(i + 1), Payload: payload}); err != nil {
			t.Fatal(err)
		}
	}
	want := []TermStart{{1, 1}, {3, 11}, {4, 19}}
	got, err := l.Terms()
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Terms() = %v, %v; want %v", got, err, want)
	}
	l.Close()

	// After reopening, sealed segments are read again to answer.
	l, err = Open(dir, Options{SegmentSize: MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, err := l.Terms(); err != nil || !slices.Equal(got, want) {
		t.Fatalf("after reopen Terms() = %v, %v; want %v", got, err, want)
	}

	if err := l.TruncateAfter(12); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Terms(); err != nil || !slices.Equal(got, want[:2]) {
		t.Fatalf("after truncate Terms() = %v, %v; want %v", got, err, want[:2])
	}

	if err := l.Reset(7, 100); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Terms(); err != nil || !slices.Equal(got, []TermStart{{7, 100}}) {
		t.Fatalf("after reset Terms() = %v, %v; want [{7 100}]", got, err)
	}
}
