package server

import (
	"context"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// prepare starts the plain SETs of a pipeline (rpc.ServerConfig.Prepare):
// each is queued at its replica as it arrives and answered after the
// connection has queued the rest, so a pipeline's SETs share a group
// commit instead of taking one each. Other commands, SETs that read the
// key first (readsOld: they run under the replica's write lock) and SETs
// to a SLOWDOWN partition (which wait a moment before they queue) are left
// to handle, in their turn.
func (s *Server) prepare(ctx context.Context, req *zppb.Request) rpc.Prepared {
	c, ok := req.Cmd.(*zppb.Request_Set)
	if !ok || readsOld(c.Set) || s.slowingDown(c.Set.Table, c.Set.Key) {
		return nil
	}
	p := &preparedSet{s: s, ctx: ctx, req: req, start: time.Now()}
	p.t, p.err = s.submitSet(ctx, req.RequestId, c.Set)
	return p
}

// slowingDown reports whether key's partition is in SLOWDOWN.
func (s *Server) slowingDown(table string, key []byte) bool {
	_, p, ok := s.topo.Load().partition(table, key)
	return ok && p.State == zppb.PartitionState_SLOWDOWN
}

// preparedSet is a SET queued at its replica (or refused: err).
type preparedSet struct {
	s     *Server
	ctx   context.Context
	req   *zppb.Request
	start time.Time
	t     *replica.Ticket
	err   error
}

func (p *preparedSet) Flush() {
	if p.t != nil {
		p.t.Flush()
	}
}

func (p *preparedSet) Finish() *zppb.Response {
	err := p.err
	if p.t != nil {
		_, err = p.t.Wait(p.ctx)
		err = writeError(err)
	}
	var resp *zppb.Response
	if err == nil {
		resp = setResponse(true, false, nil)
	}
	return p.s.respond(p.req, p.req.GetSet().GetTable(), true, resp, err, p.start)
}
