package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

type nopConn struct{}

func (nopConn) Call(context.Context, *zppb.Request) (*zppb.Response, error) { return nil, nil }
func (nopConn) Close() error                                                { return nil }

// A hundred slave replicas retrying a master node that refuses connections
// cost it a few probes, not a hundred dials per round; once it takes
// connections again, every one of them gets through.
func TestPeerGateProbesOnceForAll(t *testing.T) {
	var up atomic.Bool
	var dials atomic.Int64
	refused := errors.New("connection refused")
	dial := func(ctx context.Context, addr string) (replica.Conn, error) {
		dials.Add(1)
		if !up.Load() {
			return nil, refused
		}
		return nopConn{}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := newPeerGate(ctx, dial)
	defer func() {
		cancel()
		g.wait()
	}()

	const slaves = 100
	var wg sync.WaitGroup
	var tries, connected atomic.Int64
	for range slaves {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A slave's syncer: dial, and on failure again after a
			// short backoff, until connected.
			for {
				tries.Add(1)
				dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
				c, err := g.Dial(dctx, "master:1")
				dcancel()
				if err == nil {
					c.Close()
					connected.Add(1)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	// Every slave tried, and then the prober three times more (50, 100
	// and 200 ms apart): without the gate each slave would have dialled
	// about 300 times by then.
	waitFor(t, "every slave to try", func() bool { return tries.Load() >= slaves })
	d0 := dials.Load()
	waitFor(t, "three more dials", func() bool { return dials.Load() >= d0+3 })
	if n := tries.Load(); n > 2*slaves {
		t.Fatalf("the slaves tried %d times while the master refused connections; want them waiting for the prober", n)
	}
	up.Store(true)
	wg.Wait()
	if got := connected.Load(); got != slaves {
		t.Fatalf("%d of %d slaves connected once the master took connections", got, slaves)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A dial that fails because its own context ended says nothing of the
// peer: it leaves the gate open.
func TestPeerGateIgnoresCallersDeadline(t *testing.T) {
	dial := func(ctx context.Context, addr string) (replica.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := newPeerGate(ctx, dial)
	defer func() {
		cancel()
		g.wait()
	}()
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer dcancel()
	if _, err := g.Dial(dctx, "slow:1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial = %v", err)
	}
	g.mu.Lock()
	n := len(g.down)
	g.mu.Unlock()
	if n != 0 {
		t.Fatalf("a caller's own deadline marked the peer down")
	}
}

// No prober starts once wait has begun, even before the context ends: a
// slave's dial that failed as the server closed started one while wait
// ran (a WaitGroup Add racing its Wait; TestRouting under -race).
func TestPeerGateNoProberAfterWait(t *testing.T) {
	dial := func(ctx context.Context, addr string) (replica.Conn, error) {
		return nil, errors.New("connection refused")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := newPeerGate(ctx, dial)
	g.wait()
	if _, err := g.Dial(ctx, "master:1"); err == nil {
		t.Fatal("Dial of a refusing peer succeeded")
	}
	g.mu.Lock()
	n := len(g.down)
	g.mu.Unlock()
	if n != 0 {
		t.Fatalf("a prober started after wait")
	}
}
