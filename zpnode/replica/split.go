package replica

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/zeppelin-kv/zeppelin/lib/atomicfile"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
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
	path := filepath.Join(r.opts.Dir, trimFile)
	if err := atomicfile.Write(path, fmt.Appendf(nil, "begin=%d end=%d\n", begin, end), 0o644); err != nil {
		return fmt.Errorf("replica %s/%d: trim: %w", r.opts.Table, r.opts.ID, err)
	}
	r.trimming.Store(&slotRange{begin, end})
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
