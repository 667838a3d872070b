package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/failpoint"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// A node's part in a split (docs/topology.md, "Split"). While the
// topology shows a partition in PREPARE, its master logs the fence
// (replica.LogSplit) once and refuses writes to the moving range from it
// on; every replica applying the fence stages the child in the child's
// directory (replica.Options.SplitDir) and the node reports it in its
// PINGs (splitChild). Once the commit makes the child a partition, the
// node opens it from that directory like any replica (openReplicas), and
// then trims both halves (trimAfterSplit). A split rolled back leaves
// child directories that no topology names: sweepSplitLeftovers deletes
// them, and splitStaged one whose staging ended after that sweep.

// splits is the node's memory of the splits it takes part in.
type splits struct {
	mu sync.Mutex
	// fencing: fences being logged, by partition and split epoch.
	fencing map[replicaKey]uint64
	// tables whose topology showed a split: their directories are swept
	// for leftovers once it is over.
	tables map[string]bool
}

// splitDir is replica.Options.SplitDir for replica id of table: the
// child's directory, unless the fence is of a split that is over as far
// as the node knows: the child is a partition already (committed; a slave
// that gets the fence after the commit full-syncs the child instead), or
// the node runs a topology of the fence's epoch or later in which the
// partition carries no such split (rolled back: an old fence, met by a
// slave catching up or a master whose fence was committed late).
func (s *Server) splitDir(table string, id uint32) func(*zppb.SplitRecord) string {
	return func(sp *zppb.SplitRecord) string {
		if s.topo.Load().fateOf(table, id, sp) != splitOn {
			return ""
		}
		s.splits.mu.Lock()
		s.splits.tables[table] = true // swept once the split is over
		s.splits.mu.Unlock()
		failpoint.Hold(s.ctx, s.cfg.Logger, failpoint.SplitStage)
		return s.replicaDir(table, sp.Child)
	}
}

// splitFate is what a node's topology says of the split of a fence.
type splitFate int

const (
	// splitOn: the split is in PREPARE, or of an epoch the topology has
	// not reached.
	splitOn splitFate = iota
	// splitMade: the fence's child is a partition.
	splitMade
	// splitRolledBack: the topology is of the fence's epoch or later and
	// the partition carries no such split.
	splitRolledBack
)

// fateOf says what tp says of the split of fence sp in partition id of
// table.
func (tp *topology) fateOf(table string, id uint32, sp *zppb.SplitRecord) splitFate {
	tb := tp.tables[table]
	switch {
	case tb == nil:
		return splitOn
	case sp.Child < uint32(len(tb.Partitions)):
		return splitMade
	case tp.epoch >= sp.Epoch && (int(id) >= len(tb.Partitions) || tb.Partitions[id].GetSplit().GetEpoch() != sp.Epoch):
		return splitRolledBack
	}
	return splitOn
}

// splitStaged is replica.Options.SplitStaged for replica id of table: the
// node reports the child at once, unless the split was rolled back while
// the child was being staged. Then the child goes now: the topology that
// rolled it back was swept for leftovers (sweepSplitLeftovers) before the
// staging was done, and no later one need sweep the table. Both run under
// splits.mu, after the topology is stored, so one of them sees the other's
// work.
func (s *Server) splitStaged(table string, id uint32) func(*zppb.SplitRecord) {
	return func(sp *zppb.SplitRecord) {
		s.splits.mu.Lock()
		defer s.splits.mu.Unlock()
		if s.topo.Load().fateOf(table, id, sp) != splitRolledBack {
			s.wakeHeartbeat()
			return
		}
		if err := os.RemoveAll(s.replicaDir(table, sp.Child)); err != nil {
			s.cfg.Logger.Warn("split: cannot remove a child staged after its split was rolled back", "table", table, "partition", sp.Child, "err", err)
			return
		}
		s.cfg.Logger.Info("split: child staged after its split was rolled back removed", "table", table, "partition", sp.Child, "epoch", sp.Epoch)
	}
}

