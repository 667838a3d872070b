package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/atomicfile"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/failpoint"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/dbsync"
)

// ErrSplitPosition means a split was asked at a binlog position the
// replica's data is not at.
var ErrSplitPosition = errors.New("replica: not at the split position")

// Split creates the replica of a new partition, in child.Dir, as a copy of
// this one at binlog position (term, lsn): a RocksDB checkpoint, whose
// table files are hard links to this replica's, installed as a full sync
// installs one (crash safe), with a binlog of its own that starts after
// lsn. The data must have applied exactly (term, lsn), and writes are held
// off while the checkpoint is taken (a flush and the links), so the copy
// is at that position. The new replica opens as an idle slave, like any
// replica Open returns.
//
// Both replicas still hold every key: once the split is decided, each
// drops the other's range (TrimSlots). Nothing here consults the topology;
// the split's state machine decides when to call it and with what.
func (r *Replica) Split(term, lsn uint64, child Options) (*Replica, error) {
	if child.Dir == "" || filepath.Clean(child.Dir) == filepath.Clean(r.opts.Dir) {
		return nil, fmt.Errorf("replica %s/%d: split into %q: not a directory of its own", r.opts.Table, r.opts.ID, child.Dir)
	}
	if err := r.stageSplit(term, lsn, child.Dir); err != nil {
		return nil, fmt.Errorf("replica %s/%d: split into %s/%d: %w", r.opts.Table, r.opts.ID, child.Table, child.ID, err)
	}
	c, err := Open(child)
	if err != nil {
		return nil, fmt.Errorf("replica %s/%d: split into %s/%d: %w", r.opts.Table, r.opts.ID, child.Table, child.ID, err)
	}
	r.opts.Logger.Info("split: new partition replica created", "child", child.ID, "term", term, "lsn", lsn)
	return c, nil
}

// stageSplit checkpoints the DB into dir's staging directory with writes
// held off.
func (r *Replica) stageSplit(term, lsn uint64, dir string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	db, err := r.holdDB()
	if err != nil {
		return err
	}
	defer r.dbMu.RUnlock()
	if at, atLSN := db.Applied(); at != term || atLSN != lsn {
		return fmt.Errorf("%w: the data is at term %d lsn %d, the split at term %d lsn %d", ErrSplitPosition, at, atLSN, term, lsn)
	}
	ct, cl, err := dbsync.StageCheckpoint(dir, db)
	if err != nil {
		return err
	}
	if ct != term || cl != lsn {
		// Unreachable while mu holds every apply off; a copy at another
		// position must not become a partition.
		os.RemoveAll(filepath.Join(dir, dbsync.StagingDir))
		return fmt.Errorf("%w: checkpoint at term %d lsn %d", ErrSplitPosition, ct, cl)
	}
	return nil
}

// slotRange is a half-open range of slots [begin, end).
type slotRange struct{ begin, end uint32 }

// holds reports whether key's slot is in the range.
func (s *slotRange) holds(key []byte) bool {
	slot := uint32(keyspace.Slot(key))
	return s.begin <= slot && slot < s.end
}

// trimFile, in a replica's directory, records a trim in progress: the
// slot range the replica keeps.
const trimFile = "slots.trim"

// TrimSlots deletes every key outside the slot range [begin, end) the
// replica keeps after a split, and starts a compaction that gives their
// disk space back. The range is recorded first, so that a trim a crash
// interrupted is found by PendingTrim when the replica opens again and
// can be run again (it is idempotent): the deletes are in no binlog.
// From then until the trim ends, scans of the replica leave out the keys
// outside the range.
func (r *Replica) TrimSlots(ctx context.Context, begin, end uint32) error {
	r.trimMu.Lock()
	defer r.trimMu.Unlock()
	if err := r.recordTrim(begin, end); err != nil {
		return err
	}
	path := filepath.Join(r.opts.Dir, trimFile)
	failpoint.Hold(ctx, r.opts.Logger, failpoint.SplitTrim)
	db, err := r.holdDB()
	if err != nil {
		return fmt.Errorf("replica %s/%d: trim: %w", r.opts.Table, r.opts.ID, err)
	}
	_, err = db.DeleteSlotsOutside(ctx, begin, end)
	r.dbMu.RUnlock()
	if err != nil {
		return fmt.Errorf("replica %s/%d: trim: %w", r.opts.Table, r.opts.ID, err)
	}
	if err := atomicfile.Remove(path); err != nil {
		return fmt.Errorf("replica %s/%d: trim: %w", r.opts.Table, r.opts.ID, err)
	}
	r.trimming.Store(nil)
	return nil
}

