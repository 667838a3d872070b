package server

import (
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// positionReport decides what positions a PING carries. To a leader that
// takes deltas (PingResponse.positions_delta) a PING carries only the
// replicas whose position changed since the PING whose positions the
// leader holds, and the replicas gone since; otherwise all of them. A node
// with 10,000 replicas, almost all idle, sent 10,000 positions (about 400
// KB) every second, and the leader copied each one.
type positionReport struct {
	mu sync.Mutex
	// seq numbers the PINGs built; pendingSeq is the last one, which
	// makes the leader hold pending when it takes it.
	seq, pendingSeq uint64
	pending         map[replicaKey]*zppb.ReplicaPosition
	// acked is the PING whose positions the leader said it holds, held
	// those positions; 0 and nil when it holds none of ours, or takes no
	// deltas.
	acked uint64
	held  map[replicaKey]*zppb.ReplicaPosition
}

// fill sets the positions of req, a PING about to be sent, from cur, every
// replica's position now.
func (r *positionReport) fill(req *zppb.PingRequest, cur map[replicaKey]*zppb.ReplicaPosition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	req.PositionsSeq = r.seq
	r.pendingSeq, r.pending = r.seq, cur
	if r.held == nil {
		req.Positions = make([]*zppb.ReplicaPosition, 0, len(cur))
		for _, p := range cur {
			req.Positions = append(req.Positions, p)
		}
		return
	}
	req.PositionsBase = r.acked
	for k, p := range cur {
		if old, ok := r.held[k]; !ok || !samePosition(old, p) {
			req.Positions = append(req.Positions, p)
		}
	}
	for k := range r.held {
		if _, ok := cur[k]; !ok {
			req.RemovedPositions = append(req.RemovedPositions, &zppb.ReplicaPosition{Table: k.table, Partition: k.id})
		}
	}
}

// answered takes the answer to the PING numbered seq, and reports whether
// it was a delta the leader did not take: the node should PING again at
// once with all its positions, or a failover waiting for them waits a
// ping interval more. A leader that does not take deltas (an older
// release, after a leader change in a rolling upgrade) took the delta for
// all of them; the PING sent again corrects that.
func (r *positionReport) answered(seq uint64, delta bool, resp *zppb.PingResponse) (again bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if resp.GetPositionsDelta() && resp.GetPositionsSeq() == seq && seq == r.pendingSeq {
		r.acked, r.held = seq, r.pending
		return false
	}
	r.acked, r.held = 0, nil
	return delta
}

func samePosition(a, b *zppb.ReplicaPosition) bool {
	return a.Term == b.Term && a.Lsn == b.Lsn && a.AppliedLsn == b.AppliedLsn && a.Master == b.Master &&
		a.SizeBytes == b.SizeBytes && proto.Equal(a.SplitChild, b.SplitChild)
}

// positions returns every replica's position now.
func (s *Server) positions() map[replicaKey]*zppb.ReplicaPosition {
	reps := s.replicas.snapshot()
	tp := s.topo.Load()
	out := make(map[replicaKey]*zppb.ReplicaPosition, len(reps))
	for k, r := range reps {
		term, lsn, applied := r.Position()
		role, _ := r.Role()
		out[k] = &zppb.ReplicaPosition{
			Table: k.table, Partition: k.id, Term: term, Lsn: lsn, AppliedLsn: applied, Master: role == replica.Master,
		}
		if role == replica.Master {
			out[k].SizeBytes = r.DataSize()
		}
		if _, p, ok := tp.partitionByID(k.table, k.id); ok && p.Split != nil {
			out[k].SplitChild = s.splitChild(k.table, k.id, p)
		}
	}
	return out
}
