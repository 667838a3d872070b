package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/fsm"
)

// lockProposals takes the leader's proposal lock, so that a command is
// checked and proposed against the state the previous one left. It returns
// the unlock function.
func (s *Server) lockProposals(ctx context.Context) (func(), error) {
	select {
	case s.proposing <- struct{}{}:
		return func() { <-s.proposing }, nil
	case <-ctx.Done():
		return nil, s.ctxError(ctx, "waiting to propose")
	}
}

// proposeLocked is propose under the proposal lock.
func (s *Server) proposeLocked(ctx context.Context, cmd *zppb.MetaCommand) (fsm.Result, error) {
	unlock, err := s.lockProposals(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	defer unlock()
	return s.propose(ctx, cmd)
}

// propose replicates cmd and waits until it is applied here. The error is
// the command's rejection by the state machine, or a coded error for why its
// outcome is unknown or it never got in.
func (s *Server) propose(ctx context.Context, cmd *zppb.MetaCommand) (fsm.Result, error) {
	b, err := proto.Marshal(cmd)
	if err != nil {
		return fsm.Result{}, fmt.Errorf("marshal meta command: %w", err)
	}
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return fsm.Result{}, s.ctxError(ctx, "before proposing")
		}
	}
	f := s.raft.Apply(b, timeout)
	if err := s.await(ctx, f); err != nil {
		return fsm.Result{}, s.raftError(ctx, err)
	}
	res, ok := f.Response().(fsm.Result)
	if !ok {
		return fsm.Result{}, status.New(zppb.Code_ERROR, "meta command applied with unexpected result %T", f.Response())
	}
	return res, res.Err
}

// raftError gives a Raft failure its wire code.
func (s *Server) raftError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return outcomeUnknown(s.ctxError(ctx, "waiting for the command to commit; it may still apply"))
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return status.New(zppb.Code_NO_LEADER, "%s is no longer the leader: %v", s.cfg.Addr, err)
	case errors.Is(err, raft.ErrLeadershipLost):
		return outcomeUnknown(status.New(zppb.Code_NO_LEADER, "leadership lost while committing; the command may still apply: %v", err))
	case errors.Is(err, raft.ErrRaftShutdown):
		return status.New(zppb.Code_UNAVAILABLE, "meta server is shutting down")
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return status.New(zppb.Code_TIMEOUT, "raft did not take the command in time")
	}
	return fmt.Errorf("raft: %w", err)
}

// outcomeUnknown marks a coded error as one after which the command may
// still be applied, so that a client retrying it knows.
func outcomeUnknown(err error) error {
	var se *status.Error
	if errors.As(err, &se) {
		se.OutcomeUnknown = true
	}
	return err
}

// ctxError is the coded error for a wait cut short by ctx: UNAVAILABLE when
// the server is closing, TIMEOUT when the request's deadline passed.
func (s *Server) ctxError(ctx context.Context, what string) error {
	if s.ctx.Err() != nil {
		return status.New(zppb.Code_UNAVAILABLE, "meta server is shutting down (%s)", what)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return status.New(zppb.Code_TIMEOUT, "deadline passed %s", what)
	}
	return status.New(zppb.Code_UNAVAILABLE, "request cancelled %s", what)
}
