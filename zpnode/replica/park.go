package replica

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/atomicfile"
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
	// empty: the replica is new and its DB not created yet; it reads as
	// empty, and the first write (or full sync) creates it.
	empty bool
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

// readDB is holdDB for reads: a replica whose DB was never created reads
// as empty (ok false, dbMu not held) rather than create it: a client
// probing every partition of a new table would create them all.
func (r *Replica) readDB() (db *engine.DB, ok bool, err error) {
	r.dbMu.RLock()
	empty := r.parkedLocked() && r.parked.empty
	r.dbMu.RUnlock()
	if empty {
		return nil, false, nil
	}
	if db, err = r.holdDB(); err != nil {
		return nil, false, err
	}
	return db, true, nil
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
	if err := removeParkMark(r.opts.Dir); err != nil {
		db.Close()
		return fmt.Errorf("replica %s/%d: %w", r.opts.Table, r.opts.ID, err)
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
// An idle of zero or less only notes use, for IdleSince.
func (r *Replica) ParkIfIdle(idle time.Duration) (bool, error) {
	now := time.Now()
	r.parkMu.Lock()
	defer r.parkMu.Unlock()
	if u := r.dbUses.Load(); u != r.idle.uses || r.idle.since.IsZero() {
		r.idle = idleState{uses: u, since: now}
		return false, nil
	}
	if idle <= 0 || now.Sub(r.idle.since) < idle {
		return false, nil
	}
	parked, err := r.park()
	if parked {
		r.dbMu.RLock()
		lsn := r.parked.applied
		r.dbMu.RUnlock()
		r.forgetIdleRequestIDs(lsn)
		r.closePeerReaders()
	}
	return parked, err
}

// closePeerReaders closes the binlog readers a master keeps for its
// slaves (a descriptor each) once its partition parked: idle slaves'
// pulls find nothing to read and open none (readFor); the next record
// opens one again.
func (r *Replica) closePeerReaders() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m.closePeers()
}

// forgetIdleRequestIDs drops the request ids of a replica parked for want
// of use: a client retries a write for seconds, not for the idle period,
// and a once-busy replica remembers up to 65,536 of them (5 MB), which
// thousands of idle replicas cannot keep. Nothing is dropped when a write
// came in after the park at lsn.
func (r *Replica) forgetIdleRequestIDs(lsn uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, last := r.log.Last(); last != lsn || len(r.queue) > 0 || r.flushing || len(r.m.pending) > 0 {
		return
	}
	r.dedup.reset()
}

// IdleSince is since when ParkIfIdle has seen the DB unused (the time of
// its last look that saw it used); zero before its first look.
func (r *Replica) IdleSince() time.Time {
	r.parkMu.Lock()
	defer r.parkMu.Unlock()
	return r.idle.since
}

// Park parks the replica's DB now unless it is in use or already parked.
func (r *Replica) Park() (bool, error) {
	r.parkMu.Lock()
	defer r.parkMu.Unlock()
	r.idle.uses = r.dbUses.Load()
	parked, err := r.park()
	if parked {
		r.closePeerReaders()
	}
	return parked, err
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
	if err := r.closeDBLocked(true); err != nil {
		return false, err
	}
	// The binlog's active segment too: its next append reopens it.
	if err := r.log.Park(); err != nil {
		r.opts.Logger.Warn("cannot park binlog", "err", err)
	}
	r.opts.Logger.Debug("parked idle DB", "applied_lsn", r.parked.applied)
	return true, nil
}

// closeDBLocked flushes and closes the open DB, notes what it held in
// r.parked and in the replica's park mark (so that the next start need not
// open it), and leaves r.db nil. idle says the DB closed for want of use,
// not because the replica closed. When the flush fails the DB stays open.
// The caller holds dbMu.
func (r *Replica) closeDBLocked(idle bool) error {
	db := r.db
	// With its WAL off, the DB's memtables live only in the binlog:
	// flush them, so that the position the replica reports while parked
	// is in table files, which purge relies on.
	if err := db.FlushForClose(); err != nil {
		return fmt.Errorf("replica %s/%d: park: %w", r.opts.Table, r.opts.ID, err)
	}
	st, err := db.Stats()
	if err != nil {
		return fmt.Errorf("replica %s/%d: park: %w", r.opts.Table, r.opts.ID, err)
	}
	st.MemtableBytes, st.TableReaderBytes = 0, 0
	disk, err := db.DiskUsage()
	if err != nil {
		return fmt.Errorf("replica %s/%d: park: %w", r.opts.Table, r.opts.ID, err)
	}
	term, applied := db.Applied()
	r.parked = parkedDB{term: term, applied: applied, stats: st, disk: disk}
	r.db = nil
	if err := db.Close(); err != nil {
		// Closed all the same (engine.DB.Close frees it in any case);
		// the flush above already made its data durable.
		r.opts.Logger.Warn("closing DB", "err", err)
	}
	if err := writeParkMark(r.opts.Dir, r.parked, idle); err != nil {
		// Only costs the next start an open of this DB.
		r.opts.Logger.Warn("cannot write park mark", "err", err)
	}
	return nil
}

// parkMarkFile, in a replica's directory, says its DB was flushed and
// closed at the position it names and has not been opened since: a start
// may leave it closed (parked) until a request needs it. Whoever opens the
// DB to change it removes the mark first.
const parkMarkFile = "PARKED"

// parkMark is the park mark's content.
type parkMark struct {
	Term           uint64 `json:"term"`
	Applied        uint64 `json:"applied"`
	Keys           uint64 `json:"keys"`
	SSTBytes       uint64 `json:"sst_bytes"`
	PendingCompact uint64 `json:"pending_compact"`
	Disk           int64  `json:"disk"`
	// Idle: the DB closed for want of use, not with the replica; its
	// writes are old enough that no client still retries them.
	Idle bool `json:"idle"`
}

func writeParkMark(dir string, p parkedDB, idle bool) error {
	b, err := json.Marshal(parkMark{
		Term: p.term, Applied: p.applied, Keys: p.stats.EstimatedKeys, SSTBytes: p.stats.SSTBytes,
		PendingCompact: p.stats.PendingCompact, Disk: p.disk, Idle: idle,
	})
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, parkMarkFile), b, 0o644)
}

// readParkMark reads the replica's park mark; ok is false when there is
// none.
func readParkMark(dir string) (p parkedDB, idle, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, parkMarkFile))
	if errors.Is(err, fs.ErrNotExist) {
		return parkedDB{}, false, false, nil
	}
	if err != nil {
		return parkedDB{}, false, false, err
	}
	var m parkMark
	if err := json.Unmarshal(b, &m); err != nil {
		return parkedDB{}, false, false, fmt.Errorf("park mark: %w", err)
	}
	return parkedDB{
		term: m.Term, applied: m.Applied, disk: m.Disk,
		stats: engine.Stats{EstimatedKeys: m.Keys, SSTBytes: m.SSTBytes, PendingCompact: m.PendingCompact, WALDisabled: true},
	}, m.Idle, true, nil
}

// removeParkMark removes the park mark, durably, before the DB changes.
func removeParkMark(dir string) error {
	if err := atomicfile.Remove(filepath.Join(dir, parkMarkFile)); err != nil {
		return fmt.Errorf("removing park mark: %w", err)
	}
	return nil
}

// Parked reports whether the replica's DB is parked.
func (r *Replica) Parked() bool {
	r.dbMu.RLock()
	defer r.dbMu.RUnlock()
	return r.parkedLocked()
}

// parkedLocked is Parked for a holder of dbMu.
func (r *Replica) parkedLocked() bool { return r.db == nil && !r.dbClosed }
