package server

import (
	"context"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestNotifyDelay: notifyPaced NOTIFYs a small cluster's nodes at once and
// spreads a large one's over time, never more than notifyPerTick a tick
// after the first burst.
func TestNotifyDelay(t *testing.T) {
	for _, tc := range []struct {
		i    int
		want time.Duration
	}{
		{0, 0},
		{notifyBurst - 1, 0},
		{notifyBurst, notifyTick},
		{notifyBurst + notifyPerTick - 1, notifyTick},
		{notifyBurst + notifyPerTick, 2 * notifyTick},
		{999, time.Duration((999-notifyBurst)/notifyPerTick+1) * notifyTick},
	} {
		if got := notifyDelay(tc.i); got != tc.want {
			t.Errorf("notifyDelay(%d) = %v, want %v", tc.i, got, tc.want)
		}
	}
	// A thousand nodes all hear within a second.
	if d := notifyDelay(999); d > time.Second {
		t.Errorf("the 1,000th node is NOTIFYed %v after the change", d)
	}
}

// TestAdmitNodeWork: at most cap(nodeWork) PULLs run at once; the
// next one waits, parked, and gives up with TIMEOUT at its deadline.
func TestAdmitNodeWork(t *testing.T) {
	s := &Server{nodeWork: make(chan struct{}, 2)}
	ctx := context.Background()
	var done []func()
	for range 2 {
		d, err := s.admitNodeWork(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, d)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := s.admitNodeWork(short); status.Code(err) != zppb.Code_TIMEOUT {
		t.Fatalf("a third at once: %v, want TIMEOUT", err)
	}
	done[0]()
	d, err := s.admitNodeWork(ctx)
	if err != nil {
		t.Fatalf("after one ended: %v", err)
	}
	d()
	done[1]()
}