// recordTrim records a trim to [begin, end) (trimFile), and from now on
// scans leave out the keys outside the range.
func (r *Replica) recordTrim(begin, end uint32) error {
	path := filepath.Join(r.opts.Dir, trimFile)
	if err := atomicfile.Write(path, fmt.Appendf(nil, "begin=%d end=%d\n", begin, end), 0o644); err != nil {
		return fmt.Errorf("replica %s/%d: trim: %w", r.opts.Table, r.opts.ID, err)
	}
	r.trimming.Store(&slotRange{begin, end})
	return nil
}

// Trimming reports whether a trim is recorded and not over: the replica
// holds keys outside the range it keeps.
func (r *Replica) Trimming() bool { return r.trimming.Load() != nil }

// PendingTrim returns the slot range of a trim that has not finished
// (TrimSlots); ok is false when there is none.
func (r *Replica) PendingTrim() (begin, end uint32, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(r.opts.Dir, trimFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("replica %s/%d: %w", r.opts.Table, r.opts.ID, err)
	}
	if _, err := fmt.Sscanf(string(b), "begin=%d end=%d\n", &begin, &end); err != nil {
		return 0, 0, false, fmt.Errorf("replica %s/%d: %s: %w", r.opts.Table, r.opts.ID, trimFile, err)
	}
	return begin, end, true, nil
}

// The split's fence (docs/topology.md, "Split"): the master logs a record
// carrying a SplitRecord and no data; every replica applying it creates
// the child's replica (a checkpoint of its data at exactly that record,
// staged in the child's directory as Split does) before it applies the
// next record. A crash between the two is resumed when the replica opens
// (resumeSplitLocked, by the pendingSplitFile intent); the child's
// directory says which split made it (SplitMarker), so that the node can
// report it and a later split or an old fence never takes it for another.

// pendingSplitFile, in a replica's directory, records that a fence is
// being applied and its child not yet staged.
const pendingSplitFile = "split.pending"

// splitMarkerFile, in a child's directory, names the split that staged it;
// written once the checkpoint is complete.
const splitMarkerFile = "split.from"

// SplitMarker is what a child's directory records of the split that
// created it.
type SplitMarker struct {
	Parent uint32
	Epoch  uint64
	Term   uint64
	LSN    uint64
}

// ReadSplitMarker reads the marker of the split that created the replica
// in dir; ok is false when there is none (not a split's child, or its
// checkpoint is not complete).
func ReadSplitMarker(dir string) (m SplitMarker, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, splitMarkerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return SplitMarker{}, false, nil
	}
	if err != nil {
		return SplitMarker{}, false, err
	}
	if _, err := fmt.Sscanf(string(b), "parent=%d epoch=%d term=%d lsn=%d\n", &m.Parent, &m.Epoch, &m.Term, &m.LSN); err != nil {
		return SplitMarker{}, false, fmt.Errorf("%s: %w", filepath.Join(dir, splitMarkerFile), err)
	}
	return m, true, nil
}

// RemoveSplitMarker forgets that the replica in dir was created by a
// split (once it serves as a partition and its trim is recorded).
func RemoveSplitMarker(dir string) error {
	if err := atomicfile.Remove(filepath.Join(dir, splitIDsFile)); err != nil {
		return err
	}
	return atomicfile.Remove(filepath.Join(dir, splitMarkerFile))
}

// splitIDsFile, in a child's directory, lists the request ids of the
// parent's last records up to the fence (as Open reads them from a
// binlog's tail): a client retrying a write acknowledged before the fence
// may reach the child, whose binlog starts after it.
const splitIDsFile = "split.ids"