// splitCommitted is replica.Options.SplitCommitted for the replicas of
// table: the fence's child is a partition made by that split (its
// split_epoch is the fence's), as far as the node's topology says.
func (s *Server) splitCommitted(table string) func(*zppb.SplitRecord) bool {
	return func(sp *zppb.SplitRecord) bool {
		_, c, ok := s.topo.Load().partitionByID(table, sp.Child)
		return ok && c.SplitEpoch == sp.Epoch
	}
}

// owns is replica.Options.Owns for replica id of table: its partition's
// slot range in the node's topology, and the fence of its split in
// PREPARE.
func (s *Server) owns(table string, id uint32) func() (uint32, uint32, *zppb.SplitRecord) {
	return func() (uint32, uint32, *zppb.SplitRecord) {
		tb, p, ok := s.topo.Load().partitionByID(table, id)
		if !ok {
			return 0, keyspace.Slots, nil
		}
		b, e := topo.SlotRange(tb, p)
		var fence *zppb.SplitRecord
		if sp := p.GetSplit(); sp != nil {
			fence = &zppb.SplitRecord{Child: sp.Child, At: sp.At, End: e, Epoch: sp.Epoch}
		}
		return b, e, fence
	}
}

// runRecordedTrim runs the trim replica k just recorded (SplitTrim). A
// replica still opening has none to run yet: opened runs it
// (resumeTrims).
func (s *Server) runRecordedTrim(k replicaKey) {
	if r := s.replicas.get(k.table, k.id); r != nil {
		s.resumeTrims(k, r)
	}
}

// splitChild returns what the node reports of the child of p's split in
// PREPARE: held when its directory's marker names that split.
func (s *Server) splitChild(table string, id uint32, p *zppb.Partition) *zppb.SplitChild {
	sp := p.GetSplit()
	if sp == nil {
		return nil
	}
	m, ok, err := replica.ReadSplitMarker(s.replicaDir(table, sp.Child))
	if err != nil || !ok || m.Parent != id || m.Epoch != sp.Epoch {
		return nil
	}
	return &zppb.SplitChild{Child: sp.Child, Epoch: sp.Epoch, Term: m.Term, Lsn: m.LSN}
}

// limitSlots gives replica r of partition p of tb the slots it takes
// writes for (replica.SetSlots): p's range, less the moving range while
// p's split is in PREPARE. It runs before r takes its role from the same
// topology, and before a replica that opens serves: a replica becoming
// master (promoted, restarted) refuses the moving range before it takes
// any write, and once a split commits the parent refuses its old range
// even to a request routed by an older topology.
func (s *Server) limitSlots(tb *zppb.Table, p *zppb.Partition, r *replica.Replica) {
	b, e := topo.SlotRange(tb, p)
	fenceAt := e
	if sp := p.GetSplit(); sp != nil {
		fenceAt = sp.At
	}
	r.SetSlots(b, e, fenceAt)
}

// applySplit does what the topology asks of replica r of partition p of
// tb, once limitSlots has fenced the moving range: the master of a
// partition in PREPARE logs its fence unless its child is staged here
// already.
func (s *Server) applySplit(tb *zppb.Table, p *zppb.Partition, r *replica.Replica) {
	sp := p.GetSplit()
	if u := r.UnstagedSplit(); u != nil && sp.GetEpoch() != u.Epoch {
		s.resolveUnstaged(tb, p, r, u)
	}
	if sp == nil {
		return
	}
	s.splits.mu.Lock()
	s.splits.tables[tb.Name] = true
	s.splits.mu.Unlock()
	if p.Master != s.cfg.Addr {
		return
	}
	if s.splitChild(tb.Name, p.Id, p) != nil {
		return // logged before a restart or by the master before it
	}
	_, end := topo.SlotRange(tb, p)
	s.logFence(tb.Name, p.Id, r, &zppb.SplitRecord{Child: sp.Child, At: sp.At, End: end, Epoch: sp.Epoch})
}

