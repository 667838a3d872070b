package server

import (
	"cmp"
	"context"

	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/fsm"
)

// failover hands every partition whose master is on a DOWN node to its most
// up-to-date UP slave: the one with the highest (term, lsn).
//
// Positions count only from PINGs sent after the master was marked DOWN,
// which the epoch they carry proves (fsm.SentAfterDown): a PING queued on the
// way, or handled late, may predate the decision however recently it was
// handled. By the decision the old master has not written for a while — it
// stops taking writes when its lease runs out, which is shorter than the
// down-timeout — so what a slave reports after it is final, and the slave
// chosen holds every write any slave acknowledged (min_sync_replicas). A
// partition waits until each of its UP slaves has sent such a PING: the
// leader NOTIFYs them of the decision (see markDown), and a node PINGs again
// as soon as it has applied a newer epoch, so the wait is a few round trips,
// or a ping interval for a slave the NOTIFY missed.
func (s *Server) failover(ctx context.Context) {
	if !s.failoverDue() {
		return
	}
	unlock, err := s.lockProposals(ctx)
	if err != nil {
		return
	}
	defer unlock()
	changes, awaited := s.planFailover()
	s.failoverAwaited.Store(&awaited)
	if len(changes) == 0 {
		return
	}
	res, err := s.propose(ctx, fsm.SetMasters("failover", changes...))
	if err != nil {
		if ctx.Err() == nil {
			s.logger.Warn("failover not applied", "err", err)
		}
		return
	}
	s.metrics.failovers.Add(float64(len(changes)))
	nodes := make(map[string]bool)
	for _, c := range changes {
		s.logger.Warn("failover", "table", c.Table, "partition", c.Partition, "new_master", c.NewMaster,
			"term", c.ExpectedTerm+1, "epoch", res.Epoch)
		nodes[c.NewMaster] = true
		if topo, err := s.fsm.Topology(c.Table); err == nil {
			for _, a := range topo.Tables[0].Partitions[c.Partition].Slaves {
				nodes[a] = true
			}
		}
	}
	// The new masters and their slaves learn now, not at their next PING.
	s.notify(nodes, res.Epoch)
}

// failoverDue is the cheap check before taking the proposal lock: is some
// partition mastered by a DOWN node?
func (s *Server) failoverDue() bool {
	if s.awaitingPositions() {
		return true
	}
	orphans, _ := s.fsm.Orphans()
	return len(orphans) > 0
}

// awaitingPositions reports whether a failover waits for some slave's
// position (failoverAwaited not empty).
func (s *Server) awaitingPositions() bool {
	a := s.failoverAwaited.Load()
	return a != nil && len(*a) > 0
}

// planFailover returns the master changes due now, and the UP slaves whose
// positions partitions with a DOWN master wait for.
func (s *Server) planFailover() (changes []*zppb.MasterChange, awaited map[string]bool) {
	orphans, up := s.fsm.Orphans()
	awaited = make(map[string]bool)
	for _, o := range orphans {
		best, ok := s.pickNewMaster(o.Table, o.Partition, up, o.Master, awaited)
		if !ok {
			continue
		}
		changes = append(changes, &zppb.MasterChange{Table: o.Table, Partition: o.Partition.Id, NewMaster: best, ExpectedTerm: o.Partition.Term})
	}
	return changes, awaited
}

// pickNewMaster chooses among p's UP slaves the one with the highest
// (term, lsn) — ties go to one that is not cordoned, then to the first in
// the slave list, so every leader decides alike. ok is false while some UP
// slave has not reported its position in a PING sent after master, p's DOWN
// master, was marked DOWN (it is added to awaited), or no slave is UP.
func (s *Server) pickNewMaster(table string, p *zppb.Partition, up map[string]bool, master *zppb.Node, awaited map[string]bool) (string, bool) {
	var (
		best         string
		bestPos      *zppb.ReplicaPosition
		bestReceives bool
		missing      bool
	)
	for _, addr := range p.Slaves {
		if !up[addr] {
			continue
		}
		pos, epoch, ok := s.live.position(addr, table, p.Id)
		if !ok || !fsm.SentAfterDown(master, epoch) {
			awaited[addr] = true
			missing = true
			continue
		}
		// Among the furthest along, one that receives new masters wins
		// over a cordoned one.
		c := cmp.Or(cmp.Compare(pos.Term, bestPos.GetTerm()), cmp.Compare(pos.Lsn, bestPos.GetLsn()))
		receives := topo.Receives(s.fsm.Node(addr))
		if bestPos == nil || c > 0 || c == 0 && receives && !bestReceives {
			best, bestPos, bestReceives = addr, pos, receives
		}
	}
	return best, bestPos != nil && !missing
}