// writeSplitIDsLocked writes splitIDsFile into the child's dir: one line
// per record with a request id, "id-hex lsn result has-value".
func (r *Replica) writeSplitIDsLocked(dir string, fence uint64) error {
	from := r.log.First()
	if from == 0 || from > fence {
		return nil
	}
	if fence >= dedupWarm && fence-dedupWarm+1 > from {
		from = fence - dedupWarm + 1
	}
	rd, err := r.log.NewReader(from)
	if err != nil {
		return err
	}
	defer rd.Close()
	var out []byte
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) || err == nil && rec.LSN > fence {
			break
		}
		if err != nil {
			return err
		}
		wr := &zppb.WriteRecord{}
		if err := proto.Unmarshal(rec.Payload, wr); err != nil {
			return err
		}
		if len(wr.RequestId) == 0 {
			continue
		}
		hasValue := 0
		if len(wr.ResultValue) > 0 {
			hasValue = 1
		}
		out = fmt.Appendf(out, "%x %d %d %d\n", wr.RequestId, rec.LSN, wr.Result, hasValue)
	}
	return atomicfile.Write(filepath.Join(dir, splitIDsFile), out, 0o644)
}

// readSplitIDs remembers the request ids a split handed this replica
// (splitIDsFile), if any. A retry of one of them is answered, not
// applied; one whose answer has a value gets ErrAnswerPurged (the record
// is in the parent's binlog, not this one's).
func (r *Replica) readSplitIDs() error {
	b, err := os.ReadFile(filepath.Join(r.opts.Dir, splitIDsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var id []byte
		var lsn uint64
		var result int64
		var hasValue int
		if _, err := fmt.Sscanf(string(line), "%x %d %d %d", &id, &lsn, &result, &hasValue); err != nil {
			return fmt.Errorf("%s: %w", splitIDsFile, err)
		}
		rec := &zppb.WriteRecord{Result: result}
		if hasValue == 1 {
			rec.ResultValue = []byte{1}
		}
		r.dedup.add(id, lsn, rec)
	}
	return nil
}

// applySplittingLocked applies recs to db, one RocksDB write per stretch
// up to a fence, creating the fence's child right after the fence is
// applied and before anything after it. The caller holds mu (or has the
// replica to itself) and db.
func (r *Replica) applySplittingLocked(db *engine.DB, recs []engine.Record) error {
	for len(recs) > 0 {
		i := slices.IndexFunc(recs, func(e engine.Record) bool { return e.Rec.GetSplit() != nil })
		n := len(recs)
		if i >= 0 {
			n = i + 1
			if err := atomicfile.Write(filepath.Join(r.opts.Dir, pendingSplitFile), nil, 0o644); err != nil {
				return fmt.Errorf("split intent: %w", err)
			}
		}
		if err := r.applyToDB(db, recs[:n]); err != nil {
			return err
		}
		if i >= 0 {
			r.stageChildLocked(db, recs[i])
			if err := atomicfile.Remove(filepath.Join(r.opts.Dir, pendingSplitFile)); err != nil {
				return fmt.Errorf("split intent: %w", err)
			}
		}
		recs = recs[n:]
	}
	return nil
}

// stageAttempts is how many times stageChildLocked tries to checkpoint.
const stageAttempts = 3

// stageLocked stages the child of fence f in dir.
func (r *Replica) stageLocked(db *engine.DB, f engine.Record, dir string) error {
	sp := f.Rec.GetSplit()
	// Whatever is there is no partition (SplitDir said so): a child of
	// an earlier attempt, or a staging a crash cut short.
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clearing the child's directory: %w", err)
	}
	if at, atLSN := db.Applied(); at != f.Term || atLSN != f.LSN {
		return fmt.Errorf("%w: data at term %d lsn %d, the fence at term %d lsn %d", ErrSplitPosition, at, atLSN, f.Term, f.LSN)
	}
	// A failure is tried again: one seen under crash tests (a table file
	// gone while RocksDB linked it) was transient.
	var err error
	for attempt := range stageAttempts {
		if _, _, err = dbsync.StageCheckpoint(dir, db); err == nil {
			break
		}
		r.opts.Logger.Warn("split: cannot stage the child", "child", sp.Child, "attempt", attempt+1, "err", err)
		os.RemoveAll(dir)
	}
	if err != nil {
		return err
	}
	if err := r.writeSplitIDsLocked(dir, f.LSN); err != nil {
		// The child goes on without them: a retry of a write acknowledged
		// before the fence may then be applied again on it.
		r.opts.Logger.Warn("split: cannot hand the child the recent request ids", "child", sp.Child, "err", err)
	}
	marker := fmt.Appendf(nil, "parent=%d epoch=%d term=%d lsn=%d\n", r.opts.ID, sp.Epoch, f.Term, f.LSN)
	return atomicfile.Write(filepath.Join(dir, splitMarkerFile), marker, 0o644)
}

