package dbsync

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Names the slave reserves in its staging directory; a manifest may not use
// them.
const (
	// CompleteFile is the marker written into the staging directory once
	// every manifest file is there and durable. It holds the checkpoint's
	// term and lsn.
	CompleteFile = "COMPLETE"

	// partSuffix marks a file still being fetched.
	partSuffix = ".part"
)

// partName is the name of f while it is being fetched (or copied). It
// carries f's size and checksum, so that a later attempt continues only a
// part of the very same file, not one of a same-named file from another
// checkpoint (a MANIFEST, or a table file of a master that has since been
// replaced).
func partName(f *zppb.SyncFile) string {
	return fmt.Sprintf("%s.%08x-%d%s", f.GetName(), f.GetCrc32C(), f.GetSize(), partSuffix)
}

// manifestStats describes how a manifest was built, for the log.
type manifestStats struct {
	bytes      uint64
	hashed     uint64 // bytes read to checksum them
	cachedHits int
}

// buildManifest lists every regular file below dir with its size and
// CRC32C, sorted by name. Names are relative and slash-separated; RocksDB
// checkpoints are flat, but subdirectories are listed the same way.
func buildManifest(ctx context.Context, dir string, cache *sumCache) ([]*zppb.SyncFile, manifestStats, error) {
	var (
		files []*zppb.SyncFile
		st    manifestStats
	)
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		if !e.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file (%v)", p, e.Type())
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		fi, err := e.Info()
		if err != nil {
			return err
		}
		crc, size, hit, err := cache.checksum(ctx, p, name, fi)
		if err != nil {
			return err
		}
		if hit {
			st.cachedHits++
		} else {
			st.hashed += size
		}
		st.bytes += size
		files = append(files, &zppb.SyncFile{Name: name, Size: size, Crc32C: crc})
		return nil
	})
	if err != nil {
		return nil, manifestStats{}, fmt.Errorf("dbsync: manifest of %s: %w", dir, err)
	}
	slices.SortFunc(files, func(a, b *zppb.SyncFile) int { return strings.Compare(a.Name, b.Name) })
	return files, st, nil
}

// checkManifest rejects a manifest the slave cannot install safely: names
// that would leave the staging directory or collide with the slave's own
// files, duplicates (including a file that is also another's directory),
// and a checkpoint without CURRENT, which RocksDB could not open.
func checkManifest(files []*zppb.SyncFile) error {
	names := make(map[string]bool, len(files))
	for _, f := range files {
		n := f.GetName()
		if _, ok := localName(".", n); !ok {
			return fmt.Errorf("%w: file name %q", ErrBadManifest, n)
		}
		base := path.Base(n)
		if n == CompleteFile || n == CompleteFile+".tmp" || strings.HasSuffix(base, partSuffix) {
			return fmt.Errorf("%w: reserved file name %q", ErrBadManifest, n)
		}
		if names[n] {
			return fmt.Errorf("%w: %q listed twice", ErrBadManifest, n)
		}
		names[n] = true
	}
	for n := range names {
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			if names[d] {
				return fmt.Errorf("%w: %q is both a file and a directory", ErrBadManifest, d)
			}
		}
	}
	if !names["CURRENT"] {
		return fmt.Errorf("%w: no CURRENT file", ErrBadManifest)
	}
	return nil
}
