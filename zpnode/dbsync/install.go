package dbsync

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/zeppelin-kv/zeppelin/lib/atomicfile"
)

// writeComplete marks the staging directory complete: every manifest file
// is there and durable, and the DB they form reflects (term, lsn).
func writeComplete(staging string, term, lsn uint64) error {
	return atomicfile.Write(filepath.Join(staging, CompleteFile), fmt.Appendf(nil, "term=%d lsn=%d\n", term, lsn), 0o644)
}

// readComplete returns the position in staging's marker; ErrIncomplete
// when there is none.
func readComplete(staging string) (term, lsn uint64, err error) {
	b, err := os.ReadFile(filepath.Join(staging, CompleteFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, fmt.Errorf("%w in %s", ErrIncomplete, staging)
	}
	if err != nil {
		return 0, 0, err
	}
	term, lsn, err = parseMarker(b)
	if err != nil {
		return 0, 0, fmt.Errorf("dbsync: %s: %w", filepath.Join(staging, CompleteFile), err)
	}
	return term, lsn, nil
}

func parseMarker(b []byte) (term, lsn uint64, err error) {
	if _, err := fmt.Sscanf(string(b), "term=%d lsn=%d\n", &term, &lsn); err != nil {
		return 0, 0, fmt.Errorf("bad marker %q: %w", b, err)
	}
	return term, lsn, nil
}

// PositionSetter is a DB opened to restamp it: *engine.DB (SetApplied).
type PositionSetter interface {
	SetApplied(term, lsn uint64) error
	Flush() error
	Close() error
}

// Restamp gives the complete staged checkpoint of replicaDir the term
// term, keeping its lsn: the applied position of its DB (set through a DB
// that open opens on the staging directory, then flushed) and its
// COMPLETE marker. A restore (zpctl backup restore) installs on the master
// of a new table a checkpoint taken in another term; that master's records
// after it carry its own term, which a binlog (the master's, or a slave's
// after a full sync from it) and the DB must not see fall below the
// position's. The marker is removed first and written last, so an
// interrupted Restamp leaves a staging directory that is not installed.
// It returns the lsn.
func Restamp(replicaDir string, term uint64, open func(dir string) (PositionSetter, error)) (lsn uint64, err error) {
	unlock, err := lockReplicaDir(replicaDir)
	if err != nil {
		return 0, err
	}
	defer unlock()
	staging := filepath.Join(replicaDir, StagingDir)
	_, lsn, err = readComplete(staging)
	if err != nil {
		return 0, err
	}
	if err := atomicfile.Remove(filepath.Join(staging, CompleteFile)); err != nil {
		return 0, fmt.Errorf("dbsync: restamp: %w", err)
	}
	db, err := open(staging)
	if err != nil {
		return 0, fmt.Errorf("dbsync: restamp: %w", err)
	}
	err = db.SetApplied(term, lsn)
	if err == nil {
		err = db.Flush()
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("dbsync: restamp: %w", err)
	}
	if err := atomicfile.SyncDir(staging); err != nil {
		return 0, fmt.Errorf("dbsync: restamp: %w", err)
	}
	if err := writeComplete(staging, term, lsn); err != nil {
		return 0, fmt.Errorf("dbsync: restamp: %w", err)
	}
	return lsn, nil
}

// InstalledFile, in the replica directory, says that a full sync was
// installed and the replica has not yet restarted its binlog at the
// position it holds (see PendingInstall).
const InstalledFile = "sync.installed"

// Install swaps the complete staging directory in as the replica's DB and
// returns the (term, lsn) the new DB reflects. The replica must have
// closed its DB. Every step can be interrupted by a crash; Recover
// finishes the job at the next start:
//
//	step                               a crash after it leaves             Recover
//	rename db -> db.old                db.old, sync.tmp (COMPLETE)         rolls forward
//	rename sync.tmp -> db              db (new, COMPLETE inside), db.old   goes on from here
//	fsync the replica directory        (both renames durable)
//	rename db/COMPLETE -> sync.installed, fsync
//	remove db.old, fsync               db (new), sync.installed            nothing to do
//
// The marker left as sync.installed makes the binlog reset that must
// follow crash safe: the replica resets its binlog to (term, lsn) and then
// calls FinishInstall; at startup, after Recover, PendingInstall tells it
// whether a reset is still owed. Without that, a crash between Install and
// the reset would leave the new DB with the old binlog, whose records
// after lsn may be ones the master never had.
//
// Without a complete staging directory Install returns ErrIncomplete and
// changes nothing.
func Install(replicaDir string) (term, lsn uint64, err error) {
	unlock, err := lockReplicaDir(replicaDir)
	if err != nil {
		return 0, 0, err
	}
	defer unlock()
	staging := filepath.Join(replicaDir, StagingDir)
	db := filepath.Join(replicaDir, DBDir)
	old := filepath.Join(replicaDir, OldDBDir)

	term, lsn, err = readComplete(staging)
	if err != nil {
		return 0, 0, err
	}
	haveDB, err := exists(db)
	if err != nil {
		return 0, 0, fmt.Errorf("dbsync: install: %w", err)
	}
	if haveDB {
		// A db.old next to a db is the leftover of an earlier install.
		if err := os.RemoveAll(old); err != nil {
			return 0, 0, fmt.Errorf("dbsync: install: %w", err)
		}
		if err := os.Rename(db, old); err != nil {
			return 0, 0, fmt.Errorf("dbsync: install: %w", err)
		}
	}
	if err := os.Rename(staging, db); err != nil {
		// Put the old DB back, so the replica can reopen it.
		if haveDB {
			if rerr := os.Rename(old, db); rerr != nil {
				err = errors.Join(err, fmt.Errorf("restoring %s: %w", db, rerr))
			}
		}
		return 0, 0, fmt.Errorf("dbsync: install: %w", err)
	}
	if err := finishInstall(replicaDir); err != nil {
		return 0, 0, fmt.Errorf("dbsync: install: %w", err)
	}
	return term, lsn, nil
}

// finishInstall makes a swapped-in db durable and clears what the swap
// left: it moves the marker out of db (to InstalledFile) and removes
// db.old.
func finishInstall(replicaDir string) error {
	if err := atomicfile.SyncDir(replicaDir); err != nil {
		return err
	}
	marker := filepath.Join(replicaDir, DBDir, CompleteFile)
	haveMarker, err := exists(marker)
	if err != nil {
		return err
	}
	if haveMarker {
		if err := os.Rename(marker, filepath.Join(replicaDir, InstalledFile)); err != nil {
			return err
		}
		if err := atomicfile.SyncDir(replicaDir); err != nil {
			return err
		}
		if err := atomicfile.SyncDir(filepath.Join(replicaDir, DBDir)); err != nil {
			return err
		}
	}
	old := filepath.Join(replicaDir, OldDBDir)
	haveOld, err := exists(old)
	if err != nil || !haveOld {
		return err
	}
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	return atomicfile.SyncDir(replicaDir)
}

// Recover brings a replica directory that a crash left in the middle of
// Install to exactly one good db; call it before opening the DB. In order:
//
//   - db missing, staging COMPLETE: the crash was between Install's two
//     renames; roll forward (the new DB is complete, and the old one was
//     being replaced because it was too far behind).
//   - db missing, db.old present: roll back.
//   - db present, db.old present: the swap is done; remove db.old.
//
// Whenever it finds the new DB in place it finishes Install's last steps,
// leaving InstalledFile for PendingInstall.
//
// A staging directory without COMPLETE (an interrupted Run) is left for
// the next Run to continue; so is a complete one next to a db (a Run that
// finished but was never installed: the next Run revalidates it).
func Recover(replicaDir string) error {
	unlock, err := lockReplicaDir(replicaDir)
	if err != nil {
		return err
	}
	defer unlock()
	staging := filepath.Join(replicaDir, StagingDir)
	db := filepath.Join(replicaDir, DBDir)
	old := filepath.Join(replicaDir, OldDBDir)

	haveDB, err := exists(db)
	if err != nil {
		return fmt.Errorf("dbsync: recover: %w", err)
	}
	haveOld, err := exists(old)
	if err != nil {
		return fmt.Errorf("dbsync: recover: %w", err)
	}
	complete, err := exists(filepath.Join(staging, CompleteFile))
	if err != nil {
		return fmt.Errorf("dbsync: recover: %w", err)
	}
	switch {
	case !haveDB && complete:
		if err := os.Rename(staging, db); err != nil {
			return fmt.Errorf("dbsync: recover: %w", err)
		}
	case !haveDB && haveOld:
		if err := os.Rename(old, db); err != nil {
			return fmt.Errorf("dbsync: recover: %w", err)
		}
		if err := atomicfile.SyncDir(replicaDir); err != nil {
			return fmt.Errorf("dbsync: recover: %w", err)
		}
		return nil
	case !haveDB:
		return nil // a new replica
	}
	if err := finishInstall(replicaDir); err != nil {
		return fmt.Errorf("dbsync: recover: %w", err)
	}
	return nil
}

// PendingInstall reports whether a full sync was installed in replicaDir
// without FinishInstall after it, and the (term, lsn) the installed DB
// reflects. Call it after Recover at startup: when ok, reset the binlog to
// (term, lsn) before replaying it, then call FinishInstall.
func PendingInstall(replicaDir string) (term, lsn uint64, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(replicaDir, InstalledFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("dbsync: %w", err)
	}
	term, lsn, err = parseMarker(b)
	if err != nil {
		return 0, 0, false, fmt.Errorf("dbsync: %s: %w", filepath.Join(replicaDir, InstalledFile), err)
	}
	return term, lsn, true, nil
}

// FinishInstall records, durably, that the replica has restarted its
// binlog after an Install: PendingInstall reports nothing from then on.
func FinishInstall(replicaDir string) error {
	if err := atomicfile.Remove(filepath.Join(replicaDir, InstalledFile)); err != nil {
		return fmt.Errorf("dbsync: %w", err)
	}
	return nil
}

// Discard removes the staging directory, e.g. when the replica caught up
// from the binlog after all, so that the table files it links stop
// holding disk space.
func Discard(replicaDir string) error {
	unlock, err := lockReplicaDir(replicaDir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.RemoveAll(filepath.Join(replicaDir, StagingDir)); err != nil {
		return fmt.Errorf("dbsync: discard: %w", err)
	}
	return nil
}
