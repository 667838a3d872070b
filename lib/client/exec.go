package client

import (
	"context"
	"fmt"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"google.golang.org/protobuf/proto"
)

// maxFreeMoves is how many MOVEs to a new master one call follows without
// pausing. Following at once is what makes a failover cheap for callers; the
// bound stops two nodes that name each other from being hammered.
const maxFreeMoves = 3

// waitsBeforeRefresh is how many WAIT answers in a row make the client
// re-PULL the topology.
const waitsBeforeRefresh = 3

// exec sends a single-key command to the master of routeKey's partition and
// returns its OK response; any other final code comes back as a
// *status.Error. build makes a fresh request per attempt (rpc stamps each
// with the time left). write says that the command changes data: when the
// call fails, its error then says whether it may have been applied (see
// the package documentation).
func (c *core) exec(ctx context.Context, op, table string, routeKey []byte, write bool, build func() *zppb.Request) (*zppb.Response, error) {
	if c.closed.Load() {
		return nil, fmt.Errorf("client: %s: %w", op, ErrClosed)
	}
	gen := c.pullGen.Load()
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	bo := c.newBackoff()
	f := &failures{write: write}
	freeMoves, waits := 0, 0
	freshened := false
	for {
		if ctx.Err() != nil {
			return nil, c.endedErr(op, ctx, f)
		}
		tr, err := c.tableFor(ctx, table)
		if err != nil {
			if status.Code(err) == zppb.Code_TABLE_NOT_FOUND {
				return nil, f.final(op, err)
			}
			// No meta server answered: they may be restarting.
			if ctx.Err() == nil {
				f.add(err)
			}
			if c.sleep(ctx, bo.next()) != nil {
				return nil, c.endedErr(op, ctx, f)
			}
			continue
		}
		rt := tr.route(routeKey)
		if rt.stale && !freshened {
			freshened = true
			c.freshen(ctx, gen)
			continue
		}
		if rt.master == "" {
			f.add(fmt.Errorf("%w: table %q partition %d", ErrNoMaster, table, rt.partition))
			if c.pause(ctx, bo, true, 0) != nil {
				return nil, c.endedErr(op, ctx, f)
			}
			continue
		}

		req := build()
		actx, acancel := c.attemptContext(ctx, proto.Size(req))
		resp, err := c.callNode(actx, rt.master, req)
		acancel()
		if err != nil {
			err = atNode(rt.master, err)
			if !rpc.IsTransport(err) {
				// E.g. a request over the frame limit: retrying cannot help.
				return nil, f.final(op, err)
			}
			c.routeFailed(table, rt.partition, rt.master, err)
			if expired(ctx) {
				f.addCut(err)
				continue
			}
			f.add(err)
			c.log.Debug("node call failed; retrying", "op", op, "node", rt.master, "err", err)
			if c.pause(ctx, bo, false, 0) != nil {
				return nil, c.endedErr(op, ctx, f)
			}
			continue
		}
		c.topo.clearStale(table, rt.partition, rt.master)

		c.noteEpoch(resp.GetEpoch())
		serr := status.FromResponse(resp)
		if serr == nil {
			return resp, nil
		}
		serr = atNode(rt.master, serr)
		var perr error
		switch resp.GetCode() {
		case zppb.Code_MOVE:
			f.add(serr)
			m := resp.GetMaster()
			switch {
			case m != "" && m != rt.master && (resp.GetEpoch() == 0 || resp.GetEpoch() >= rt.epoch):
				c.topo.setMaster(table, rt.partition, m, resp.GetEpoch())
				c.log.Debug("following MOVE", "op", op, "from", rt.master, "to", m, "epoch", resp.GetEpoch())
				if freeMoves < maxFreeMoves {
					freeMoves++
					continue
				}
				perr = c.pause(ctx, bo, false, 0)
			case m != "" && m != rt.master:
				// The node's topology is older than ours: it has not yet
				// learned that it is the master. Give it a moment.
				perr = c.pause(ctx, bo, false, 0)
			default:
				// It does not know the master, or names itself: only the
				// meta servers can tell.
				perr = c.pause(ctx, bo, true, resp.GetEpoch())
			}
		case zppb.Code_WAIT:
			// Usually a partition in transition; but a master fenced off
			// from meta answers WAIT until it learns it was replaced, so
			// ask meta every few WAITs.
			f.add(serr)
			waits++
			perr = c.pause(ctx, bo, waits%waitsBeforeRefresh == 0, 0)
		case zppb.Code_TIMEOUT, zppb.Code_NOT_ENOUGH_REPLICAS:
			if !attemptOutran(ctx, resp.GetCode()) {
				return nil, f.final(op, serr)
			}
			f.add(serr)
			perr = c.pause(ctx, bo, false, 0)
		case zppb.Code_TABLE_NOT_FOUND, zppb.Code_UNAVAILABLE:
			// The node may not have learned of a new table yet, or it is
			// shutting down; either way it did nothing, so even INCRBY may
			// be sent again.
			f.add(serr)
			perr = c.pause(ctx, bo, true, resp.GetEpoch())
		default:
			return nil, f.final(op, serr)
		}
		if perr != nil {
			return nil, c.endedErr(op, ctx, f)
		}
	}
}
