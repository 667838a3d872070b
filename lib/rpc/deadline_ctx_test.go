package rpc

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLazyDeadline(t *testing.T) {
	type key struct{}
	tests := []struct {
		name string
		// in is how far ahead the deadline is.
		in time.Duration
		// cancelParent cancels the parent before the checks.
		cancelParent bool
		// done asks for Done before the checks.
		done    bool
		wantErr error
	}{
		{"ahead, clock", time.Hour, false, false, nil},
		{"ahead, timer", time.Hour, false, true, nil},
		{"passed, clock", -time.Millisecond, false, false, context.DeadlineExceeded},
		{"passed, timer", -time.Millisecond, false, true, context.DeadlineExceeded},
		{"parent cancelled, clock", time.Hour, true, false, context.Canceled},
		{"parent cancelled, timer", time.Hour, true, true, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
			defer cancelParent()
			d := time.Now().Add(tt.in)
			ctx, release := withLazyDeadline(parent, d)
			defer release()
			if tt.cancelParent {
				cancelParent()
			}
			if tt.done {
				wait := 5 * time.Second // for a close that must come
				if tt.wantErr == nil {
					wait = 10 * time.Millisecond // for one that must not
				}
				select {
				case <-ctx.Done():
					if tt.wantErr == nil {
						t.Fatal("Done closed before the deadline")
					}
				case <-time.After(wait):
					if tt.wantErr != nil {
						t.Fatal("Done not closed")
					}
				}
			}
			if err := ctx.Err(); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Err = %v, want %v", err, tt.wantErr)
			}
			if got, ok := ctx.Deadline(); !ok || !got.Equal(d) {
				t.Fatalf("Deadline = %v %v, want %v", got, ok, d)
			}
			if ctx.Value(key{}) != "v" {
				t.Fatal("Value not the parent's")
			}
		})
	}
}

// A deadline that passes while a request waits on Done ends the wait, and
// the parent's earlier deadline is the one reported.
func TestLazyDeadlineFires(t *testing.T) {
	parent, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	ctx, release := withLazyDeadline(parent, time.Now().Add(20*time.Millisecond))
	defer release()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("deadline did not end the wait")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v", ctx.Err())
	}
	early := time.Now().Add(time.Minute)
	p2, cancel2 := context.WithDeadline(context.Background(), early)
	defer cancel2()
	c2, release2 := withLazyDeadline(p2, early.Add(time.Hour))
	defer release2()
	if d, _ := c2.Deadline(); !d.Equal(early) {
		t.Fatalf("Deadline = %v, want the parent's %v", d, early)
	}
	// A child context of it is cancelled with it.
	child, cancelChild := context.WithCancel(c2)
	defer cancelChild()
	cancel2()
	select {
	case <-child.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("child not cancelled with its parent")
	}
}
