package replica

import (
	"context"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// watchSessionIdle is how long a master keeps a watch session between
// two of its requests (the slave node sends the next right after an
// answer); past it, the slave node is gone, and its slaves stop counting
// as connected peerTimeout later.
const watchSessionIdle = 30 * time.Second

// WatchServer answers slave nodes' BINLOG_WATCHes on a master node. A
// session keeps its partitions watched between requests, so that each
// request lists only what changed: a write to one of thousands of idle
// partitions costs one answer naming it, not a new list of all of them.
type WatchServer struct {
	find func(table string, id uint32) (*Replica, error)

	mu       sync.Mutex
	sessions map[sessionKey]*watchSession
	closed   bool
}

type sessionKey struct {
	slave string
	id    uint64
}

type partKey struct {
	table string
	id    uint32
}

// watchSession is one slave node's watch. One request at a time uses it
// (busy, under the server's mu); entries belong to that request, or to
// whoever removed the session from the map.
type watchSession struct {
	key     sessionKey
	entries map[partKey]*watchEntry
	busy    bool        // the server's mu guards busy and expiry
	expiry  *time.Timer // running while no request holds the session

	wake    chan struct{} // signalled by fire
	firedMu sync.Mutex
	fired   []*watchEntry
}

// watchEntry is a session's watch of one master replica.
type watchEntry struct {
	r     *Replica
	key   partKey
	s     *watchSession
	peer  *peer
	fired bool // the replica's mu guards it
}

// NewWatchServer returns a WatchServer; find returns the master replica
// of a partition on this node, or an error when it is not mastered here.
func NewWatchServer(find func(table string, id uint32) (*Replica, error)) *WatchServer {
	return &WatchServer{find: find, sessions: make(map[sessionKey]*watchSession)}
}

// Close ends every session.
func (w *WatchServer) Close() {
	w.mu.Lock()
	w.closed = true
	var idle []*watchSession
	for k, s := range w.sessions {
		if !s.busy {
			idle = append(idle, s)
			if s.expiry != nil {
				s.expiry.Stop()
			}
		}
		delete(w.sessions, k)
	}
	w.mu.Unlock()
	for _, s := range idle {
		s.unwatchAll()
	}
}

// Serve answers a BINLOG_WATCH: it adds the listed partitions to the
// session and drops the removed ones, then waits up to req.WaitMs for any
// of the session's partitions to have a record at or past its from_lsn,
// and answers those that have, or no longer match, or are not mastered
// here. Each position counts as that slave's acknowledgement, and the
// slave as connected while the session watches it.
func (w *WatchServer) Serve(ctx context.Context, req *zppb.BinlogWatchRequest) *zppb.BinlogWatchResponse {
	s, resp := w.acquire(req)
	if s == nil {
		return resp
	}
	defer w.release(s, req.Session == 0)
	resp = &zppb.BinlogWatchResponse{}
	for _, ref := range req.Removed {
		s.drop(partKey{ref.Table, ref.Partition})
	}
	for _, p := range req.Partitions {
		k := partKey{p.Table, p.Partition}
		s.drop(k)
		r, err := w.find(p.Table, p.Partition)
		if err != nil {
			resp.Ready = append(resp.Ready, &zppb.PartitionRef{Table: p.Table, Partition: p.Partition})
			continue
		}
		e, ok := r.watch(req.Slave, p, s, k)
		if !ok {
			resp.Ready = append(resp.Ready, &zppb.PartitionRef{Table: p.Table, Partition: p.Partition})
			continue
		}
		s.entries[k] = e
	}
	if len(resp.Ready) == 0 && len(s.entries) > 0 && req.WaitMs > 0 {
		s.wait(ctx, time.Duration(req.WaitMs)*time.Millisecond)
	}
	s.firedMu.Lock()
	fired := s.fired
	s.fired = nil
	s.firedMu.Unlock()
	for _, e := range fired {
		// An entry dropped or replaced since it fired is not the
		// session's any more.
		if s.entries[e.key] == e {
			s.drop(e.key)
			resp.Ready = append(resp.Ready, &zppb.PartitionRef{Table: e.key.table, Partition: e.key.id})
		}
	}
	return resp
}

// wait returns once an entry fired, after d, or when ctx ends.
func (s *watchSession) wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		s.firedMu.Lock()
		n := len(s.fired)
		s.firedMu.Unlock()
		if n > 0 {
			return
		}
		select {
		case <-s.wake:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// acquire returns the request's session, marked busy; or nil and the
// answer when there is none to use.
func (w *WatchServer) acquire(req *zppb.BinlogWatchRequest) (*watchSession, *zppb.BinlogWatchResponse) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := sessionKey{req.Slave, req.Session}
	newSession := func() *watchSession {
		return &watchSession{key: k, entries: make(map[partKey]*watchEntry), wake: make(chan struct{}, 1), busy: true}
	}
	if req.Session == 0 {
		return newSession(), nil // forgotten with the answer, never in the map
	}
	s := w.sessions[k]
	switch {
	case w.closed, s == nil && !req.NewSession, s != nil && s.busy:
		// A slave node sends one request of a session at a time, on one
		// connection: a second at once is a confusion best started over.
		return nil, &zppb.BinlogWatchResponse{UnknownSession: true}
	case s == nil:
		s = newSession()
		w.sessions[k] = s
		return s, nil
	}
	if s.expiry != nil {
		// If it fired already, expire finds the session busy.
		s.expiry.Stop()
		s.expiry = nil
	}
	s.busy = true
	return s, nil
}

// release ends a request's use of s: the session waits for its next
// request, or is dropped.
func (w *WatchServer) release(s *watchSession, drop bool) {
	w.mu.Lock()
	s.busy = false
	if drop || w.closed || w.sessions[s.key] != s {
		if w.sessions[s.key] == s {
			delete(w.sessions, s.key)
		}
		w.mu.Unlock()
		s.unwatchAll()
		return
	}
	s.expiry = time.AfterFunc(watchSessionIdle, func() { w.expire(s) })
	w.mu.Unlock()
}

// expire drops a session whose slave node stopped asking.
func (w *WatchServer) expire(s *watchSession) {
	w.mu.Lock()
	if s.busy || w.sessions[s.key] != s {
		w.mu.Unlock()
		return
	}
	delete(w.sessions, s.key)
	w.mu.Unlock()
	s.unwatchAll()
}

// drop ends the session's watch of partition k, if any.
func (s *watchSession) drop(k partKey) {
	if e := s.entries[k]; e != nil {
		delete(s.entries, k)
		e.r.unwatch(e)
	}
}

func (s *watchSession) unwatchAll() {
	for k := range s.entries {
		s.drop(k)
	}
}

// fire tells the session the slave should pull. The replica's mu is held.
func (e *watchEntry) fire() {
	if e.fired {
		return
	}
	e.fired = true
	s := e.s
	s.firedMu.Lock()
	s.fired = append(s.fired, e)
	s.firedMu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// watch starts session s's watch of this partition for slave at w's
// position, as a waiting pull would: it records the acknowledgement and
// keeps the slave connected. ok is false when the slave should pull now
// instead.
func (r *Replica) watch(slave string, w *zppb.WatchedPartition, s *watchSession, k partKey) (e *watchEntry, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.role != Master || r.closed {
		return nil, false
	}
	p := r.peerLocked(slave)
	_, last := r.log.Last()
	if !r.matchesLocked(w.FromLsn, w.PrevTerm, last) {
		p.state = "diverged"
		return nil, false
	}
	p.state = "streaming"
	p.pinLSN = 0
	if w.AckedLsn > p.acked && w.AckedLsn < w.FromLsn {
		p.acked = w.AckedLsn
		r.advanceCommitLocked()
	}
	if w.FromLsn <= last {
		return nil, false
	}
	e = &watchEntry{r: r, key: k, s: s, peer: p}
	p.waiting++
	r.m.watches[e] = struct{}{}
	return e, true
}

// unwatch ends a watch of this partition.
func (r *Replica) unwatch(e *watchEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m.watches, e)
	e.peer.waiting--
	e.peer.lastSeen = r.opts.Now()
}
