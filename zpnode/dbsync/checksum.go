package dbsync

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
)

// castagnoli is the CRC32C table of the manifest's checksums (the binlog
// uses the same polynomial; it has hardware support on amd64 and arm64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// readBufSize is the read size of checksumming and copying.
const readBufSize = 1 << 20

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// immutable reports whether RocksDB never changes a file of this name once
// it is written: table and blob files. Only those are worth caching a
// checksum for, and only those may be hard-linked out of a live DB (a
// MANIFEST or WAL linked from an open DB would keep growing under us).
func immutable(name string) bool {
	switch path.Ext(name) {
	case ".sst", ".blob", ".ldb":
		return true
	}
	return false
}

// crcReader computes the CRC32C and length of everything read from r,
// checking ctx between reads so that checksumming a large file can be
// abandoned.
func crcReader(ctx context.Context, r io.Reader) (crc uint32, n uint64, err error) {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	for {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		m, rerr := r.Read(buf)
		crc = crc32.Update(crc, castagnoli, buf[:m])
		n += uint64(m)
		if rerr == io.EOF {
			return crc, n, nil
		}
		if rerr != nil {
			return 0, 0, rerr
		}
	}
}

// FileCRC returns the CRC-32C and size of the file at p, reading it once.
func FileCRC(ctx context.Context, p string) (crc uint32, size uint64, err error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	crc, size, err = crcReader(ctx, f)
	if err != nil {
		return 0, 0, fmt.Errorf("checksum %s: %w", p, err)
	}
	return crc, size, nil
}

// fileKey identifies one version of a file: the same name, inode, size and
// modification time mean the same bytes for a file nobody rewrites in
// place, which RocksDB guarantees for table files. A hard link (which is
// what a checkpoint, and our linking from the live DB, make) has the same
// key as its original.
type fileKey struct {
	name     string // base name: guards against inode reuse across files
	dev, ino uint64
	size     int64
	mtime    int64 // unix ns
}

func keyOf(name string, fi os.FileInfo) (fileKey, bool) {
	dev, ino, ok := devIno(fi)
	if !ok {
		return fileKey{}, false
	}
	return fileKey{name: path.Base(name), dev: dev, ino: ino, size: fi.Size(), mtime: fi.ModTime().UnixNano()}, true
}

// sumCache remembers the checksums of immutable files, so that a multi-GB
// DB is read once, not at every full sync. It is bounded; when full it
// forgets arbitrary entries (a miss costs a re-read, never a wrong
// answer).
type sumCache struct {
	mu  sync.Mutex
	m   map[fileKey]uint32
	max int
}

// defaultCacheEntries bounds a cache: 64Ki table files of 64 MiB (RocksDB's
// default target size) are 4 TiB of data.
const defaultCacheEntries = 1 << 16

func newSumCache(max int) *sumCache {
	return &sumCache{m: make(map[fileKey]uint32), max: max}
}

// localSums caches the checksums of the slave's own files (its live DB and
// staging directory) for the life of the process. It is keyed by inode, so
// one cache serves every replica of the node.
var localSums = newSumCache(defaultCacheEntries)

func (c *sumCache) get(k fileKey) (uint32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	crc, ok := c.m[k]
	return crc, ok
}

func (c *sumCache) put(k fileKey, crc uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for old := range c.m {
			delete(c.m, old)
			if len(c.m) < c.max*7/8 {
				break
			}
		}
	}
	c.m[k] = crc
}

// checksum returns the CRC32C and size of the file p (named name in its
// directory), whose Lstat is fi, from the cache when the file is immutable
// and was seen before. Mutable files are always read; their size is what
// was read, not fi's.
func (c *sumCache) checksum(ctx context.Context, p, name string, fi os.FileInfo) (crc uint32, size uint64, hit bool, err error) {
	k, cacheable := keyOf(name, fi)
	cacheable = cacheable && immutable(name)
	if cacheable {
		if crc, ok := c.get(k); ok {
			return crc, uint64(fi.Size()), true, nil
		}
	}
	crc, size, err = FileCRC(ctx, p)
	if err != nil {
		return 0, 0, false, err
	}
	if cacheable && size == uint64(fi.Size()) {
		c.put(k, crc)
	}
	return crc, size, false, nil
}

// localName turns a manifest name (slash-separated, relative, clean) into
// a path below dir, or reports false for a name that could leave dir:
// absolute, with "..", empty, or not in canonical form.
func localName(dir, name string) (string, bool) {
	if name == "" || strings.ContainsRune(name, '\\') || path.Clean(name) != name {
		return "", false
	}
	fn := filepath.FromSlash(name)
	if !filepath.IsLocal(fn) {
		return "", false
	}
	return filepath.Join(dir, fn), true
}
