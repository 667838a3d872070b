package binlog

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestGroupCommit runs concurrent writers under SyncAlways, each waiting
// for its own record, and checks that they shared syncs.
func TestGroupCommit(t *testing.T) {
	const (
		writers   = 16
		perWriter = 50
	)
	opts := smallOpts(t)
	opts.Sync = SyncAlways
	opts.SegmentSize = 1 << 20
	l := openLog(t, t.TempDir(), opts)

	// The node assigns LSNs under a lock; appends then wait in parallel.
	var (
		lsnMu sync.Mutex
		next  uint64 = 1
		wg    sync.WaitGroup
		errs  = make(chan error, writers)
	)
	for range writers {
		wg.Go(func() {
			for range perWriter {
				lsnMu.Lock()
				lsn := next
				err := l.Append(recordFor(lsn))
				next++
				lsnMu.Unlock()
				if err != nil {
					errs <- err
					return
				}
				if err := l.WaitDurable(context.Background(), lsn); err != nil {
					errs <- err
					return
				}
				// What WaitDurable confirmed is durable.
				if d := l.Durable(); d < lsn {
					errs <- errors.New("WaitDurable returned before the record was synced")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	const total = writers * perWriter
	st := l.Stats()
	if st.Durable != total || st.Appends != total {
		t.Fatalf("Stats = %+v, want %d appends, all durable", st, total)
	}
	t.Logf("%d appends, %d syncs", st.Appends, st.Syncs)
	if st.Syncs >= total {
		t.Fatalf("%d syncs for %d appends: no group commit", st.Syncs, total)
	}
	checkRecords(t, readAll(t, l, 1), 1, total)
}

func TestWaitDurable(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		t.Run(policy.String(), func(t *testing.T) {
			opts := smallOpts(t)
			opts.Sync = policy
			opts.SyncInterval = time.Hour // no background sync during the test
			l := openLog(t, t.TempDir(), opts)
			appendRange(t, l, 1, 10)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := l.WaitDurable(ctx, 10); err != nil {
				t.Fatalf("WaitDurable(10) = %v", err)
			}
			switch policy {
			case SyncAlways:
				if d := l.Durable(); d != 10 {
					t.Fatalf("Durable() = %d after WaitDurable(10)", d)
				}
			default:
				if d := l.Durable(); d != 0 {
					t.Fatalf("Durable() = %d: %v synced on its own", d, policy)
				}
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
				if d := l.Durable(); d != 10 {
					t.Fatalf("Durable() = %d after Sync", d)
				}
			}
			if err := l.WaitDurable(ctx, 11); !errors.Is(err, ErrNotFound) {
				t.Fatalf("WaitDurable(11) = %v, want ErrNotFound", err)
			}
			done, cancelDone := context.WithCancel(context.Background())
			cancelDone()
			if err := l.WaitDurable(done, 5); err != nil {
				t.Fatalf("WaitDurable of a durable record with a done context = %v", err)
			}
			l.Close()
			if err := l.WaitDurable(ctx, 5); !errors.Is(err, ErrClosed) {
				t.Fatalf("WaitDurable after Close = %v, want ErrClosed", err)
			}
		})
	}
}

func TestIntervalSyncsInBackground(t *testing.T) {
	opts := smallOpts(t)
	opts.Sync = SyncInterval
	opts.SyncInterval = time.Millisecond
	l := openLog(t, t.TempDir(), opts)
	appendRange(t, l, 1, 5)
	deadline := time.Now().Add(10 * time.Second)
	for l.Durable() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("Durable() = %d after 10s with a 1ms interval", l.Durable())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRollMakesSegmentsDurable(t *testing.T) {
	opts := smallOpts(t)
	opts.Sync = SyncNone
	l := openLog(t, t.TempDir(), opts)
	appendRange(t, l, 1, 100)
	files, _ := listSegments(l.Dir())
	active := files[len(files)-1]
	if d := l.Durable(); d != active-1 {
		t.Fatalf("Durable() = %d under SyncNone, want %d (everything before the active segment)", d, active-1)
	}
}
