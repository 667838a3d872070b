package client

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Client talks to one cluster. It is safe for concurrent use; create one
// per process and share it, since it holds the topology cache and the
// connection pools.
type Client struct {
	opts  Options
	metas []string
	pool  *rpc.Pool
	topo  *topology
	log   *slog.Logger

	// baseCtx ends on Close: it bounds background PULLs and cuts short the
	// calls in flight.
	baseCtx context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  atomic.Bool
	// metaPref is the index of the meta server that answered last.
	metaPref atomic.Int32
	// seen is the newest epoch any server (or an admin write) reported:
	// the cluster has reached it even when the meta server asked next has
	// not.
	seen atomic.Uint64

	flightMu sync.Mutex
	flight   *pullFlight
	// pullGen is the generation of the latest PULL flight started.
	pullGen atomic.Uint64
	// lastPullFailure is when the last PULL failed; zero after a success.
	lastPullFailure time.Time
	// onJoin, when set by tests, runs (under flightMu) each time a refresh
	// joins a PULL in progress.
	onJoin func()
}

// New returns a Client for the cluster whose meta servers are
// opts.MetaAddrs. Unless opts.LazyPull is set it PULLs the topology first
// and fails when no meta server answers within ctx (or DefaultTimeout).
func New(ctx context.Context, opts Options) (*Client, error) {
	opts.MetaAddrs = slices.Clone(opts.MetaAddrs)
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	baseCtx, cancel := context.WithCancel(context.Background())
	c := &Client{
		opts:  opts,
		metas: opts.MetaAddrs,
		pool: rpc.NewPool(rpc.PoolOptions{
			ConnsPerAddr: opts.PoolConnsPerAddr,
			DialTimeout:  opts.DialTimeout,
		}),
		topo:    newTopology(),
		log:     opts.Logger.With("component", "zpclient"),
		baseCtx: baseCtx,
		cancel:  cancel,
	}
	// Spread clients over the meta servers rather than all starting with the
	// first one.
	c.metaPref.Store(int32(rand.IntN(len(c.metas))))
	if !opts.LazyPull {
		ctx, cancel := c.withTimeout(ctx)
		defer cancel()
		topo, err := c.pullOnce(ctx, "", 0)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("client: initial pull: %w", err)
		}
		c.topo.install(topo)
	}
	return c, nil
}

// Close ends the calls in flight (they fail with ErrClosed) and closes every
// connection. Later calls fail with ErrClosed.
func (c *Client) Close() error {
	c.flightMu.Lock()
	already := c.closed.Swap(true)
	c.flightMu.Unlock()
	if already {
		return nil
	}
	c.cancel()
	c.wg.Wait()
	return c.pool.Close()
}

// Epoch returns the epoch of the cached topology; 0 before the first PULL.
func (c *Client) Epoch() uint64 { return c.topo.epoch() }

// withTimeout bounds ctx by DefaultTimeout when it has no deadline, and
// ends it on Close.
// attemptContext bounds one attempt at a node, within the call's ctx, by
// Options.AttemptTimeout.
func (c *Client) attemptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.opts.AttemptTimeout < 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.opts.AttemptTimeout)
}

// attemptOutran reports whether a node's TIMEOUT or NOT_ENOUGH_REPLICAS
// answer came from the attempt's deadline while the call has time left:
// the request is then sent again with its id, and a write still waiting
// for slaves is waited for again rather than written twice.
func attemptOutran(ctx context.Context, code zppb.Code) bool {
	return (code == zppb.Code_TIMEOUT || code == zppb.Code_NOT_ENOUGH_REPLICAS) && !expired(ctx)
}

func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if _, ok := ctx.Deadline(); ok {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, c.opts.DefaultTimeout)
	}
	stop := context.AfterFunc(c.baseCtx, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// ctxErr is what a call returns when ctx ended: ErrClosed when Close ended
// it, the deadline error with the last failure otherwise.
func (c *Client) ctxErr(op string, ctx context.Context, last error) error {
	return c.endedErr(op, ctx, &failures{last: last})
}

// endedErr is ctxErr for a call that kept its failures.
func (c *Client) endedErr(op string, ctx context.Context, f *failures) error {
	cause := ctx.Err()
	if c.closed.Load() {
		cause = ErrClosed
	}
	return f.ended(op, cause)
}

// expired reports whether ctx has ended or its deadline has passed. A
// socket deadline set from ctx can fire a moment before ctx's own timer, so
// ctx.Err alone would miss that the deadline caused a failure.
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// backoff is the pause between retries: exponential, capped, jittered.
type backoff struct {
	cur, max time.Duration
}

func (c *Client) newBackoff() *backoff {
	return &backoff{cur: c.opts.RetryBackoff, max: c.opts.MaxRetryBackoff}
}

func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(2*b.cur, b.max)
	if d <= 1 {
		return d
	}
	// Between half and all of d: retries of clients that met the same
	// failover spread out instead of arriving together.
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d or until ctx ends, whichever is first.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pause is the wait before a retry. With refresh it also starts (or joins)
// a PULL; the retry does not wait for it beyond the backoff, because with
// the meta servers unreachable a PULL can take far longer than it takes a
// restarted node to come back.
func (c *Client) pause(ctx context.Context, bo *backoff, refresh bool, want uint64) error {
	if refresh {
		c.startRefresh(want)
	}
	return c.sleep(ctx, bo.next())
}
