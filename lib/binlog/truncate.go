package binlog

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/zeppelin-kv/zeppelin/lib/atomicfile"
)

// TruncateAfter removes every record with an LSN above lsn, so that the
// next Append continues at lsn+1. A slave uses it to cut a diverged suffix
// back to the last record it shares with its master. Truncating at or after
// Last is a no-op; truncating below First()-1 fails with ErrPurged (the
// replica needs a full sync and Reset).
//
// The truncation is durable when TruncateAfter returns. Every open Reader
// fails with ErrTruncated afterwards. If TruncateAfter fails part-way, the
// log still holds a prefix of its records; call it again.
func (l *Log) TruncateAfter(lsn uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	if lsn >= l.last {
		return nil
	}
	if _, base := l.baseLocked(); lsn < base {
		return fmt.Errorf("%w: cannot truncate after lsn %d, first is %d", ErrPurged, lsn, base+1)
	}

	i := l.segmentIndexLocked(lsn + 1)
	seg := l.segs[i]
	res, err := scanSegment(seg.path, seg.first, lsn)
	if err != nil {
		return err
	}
	if res.last != lsn {
		reason := res.bad
		if reason == nil {
			reason = fmt.Errorf("ends at lsn %d", res.last)
		}
		return fmt.Errorf("%w: %s: looking for lsn %d: %v", ErrCorrupt, seg.path, lsn, reason)
	}

	// From here on records disappear: invalidate readers first so none can
	// return a record that is about to be removed (see Reader.Next).
	l.epoch.Add(1)
	// The segment shrinks and may grow back to the size the mark names
	// with other records; the directory sync below makes this durable.
	if err := removeSyncedMark(l.dir); err != nil {
		return err
	}

	// Remove later segments newest first, so that a crash part-way leaves a
	// log that is a prefix of this one.
	if err := l.closeActiveLocked(); err != nil {
		return err
	}
	for len(l.segs) > i+1 {
		victim := l.segs[len(l.segs)-1]
		if err := os.Remove(victim.path); err != nil && !os.IsNotExist(err) {
			return l.reopenAfterErrorLocked(fmt.Errorf("binlog: truncate: %w", err))
		}
		victim.removed = true
		l.size -= victim.size
		l.segs = l.segs[:len(l.segs)-1]
	}

	f, err := os.OpenFile(seg.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return l.reopenAfterErrorLocked(fmt.Errorf("binlog: truncate: %w", err))
	}
	l.active = &activeFile{f: f}
	l.size -= seg.size - res.end
	seg.size = res.end
	seg.terms = res.terms
	l.last, l.lastTerm = res.last, res.lastTerm
	if l.durable > lsn {
		l.durable = lsn
	}
	if err := f.Truncate(res.end); err != nil {
		l.failLocked(fmt.Errorf("binlog: truncating %s: %w", seg.path, err))
		return l.failed
	}
	if err := fdatasync(f); err != nil {
		l.failLocked(fmt.Errorf("binlog: truncate: %w", err))
		return l.failed
	}
	if err := atomicfile.SyncDir(l.dir); err != nil {
		l.failLocked(fmt.Errorf("binlog: truncate: %w", err))
		return l.failed
	}
	l.markDurableLocked(lsn)
	l.logger.Info("binlog: truncated", "after_lsn", lsn, "segment", filepath.Base(seg.path))
	return nil
}

// closeActiveLocked syncs and closes the active segment's file, so that a
// truncation or reset can replace it.
func (l *Log) closeActiveLocked() error { return l.closeActiveSyncingLocked(true) }

// closeActiveSyncingLocked is closeActiveLocked, without the sync unless
// sync is set.
func (l *Log) closeActiveSyncingLocked(sync bool) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.active.closed {
		return nil
	}
	var err error
	if sync {
		err = l.syncActiveLocked(l.active)
	}
	l.active.f.Close()
	l.active.closed = true
	if err != nil {
		l.failLocked(fmt.Errorf("binlog: sync: %w", err))
		return l.failed
	}
	return nil
}

