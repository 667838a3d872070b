package server

import (
	"context"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// start is the node's one command entry: the native front (lib/rpc) and the
// RESP front both run every request through it, so validation, routing,
// quotas, stats, metrics and the slow log happen once, in handle and
// respond.
//
// The pipeline contract, for any caller holding several requests of one
// connection:
//
//   - start the requests in arrival order;
//   - a request that start could queue (Pending.Queued: a SET, whose record
//     is submitted to its replica now) lets the caller start the next one;
//     one that is not queued runs only at its Finish, so it is a barrier:
//     start nothing after it until it has finished, or a later queued write
//     would overtake it;
//   - then Flush every started request, and only then Finish each in
//     arrival order, answering as they finish.
//
// Between starting a queued request and flushing it the caller must not
// block on anything else (the network included): the request may hold its
// replica's flusher role, and every other writer of the replica waits for
// it. Queued writes of one pipeline then reach the binlog and RocksDB in
// one group commit, and take effect and are answered in order.
func (s *Server) start(ctx context.Context, req *zppb.Request) *pending {
	p := &pending{s: s, ctx: ctx, req: req, at: time.Now()}
	if c, ok := req.Cmd.(*zppb.Request_Set); ok && checkRequestID(req) == nil && !readsOld(c.Set) && !s.slowingDown(c.Set.Table, c.Set.Key) && s.tableOpenCached(req) {
		// A SET that reads the key first (readsOld: NX, XX, GET, KEEPTTL)
		// runs under the replica's write lock, and one to a SLOWDOWN
		// partition waits a moment before it queues: both are left to run
		// in their turn (as is one that handle refuses, or whose table's
		// password is not verified yet: checkTable counts a wrong one).
		p.queued = true
		p.t, p.err = s.submitSet(ctx, req.RequestId, c.Set)
	}
	return p
}

// handleRequest is rpc.ServerConfig.Handler: one request, on its own.
func (s *Server) handleRequest(ctx context.Context, req *zppb.Request) *zppb.Response {
	p := s.start(ctx, req)
	p.Flush()
	return p.Finish()
}

// prepare is rpc.ServerConfig.Prepare: it starts a pipelined request and
// keeps it when start queued it; a request that is not queued is left to
// handleRequest, which lib/rpc runs in its turn, after answering the ones
// before it (the barrier of start's contract).
func (s *Server) prepare(ctx context.Context, req *zppb.Request) rpc.Prepared {
	if p := s.start(ctx, req); p.Queued() {
		return p
	}
	return nil
}

// slowingDown reports whether key's partition is in SLOWDOWN.
func (s *Server) slowingDown(table string, key []byte) bool {
	_, p, ok := s.topo.Load().partition(table, key)
	return ok && p.State == zppb.PartitionState_SLOWDOWN
}

// pending is a request begun by start, answered by Finish.
type pending struct {
	s      *Server
	ctx    context.Context
	req    *zppb.Request
	at     time.Time
	queued bool
	t      *replica.Ticket // a queued write's ticket, nil if refused (err)
	err    error
}

// Queued reports whether the request was queued at start; if not it runs at
// Finish (see start).
func (p *pending) Queued() bool { return p.queued }

// Flush pushes on the group commit a queued write is part of, without
// waiting for other connections.
func (p *pending) Flush() {
	if p.t != nil {
		p.t.Flush()
	}
}

// Finish runs the request if it was not queued, waits for its outcome and
// returns its response.
func (p *pending) Finish() *zppb.Response {
	if !p.queued {
		return p.s.handle(p.ctx, p.req, p.at)
	}
	err := p.err
	if p.t != nil {
		_, err = p.t.Wait(p.ctx)
		err = writeError(err)
	}
	var resp *zppb.Response
	if err == nil {
		resp = setResponse(true, false, nil)
	}
	return p.s.respond(p.req, p.req.GetSet().GetTable(), true, resp, err, p.at)
}
