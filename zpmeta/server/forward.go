package server

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// leaderPoll is how often a member without a usable leader looks again
// during an election.
const leaderPoll = 25 * time.Millisecond

// onLeader runs local when this member is the ready leader, and otherwise
// forwards req to the leader and relays its answer. Without a leader it waits
// for one until ctx ends, then answers NO_LEADER.
func (s *Server) onLeader(ctx context.Context, req *zppb.Request, local func(context.Context) (*zppb.Response, error)) *zppb.Response {
	idempotent := resendable(req)
	var lastErr error
	for {
		if s.IsLeader() {
			resp, err := local(ctx)
			if !errors.Is(err, errHandedOver) {
				if err != nil {
					return status.Response(err)
				}
				return resp
			}
			// The new leader runs it: forward once it is known.
			lastErr = err
		}
		if req.Forwarded {
			// The forwarder thought this member leads; it is not (any
			// more). Let the forwarder look again rather than forward on.
			return status.Response(status.New(zppb.Code_NO_LEADER, "%s is not the leader", s.cfg.Addr))
		}
		if leader := s.Leader(); leader != "" && leader != s.cfg.Addr {
			resp, err := s.forward(ctx, leader, req)
			switch {
			case err == nil && resp.GetCode() == zppb.Code_NO_LEADER && !resp.GetOutcomeUnknown():
				lastErr = status.FromResponse(resp) // not applied: look again
			case err == nil && (resp.GetCode() != zppb.Code_UNAVAILABLE || !idempotent):
				s.catchUp(ctx, resp.GetEpoch())
				return resp
			case err == nil:
				lastErr = status.FromResponse(resp) // the leader is going away
			case isDialError(err) || idempotent && rpc.IsTransport(err):
				lastErr = err
			default:
				// Sent, but the answer was lost: the leader may
				// have applied it.
				e := status.New(zppb.Code_ERROR, "forwarding to leader %s: %v; the command may have applied", leader, err)
				e.OutcomeUnknown = true
				return status.Response(e)
			}
			s.logger.Debug("forward to leader failed; looking again", "leader", leader, "err", err)
		}
		// Leader unknown, or it is this member still catching up, or it
		// could not be reached: wait for the election to settle.
		t := time.NewTimer(leaderPoll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if s.ctx.Err() != nil {
				return status.Response(status.New(zppb.Code_UNAVAILABLE, "meta server is shutting down"))
			}
			msg := "no meta leader within the request's deadline"
			if lastErr != nil {
				msg += "; last attempt: " + lastErr.Error()
			}
			return status.Response(status.New(zppb.Code_NO_LEADER, "%s", msg))
		}
	}
}

// resendable reports whether req may reach the leader twice harmlessly: a
// PING or STARTING, or a membership change (asking for the membership there already is
// changes nothing). Other writes are resent only when known not to have
// reached the leader.
func resendable(req *zppb.Request) bool {
	switch req.GetCmd().(type) {
	case *zppb.Request_Ping, *zppb.Request_Starting, *zppb.Request_AddMeta, *zppb.Request_RemoveMeta:
		return true
	}
	return false
}

// maxCatchUp bounds how long a follower holds a relayed answer for its own
// state to reach the answer's epoch.
const maxCatchUp = time.Second

// catchUp waits briefly until this member has applied epoch, so that a client
// that wrote through a follower reads its write there next (read your
// writes). It gives up quietly: the answer is right either way.
func (s *Server) catchUp(ctx context.Context, epoch uint64) {
	if s.fsm.Epoch() >= epoch {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, maxCatchUp)
	defer cancel()
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for s.fsm.Epoch() < epoch {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// forward sends req to the leader with what is left of ctx's deadline.
func (s *Server) forward(ctx context.Context, leader string, req *zppb.Request) (*zppb.Response, error) {
	req.TimeoutMs = 0 // rpc.Conn.Call sets it from ctx
	req.Forwarded = true
	defer func() { req.Forwarded = false }()
	return s.pool.Call(ctx, leader, req)
}

// isDialError reports whether err is a failure to connect, which means the
// request was never sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
