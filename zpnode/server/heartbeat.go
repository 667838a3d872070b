package server

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topodelta"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// metaAbandonGrace is how long the connection to a meta server stays open
// after a PING or PULL outlived its timeout, as long as the meta server
// answers nothing meanwhile (rpc.Conn.SetAbandonGrace). A PING waits half
// a ping interval; a loaded meta leader answers some later than that, and
// closing the connection at each would make the next PING dial and wait
// to be accepted too: under load the node then never got an answer in
// time, never learned a new epoch, and a failover waited for its position
// (TestMetaScale under -race at load 30, whose simulated nodes use it too).
const metaAbandonGrace = rpc.DefaultAbandonGrace

// NextMeta returns the index in addrs of the meta server to PING first
// next time, after a heartbeat that began at first and got its answer
// from answered (PINGs to the ones between failed): the leader the answer
// named, when it is one of addrs and did not just fail, else answered. A
// follower answers a PING by forwarding it to the leader over a few
// connections the leader serves in order, so after a leader change a
// thousand nodes PINGing their follower queued behind one another and
// behind the commands forwarded with them. A leader this node cannot reach
// (but the follower can) is not tried first again.
func NextMeta(addrs []string, first, answered int, leader string) int {
	i := slices.Index(addrs, leader)
	if leader == "" || i < 0 {
		return answered
	}
	n := len(addrs)
	if (i-first+n)%n < (answered-first+n)%n {
		return answered // it was tried this time and did not answer
	}
	return i
}

// heartbeatLoop PINGs meta every PingInterval and PULLs when meta's epoch is
// newer than the node's. Any meta member will do: followers forward PINGs to
// the leader. Failures move on to the next member and never stop serving.
// It starts with the member that answered the start-up's STARTINGs.
func (s *Server) heartbeatLoop() {
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	next := s.firstMeta
	for {
		next = s.heartbeat(next)
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// askMetas calls ask on the meta servers, starting with the one at index
// next, until one answers (ask returns the leader its answer named), and
// returns where to start next time (NextMeta); ok is false when none
// answered.
func (s *Server) askMetas(next int, ask func(meta string) (leader string, err error)) (after int, ok bool) {
	n := len(s.cfg.MetaAddrs)
	for i := range n {
		if leader, err := ask(s.cfg.MetaAddrs[(next+i)%n]); err == nil {
			return NextMeta(s.cfg.MetaAddrs, next, (next+i)%n, leader), true
		}
	}
	return next, false
}

// heartbeat PINGs the meta servers, starting with the one at index next,
// until one answers (askMetas), and returns where to start next time. A
// successful PING renews the master lease (see lease.go) once the node
// runs the epoch the answer names.
func (s *Server) heartbeat(next int) int {
	// The members that refused a PING: one that answered it is up,
	// whatever its PULL met (masterLease.unreachable).
	refused := 0
	next, ok := s.askMetas(next, func(meta string) (string, error) {
		sent := time.Now()
		pr, err := s.ping(meta)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				refused++
			}
			s.cfg.Logger.Debug("ping failed", "meta", meta, "err", err)
			return "", err
		}
		s.lastPingMs.Store(time.Now().UnixMilli())
		s.metaLeader.Store(&pr.Leader)
		s.sawEpoch(pr.Epoch)
		if cur := s.topo.Load(); pr.Epoch > cur.epoch || cur.missingVerifiers {
			if err := s.pull(meta, pr.Epoch); err != nil {
				s.cfg.Logger.Warn("pull failed", "meta", meta, "err", err)
				return "", err
			}
			if s.topo.Load().epoch >= pr.Epoch {
				// Meta takes a node marked DOWN back, and counts a
				// slave's position for a failover, only from a PING
				// carrying the epoch of that decision (this one
				// carried the older epoch): send it now, not a ping
				// interval later.
				again := time.Now()
				if pr2, err := s.ping(meta); err == nil {
					sent, pr = again, pr2
					s.lastPingMs.Store(time.Now().UnixMilli())
					s.metaLeader.Store(&pr.Leader)
				}
			}
		}
		s.lease.renewed(sent, time.Duration(pr.LeaseMs)*time.Millisecond, s.topo.Load().epoch >= pr.Epoch)
		s.fullsync.SetRate(pr.FullsyncRate)
		return pr.Leader, nil
	})
	if !ok {
		s.lease.unreachable(refused == len(s.cfg.MetaAddrs))
	}
	return next
}

