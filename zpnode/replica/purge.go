package replica

import "time"

// PurgePolicy says which binlog segments may go.
type PurgePolicy struct {
	// MaxSegments: segments beyond this many (newest kept) are purged.
	MaxSegments int
	// MaxAge: sealed segments older than this are purged; 0 means no limit.
	MaxAge time.Duration
	// MinSegments are always kept, whatever the other limits say.
	MinSegments int
}

// Purge removes binlog segments the policy lets go, but never records the
// DB has not applied (replay needs them) nor records a connected slave, or
// a slave in the middle of a full sync, still needs. It returns how many
// segments it removed.
func (r *Replica) Purge(p PurgePolicy) (int, error) {
	segs := r.log.Segments()
	if len(segs) <= max(p.MinSegments, 1) {
		return 0, nil
	}
	// Without a RocksDB WAL (the binlog is the log) only records in table
	// files survive a crash without the binlog: keep the rest.
	persisted, err := r.persistedApplied()
	if err != nil {
		return 0, err
	}
	need := persisted + 1
	r.mu.Lock()
	if r.role == Master {
		now := r.opts.Now()
		for _, peer := range r.m.peers {
			if peer.pinLSN > 0 && now.Before(peer.pinUntil) {
				need = min(need, peer.pinLSN)
			}
			if peer.connectedLocked(now) {
				need = min(need, peer.acked+1)
			}
		}
		need = min(need, r.pendingFloorLocked())
	}
	r.mu.Unlock()

	// Segment i holds records [segs[i].FirstLSN, segs[i+1].FirstLSN); the
	// last one is active and never purged.
	purgeBefore := uint64(0)
	now := time.Now()
	for i := 0; i < len(segs)-1; i++ {
		if len(segs)-i <= max(p.MinSegments, 1) {
			break
		}
		end := segs[i+1].FirstLSN // first lsn after segment i
		tooMany := p.MaxSegments > 0 && len(segs)-i > p.MaxSegments
		tooOld := p.MaxAge > 0 && !segs[i].ModTime.IsZero() && now.Sub(segs[i].ModTime) > p.MaxAge
		if !(tooMany || tooOld) || end > need {
			break
		}
		purgeBefore = end
	}
	if purgeBefore == 0 {
		if len(segs) > 2*max(p.MaxSegments, 2) {
			// A quiet memtable holds records of many segments: flush it,
			// so that the next round can let them go. Flushing at every
			// purge instead would rewrite table files all the time, and a
			// full sync could reuse none of them.
			r.dbMu.RLock()
			defer r.dbMu.RUnlock()
			if r.db == nil {
				return 0, nil // parked: flushed when it was
			}
			return 0, r.db.Flush()
		}
		return 0, nil
	}
	n, err := r.log.PurgeBefore(purgeBefore)
	r.dropAppliedFiles()
	return n, err
}

// pendingFloorLocked is the first lsn of a write still waiting for slaves.
func (r *Replica) pendingFloorLocked() uint64 {
	if len(r.m.pending) > 0 {
		return r.m.pending[0].lsn
	}
	return ^uint64(0)
}

// persistedApplied is the lsn of the last record the DB holds in table
// files, without reopening a parked DB (which park flushed).
func (r *Replica) persistedApplied() (uint64, error) {
	r.dbMu.RLock()
	defer r.dbMu.RUnlock()
	switch {
	case r.db != nil:
		_, lsn, err := r.db.PersistedApplied()
		return lsn, err
	case r.dbClosed:
		return 0, ErrClosed
	}
	return r.parked.applied, nil
}
