package binlog

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// TestReaderTailsLiveLog follows a log while another goroutine appends to
// it across many segment rolls.
func TestReaderTailsLiveLog(t *testing.T) {
	const n = 2000
	opts := smallOpts(t)
	opts.Sync = SyncInterval
	opts.SyncInterval = time.Millisecond
	l := openLog(t, t.TempDir(), opts)
	appendRange(t, l, 1, 10)

	r, err := l.NewReader(5)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	var wg sync.WaitGroup
	wg.Go(func() {
		for lsn := uint64(11); lsn <= n; lsn++ {
			if err := l.Append(recordFor(lsn)); err != nil {
				t.Errorf("Append(%d): %v", lsn, err)
				return
			}
			if lsn%97 == 0 {
				time.Sleep(100 * time.Microsecond) // let the reader catch up now and then
			}
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []Record
	eofs := 0
	for uint64(len(got)) < n-4 {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			eofs++
			if err := r.Wait(ctx); err != nil {
				t.Fatalf("Wait after %d records: %v", len(got), err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Next after %d records: %v", len(got), err)
		}
		got = append(got, rec)
	}
	wg.Wait()
	checkRecords(t, got, 5, n)
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next at the end = %v, want io.EOF", err)
	}
	t.Logf("reader hit the end %d times", eofs)
}

func TestReaderAtEnd(t *testing.T) {
	l := openLog(t, t.TempDir(), smallOpts(t))
	appendRange(t, l, 1, 3)
	r, err := l.NewReader(4)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next() = %v, want io.EOF", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with nothing appended = %v, want DeadlineExceeded", err)
	}

	appendRange(t, l, 4, 4)
	if err := r.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec, err := r.Next(); err != nil || rec.LSN != 4 {
		t.Fatalf("Next() = %d, %v; want 4", rec.LSN, err)
	}

	// Close wakes waiters.
	done := make(chan error, 1)
	go func() { done <- r.Wait(context.Background()) }()
	time.Sleep(10 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Wait across Close = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after Close")
	}
	if _, err := r.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close = %v, want ErrClosed", err)
	}
}

func TestNewReaderBounds(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallOpts(t))
	appendRange(t, l, 1, 100)
	firsts, _ := listSegments(dir)
	if _, err := l.PurgeBefore(firsts[2]); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		from uint64
		err  error
	}{
		{0, ErrPurged},
		{firsts[2] - 1, ErrPurged},
		{firsts[2], nil},
		{100, nil},
		{101, nil},
		{102, ErrNotFound},
	}
	for _, tt := range tests {
		r, err := l.NewReader(tt.from)
		if !errors.Is(err, tt.err) {
			t.Errorf("NewReader(%d) = %v, want %v", tt.from, err, tt.err)
		}
		if r != nil {
			r.Close()
		}
	}
}
