package server

import (
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// liveness is the leader's memory of the nodes' heartbeats: when each last
// pinged, the epoch it had applied then and the replica positions it
// reported. It is not replicated: a new leader starts empty and rebuilds it
// from the PINGs it receives, giving every node a full down-timeout from the
// moment it took over before counting it missing.
type liveness struct {
	mu sync.Mutex
	// since is when this member became leader; zero while it is not.
	since time.Time
	// seen is when this leader handled each node's last PING, which may
	// be long after the node sent it: the epochs say what a PING proves.
	seen      map[string]time.Time
	epochs    map[string]uint64
	positions map[string]*nodePositions
	// versions is the binary version each node's last PING reported,
	// features the features (buildinfo.Features) it reported.
	versions map[string]string
	features map[string][]string
	// starting is the last STARTING of each node that has not PINGed
	// since: how far it is in opening its replicas. It counts for
	// nothing else.
	starting map[string]startupReport
}

// startupReport is a node's STARTING progress and when this leader got it.
type startupReport struct {
	progress *zppb.StartupProgress
	at       time.Time
}

// nodePositions are the replica positions a node reported, whole or as
// deltas (PingRequest.positions_base), as of one of its PINGs.
type nodePositions struct {
	epoch uint64 // the epoch that PING carried
	seq   uint64 // its positions_seq; 0 from a node that does not number them
	byKey map[replicaRef]*zppb.ReplicaPosition
}

// replicaRef names a partition's replica on a node.
type replicaRef struct {
	table     string
	partition uint32
}

func refOf(p *zppb.ReplicaPosition) replicaRef { return replicaRef{p.GetTable(), p.GetPartition()} }

func newLiveness() *liveness {
	return &liveness{
		seen:      make(map[string]time.Time),
		epochs:    make(map[string]uint64),
		positions: make(map[string]*nodePositions),
		versions:  make(map[string]string),
		features:  make(map[string][]string),
		starting:  make(map[string]startupReport),
	}
}

// reset forgets every heartbeat; since is the start of the grace period.
func (l *liveness) reset(since time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.since = since
	clear(l.seen)
	clear(l.epochs)
	clear(l.positions)
	clear(l.versions)
	clear(l.features)
	clear(l.starting)
}

// position returns what addr last reported about its replica of
// (table, partition) and the epoch the node had applied when it sent it, if
// it reported one.
func (l *liveness) position(addr, table string, partition uint32) (*zppb.ReplicaPosition, uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	np := l.positions[addr]
	if np == nil {
		return nil, 0, false
	}
	p, ok := np.byKey[replicaRef{table, partition}]
	if !ok {
		return nil, 0, false
	}
	return p, np.epoch, true
}

// startup records a starting node's progress, handled at at; p is kept
// as is: the caller hands it over.
func (l *liveness) startup(addr string, at time.Time, p *zppb.StartupProgress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.starting[addr] = startupReport{p, at}
}

// started forgets addr's start-up progress: it PINGs, so it is open.
func (l *liveness) started(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.starting, addr)
}

// startupProgress returns addr's last start-up progress if this leader
// got it less than maxAge before now, else nil: a node that died while
// starting sends no PING to clear it. The result must not be modified.
func (l *liveness) startupProgress(addr string, now time.Time, maxAge time.Duration) *zppb.StartupProgress {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.starting[addr]
	if !ok || now.Sub(r.at) >= maxAge {
		return nil
	}
	return r.progress
}

// heartbeat records req, a PING handled at, and reports whether it was
// recorded and the positions_seq of the PING whose positions it holds
// after it (PingResponse.positions_seq). A node's epoch never goes back,
// so a PING with an older epoch than one already recorded was overtaken by
// a later one on the way: it would make the node look alive, and its
// positions current, on the strength of an old message, so it is not
// recorded. A delta on a base other than the held one leaves the positions
// as of their own PING, whose epoch position reports, and the node sends
// them all next.
func (l *liveness) heartbeat(at time.Time, req *zppb.PingRequest) (bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	addr := req.GetAddr()
	np := l.positions[addr]
	if last, ok := l.epochs[addr]; ok && req.GetEpoch() < last {
		return false, np.heldSeq()
	}
	l.seen[addr] = at
	l.epochs[addr] = req.GetEpoch()
	l.versions[addr] = req.GetVersion()
	if f := req.GetFeatures(); !slices.Equal(l.features[addr], f) {
		l.features[addr] = slices.Clone(f) // the request's belongs to the decoder
	}
	switch base := req.GetPositionsBase(); {
	case base == 0:
		np = &nodePositions{byKey: make(map[replicaRef]*zppb.ReplicaPosition, len(req.GetPositions()))}
		l.positions[addr] = np
	case np.heldSeq() != base:
		return true, np.heldSeq()
	}
	// Copies: the request's messages belong to the connection's decoder.
	for _, p := range req.GetPositions() {
		np.byKey[refOf(p)] = proto.Clone(p).(*zppb.ReplicaPosition)
	}
	for _, p := range req.GetRemovedPositions() {
		delete(np.byKey, refOf(p))
	}
	np.epoch, np.seq = req.GetEpoch(), req.GetPositionsSeq()
	return true, np.seq
}

// heldSeq is the positions_seq of the PING the positions are as of; 0 for
// none (np nil) or a node that does not number its PINGs.
func (np *nodePositions) heldSeq() uint64 {
	if np == nil {
		return 0
	}
	return np.seq
}

// leaderSince returns when this member became leader, zero if it is not.
func (l *liveness) leaderSince() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.since
}

// appliedEpoch is the epoch addr had applied at its last PING to this
// leader; 0 when it has not PINGed it.
func (l *liveness) appliedEpoch(addr string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epochs[addr]
}

// lastHeartbeat returns the time of addr's last PING to this leader, zero if
// none.
func (l *liveness) lastHeartbeat(addr string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[addr]
}

// version returns the version addr's last PING reported, empty if none.
func (l *liveness) version(addr string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.versions[addr]
}

// featuresOf returns the features addr's last PING reported, nil if none
// (or no PING to this leader yet). The result must not be modified.
func (l *liveness) featuresOf(addr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.features[addr]
}

// expired reports whether addr has gone timeout without a PING, counting from
// the later of its last PING and the start of the grace period. Before reset
// nothing expires.
func (l *liveness) expired(addr string, now time.Time, timeout time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.since.IsZero() {
		return false
	}
	last := l.since
	if t := l.seen[addr]; t.After(last) {
		last = t
	}
	return now.Sub(last) >= timeout
}
