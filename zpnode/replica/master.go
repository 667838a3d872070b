package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/binlog"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// peerTimeout is how long after its last request a slave still counts as
// connected, so that purging keeps what it needs. A slave whose
// BINLOG_PULL, or whose node's BINLOG_WATCH, is waiting for records
// counts as connected however long the wait.
const peerTimeout = 5 * time.Second

// fullSyncPin is how long a full sync holds back purging at its
// checkpoint, so the slave can stream on from there when it is done.
const fullSyncPin = 30 * time.Minute

// masterState is what a master keeps about its slaves.
type masterState struct {
	slaves  []string
	minSync int
	peers   map[string]*peer
	// appended is closed and replaced after every append, waking the
	// BINLOG_PULLs waiting for records.
	appended chan struct{}
	// watches are slave nodes' BINLOG_WATCHes of this partition, fired
	// with appended.
	watches map[*watchEntry]struct{}
	pending []*pendingWrite
	overlay map[string]overlayEntry
	// clearLSN is the lsn of the newest CLEAR not yet applied to the DB
	// (0: none). The overlay holds only writes after it, so a key not in
	// the overlay reads as absent rather than as the DB has it.
	clearLSN uint64
}

type overlayEntry struct {
	lsn uint64
	m   *zppb.Mutation
}

func (m *masterState) init() {
	m.peers = make(map[string]*peer)
	m.appended = make(chan struct{})
	m.watches = make(map[*watchEntry]struct{})
	m.overlay = make(map[string]overlayEntry)
}

// addOverlay makes the record logged at lsn visible to later writes
// (View) until it is applied or fails. A CLEAR hides every write before it.
func (m *masterState) addOverlay(lsn uint64, rec *zppb.WriteRecord) {
	for _, mu := range rec.Mutations {
		if mu.Kind == zppb.Mutation_CLEAR {
			clear(m.overlay)
			m.clearLSN = lsn
			continue
		}
		m.overlay[string(mu.Key)] = overlayEntry{lsn: lsn, m: mu}
	}
}

// dropOverlay removes what addOverlay added for the record at lsn, unless
// a later write replaced it.
func (m *masterState) dropOverlay(lsn uint64, rec *zppb.WriteRecord) {
	for _, mu := range rec.Mutations {
		if mu.Kind == zppb.Mutation_CLEAR {
			if m.clearLSN == lsn {
				m.clearLSN = 0
			}
			continue
		}
		if e, ok := m.overlay[string(mu.Key)]; ok && e.lsn == lsn {
			delete(m.overlay, string(mu.Key))
		}
	}
}

func (m *masterState) notifyAppend() {
	close(m.appended)
	m.appended = make(chan struct{})
	for e := range m.watches {
		e.fire()
	}
}

// closePeers closes the slaves' binlog readers; a slave's next pull
// opens one again. The replica's mu is held (or the replica closed).
func (m *masterState) closePeers() {
	for _, p := range m.peers {
		p.mu.Lock()
		if p.reader != nil {
			p.reader.Close()
			p.reader = nil
		}
		p.mu.Unlock()
	}
}

// peer is one slave as its master sees it. The replica's mu guards the
// position fields; p.mu guards the reader, which one BINLOG_PULL at a time
// uses.
type peer struct {
	addr     string
	acked    uint64 // last lsn the slave persisted
	lastSeen time.Time
	waiting  int // its BINLOG_PULLs and watches waiting for records
	state    string
	pinLSN   uint64 // a full sync's checkpoint lsn + 1, held until pinUntil
	pinUntil time.Time

	mu     sync.Mutex
	reader *binlog.Reader
	next   uint64 // lsn the reader returns next
	gone   bool   // forgotten by the master: a pull in flight keeps no reader
}

// connectedLocked reports whether the slave is following at now: it has
// a pull or a watch waiting or asked within peerTimeout. The replica's mu is held.
func (p *peer) connectedLocked(now time.Time) bool {
	return p.waiting > 0 || now.Sub(p.lastSeen) <= peerTimeout
}

// forgetPeersLocked drops what the master knew of nodes that are no
// longer slaves of the partition. A node that leaves and is added back
// comes with a new, empty replica: until that replica asks, the master must
// report it as nowhere, not as connected at the old one's position (the
// meta would hand the partition over to it). The replica's mu is held.
func (m *masterState) forgetPeersLocked() {
	for addr, p := range m.peers {
		if slices.Contains(m.slaves, addr) {
			continue
		}
		p.mu.Lock()
		if p.reader != nil {
			p.reader.Close()
			p.reader = nil
		}
		p.gone = true
		p.mu.Unlock()
		delete(m.peers, addr)
	}
}