// resolveUnstaged ends, once the node's topology shows its split over,
// the record of a fence r applied without staging the child: committed
// (the child is a partition of that split), r trims the child's slots, as
// the child's marker would have had it do; rolled back, nothing is left
// to do.
func (s *Server) resolveUnstaged(tb *zppb.Table, p *zppb.Partition, r *replica.Replica, u *zppb.SplitRecord) {
	if s.topo.Load().epoch < u.Epoch {
		return // a topology before the split's PREPARE
	}
	committed := s.splitCommitted(tb.Name)(u)
	if err := r.ResolveUnstaged(committed); err != nil {
		s.cfg.Logger.Warn("split: cannot resolve a fence whose child was not staged", "table", tb.Name, "partition", p.Id, "err", err)
		return
	}
	s.cfg.Logger.Info("split: fence whose child was not staged resolved", "table", tb.Name, "partition", p.Id, "child", u.Child, "committed", committed)
	if committed {
		s.resumeTrims(replicaKey{tb.Name, p.Id}, r)
	}
}

// wakeHeartbeat makes the node PING now (a split's child to report).
func (s *Server) wakeHeartbeat() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// logFence logs the fence of a split in the background, once per split.
func (s *Server) logFence(table string, id uint32, r *replica.Replica, rec *zppb.SplitRecord) {
	k := replicaKey{table, id}
	s.splits.mu.Lock()
	if s.splits.fencing[k] == rec.Epoch {
		s.splits.mu.Unlock()
		return
	}
	s.splits.fencing[k] = rec.Epoch
	s.splits.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		defer cancel()
		err := r.LogSplit(ctx, rec)
		if err != nil {
			s.cfg.Logger.Warn("split: cannot log the fence", "table", table, "partition", id, "child", rec.Child, "err", err)
			s.splits.mu.Lock()
			delete(s.splits.fencing, k) // the next topology tries again
			s.splits.mu.Unlock()
			return
		}
		s.cfg.Logger.Info("split: fence logged", "table", table, "partition", id, "child", rec.Child, "at", rec.At, "epoch", rec.Epoch)
	}()
}

// sweepSplitLeftovers deletes, in the tables a split was seen in, the
// directories of partitions that do not exist and are not the child of a
// split in PREPARE: children of splits rolled back. A table stops being
// swept once it has no split in PREPARE.
func (s *Server) sweepSplitLeftovers(pb *zppb.Topology) {
	s.splits.mu.Lock()
	defer s.splits.mu.Unlock()
	for _, tb := range pb.Tables {
		if !s.splits.tables[tb.Name] {
			continue
		}
		preparing := false
		keep := make(map[uint32]bool)
		for _, p := range tb.Partitions {
			if p.GetSplit() != nil {
				preparing = true
				keep[p.Split.Child] = true
			}
		}
		entries, err := os.ReadDir(s.tableDir(tb.Name))
		if err != nil {
			continue
		}
		for _, e := range entries {
			id, err := strconv.ParseUint(e.Name(), 10, 32)
			if err != nil || !e.IsDir() || id < uint64(len(tb.Partitions)) || keep[uint32(id)] {
				continue
			}
			if err := os.RemoveAll(filepath.Join(s.tableDir(tb.Name), e.Name())); err != nil {
				s.cfg.Logger.Warn("split: cannot remove a child no topology names", "table", tb.Name, "partition", id, "err", err)
				continue
			}
			s.cfg.Logger.Info("split: child of a split rolled back removed", "table", tb.Name, "partition", id)
		}
		if !preparing {
			delete(s.splits.tables, tb.Name)
		}
	}
}

