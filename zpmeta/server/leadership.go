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
	var mass massSilence
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.checkDown(ctx, &mass)
			s.failover(ctx)
		}
	}
}

// massSilenceHold is how many down-timeouts most nodes may be silent
// together before the leader believes it and marks them DOWN.
const massSilenceHold = 3

// massSilence tells a leader that lost touch with most nodes at once (its
// own process stalled, the machine overloaded, the network cut around it)
// from most nodes failing, as Kubernetes' node controller stops evicting
// when a zone is mostly unready. Marking them DOWN would fail their
// partitions over to whichever slave pings first, and with asynchronous
// replication lose what the old masters had not yet sent.
type massSilence struct {
	since time.Time // when most nodes went silent together; zero: they did not
}

// hold reports whether the leader should wait before marking the expired
// of up UP nodes DOWN: more than one and over half of them fell silent
// together, less than massSilenceHold down-timeouts ago, and not all have
// spoken since. The episode lasts until every node has: as a stalled
// leader recovers, PINGs come back one at a time, and the last ones must
// not be taken for a minority that failed (TestExpandAndShrinkUnderLoad
// lost a write so: the third node was marked DOWN 25 ms before its PING).
func (m *massSilence) hold(expired, up int, now time.Time, timeout time.Duration) bool {
	switch {
	case expired == 0:
		m.since = time.Time{}
		return false
	case m.since.IsZero() && (expired <= 1 || 2*expired <= up):
		return false
	case m.since.IsZero():
		m.since = now
	}
	return now.Sub(m.since) < massSilenceHold*timeout
}

// checkDown marks DOWN the UP nodes that have not pinged for the
// down-timeout, unless most nodes went silent at once (massSilence).
func (s *Server) checkDown(ctx context.Context, mass *massSilence) {
	nodes, _ := s.fsm.Nodes()
	now := time.Now()
	var expired []string
	up := 0
	for _, n := range nodes {
		if n.State != zppb.NodeState_UP {
			continue
		}
		up++
		if s.live.expired(n.Addr, now, s.cfg.DownTimeout) {
			expired = append(expired, n.Addr)
		}
	}
	wasHolding := !mass.since.IsZero()
	if mass.hold(len(expired), up, now, s.cfg.DownTimeout) {
		if !wasHolding {
			s.logger.Warn("most nodes missed their PINGs at once; suspecting this meta server or its network, not marking them DOWN yet",
				"silent", len(expired), "up", up, "hold", massSilenceHold*s.cfg.DownTimeout)
		}
		return
	}
	for _, addr := range expired {
		if err := s.markDown(ctx, addr); err != nil {
			if ctx.Err() == nil {
				s.logger.Warn("could not mark node DOWN", "node", addr, "err", err)
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
