package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// errStaleMeta makes a sweep pass over a meta server whose topology is
// older than the epoch the caller knows exists.
var errStaleMeta = errors.New("meta server has an older topology")

// nextMeta reports whether another meta server may answer err differently.
func nextMeta(err error) bool {
	if rpc.IsTransport(err) || errors.Is(err, errStaleMeta) {
		return true
	}
	switch status.Code(err) {
	case zppb.Code_NO_LEADER, zppb.Code_UNAVAILABLE, zppb.Code_TIMEOUT:
		return true
	}
	return false
}

// sweepMetas calls fn on each meta server at most once, starting with the
// one that answered last (it is likely up), until fn succeeds or returns an
// error that is the cluster's answer rather than this member's trouble (see
// nextMeta). With share, each attempt gets a fair share of what is left of
// ctx, so that one meta server that accepts connections and never answers
// cannot use up the whole deadline. Writes do not share: cutting a slow
// write short would make its outcome unknown, while a dead server is
// already bounded by DialTimeout.
func (c *core) sweepMetas(ctx context.Context, share bool, fn func(ctx context.Context, addr string) error) error {
	n := len(c.metas)
	start := int(c.metaPref.Load())
	var last error
	allTransport := true
	for i := range n {
		idx := (start + i) % n
		addr := c.metas[idx]
		actx, cancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok && share {
			actx, cancel = context.WithTimeout(ctx, time.Until(dl)/time.Duration(n-i))
		}
		err := fn(actx, addr)
		cancel()
		if err == nil {
			c.metaPref.Store(int32(idx))
			return nil
		}
		err = fmt.Errorf("meta %s: %w", addr, err)
		if cerr := ctx.Err(); cerr != nil {
			if errors.Is(err, cerr) {
				return err
			}
			return fmt.Errorf("%w: %w", cerr, err)
		}
		if !nextMeta(err) {
			c.metaPref.Store(int32(idx))
			return err
		}
		c.log.Debug("meta server failed; trying the next", "addr", addr, "err", err)
		last = err
		if !rpc.IsTransport(err) {
			allTransport = false
		}
	}
	if allTransport {
		return fmt.Errorf("%w: %w", ErrMetaUnreachable, last)
	}
	return last
}

// callMeta sends a meta command and returns an OK response, or the error
// (status codes as *status.Error). Reads (write false) sweep the meta
// servers once: any member answers them, so when none does, retrying at
// once rarely helps and a tool should say so quickly. Writes need the Raft
// leader, which is missing for a moment during every election, so they
// sweep again after a pause until ctx ends. For writes, ambiguous reports
// that some attempt failed after the request may have reached a server.
func (c *core) callMeta(ctx context.Context, op string, build func() *zppb.Request, write bool) (resp *zppb.Response, ambiguous bool, err error) {
	if c.closed.Load() {
		return nil, false, ErrClosed
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	bo := c.newBackoff()
	for {
		err := c.sweepMetas(ctx, !write, func(ctx context.Context, addr string) error {
			req := build()
			req.AdminToken = c.opts.AdminToken
			r, err := c.pool.Call(ctx, addr, req)
			if err != nil {
				if write && sentMaybe(err) {
					ambiguous = true
				}
				return err
			}
			if err := status.FromResponse(r); err != nil {
				// The server stopped waiting for the commit: what a
				// retry meets may be this attempt's doing.
				if write && r.GetOutcomeUnknown() {
					ambiguous = true
				}
				return err
			}
			resp = r
			return nil
		})
		if err == nil {
			return resp, ambiguous, nil
		}
		if !write || !(nextMeta(err) || errors.Is(err, ErrMetaUnreachable)) || ctx.Err() != nil {
			return nil, ambiguous, fmt.Errorf("client: %s: %w", op, err)
		}
		if serr := c.sleep(ctx, bo.next()); serr != nil {
			return nil, ambiguous, deadlineError(op, serr, err)
		}
	}
}