// checkSplitChild prepares the directory of replica k before it opens: a
// child staged by a split other than the one that made the partition is
// not its data, and goes.
func (s *Server) checkSplitChild(k replicaKey) {
	dir := s.replicaDir(k.table, k.id)
	m, ok, err := replica.ReadSplitMarker(dir)
	if err != nil || !ok {
		return
	}
	_, p, found := s.topo.Load().partitionByID(k.table, k.id)
	if found && p.SplitEpoch == m.Epoch {
		return
	}
	s.cfg.Logger.Info("split: removing a child staged by another split", "table", k.table, "partition", k.id, "epoch", m.Epoch)
	os.RemoveAll(dir)
}

// trimAfterSplit trims the halves of the split that created replica k,
// just opened from its child's directory: the child keeps its range, the
// parent (when this node holds it) its own; then the child forgets it
// came from a split. The trims are recorded before they run
// (replica.TrimSlots), so a crash resumes them (resumeTrims).
func (s *Server) trimAfterSplit(k replicaKey, r *replica.Replica) (started bool) {
	dir := s.replicaDir(k.table, k.id)
	m, ok, err := replica.ReadSplitMarker(dir)
	if err != nil || !ok {
		return false
	}
	tp := s.topo.Load()
	tb, p, found := tp.partitionByID(k.table, k.id)
	if !found || p.SplitEpoch != m.Epoch {
		// Nothing else removes the marker while the replica is open: say
		// so, for a marker found left over later.
		s.cfg.Logger.Warn("split: child's marker left as it is: the topology names no such split", "table", k.table, "partition", k.id,
			"marker_epoch", m.Epoch, "found", found, "epoch", tp.epoch)
		return false
	}
	// Until the halves are trimmed the child's size counts the parent's
	// keys: the automatic split must not take it for its own.
	r.HoldSize(true)
	s.wg.Add(1)
	s.cfg.Logger.Info("split: trimming halves", "table", k.table, "child", k.id, "parent", m.Parent)
	go func() {
		defer s.wg.Done()
		s.retryTrim(k, r, "halves", func() error { return s.trimHalves(k, r, dir, m.Parent, tb, p) })
	}()
	return true
}

// trimHalves trims the parent (when this node holds it) to its range and
// then child r to p's, and removes the child's marker.
func (s *Server) trimHalves(k replicaKey, r *replica.Replica, dir string, parentID uint32, tb *zppb.Table, p *zppb.Partition) error {
	// The parent first: until its trim is recorded, nothing says it
	// holds keys it no longer owns, while the child's marker says so of
	// the child until both are done (trimmingAfterSplit).
	if parent := s.heldReplica(k.table, parentID); parent != nil {
		if _, pp, ok := s.topo.Load().partitionByID(k.table, parentID); ok {
			pb, pe := topo.SlotRange(tb, pp)
			if err := parent.TrimSlots(s.ctx, pb, pe); err != nil {
				return fmt.Errorf("trim of the parent %d: %w", parentID, err)
			}
		}
	}
	b, e := topo.SlotRange(tb, p)
	if err := r.TrimSlots(s.ctx, b, e); err != nil {
		return fmt.Errorf("trim of the child: %w", err)
	}
	if err := replica.RemoveSplitMarker(dir); err != nil {
		return fmt.Errorf("removing the child's marker: %w", err)
	}
	r.HoldSize(false)
	s.cfg.Logger.Info("split: halves trimmed", "table", k.table, "child", k.id, "parent", parentID)
	return nil
}

// trimRetryMax bounds the pause between attempts of a failed trim.
const trimRetryMax = 30 * time.Second

