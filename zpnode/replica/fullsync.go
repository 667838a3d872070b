package replica

import (
	"context"
	"errors"
	"fmt"

	"github.com/zeppelin-kv/zeppelin/lib/binlog"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/dbsync"
)

// recoverFullSync finishes or rolls back a DB swap a crash interrupted, so
// that exactly one usable db/ exists before the replica opens it.
func recoverFullSync(dir string) error {
	return dbsync.Recover(dir)
}

// finishPendingInstall restarts the binlog after an installed checkpoint
// when a crash came between the DB swap and the binlog reset: replaying the
// old binlog over the new DB would apply records the checkpoint may not
// agree with.
func finishPendingInstall(dir string, log *binlog.Log) error {
	term, lsn, ok, err := dbsync.PendingInstall(dir)
	if err != nil || !ok {
		return err
	}
	if err := log.Reset(term, lsn); err != nil {
		return fmt.Errorf("reset binlog after full sync: %w", err)
	}
	return dbsync.FinishInstall(dir)
}

// fullSync copies the master's DB (only the files this replica lacks),
// swaps it in and restarts the binlog after the checkpoint's position. A
// failure before the swap leaves the old DB as it was.
func (r *Replica) fullSync(ctx context.Context, conn Conn) error {
	r.s.setState("fullsync")
	prog := &dbsync.Progress{}
	r.s.fullsync.set(prog)
	res, err := dbsync.Run(ctx, dbsync.Options{
		ReplicaDir: r.opts.Dir,
		Table:      r.opts.Table,
		Partition:  r.opts.ID,
		Slave:      r.opts.Self,
		Master:     conn,
		Progress:   prog,
		Logger:     r.opts.Logger,
	})
	if err != nil {
		return err
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.role != Slave || r.closed {
		// Free the staged copy's disk; a later sync starts over.
		if err := dbsync.Discard(r.opts.Dir); err != nil {
			r.opts.Logger.Warn("discarding staged full sync", "err", err)
		}
		return ErrNotMaster
	}
	r.dbMu.Lock()
	defer r.dbMu.Unlock()
	if r.db != nil { // nil when parked: closed already
		if err := r.db.Close(); err != nil {
			r.opts.Logger.Warn("closing DB for full sync", "err", err)
		}
	}
	if err := removeParkMark(r.opts.Dir); err != nil {
		r.opts.Fatal(fmt.Errorf("replica %s/%d: before installing a full sync: %w", r.opts.Table, r.opts.ID, err))
		return err
	}
	trim := r.installOwnedLocked(res.SlotBegin, res.SlotEnd)
	term, lsn, ierr := dbsync.Install(r.opts.Dir)
	db, oerr := openDB(r.opts)
	if oerr != nil {
		// The replica has no DB to go on with; the node's next start
		// recovers the swap or reports the disk problem.
		r.opts.Fatal(fmt.Errorf("replica %s/%d: cannot open DB after full sync: %w", r.opts.Table, r.opts.ID, errors.Join(ierr, oerr)))
		return oerr
	}
	r.db = db
	if ierr != nil {
		return fmt.Errorf("install full sync: %w", ierr)
	}
	if err := finishPendingInstall(r.opts.Dir, r.log); err != nil {
		return err
	}
	r.dedup.reset()
	if trim && r.opts.SplitTrim != nil {
		r.opts.SplitTrim()
	}
	r.opts.Logger.Info("full sync installed", "term", term, "lsn", lsn,
		"bytes_total", res.BytesTotal, "bytes_fetched", res.BytesFetched,
		"files_reused", res.FilesReused, "files_fetched", res.FilesFetched)
	return nil
}

// installOwnedLocked prepares the install of a full sync whose source
// says the copy holds keys of slots [begin, end) (end 0: any) for what it
// may hold that the replica must not keep (Options.Owns). It runs before
// the install, so that a crash after it finds the records:
//   - slots the partition no longer owns: a copy taken before the split
//     that took them committed, installed after it (and maybe after this
//     replica's own trim), or from a source whose topology is older. The
//     trim to the owned range is recorded, for the node to run (trim
//     true).
//   - the fence of a split in PREPARE: the copy may hold it, and then
//     this replica never applies it nor stages a child for it. It is
//     recorded as a fence applied unstaged (noteUnstaged), which the node
//     resolves once the split is over: the trim of the child's slots if
//     it committed, nothing if it rolled back.
func (r *Replica) installOwnedLocked(begin, end uint32) (trim bool) {
	if r.opts.Owns == nil {
		return false
	}
	b, e, sp := r.opts.Owns()
	if sp != nil {
		r.noteUnstaged(sp)
	}
	if end == 0 {
		begin, end = 0, keyspace.Slots
	}
	if begin >= b && end <= e {
		return false
	}
	if err := r.recordTrim(b, e); err != nil {
		r.opts.Logger.Error("full sync: cannot record the trim to the owned slots", "begin", b, "end", e, "err", err)
		return false
	}
	r.opts.Logger.Info("full sync: the copy may hold slots the partition does not own: its trim is recorded",
		"copy_begin", begin, "copy_end", end, "begin", b, "end", e)
	return true
}

func (f *fullSyncStatus) set(p *dbsync.Progress) {
	f.mu.Lock()
	f.current = p
	f.mu.Unlock()
}

// snapshot returns the progress of the current or last full sync, nil if
// there was none since the replica opened.
func (f *fullSyncStatus) snapshot() *zppb.FullSyncProgress {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current == nil {
		return nil
	}
	return f.current.Snapshot()
}

// ErrNotEmpty is a restore into a replica that has records: a backup is
// restored into a new table only.
var ErrNotEmpty = errors.New("replica: the partition has records; a backup is restored into a new table only")

// restorableLocked refuses a restore unless the replica is an open master
// with no record, none queued. r.mu is held.
func (r *Replica) restorableLocked() error {
	switch {
	case r.closed:
		return ErrClosed
	case r.failed != nil:
		return r.failed
	case r.role != Master:
		return ErrNotMaster
	}
	if _, last := r.log.Last(); last != 0 || len(r.queue) > 0 {
		return fmt.Errorf("%w (binlog at lsn %d)", ErrNotEmpty, last)
	}
	return nil
}

// Restore installs a backup of a partition, which conn serves with the
// full-sync calls (zpctl backup restore), in this master replica of a new
// table: it fetches it as a full sync does, gives it the replica's term
// (dbsync.Restamp: the backup was taken in another term), swaps it in and
// restarts the binlog at its lsn. Slaves then find the master's binlog
// beginning after their position and full-sync from it. It refuses a
// replica that is not master or has records (ErrNotEmpty), before and
// after the copy; the caller keeps clients off the table meanwhile.
func (r *Replica) Restore(ctx context.Context, conn Conn) (term, lsn uint64, res dbsync.Result, err error) {
	r.mu.Lock()
	err = r.restorableLocked()
	r.mu.Unlock()
	if err != nil {
		return 0, 0, dbsync.Result{}, err
	}
	prog := &dbsync.Progress{}
	r.s.fullsync.set(prog)
	res, err = dbsync.Run(ctx, dbsync.Options{
		ReplicaDir: r.opts.Dir,
		Table:      r.opts.Table,
		Partition:  r.opts.ID,
		Slave:      r.opts.Self,
		Master:     conn,
		Progress:   prog,
		Logger:     r.opts.Logger,
	})
	if err != nil {
		return 0, 0, res, err
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.restorableLocked(); err != nil {
		if derr := dbsync.Discard(r.opts.Dir); derr != nil {
			r.opts.Logger.Warn("discarding staged restore", "err", derr)
		}
		return 0, 0, res, err
	}
	term = r.term
	if _, err := dbsync.Restamp(r.opts.Dir, term, func(dir string) (dbsync.PositionSetter, error) {
		return engine.Open(dir, engine.Options{Shared: r.opts.Shared, Logger: r.opts.Logger, DisableWAL: true})
	}); err != nil {
		return 0, 0, res, err
	}
	r.dbMu.Lock()
	defer r.dbMu.Unlock()
	if r.db != nil { // nil when parked: closed already
		if err := r.db.Close(); err != nil {
			r.opts.Logger.Warn("closing DB for restore", "err", err)
		}
		r.db = nil
	}
	if err := removeParkMark(r.opts.Dir); err != nil {
		r.opts.Fatal(fmt.Errorf("replica %s/%d: before installing a restore: %w", r.opts.Table, r.opts.ID, err))
		return 0, 0, res, err
	}
	_, lsn, ierr := dbsync.Install(r.opts.Dir)
	db, oerr := openDB(r.opts)
	if oerr != nil {
		r.opts.Fatal(fmt.Errorf("replica %s/%d: cannot open DB after restore: %w", r.opts.Table, r.opts.ID, errors.Join(ierr, oerr)))
		return 0, 0, res, oerr
	}
	r.db = db
	if ierr != nil {
		return 0, 0, res, fmt.Errorf("install restore: %w", ierr)
	}
	if err := finishPendingInstall(r.opts.Dir, r.log); err != nil {
		return 0, 0, res, err
	}
	r.dedup.reset()
	// Slaves reading or waiting at their old position must learn that
	// the binlog now starts after the backup: they then full-sync.
	r.m.closePeers()
	r.m.notifyAppend()
	r.opts.Logger.Info("backup restored", "term", term, "lsn", lsn, "backup_term", res.Term,
		"bytes_total", res.BytesTotal, "bytes_fetched", res.BytesFetched)
	return term, lsn, res, nil
}
