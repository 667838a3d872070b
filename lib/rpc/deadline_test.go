package rpc

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestDeadlineCountsFromArrival queues a request behind one that blocks on
// the same connection: its deadline counts from when it arrived, not from
// when the server got to it, so one whose deadline passed in the queue is
// answered TIMEOUT without running (nor being prepared), and one with time
// left runs with the deadline its arrival set.
func TestDeadlineCountsFromArrival(t *testing.T) {
	// queued is how long the request waits behind the blocking one: far
	// above the short timeout and the time the server takes to read it.
	const queued = 500 * time.Millisecond
	tests := []struct {
		name      string
		timeoutMs int64
		// pipelined sends one more request behind it, so that it is
		// offered to Prepare.
		pipelined bool
		wantCode  zppb.Code
		wantRun   bool
	}{
		{name: "expired in the queue", timeoutMs: 20, wantCode: zppb.Code_TIMEOUT},
		{name: "expired in the queue, pipelined", timeoutMs: 20, pipelined: true, wantCode: zppb.Code_TIMEOUT},
		{name: "time left", timeoutMs: 60_000, wantCode: zppb.Code_OK, wantRun: true},
		{name: "time left, pipelined", timeoutMs: 60_000, pipelined: true, wantCode: zppb.Code_OK, wantRun: true},
		{name: "no deadline", wantCode: zppb.Code_OK, wantRun: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			var (
				mu        sync.Mutex
				ran       bool
				deadline  time.Time
				hasDL     bool
				preparedK []string
			)
			record := func(ctx context.Context, key string) {
				mu.Lock()
				defer mu.Unlock()
				if key == "target" {
					ran = true
					deadline, hasDL = ctx.Deadline()
				}
			}
			answer := func(key string) *zppb.Response {
				return &zppb.Response{Result: &zppb.Response_Get{Get: &zppb.GetResponse{Value: []byte(key)}}}
			}
			_, addr := startServerConfig(t, ServerConfig{
				Handler: func(ctx context.Context, req *zppb.Request) *zppb.Response {
					key := string(req.GetGet().GetKey())
					if key == "block" {
						<-release
					}
					record(ctx, key)
					return answer(key)
				},
				Prepare: func(ctx context.Context, req *zppb.Request) Prepared {
					key := string(req.GetGet().GetKey())
					if key == "block" {
						return nil
					}
					mu.Lock()
					preparedK = append(preparedK, key)
					mu.Unlock()
					record(ctx, key)
					return answered{answer(key)}
				},
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Dial(ctx, addr, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			block, err := c.Send(context.Background(), getReq("block"))
			if err != nil {
				t.Fatal(err)
			}
			target := getReq("target")
			target.TimeoutMs = tt.timeoutMs
			sent := time.Now()
			p, err := c.Send(context.Background(), target)
			if err != nil {
				t.Fatal(err)
			}
			var tail *Pending
			if tt.pipelined {
				if tail, err = c.Send(context.Background(), getReq("tail")); err != nil {
					t.Fatal(err)
				}
			}
			// The target waits in the queue for queued.
			time.Sleep(time.Until(sent.Add(queued)))
			released := time.Now()
			close(release)

			if _, err := block.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			resp, err := p.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tail != nil {
				if resp, err := tail.Wait(ctx); err != nil || string(resp.GetGet().GetValue()) != "tail" {
					t.Fatalf("request behind the target: %v %v", resp, err)
				}
			}
			if resp.Code != tt.wantCode {
				t.Fatalf("code %v (%s), want %v", resp.Code, resp.Msg, tt.wantCode)
			}
			mu.Lock()
			defer mu.Unlock()
			if ran != tt.wantRun {
				t.Fatalf("target ran: %v, want %v (prepared: %q)", ran, tt.wantRun, preparedK)
			}
			switch {
			case !ran:
			case tt.timeoutMs == 0 && hasDL:
				t.Fatalf("request without timeout_ms got deadline %v", deadline)
			case tt.timeoutMs > 0:
				// Counted from its arrival, shortly after it was sent,
				// not from when it was handled, after the release.
				want := time.Duration(tt.timeoutMs) * time.Millisecond
				if !hasDL || !deadline.Before(released.Add(want)) || deadline.Before(sent.Add(want)) {
					t.Fatalf("deadline %v after sending, want %v counted from its arrival (released after %v)",
						deadline.Sub(sent), want, released.Sub(sent))
				}
			}
		})
	}
}