func (r *Replica) peerLocked(addr string) *peer {
	p := r.m.peers[addr]
	if p == nil {
		p = &peer{addr: addr}
		r.m.peers[addr] = p
	}
	p.lastSeen = r.opts.Now()
	return p
}

// TrySync answers a slave's TRYSYNC: where their logs last agree, and
// whether the slave can stream from there or needs a full sync.
func (r *Replica) TrySync(req *zppb.TrySyncRequest) (*zppb.TrySyncResponse, error) {
	r.mu.Lock()
	if r.role != Master {
		r.mu.Unlock()
		return nil, ErrNotMaster
	}
	p := r.peerLocked(req.Slave)
	p.state = "trysync"
	r.mu.Unlock()

	masterTerm, masterLSN := r.log.Last()
	resp := &zppb.TrySyncResponse{MasterTerm: masterTerm, MasterLsn: masterLSN}
	common, ok, err := r.commonPoint(req)
	if err != nil {
		return nil, err
	}
	switch {
	case !ok:
		resp.Result = zppb.TrySyncResponse_FULLSYNC
	case common < req.Lsn:
		resp.Result, resp.Lsn = zppb.TrySyncResponse_TRUNCATE, common
	case common+1 < r.log.First(), common < masterLSN && r.log.First() == 0:
		// Agreed, but the records that come next are purged, or the log
		// holds none at all (reset after a restore, before any write).
		resp.Result = zppb.TrySyncResponse_FULLSYNC
	default:
		resp.Result, resp.Lsn = zppb.TrySyncResponse_CONTINUE, common
	}
	// A new session: what the slave acknowledged before may be gone (its
	// replica removed and added again, or its log truncated), and INFO
	// must not report it as further along than the point agreed now.
	r.mu.Lock()
	p.acked = min(p.acked, resp.Lsn)
	r.mu.Unlock()
	r.opts.Logger.Info("trysync", "slave", req.Slave, "slave_term", req.Term, "slave_lsn", req.Lsn,
		"result", resp.Result, "lsn", resp.Lsn, "master_lsn", masterLSN)
	return resp, nil
}

