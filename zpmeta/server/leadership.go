package server

import (
	"context"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/fsm"
)

// watchLeadership runs the leader's duties for as long as this member leads:
// one lead goroutine per term of leadership, stopped when it ends.
func (s *Server) watchLeadership() {
	var cur *leaderTerm
	defer func() { cur.end() }()
	for {
		select {
		case <-s.ctx.Done():
			return
		case leading := <-s.leaderCh:
			// Raft blocks on this channel, so never wait long here:
			// lead's waits all end with its context or with the loss
			// of leadership that comes with a false.
			cur.end()
			cur = nil
			if !leading {
				s.logger.Info("no longer the meta leader")
				continue
			}
			cur = s.startLead()
		}
	}
}

// leaderTerm is one run of lead.
type leaderTerm struct {
	stop context.CancelFunc
	done chan struct{}
}

func (s *Server) startLead() *leaderTerm {
	ctx, stop := context.WithCancel(s.ctx)
	t := &leaderTerm{stop: stop, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		s.lead(ctx)
	}()
	return t
}

// end stops the run and waits for it; nil is a no-op.
func (t *leaderTerm) end() {
	if t != nil {
		t.stop()
		<-t.done
	}
}

// lead makes this member ready to serve as leader and runs the down check
// until ctx ends.
func (s *Server) lead(ctx context.Context) {
	// Entries of earlier terms may be committed but not yet applied here;
	// checks of new commands must see them.
	if err := s.await(ctx, s.raft.Barrier(0)); err != nil {
		s.logger.Warn("leader barrier failed; not serving as leader", "err", err)
		return
	}
	// Liveness is not replicated: every node gets a full down-timeout
	// from now to reach the new leader before it counts as missing.
	s.live.reset(time.Now())
	s.ready.Store(true)
	defer func() {
		s.ready.Store(false)
		s.live.reset(time.Time{})
	}()
	s.logger.Info("meta leader", "term", s.raft.CurrentTerm(), "epoch", s.fsm.Epoch())

	moves := make(chan struct{})
	go func() {
		defer close(moves)
		s.moveLoop(ctx)
	}()
	defer func() { <-moves }()
	if s.cfg.Scheduler {
		scheduled := make(chan struct{})
		go func() {
			defer close(scheduled)
			s.scheduleLoop(ctx)
		}()
		defer func() { <-scheduled }()
	}

	tick := time.NewTicker(min(max(s.cfg.DownTimeout/10, 10*time.Millisecond), 500*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.checkDown(ctx)
			s.failover(ctx)
		}
	}
}

// checkDown marks DOWN the UP nodes that have not pinged for the
// down-timeout.
func (s *Server) checkDown(ctx context.Context) {
	nodes, _ := s.fsm.Nodes()
	now := time.Now()
	for _, n := range nodes {
		if n.State != zppb.NodeState_UP || !s.live.expired(n.Addr, now, s.cfg.DownTimeout) {
			continue
		}
		if err := s.markDown(ctx, n.Addr); err != nil {
			if ctx.Err() == nil {
				s.logger.Warn("could not mark node DOWN", "node", n.Addr, "err", err)
			}
			return
		}
	}
}

func (s *Server) markDown(ctx context.Context, addr string) error {
	unlock, err := s.lockProposals(ctx)
	if err != nil {
		return err
	}
	// A PING may have come in while waiting for the lock.
	n := s.fsm.Node(addr)
	if n == nil || n.State != zppb.NodeState_UP || !s.live.expired(addr, time.Now(), s.cfg.DownTimeout) {
		unlock()
		return nil
	}
	res, err := s.propose(ctx, fsm.SetNodeState(addr, zppb.NodeState_DOWN, time.Now().UnixMilli()))
	unlock()
	if err != nil {
		return err
	}
	last := "never, since this leader took over"
	if t := s.live.lastHeartbeat(addr); !t.IsZero() {
		last = t.Format(time.RFC3339Nano)
	}
	s.logger.Warn("node DOWN", "node", addr, "last_ping", last, "epoch", res.Epoch)
	s.nodeDown(ctx, addr, res.Epoch)
	return nil
}

// nodeDown runs on the leader after addr was marked DOWN at epoch: its
// mastered partitions fail over once their slaves have reported where they
// are in PINGs sent after the decision, so the slaves hear of it now rather
// than at their next PING. addr itself too: if it is alive after all, the
// new epoch is what lets it back (see ping).
func (s *Server) nodeDown(ctx context.Context, addr string, epoch uint64) {
	nodes := map[string]bool{addr: true}
	orphans, _ := s.fsm.Orphans()
	for _, o := range orphans {
		if o.Partition.Master == addr {
			for _, a := range o.Partition.Slaves {
				nodes[a] = true
			}
		}
	}
	s.notify(nodes, epoch)
	s.failover(ctx)
}
