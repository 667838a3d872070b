// Package atomicfile writes files that a crash leaves either whole or not
// there at all, never torn or empty.
//
// The content goes to a temporary file in the target's directory, which is
// fsynced, renamed over the target, and then the directory is fsynced: the
// rename is only a change to the directory, and until the directory is on
// disk a crash can undo it (or, on some file systems, keep the new name but
// not the data of a file that was never synced).
//
// The temporary file's name is the target's plus TempSuffix, so concurrent
// writers of one path must be serialised by the caller; in exchange, a
// temporary file left by a crash has a name its owner can recognise and
// remove.
package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// TempSuffix ends the name of the temporary file a write goes through.
const TempSuffix = ".tmp"

// The file system operations whose order makes a write durable. Tests
// replace them to record that order.
var (
	syncFile = (*os.File).Sync
	rename   = os.Rename
	syncDir  = fsyncDir
)

// Write replaces path with data, durably and atomically: after a crash path
// holds either its old content or data.
func Write(path string, data []byte, perm os.FileMode) error {
	return WriteFunc(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFunc is Write for content that fill produces, so that a large file
// need not be held in memory.
func WriteFunc(path string, perm os.FileMode, fill func(w io.Writer) error) error {
	f, err := write(path, perm, 0, fill)
	if err != nil {
		return err
	}
	return f.Close()
}

// OpenAppend creates path with the content fill writes, like WriteFunc,
// and returns it open for appending under its final name. Files that grow
// after creation (a log segment) use it so that a file that exists under
// its real name always has its header.
func OpenAppend(path string, perm os.FileMode, fill func(w io.Writer) error) (*os.File, error) {
	return write(path, perm, os.O_APPEND, fill)
}

func write(path string, perm os.FileMode, flag int, fill func(w io.Writer) error) (*os.File, error) {
	tmp := path + TempSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|flag, perm)
	if err != nil {
		return nil, err
	}
	err = fill(f)
	if err == nil {
		err = syncFile(f)
	}
	if err == nil {
		err = rename(tmp, path)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		// The file is there under its real name, but might not be after
		// a crash: the caller must not count on it.
		f.Close()
		return nil, err
	}
	return f, nil
}

// Remove deletes path, if it exists, and makes the deletion durable.
func Remove(path string) error {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// SyncDir makes the entries of dir durable: files created, renamed or
// removed in it.
func SyncDir(dir string) error { return syncDir(dir) }

func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
