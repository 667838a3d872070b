package server

import (
	"context"
	"errors"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// openSaved applies the topology the node saved before a restart, opening
// its replicas before Start listens, and meanwhile tells the meta leader
// how far it got (reportStartup): the node answers nobody until then.
func (s *Server) openSaved(pb *zppb.Topology) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	news, openNew := s.applyRouting(pb)
	stop := s.reportStartup(news)
	openNew()
	s.firstMeta = stop()
}

// reportStartup sends the meta servers a STARTING with the progress of the
// open of total replicas beginning now, every ping interval (the first
// after one: a quick start needs none) until stop, which returns the
// member to PING first (NextMeta). Only opens of this topology run while
// Start opens it, so the replicas in flight are the ones left.
//
// STARTING is not a PING: it renews neither the node's liveness at meta
// nor its master lease, so meta fails over the masters of a node that
// takes longer to start than its down-timeout, as it always did.
func (s *Server) reportStartup(total int) (stop func() (firstMeta int)) {
	if total == 0 || len(s.cfg.MetaAddrs) == 0 {
		return func() int { return 0 }
	}
	began := time.Now()
	ctx, cancel := context.WithCancel(s.ctx)
	next := 0
	done := make(chan struct{})
	s.goRun(func() {
		defer close(done)
		t := time.NewTicker(s.cfg.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			p := &zppb.StartupProgress{
				Opened:        uint32(max(total-s.inflightCount(), 0)),
				Total:         uint32(total),
				StartedUnixMs: began.UnixMilli(),
				ElapsedMs:     time.Since(began).Milliseconds(),
			}
			next, _ = s.askMetas(next, func(meta string) (string, error) {
				return s.sendStarting(ctx, meta, p)
			})
		}
	})
	return func() int {
		// Cancelled rather than awaited: a STARTING to an unreachable
		// member would hold up the start by half a ping interval.
		cancel()
		<-done
		return next
	}
}

// sendStarting sends meta a STARTING with p and returns the leader that
// answered. A meta server that predates STARTING refuses it (no command).
func (s *Server) sendStarting(ctx context.Context, meta string, p *zppb.StartupProgress) (string, error) {
	req := &zppb.StartingRequest{Addr: s.cfg.Addr, Progress: p}
	resp, err := s.callMeta(ctx, meta, &zppb.Request{Cmd: &zppb.Request_Starting{Starting: req}})
	if err != nil {
		s.cfg.Logger.Debug("STARTING failed", "meta", meta, "err", err)
		return "", err
	}
	if resp.GetStarting() == nil {
		return "", errors.New("STARTING answer without a result")
	}
	return resp.GetStarting().Leader, nil
}

// inflightCount is how many replicas are being opened.
func (s *Server) inflightCount() int {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	return len(s.inflight)
}
