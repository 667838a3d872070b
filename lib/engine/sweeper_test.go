package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestRunSweeper(t *testing.T) {
	d := newTestDB(t)
	var now atomic.Int64
	now.Store(1000)
	var muts []*zppb.Mutation
	for i := range 250 {
		exp := int64(0)
		if i%2 == 0 {
			exp = 2000
		}
		muts = append(muts, put(fmt.Sprintf("k%03d", i), "v", exp))
	}
	d.apply(muts...)

	// The node's side: recheck under the write lock, then log deletes.
	var mu sync.Mutex
	deleted := 0
	deleteFn := func(ctx context.Context, keys [][]byte) error {
		mu.Lock()
		defer mu.Unlock()
		var dels []*zppb.Mutation
		for _, k := range keys {
			if exp, err := d.Expired(k, now.Load()); err != nil {
				return err
			} else if exp {
				dels = append(dels, &zppb.Mutation{Kind: zppb.Mutation_DELETE, Key: k})
			}
		}
		if len(dels) > 0 {
			d.apply(dels...)
			deleted += len(dels)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// A pass reads the clock once per batch; with nothing expired a pass
	// is one batch.
	var clockReads atomic.Int64
	go func() {
		done <- d.RunSweeper(ctx, SweepOptions{
			Interval:  time.Millisecond,
			BatchSize: 10,
			Pause:     -1,
			Now:       func() int64 { clockReads.Add(1); return now.Load() },
			Delete:    deleteFn,
		})
	}()

	// Two whole passes before anything expired delete nothing.
	deadline := time.Now().Add(10 * time.Second)
	for clockReads.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the sweeper read the clock %d times in 10s; want passes every millisecond", clockReads.Load())
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	if deleted != 0 {
		t.Fatalf("swept %d keys before they expired", deleted)
	}
	mu.Unlock()

	now.Store(2000)
	deadline = time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := deleted
		mu.Unlock()
		if n == 125 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("swept %d keys, want 125", n)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("RunSweeper = %v, want context.Canceled", err)
	}
	if got := d.rawDataKeys(); got != 125 {
		t.Fatalf("%d raw keys left, want 125", got)
	}
}

func TestRunSweeperErrors(t *testing.T) {
	d := newTestDB(t)
	if err := d.RunSweeper(context.Background(), SweepOptions{}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("RunSweeper without Delete = %v", err)
	}
	d.apply(put("k", "v", 1))
	boom := errors.New("boom")
	err := d.RunSweeper(context.Background(), SweepOptions{
		Now:    func() int64 { return 10 },
		Delete: func(context.Context, [][]byte) error { return boom },
	})
	if !errors.Is(err, boom) {
		t.Fatalf("RunSweeper = %v, want the Delete error", err)
	}
}