// unstagedFile, in a replica's directory, records a fence it applied
// without staging the child (the staging failed): if the split commits,
// the replica (the parent) must still trim the child's slots, which the
// child's marker would otherwise have led its node to do.
const unstagedFile = "split.unstaged"

// noteUnstaged records that the child of fence sp could not be staged.
func (r *Replica) noteUnstaged(sp *zppb.SplitRecord) {
	note := fmt.Appendf(nil, "child=%d at=%d end=%d epoch=%d\n", sp.Child, sp.At, sp.End, sp.Epoch)
	if err := atomicfile.Write(filepath.Join(r.opts.Dir, unstagedFile), note, 0o644); err != nil {
		r.opts.Logger.Error("split: cannot record the fence whose child is not staged", "child", sp.Child, "err", err)
	}
	r.unstaged.Store(proto.Clone(sp).(*zppb.SplitRecord))
}

// readUnstaged reads unstagedFile: nil when there is none.
func (r *Replica) readUnstaged() (*zppb.SplitRecord, error) {
	b, err := os.ReadFile(filepath.Join(r.opts.Dir, unstagedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sp := &zppb.SplitRecord{}
	if _, err := fmt.Sscanf(string(b), "child=%d at=%d end=%d epoch=%d\n", &sp.Child, &sp.At, &sp.End, &sp.Epoch); err != nil {
		return nil, fmt.Errorf("%s: %w", unstagedFile, err)
	}
	return sp, nil
}

// UnstagedSplit returns the fence the replica applied without staging its
// child, until ResolveUnstaged; nil when there is none. The result must
// not be modified.
func (r *Replica) UnstagedSplit() *zppb.SplitRecord { return r.unstaged.Load() }

// ResolveUnstaged ends what UnstagedSplit returns once its split is over:
// committed, the replica records the trim of the child's slots (keeping
// [0, at), as trimCommittedLocked does) for its node to run
// (PendingTrim); rolled back, there is nothing to undo.
func (r *Replica) ResolveUnstaged(committed bool) error {
	sp := r.unstaged.Load()
	if sp == nil {
		return nil
	}
	if committed {
		if err := r.recordTrim(0, sp.At); err != nil {
			return err
		}
	}
	if err := atomicfile.Remove(filepath.Join(r.opts.Dir, unstagedFile)); err != nil {
		return fmt.Errorf("replica %s/%d: %w", r.opts.Table, r.opts.ID, err)
	}
	r.unstaged.CompareAndSwap(sp, nil)
	return nil
}

// stageChildLocked creates the child of the fence f, just applied, in the
// directory opts.SplitDir names. A failure is logged, not returned: the
// parent goes on, and the split commits without this replica's child
// (it full-syncs the child after) or rolls back; the replica records the
// fence (noteUnstaged), so that its node trims it if the split commits
// (ResolveUnstaged).
func (r *Replica) stageChildLocked(db *engine.DB, f engine.Record) {
	sp := f.Rec.GetSplit()
	if r.opts.SplitDir == nil {
		return
	}
	dir := r.opts.SplitDir(sp)
	if dir == "" {
		r.opts.Logger.Info("split fence left alone: its split is over", "child", sp.Child, "epoch", sp.Epoch, "lsn", f.LSN)
		r.trimCommittedLocked(sp)
		return
	}
	if m, ok, _ := ReadSplitMarker(dir); ok && m.Parent == r.opts.ID && m.Epoch == sp.Epoch && m.Term == f.Term && m.LSN == f.LSN {
		return // staged before a crash
	}
	start := time.Now()
	if err := r.stageLocked(db, f, dir); err != nil {
		r.opts.Logger.Error("split: cannot stage the child", "child", sp.Child, "err", err)
		os.RemoveAll(dir)
		r.noteUnstaged(sp)
		return
	}
	if r.opts.SplitStaged != nil {
		r.opts.SplitStaged(sp)
	}
	r.opts.Logger.Info("split: child staged at the fence", "child", sp.Child, "epoch", sp.Epoch, "term", f.Term, "lsn", f.LSN,
		"took", time.Since(start).Round(time.Microsecond))
}

// trimCommittedLocked handles the fence of a split that committed before
// this replica applied it (a slave that was behind: the master and
// enough other slaves made the commit). It stages no child, which its node
// full-syncs instead, but from the fence on the replica is the parent,
// which keeps only the slots below sp.At: it records the trim of the
// others now, before anything after the fence is applied (under the
// split.pending intent, so that a crash records it again), for its node
// to run (Options.SplitTrim, or PendingTrim when it opens). Keeping
// [0, at) rather than [begin, at) is the same for the parent's data,
// which holds no slot below its begin, and needs nothing the fence does
// not carry.
func (r *Replica) trimCommittedLocked(sp *zppb.SplitRecord) {
	if r.opts.SplitCommitted == nil || !r.opts.SplitCommitted(sp) {
		return
	}
	if err := r.recordTrim(0, sp.At); err != nil {
		r.opts.Logger.Error("split: cannot record the parent's trim", "child", sp.Child, "err", err)
		return
	}
	r.opts.Logger.Info("split committed before its fence got here: the parent's trim is recorded", "child", sp.Child, "at", sp.At, "epoch", sp.Epoch)
	if r.opts.SplitTrim != nil {
		r.opts.SplitTrim()
	}
}

// splitPending reports whether a fence's child may be left to stage
// (resumeSplitLocked).
func (r *Replica) splitPending() bool {
	_, err := os.Stat(filepath.Join(r.opts.Dir, pendingSplitFile))
	return err == nil
}

// resumeSplitLocked finishes a fence whose child a crash kept from being
// staged: the data is at the fence (nothing after it was applied).
func (r *Replica) resumeSplitLocked(db *engine.DB, applied uint64) error {
	path := filepath.Join(r.opts.Dir, pendingSplitFile)
	if !r.splitPending() {
		return nil
	}
	if applied > 0 {
		if rec, err := r.loggedRecord(applied); err == nil && rec.GetSplit() != nil {
			term, _ := db.Applied()
			r.stageChildLocked(db, engine.Record{LSN: applied, Term: term, Rec: rec})
		}
	}
	// Not at a fence: the crash came before the fence was applied, and
	// the replay applies it.
	return atomicfile.Remove(path)
}

// LogSplit logs the fence of a split as master: from it on, writes to
// the child's range [sp.At, sp.End) are refused (ErrSplitting). It returns
// once the fence is committed.
func (r *Replica) LogSplit(ctx context.Context, sp *zppb.SplitRecord) error {
	_, err := r.Update(ctx, nil, func(View) (*zppb.WriteRecord, error) {
		r.fence = &slotRange{sp.At, sp.End}
		return &zppb.WriteRecord{Split: sp}, nil
	})
	return err
}

// SetSlots sets the slots the replica takes writes for: [begin, end),
// its partition's range in the node's topology, less [fenceAt, end) while
// a split of the partition is in PREPARE (fenceAt < end; fenceAt >= end:
// no split). Writes to any other slot are refused (ErrSplitting), checked
// as they are logged: a request routed by an older topology, or taken by
// a master that did not log the fence itself (promoted, or restarted,
// since), must not land in a range the partition is giving away or gave
// away, where the split's trim would delete it.
func (r *Replica) SetSlots(begin, end, fenceAt uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.slots = slotRange{begin, end}
	r.fence = nil
	if fenceAt < end {
		r.fence = &slotRange{max(fenceAt, begin), end}
	}
}

// refusesLocked reports whether rec writes to a slot the replica does not
// take writes for (SetSlots). A split's fence itself is always taken. An
// ingest's file may hold keys of any slot of the range it was routed for:
// while a split is under way it waits like the writes to the moving range
// (Ingest checks that range itself).
func (r *Replica) refusesLocked(rec *zppb.WriteRecord) bool {
	if rec == nil || rec.GetSplit() != nil {
		return false
	}
	if rec.GetIngest() != nil {
		return r.fence != nil
	}
	for _, m := range rec.GetMutations() {
		if m.GetKind() == zppb.Mutation_CLEAR {
			continue // keyless: it empties the replica, whatever its range
		}
		if !r.slots.holds(m.Key) || r.fence != nil && r.fence.holds(m.Key) {
			return true
		}
	}
	return false
}
