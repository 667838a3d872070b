package rpc

import (
	"context"
	"sync"
	"time"
)

// deadlineCtx is a request's context: its parent (the server's) bounded by
// the caller's deadline. context.WithDeadline would start a timer for every
// request and register it with the parent, which costs more than a read
// served from the cache; most requests never wait, so the timer is started
// only when a request asks for Done, and Err is answered from the clock
// until then. Its Value comes from the parent, so context.Cause of it is
// the parent's cause: nothing on the server side asks for it.
type deadlineCtx struct {
	context.Context // the parent: Value comes from it
	deadline        time.Time

	mu     sync.Mutex
	inner  context.Context // set on the first Done
	cancel context.CancelFunc
}

// withLazyDeadline returns parent bounded by d, and the function that
// releases it (stopping its timer, if Done started one).
func withLazyDeadline(parent context.Context, d time.Time) (context.Context, context.CancelFunc) {
	c := &deadlineCtx{Context: parent, deadline: d}
	return c, c.release
}

// Deadline returns the request's deadline, or the parent's when that is
// earlier.
func (c *deadlineCtx) Deadline() (time.Time, bool) {
	if pd, ok := c.Context.Deadline(); ok && pd.Before(c.deadline) {
		return pd, true
	}
	return c.deadline, true
}

// Done starts the timer on its first call.
func (c *deadlineCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inner == nil {
		c.inner, c.cancel = context.WithDeadline(c.Context, c.deadline)
	}
	return c.inner.Done()
}

// Err is the timer's answer once Done started it, else the parent's error
// or, past the deadline, context.DeadlineExceeded.
func (c *deadlineCtx) Err() error {
	c.mu.Lock()
	inner := c.inner
	c.mu.Unlock()
	if inner != nil {
		return inner.Err()
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *deadlineCtx) release() {
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}
