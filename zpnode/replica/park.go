package replica

import (
	"fmt"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
)

// An open RocksDB costs a replica about 1 MB of memory and 8 descriptors
// whether it is used or not (docs/architecture.md, Scale), so a node with
// thousands of replicas parks the DBs of idle ones: flushes and closes
// them, and reopens one on the next request that reads or writes it. A
// parked replica keeps its binlog, its request ids and what the node
// reports about the DB (applied position, statistics, size), which cannot
// change while it is closed: nothing but a reopen writes to it.

// parkedDB is what a replica knows of its DB while it is parked.
type parkedDB struct {
	term, applied uint64
	stats         engine.Stats
	disk          int64
}

// idleState is what ParkIfIdle saw at its last call.
type idleState struct {
	uses  uint64    // dbUses then
	since time.Time // since when dbUses has not moved
}

// holdDB returns the replica's DB, reopening it if it is parked, with dbMu
// read-locked: the caller must RUnlock dbMu when done with the DB.
func (r *Replica) holdDB() (*engine.DB, error) {
	for {
		r.dbMu.RLock()
		if db := r.db; db != nil {
			r.dbUses.Add(1)
			return db, nil
		}
		r.dbMu.RUnlock()
		if err := r.unpark(); err != nil {
			return nil, err
		}
	}
}

// unpark reopens a parked DB.
func (r *Replica) unpark() error {
	r.dbMu.Lock()
	defer r.dbMu.Unlock()
	if r.dbClosed {
		return ErrClosed
	}
	if r.db != nil {
		return nil
	}
	start := time.Now()
	db, err := openDB(r.opts)
	if err != nil {
		return err
	}
	// Park flushed the DB before closing it; a DB that comes back behind
	// that lost table files, which the binlog may no longer cover.
	if term, applied := db.Applied(); applied != r.parked.applied || term != r.parked.term {
		db.Close()
		return fmt.Errorf("replica %s/%d: DB reopened at (%d, %d), parked at (%d, %d)",
			r.opts.Table, r.opts.ID, term, applied, r.parked.term, r.parked.applied)
	}
	r.db = db
	r.dbUses.Add(1)
	r.opts.Logger.Debug("reopened parked DB", "took", time.Since(start))
	return nil
}

// ParkIfIdle parks the replica's DB (flushes and closes it; the next
// request reopens it) when nothing has used the DB for at least idle, as
// seen by earlier calls: a caller polls it at a fraction of idle. It
// reports whether it parked the DB; a DB in use is left alone.
func (r *Replica) ParkIfIdle(idle time.Duration) (bool, error) {
	now := time.Now()
	r.parkMu.Lock()
	defer r.parkMu.Unlock()
	if u := r.dbUses.Load(); u != r.idle.uses || r.idle.since.IsZero() {
		r.idle = idleState{uses: u, since: now}
		return false, nil
	}
	if now.Sub(r.idle.since) < idle {
		return false, nil
	}
	return r.park()
}

// Park parks the replica's DB now unless it is in use or already parked.
func (r *Replica) Park() (bool, error) {
	r.parkMu.Lock()
	defer r.parkMu.Unlock()
	r.idle.uses = r.dbUses.Load()
	return r.park()
}

// park closes the DB if nothing holds it and nothing used it since
// r.idle.uses. The caller holds parkMu.
func (r *Replica) park() (bool, error) {
	if !r.dbMu.TryLock() {
		return false, nil // a request holds it
	}
	defer r.dbMu.Unlock()
	if r.db == nil || r.dbClosed || r.dbUses.Load() != r.idle.uses {
		return false, nil
	}
	db := r.db
	// With its WAL off, the DB's memtables live only in the binlog:
	// flush them, so that the position the replica reports while parked
	// is in table files, which purge relies on.
	if err := db.Flush(); err != nil {
		return false, fmt.Errorf("replica %s/%d: park: %w", r.opts.Table, r.opts.ID, err)
	}
	st, err := db.Stats()
	if err != nil {
		return false, fmt.Errorf("replica %s/%d: park: %w", r.opts.Table, r.opts.ID, err)
	}
	st.MemtableBytes, st.TableReaderBytes = 0, 0
	disk, err := db.DiskUsage()
	if err != nil {
		return false, fmt.Errorf("replica %s/%d: park: %w", r.opts.Table, r.opts.ID, err)
	}
	term, applied := db.Applied()
	r.parked = parkedDB{term: term, applied: applied, stats: st, disk: disk}
	r.db = nil
	if err := db.Close(); err != nil {
		// Closed all the same (engine.DB.Close frees it in any case);
		// the flush above already made its data durable.
		r.opts.Logger.Warn("closing idle DB", "err", err)
	}
	r.opts.Logger.Debug("parked idle DB", "applied_lsn", applied)
	return true, nil
}

// Parked reports whether the replica's DB is parked.
func (r *Replica) Parked() bool {
	r.dbMu.RLock()
	defer r.dbMu.RUnlock()
	return r.db == nil && !r.dbClosed
}
