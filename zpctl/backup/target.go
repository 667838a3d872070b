package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/zeppelin-kv/zeppelin/lib/atomicfile"
)

// Errors of the package.
var (
	// ErrExists: a complete backup of that name is already there.
	ErrExists = errors.New("backup: a complete backup of that name exists")
	// ErrNotFound: no backup of that name.
	ErrNotFound = errors.New("backup: no such backup")
	// ErrIncomplete: the backup has no manifest (it failed, or is still
	// being written).
	ErrIncomplete = errors.New("backup: incomplete (no manifest)")
	// ErrBadManifest: the manifest cannot be read.
	ErrBadManifest = errors.New("backup: bad manifest")
	// ErrCorrupt: Verify found a file missing, damaged or of the wrong
	// size, or a partition missing.
	ErrCorrupt = errors.New("backup: damaged or incomplete")
)

// Target is where backups are kept: a directory now (Dir); an object
// store can implement the same. Names are single path elements.
type Target interface {
	// String names the target in messages.
	String() string
	// List returns the names of the backups, complete or not, sorted.
	List(ctx context.Context) ([]string, error)
	// Prepare readies backup name for writing and reports whether it has
	// a manifest already (a complete backup). A directory target creates
	// the directory; an incomplete backup of that name is kept, for
	// Create to resume.
	Prepare(ctx context.Context, name string) (complete bool, err error)
	// LocalDir returns a local directory holding (or to fetch) the files
	// of dir (e.g. "partitions/0003") of backup name, for dbsync to write
	// into and link from. A directory target answers its own directory;
	// an object store would answer a staging directory and upload its
	// files in WriteManifest, before the manifest.
	LocalDir(name, dir string) (string, error)
	// WriteManifest stores the manifest of backup name, last and
	// atomically: a backup without one is incomplete.
	WriteManifest(ctx context.Context, name string, data []byte) error
	// ReadManifest returns it: ErrIncomplete when the backup has none,
	// ErrNotFound when there is no such backup.
	ReadManifest(ctx context.Context, name string) ([]byte, error)
	// Open reads file (slash-separated, relative) of backup name.
	Open(ctx context.Context, name, file string) (io.ReadCloser, error)
}

// Dir is a Target in a directory of a local or network file system.
type Dir string

var _ Target = Dir("")

func (d Dir) String() string { return string(d) }

func (d Dir) backupDir(name string) (string, error) {
	if name == "" || name == "." || name == ".." || path.Base(name) != name || filepath.Base(name) != name {
		return "", fmt.Errorf("backup: bad backup name %q", name)
	}
	return filepath.Join(string(d), name), nil
}

// List returns the subdirectories of d, which may not exist yet.
func (d Dir) List(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(string(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// Prepare creates d/name (and d).
func (d Dir) Prepare(ctx context.Context, name string) (bool, error) {
	dir, err := d.backupDir(name)
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err == nil {
		return true, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("backup: %w", err)
	}
	return false, nil
}

// LocalDir is d/name/dir.
func (d Dir) LocalDir(name, dir string) (string, error) {
	b, err := d.backupDir(name)
	if err != nil {
		return "", err
	}
	return filepath.Join(b, filepath.FromSlash(dir)), nil
}

// WriteManifest writes d/name/backup.json through a temporary file,
// fsynced, renamed into place, and fsyncs the directory; it first fsyncs
// every directory below d/name, so that every file the manifest lists is
// durable under its name before the manifest is.
func (d Dir) WriteManifest(ctx context.Context, name string, data []byte) error {
	dir, err := d.backupDir(name)
	if err != nil {
		return err
	}
	var dirs []string
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			dirs = append(dirs, p)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// Deepest first, the backup's own directory last.
	slices.Reverse(dirs)
	for _, p := range dirs {
		if err := atomicfile.SyncDir(p); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	}
	if err := atomicfile.Write(filepath.Join(dir, ManifestFile), data, 0o644); err != nil {
		return fmt.Errorf("backup: manifest: %w", err)
	}
	return atomicfile.SyncDir(string(d))
}

// ReadManifest reads d/name/backup.json.
func (d Dir) ReadManifest(ctx context.Context, name string) ([]byte, error) {
	dir, err := d.backupDir(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, dir)
		}
		return nil, fmt.Errorf("%w: %s", ErrIncomplete, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return b, nil
}

// Open opens d/name/file.
func (d Dir) Open(ctx context.Context, name, file string) (io.ReadCloser, error) {
	dir, err := d.backupDir(name)
	if err != nil {
		return nil, err
	}
	if !filepath.IsLocal(filepath.FromSlash(file)) {
		return nil, fmt.Errorf("%w: file name %q", ErrBadManifest, file)
	}
	return os.Open(filepath.Join(dir, filepath.FromSlash(file)))
}

// SplitPath splits DIR/BACKUP, as zpctl takes it, into a directory target
// and a backup name.
func SplitPath(p string) (Dir, string) {
	p = filepath.Clean(p)
	return Dir(filepath.Dir(p)), filepath.Base(p)
}