// commonPoint finds the last lsn at which the slave's log (as its term
// history describes it) and the master's agree: a (term, lsn) pair names
// one record, because only one master writes in a term. ok is false when
// the answer lies in what the master purged.
func (r *Replica) commonPoint(req *zppb.TrySyncRequest) (lsn uint64, ok bool, err error) {
	_, masterLast := r.log.Last()
	termAt := func(l uint64) (uint64, bool, error) {
		if l == 0 {
			return 0, true, nil
		}
		t, err := r.log.TermAt(l)
		if errors.Is(err, binlog.ErrPurged) {
			return 0, false, nil
		}
		return t, err == nil, err
	}
	terms := req.Terms
	for i := len(terms) - 1; i >= 0; i-- {
		first, term := terms[i].FirstLsn, terms[i].Term
		end := req.Lsn
		if i+1 < len(terms) {
			end = terms[i+1].FirstLsn - 1
		}
		end = min(end, masterLast)
		if end < first {
			continue
		}
		t, known, err := termAt(end)
		if err != nil || !known {
			return 0, false, err
		}
		if t == term {
			return end, true, nil
		}
		if t < term {
			// The master never had this term this far: look earlier.
			continue
		}
		// The master moved past this term inside [first, end]: find the
		// last lsn still at or below it.
		lo, hi := first, end // invariant: T(hi) > term
		for lo < hi {
			mid := lo + (hi-lo)/2
			t, known, err := termAt(mid)
			if err != nil || !known {
				return 0, false, err
			}
			if t > term {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		// lo is the first lsn with a higher term; lo-1 may match.
		if lo > first {
			t, known, err := termAt(lo - 1)
			if err != nil || !known {
				return 0, false, err
			}
			if t == term {
				return lo - 1, true, nil
			}
		}
	}
	// Nothing in common: the slave starts from scratch, which the master
	// can serve only if it still has record 1.
	if r.log.First() <= 1 {
		return 0, true, nil
	}
	return 0, false, nil
}

// Pull answers a slave's BINLOG_PULL: it records the slave's
// acknowledgement, waits up to req.WaitMs for records after req.FromLsn - 1
// and returns up to req.MaxBytes of them.
func (r *Replica) Pull(ctx context.Context, req *zppb.BinlogPullRequest) (*zppb.BinlogPullResponse, error) {
	r.mu.Lock()
	if r.role != Master {
		r.mu.Unlock()
		return nil, ErrNotMaster
	}
	p := r.peerLocked(req.Slave)
	_, last := r.log.Last()
	if !r.matchesLocked(req.FromLsn, req.PrevTerm, last) {
		p.state = "diverged"
		r.mu.Unlock()
		return &zppb.BinlogPullResponse{MasterLsn: last}, nil
	}
	p.state = "streaming"
	p.pinLSN = 0
	// The slave's acknowledgement replaces the one before even when lower:
	// a slave whose replica was removed and added again starts over from
	// nothing, and keeping its old position would let the meta hand the
	// partition over to a replica that has none of its records.
	if req.AckedLsn < req.FromLsn {
		raised := req.AckedLsn > p.acked
		p.acked = req.AckedLsn
		if raised {
			r.advanceCommitLocked()
		}
	}
	appended := r.m.appended
	wait := req.FromLsn > last && req.WaitMs > 0
	if wait {
		p.waiting++
	}
	r.mu.Unlock()

	if wait {
		t := time.NewTimer(time.Duration(req.WaitMs) * time.Millisecond)
		select {
		case <-appended:
		case <-t.C:
		case <-ctx.Done():
		case <-r.ctx.Done():
		}
		t.Stop()
		r.mu.Lock()
		p.waiting--
		p.lastSeen = r.opts.Now()
		r.mu.Unlock()
	}
	recs, err := r.readFor(p, req.FromLsn, int(req.MaxBytes))
	if err != nil {
		return nil, err
	}
	_, last = r.log.Last()
	return &zppb.BinlogPullResponse{Records: recs, MasterLsn: last, InSync: true}, nil
}

// matchesLocked reports whether a slave that holds every record before
// from, the last of them at prevTerm, agrees with this log.
func (r *Replica) matchesLocked(from, prevTerm, last uint64) bool {
	if from == 0 || from > last+1 || from < r.log.First() {
		return false
	}
	if from == 1 {
		return prevTerm == 0
	}
	t, err := r.log.TermAt(from - 1)
	return err == nil && t == prevTerm
}

// readFor reads records from lsn from on for peer p, reusing its reader
// when it is where the slave left off.
func (r *Replica) readFor(p *peer, from uint64, maxBytes int) ([]*zppb.BinlogRecord, error) {
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	defer func() {
		if p.gone && p.reader != nil {
			p.reader.Close()
			p.reader = nil
		}
	}()
	if p.reader == nil || p.next != from {
		if p.reader != nil {
			p.reader.Close()
			p.reader = nil
		}
		if _, last := r.log.Last(); from > last {
			// Nothing to read: a reader would only hold a descriptor,
			// which an idle (parked) partition gives back.
			return nil, nil
		}
		rd, err := r.log.NewReader(from)
		if err != nil {
			return nil, fmt.Errorf("replica: read binlog for %s: %w", p.addr, err)
		}
		p.reader, p.next = rd, from
	}
	var (
		out  []*zppb.BinlogRecord
		size int
	)
	for size < maxBytes {
		rec, err := p.reader.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.reader.Close()
			p.reader = nil
			if errors.Is(err, binlog.ErrTruncated) && len(out) == 0 {
				return nil, nil // the slave's next pull renegotiates
			}
			if len(out) > 0 {
				return out, nil
			}
			return nil, fmt.Errorf("replica: read binlog for %s: %w", p.addr, err)
		}
		out = append(out, &zppb.BinlogRecord{Term: rec.Term, Lsn: rec.LSN, Payload: rec.Payload})
		size += len(rec.Payload)
		p.next = rec.LSN + 1
	}
	return out, nil
}

// PinForFullSync holds back purging at lsn+1 on behalf of slave, whose full
// sync copies a checkpoint taken at lsn.
func (r *Replica) PinForFullSync(slave string, lsn uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.peerLocked(slave)
	p.state = "fullsync"
	p.pinLSN, p.pinUntil = lsn+1, r.opts.Now().Add(fullSyncPin)
}

// peerInfosLocked reports the slaves for INFO replication.
func (r *Replica) peerInfosLocked(last uint64) []*zppb.PeerPosition {
	var out []*zppb.PeerPosition
	for _, addr := range r.m.slaves {
		pp := &zppb.PeerPosition{Addr: addr, State: "disconnected"}
		if p := r.m.peers[addr]; p != nil {
			pp.Lsn, pp.State = p.acked, p.state
			if !p.connectedLocked(r.opts.Now()) {
				pp.State = "disconnected"
			}
			if t, err := r.log.TermAt(p.acked); err == nil {
				pp.Term = t
			}
		}
		if last > pp.Lsn {
			pp.LagRecords = last - pp.Lsn
		}
		out = append(out, pp)
	}
	return out
}