// retryTrim runs trim until it succeeds, pausing longer after each
// failure, while r is the node's open replica k: a trim left undone keeps
// the other half's keys in the replica (and its child's marker) until
// the node restarts. A replica closed meanwhile runs its trims again when
// it opens.
func (s *Server) retryTrim(k replicaKey, r *replica.Replica, what string, trim func() error) {
	for pause := time.Second; ; pause = min(2*pause, trimRetryMax) {
		err := trim()
		if err == nil {
			return
		}
		if s.ctx.Err() != nil || s.replicas.get(k.table, k.id) != r {
			s.cfg.Logger.Warn("split: trim failed; it runs again when the replica opens", "table", k.table, "partition", k.id, "trim", what, "err", err)
			return
		}
		s.cfg.Logger.Warn("split: trim failed; trying again", "table", k.table, "partition", k.id, "trim", what, "in", pause, "err", err)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

// resumeTrims runs again a trim a crash interrupted (replica.PendingTrim).
func (s *Server) resumeTrims(k replicaKey, r *replica.Replica) {
	b, e, ok, err := r.PendingTrim()
	if err != nil || !ok {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.retryTrim(k, r, "resumed", func() error { return r.TrimSlots(s.ctx, b, e) })
		if !r.Trimming() {
			s.cfg.Logger.Info("split: resumed trim done", "table", k.table, "partition", k.id, "begin", b, "end", e)
		}
	}()
}

// trimmingAfterSplit reports whether replica r of (table, id) may hold
// keys of the other half of a split: its trim is recorded and not over;
// or, a split's child, its halves are not trimmed yet; or, a split's
// parent, the node staged a child of it that the topology made a
// partition and has not trimmed the halves yet (until trimAfterSplit
// records the parent's trim); or it applied a fence unstaged that its
// node has not resolved.
func (s *Server) trimmingAfterSplit(table string, id uint32, r *replica.Replica) bool {
	if r.Trimming() || r.UnstagedSplit() != nil {
		return true
	}
	if _, ok, _ := replica.ReadSplitMarker(s.replicaDir(table, id)); ok {
		return true
	}
	tb := s.topo.Load().tables[table]
	if tb == nil {
		return false
	}
	for _, c := range tb.Partitions {
		if c.SplitEpoch == 0 || c.Id == id {
			continue
		}
		if m, ok, _ := replica.ReadSplitMarker(s.replicaDir(table, c.Id)); ok && m.Parent == id && m.Epoch == c.SplitEpoch {
			return true
		}
	}
	return false
}

// heldReplica returns the open replica (table, id), waiting while the
// node's topology gives it the replica and it is not open yet (opening
// beside the caller's); nil when the node does not hold it.
func (s *Server) heldReplica(table string, id uint32) *replica.Replica {
	for {
		if r := s.replicas.get(table, id); r != nil {
			return r
		}
		_, p, ok := s.topo.Load().partitionByID(table, id)
		if !ok || !topo.Holds(p, s.cfg.Addr) {
			return nil
		}
		select {
		case <-s.ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// splitSamples bounds the keys SPLITPOINT reads (engine.SampleSlots reads
// at most twice as many): tens of milliseconds of reading.
const splitSamples = 4096

// splitPoint answers SPLITPOINT: the slot that halves the data of the
// partition, which this node masters, over the range the meta leader
// gives (topo.MedianSlot, from a sample of the keys).
func (s *Server) splitPoint(req *zppb.SplitPointRequest) (*zppb.Response, error) {
	b, e := req.SlotBegin, req.SlotEnd
	if b >= e || e-b < 2 || e > keyspace.Slots {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "slot range [%d, %d) cannot split", b, e)
	}
	r, err := s.masterReplica(req.Table, req.Partition)
	if err != nil {
		return nil, err
	}
	sample, err := r.SampleSlots(splitSamples)
	if err != nil {
		return nil, err
	}
	at := topo.MedianSlot(sample.BySlot, sample.Keys, b, e)
	s.cfg.Logger.Info("split: point by size", "table", req.Table, "partition", req.Partition, "begin", b, "end", e, "at", at,
		"keys", sample.Keys, "bytes", sample.Bytes, "exact", sample.Exact)
	return &zppb.Response{Result: &zppb.Response_SplitPoint{SplitPoint: &zppb.SplitPointResponse{
		At: at, SampledKeys: uint64(sample.Keys), SampledBytes: sample.Bytes, Exact: sample.Exact,
	}}}, nil
}
