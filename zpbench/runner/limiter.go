package runner

import (
	"context"
	"sync/atomic"
	"time"
)

// Clock is the time source of a Limiter; tests use a fake one.
type Clock interface {
	Now() time.Time
	// SleepUntil returns when t is reached, or ctx's error when ctx ends
	// first.
	SleepUntil(ctx context.Context, t time.Time) error
}

// SystemClock is the real time.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// SleepUntil sleeps until t or until ctx ends.
func (SystemClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Limiter spaces operations evenly at a total rate, whatever the number of
// workers: operation n is scheduled at start + n/rate. Wait returns that
// scheduled time, and latency is measured from it rather than from when the
// request actually went out. When the target falls behind, operations queue
// behind their schedule and their latency includes the wait — what a user
// arriving at that rate would see. Measuring from the actual send instead
// (coordinated omission) hides exactly the stalls a benchmark is for.
type Limiter struct {
	clock    Clock
	start    time.Time
	interval float64 // nanoseconds between operations
	n        atomic.Int64
}

// NewLimiter returns a limiter at rate operations per second, starting now;
// nil when rate <= 0 (no limit). A nil *Limiter is valid and never waits.
func NewLimiter(rate float64, clock Clock) *Limiter {
	if rate <= 0 {
		return nil
	}
	if clock == nil {
		clock = SystemClock{}
	}
	return &Limiter{clock: clock, start: clock.Now(), interval: float64(time.Second) / rate}
}

// Wait takes the next slot of the schedule, waits for it and returns it. It
// returns ctx's error when ctx ends before the slot; the slot is then lost,
// which only matters at the end of a run.
func (l *Limiter) Wait(ctx context.Context) (time.Time, error) {
	if l == nil {
		return time.Now(), ctx.Err()
	}
	n := l.n.Add(1) - 1
	slot := l.start.Add(time.Duration(float64(n) * l.interval))
	return slot, l.clock.SleepUntil(ctx, slot)
}
