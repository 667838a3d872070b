package rpc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestAbandonGrace: with SetAbandonGrace, a call abandoned by its caller
// leaves the connection open while the server still answers (its late
// answer is dropped and the next call goes on the same connection), or
// while a call ahead of it takes longer than the grace and its caller
// waits, and closes it when the server stops answering.
func TestAbandonGrace(t *testing.T) {
	cases := []struct {
		name string
		// serverWait is how long the server takes to answer the
		// abandoned call ("block" waits out the request's timeout).
		serverWait time.Duration
		grace      time.Duration
		wantOpen   bool
	}{
		{"late answer keeps the connection", 300 * time.Millisecond, 5 * time.Second, true},
		{"no answer closes it after the grace", time.Minute, 200 * time.Millisecond, false},
		{"a long call ahead keeps it", 300 * time.Millisecond, 200 * time.Millisecond, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, c := dialEcho(t)
			c.SetAbandonGrace(tc.grace)
			var ahead *Pending
			if strings.Contains(tc.name, "ahead") {
				// Answered after 1 s, five graces; its caller waits.
				req := getReq("block")
				req.TimeoutMs = 1000
				var err error
				if ahead, err = c.Send(ctx, req); err != nil {
					t.Fatal(err)
				}
			}
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			req := getReq("block")
			req.TimeoutMs = tc.serverWait.Milliseconds()
			if _, err := c.Call(short, req); !IsTransport(err) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("abandoned call: %v, want a transport error wrapping DeadlineExceeded", err)
			}
			if !tc.wantOpen {
				deadline := time.Now().Add(10 * time.Second)
				for !c.Closed() {
					if time.Now().After(deadline) {
						t.Fatal("connection still open 10 s after a call the server never answered")
					}
					time.Sleep(10 * time.Millisecond)
				}
				if !strings.Contains(c.Err().Error(), "no response") {
					t.Fatalf("closed with %v", c.Err())
				}
				return
			}
			if ahead != nil {
				if _, err := ahead.Wait(ctx); err != nil {
					t.Fatalf("the call ahead: %v", err)
				}
			}
			resp, err := c.Call(ctx, getReq("k"))
			if err != nil || string(resp.GetGet().GetValue()) != "k" {
				t.Fatalf("next call on the connection: %v, %v", resp, err)
			}
			if c.Closed() {
				t.Fatalf("connection closed: %v", c.Err())
			}
		})
	}
}