// reopenAfterErrorLocked puts the log back on its (possibly new) last
// segment after a truncation failed part-way, and returns err. If that
// fails too the log refuses writes until reopened.
func (l *Log) reopenAfterErrorLocked(err error) error {
	seg := l.activeSegment()
	res, serr := scanSegment(seg.path, seg.first, noLimit)
	if serr == nil && res.bad == nil {
		var f *os.File
		if f, serr = os.OpenFile(seg.path, os.O_WRONLY|os.O_APPEND, 0); serr == nil {
			l.active = &activeFile{f: f}
			l.size += res.end - seg.size
			seg.size, seg.terms = res.end, res.terms
			l.last, l.lastTerm = res.last, res.lastTerm
			l.durable = min(l.durable, l.last)
			return err
		}
	}
	l.failLocked(err)
	return err
}

// PurgeBefore removes whole segments all of whose records have LSNs below
// lsn, oldest first, and returns how many it removed. The active segment
// is never removed, so the log always keeps its last record. Readers
// positioned in a removed segment finish reading it.
func (l *Log) PurgeBefore(lsn uint64) (removed int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkOpenLocked(); err != nil {
		return 0, err
	}
	// segs[0] holds records up to segs[1].first-1.
	for len(l.segs) > 1 && l.segs[1].first <= lsn {
		victim := l.segs[0]
		if err := os.Remove(victim.path); err != nil && !os.IsNotExist(err) {
			return removed, fmt.Errorf("binlog: purge: %w", err)
		}
		victim.removed = true
		l.size -= victim.size
		l.segs[0] = nil
		l.segs = l.segs[1:]
		removed++
	}
	// No directory sync: if a crash brings a purged segment back, the log
	// merely holds more history than it needs.
	if removed > 0 {
		l.logger.Debug("binlog: purged segments", "count", removed, "first_lsn", l.segs[0].first)
	}
	return removed, nil
}

// Reset discards every record and restarts the log after the position
// (term, lsn): the next record appended must have LSN lsn+1, Last returns
// (term, lsn) and TermAt(lsn) returns term. A slave calls it after a full
// sync installed a checkpoint taken at (term, lsn). Every open Reader fails
// with ErrTruncated afterwards.
//
// A crash during Reset leaves either a prefix of the old log or the reset
// log; if the storage engine is then ahead of Last, reset again.
func (l *Log) Reset(term, lsn uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	if lsn == ^uint64(0) {
		return fmt.Errorf("binlog: reset: lsn %d out of range", lsn)
	}
	l.epoch.Add(1)
	// createSegment below syncs the directory, and with it this removal.
	if err := removeSyncedMark(l.dir); err != nil {
		return err
	}
	if err := l.closeActiveLocked(); err != nil {
		return err
	}
	for len(l.segs) > 0 {
		victim := l.segs[len(l.segs)-1]
		if err := os.Remove(victim.path); err != nil && !os.IsNotExist(err) {
			return l.reopenAfterErrorLocked(fmt.Errorf("binlog: reset: %w", err))
		}
		victim.removed = true
		l.size -= victim.size
		l.segs = l.segs[:len(l.segs)-1]
	}
	f, seg, err := createSegment(l.dir, segmentHeader{first: lsn + 1, prevTerm: term})
	if err != nil {
		// No segment left to append to; Open will start a fresh log.
		l.failLocked(fmt.Errorf("binlog: reset: %w", err))
		return l.failed
	}
	l.segs = []*segment{seg}
	l.active = &activeFile{f: f}
	l.size = seg.size
	l.last, l.lastTerm = lsn, term
	l.durable = lsn
	l.synced.notify()
	l.appended.notify()
	l.logger.Info("binlog: reset", "term", term, "lsn", lsn)
	return nil
}
