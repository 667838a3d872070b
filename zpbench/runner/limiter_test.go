package runner

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeClock jumps to whatever time a sleeper asks for.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	return ctx.Err()
}

// TestLimiterSchedule checks the schedule itself: operation n is due at
// start + n/rate, whoever asks.
func TestLimiterSchedule(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	l := NewLimiter(400, clock)
	start := clock.Now()
	var wg sync.WaitGroup
	slots := make(chan time.Time, 1000)
	for range 10 {
		wg.Go(func() {
			for range 100 {
				s, err := l.Wait(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				slots <- s
			}
		})
	}
	wg.Wait()
	close(slots)
	seen := make(map[time.Duration]bool)
	for s := range slots {
		seen[s.Sub(start)] = true
	}
	for n := range 1000 {
		want := time.Duration(n) * time.Second / 400
		if !seen[want] {
			t.Fatalf("no operation scheduled at +%v", want)
		}
	}
	if got := clock.Now().Sub(start); got != 999*time.Second/400 {
		t.Errorf("clock at +%v after 1000 operations, want +%v", got, 999*time.Second/400)
	}
}

// TestLimiterDeadline counts what a limiter lets through before a deadline
// on the fake clock: exactly the slots before it.
func TestLimiterDeadline(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	l := NewLimiter(1000, clock)
	deadline := clock.Now().Add(250 * time.Millisecond)
	n := 0
	for {
		s, _ := l.Wait(context.Background())
		if !s.Before(deadline) {
			break
		}
		n++
	}
	if n != 250 {
		t.Fatalf("%d operations before the deadline at 1000/s for 250ms, want 250", n)
	}
}

func TestNilLimiter(t *testing.T) {
	var l *Limiter = NewLimiter(0, nil)
	if l != nil {
		t.Fatal("NewLimiter(0) is not nil")
	}
	if _, err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Wait(ctx); err == nil {
		t.Fatal("Wait on an ended context succeeded")
	}
}
