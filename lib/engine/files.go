package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/linxGnu/grocksdb"
)

// Checkpoint writes a consistent, openable copy of the DB to dir, which
// must not exist (its parents are created), and returns the binlog position the copy reflects. Table
// files are hard links when dir is on the same file system, so a
// checkpoint is cheap in time and space. The master uses it for full sync:
// the slave installs the copy, resets its binlog to (term, lsn) and
// continues from lsn+1.
//
// Writes go on during the checkpoint; the position is read back from the
// checkpoint itself, so it is exact whatever was applied meanwhile.
func (d *DB) Checkpoint(dir string) (term, lsn uint64, err error) {
	if err := d.enter(); err != nil {
		return 0, 0, err
	}
	defer d.closeMu.RUnlock()
	if _, err := os.Stat(dir); err == nil {
		return 0, 0, fmt.Errorf("%w: checkpoint directory %s exists", ErrInvalidArgument, dir)
	}
	// RocksDB creates dir itself, but not its parents.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return 0, 0, fmt.Errorf("engine: checkpoint: %w", err)
	}
	cp, err := d.db.NewCheckpoint()
	if err != nil {
		return 0, 0, fmt.Errorf("engine: checkpoint: %w", err)
	}
	defer cp.Destroy()
	// 0: always flush first, so the checkpoint is table files only and
	// needs no WAL replay where it is installed.
	if err := cp.CreateCheckpoint(dir, 0); err != nil {
		return 0, 0, fmt.Errorf("engine: checkpoint to %s: %w", dir, err)
	}
	term, lsn, err = checkpointPosition(dir)
	if err != nil {
		os.RemoveAll(dir)
		return 0, 0, err
	}
	d.logger.Info("engine: checkpoint", "dir", dir, "applied_lsn", lsn, "applied_term", term)
	return term, lsn, nil
}

// checkpointPosition reads the applied position of the DB in dir without
// modifying it.
func checkpointPosition(dir string) (term, lsn uint64, err error) {
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	db, cfs, err := grocksdb.OpenDbForReadOnlyColumnFamilies(o, dir, families, []*grocksdb.Options{o, o}, false)
	if err != nil {
		return 0, 0, fmt.Errorf("engine: reading checkpoint %s: %w", dir, err)
	}
	defer db.Close()
	for _, cf := range cfs {
		defer cf.Destroy()
	}
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	return readApplied(db, ro, cfs[1])
}

// DiskUsage returns the bytes of the files in the DB's directory.
func (d *DB) DiskUsage() (int64, error) {
	return dirSize(d.dir)
}

func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked (obsolete files, old logs)
			}
			return err
		}
		if e.Type().IsRegular() {
			info, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			total += info.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("engine: disk usage of %s: %w", dir, err)
	}
	return total, nil
}

// Destroy removes the replica DB in dir and the directory itself. It
// refuses a directory that is open in this process (ErrInUse) and a
// non-empty one that does not look like a RocksDB database (ErrNotDB), so
// that a wrong path cannot wipe unrelated data. RocksDB's lock file stops
// it when another process has the DB open. A missing directory is not an
// error.
func Destroy(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	// Hold the directory like an open DB, so Open cannot race with us.
	if err := registerDir(abs); err != nil {
		return err
	}
	defer unregisterDir(abs)
	entries, err := os.ReadDir(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("engine: destroy: %w", err)
	}
	if len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(abs, "CURRENT")); err != nil {
			return fmt.Errorf("%w: %s has no CURRENT file", ErrNotDB, abs)
		}
		o := grocksdb.NewDefaultOptions()
		err := grocksdb.DestroyDb(abs, o)
		o.Destroy()
		if err != nil {
			return fmt.Errorf("engine: destroy %s: %w", abs, err)
		}
	}
	// DestroyDb leaves what it does not know (stray files, the directory).
	if err := os.RemoveAll(abs); err != nil {
		return fmt.Errorf("engine: destroy: %w", err)
	}
	return nil
}