// notified is a meta leader's NOTIFY: a newer epoch is out, so heartbeat
// (and PULL) now instead of at the next tick.
func (s *Server) notified(epoch uint64) {
	s.sawEpoch(epoch)
	if epoch <= s.topo.Load().epoch {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// sawEpoch records that a meta server named epoch.
func (s *Server) sawEpoch(epoch uint64) {
	for {
		cur := s.newestEpoch.Load()
		if epoch <= cur || s.newestEpoch.CompareAndSwap(cur, epoch) {
			return
		}
	}
}

func (s *Server) ping(meta string) (*zppb.PingResponse, error) {
	req := &zppb.PingRequest{
		Addr:      s.cfg.Addr,
		Epoch:     s.topo.Load().epoch,
		Zone:      s.cfg.Zone,
		Rack:      s.cfg.Rack,
		Weight:    s.cfg.Weight,
		RedisAddr: s.cfg.RedisAddr,
		Version:   buildinfo.Version,
		Features:  buildinfo.Features,
	}
	s.report.fill(req, s.positions())
	resp, err := s.callMeta(s.ctx, meta, &zppb.Request{Cmd: &zppb.Request_Ping{Ping: req}})
	if err != nil {
		return nil, err
	}
	pr := resp.GetPing()
	if pr == nil {
		return nil, errors.New("PING answer without a result")
	}
	if s.report.answered(req.PositionsSeq, req.PositionsBase != 0, pr) {
		// The leader did not hold the delta's base (a new leader, or the
		// answer that named it was lost): all positions, now.
		return s.ping(meta)
	}
	return pr, nil
}

// callMeta sends a heartbeat's request (PING, STARTING) to meta, and
// turns an error answer into an error.
func (s *Server) callMeta(ctx context.Context, meta string, req *zppb.Request) (*zppb.Response, error) {
	// Leave time in the interval to try the other members.
	ctx, cancel := context.WithTimeout(ctx, max(s.cfg.PingInterval/2, 100*time.Millisecond))
	defer cancel()
	resp, err := s.meta.Call(ctx, meta, req)
	if err != nil {
		return nil, err
	}
	if err := status.FromResponse(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// openInBackground is how many new replicas a topology must bring for pull
// to open them off the heartbeat: a table of thousands of partitions takes
// seconds to open, longer than meta waits for a PING before it marks the
// node DOWN. Fewer open before pull returns, as they always did.
const openInBackground = 64

// pull fetches what changed since the node's topology and applies it if it
// brings epoch or newer; a lagging follower's older copy is left for the
// next heartbeat. Many new replicas open in the background
// (openInBackground); a newer topology applies meanwhile, unless it drops
// or recreates their table (opensTouched), which waits for them.
func (s *Server) pull(meta string, epoch uint64) error {
	if !s.applyMu.TryLock() {
		s.cfg.Logger.Debug("still applying the last topology; pulling later", "epoch", epoch)
		return nil
	}
	defer s.applyMu.Unlock()
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	cur := s.topo.Load()
	base := cur.pb
	if cur.missingVerifiers {
		// A delta would not carry the verifiers of unchanged tables.
		base = nil
	}
	pb, err := topodelta.Pull(ctx, base, func(ctx context.Context, req *zppb.PullRequest) (*zppb.PullResponse, error) {
		return s.callPull(ctx, meta, req)
	}, func(err error) {
		s.cfg.Logger.Warn("topology delta does not fit; pulling the whole topology", "meta", meta, "err", err)
	})
	if err != nil {
		return err
	}
	if pb.Epoch < epoch || pb.Epoch < cur.epoch || (pb.Epoch == cur.epoch && !cur.missingVerifiers) {
		return nil
	}
	if s.opensTouched(pb) {
		s.cfg.Logger.Info("new topology drops or recreates a table still opening; applying it once open", "epoch", pb.Epoch)
		return nil
	}
	s.cfg.Logger.Info("new topology", "epoch", pb.Epoch, "from", meta)
	news, openNew := s.applyRouting(pb)
	if err := saveTopology(s.cfg.DataDir, pb); err != nil {
		s.cfg.Logger.Warn("cannot save topology", "err", err)
	}
	if news < openInBackground {
		openNew()
		return nil
	}
	s.goRun(openNew)
	return nil
}

func (s *Server) callPull(ctx context.Context, meta string, req *zppb.PullRequest) (*zppb.PullResponse, error) {
	// A node checks table passwords: it asks for their verifiers, which
	// meta servers give with the cluster secret the pool presents.
	req.Credentials = true
	resp, err := s.meta.Call(ctx, meta, &zppb.Request{Cmd: &zppb.Request_Pull{Pull: req}})
	if err != nil {
		return nil, err
	}
	if err := status.FromResponse(resp); err != nil {
		return nil, err
	}
	return resp.GetPull(), nil
}

// sweep deletes expired keys of a partition this node masters, so their
// space comes back even where compaction does not run. Slaves get the
// deletes through the binlog.
func (s *Server) sweep(k replicaKey, r *replica.Replica) {
	if role, _ := r.Role(); role != replica.Master {
		return
	}
	var cursor []byte
	for s.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		_, next, err := r.SweepExpired(ctx, cursor, 1000)
		cancel()
		if err != nil {
			s.cfg.Logger.Warn("expiry sweep failed", "table", k.table, "partition", k.id, "err", err)
			return
		}
		if len(next) == 0 {
			return
		}
		cursor = next
	}
}
