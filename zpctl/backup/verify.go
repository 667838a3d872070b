package backup

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// castagnoli is the checksum of the manifest's files, as dbsync computes it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Problem is one thing Verify found wrong.
type Problem struct {
	// Partition is the partition concerned; -1 for the backup as a whole.
	Partition int64 `json:"partition"`
	// File is the file concerned, relative to the backup; "" for none.
	File   string `json:"file"`
	Reason string `json:"reason"`
}

func (p Problem) String() string {
	switch {
	case p.File != "":
		return fmt.Sprintf("%s: %s", p.File, p.Reason)
	case p.Partition >= 0:
		return fmt.Sprintf("partition %d: %s", p.Partition, p.Reason)
	}
	return p.Reason
}

// Report is what Verify found.
type Report struct {
	Manifest *Manifest `json:"-"`
	// Files and Bytes are what was read and checked.
	Files    int       `json:"files"`
	Bytes    uint64    `json:"bytes"`
	Problems []Problem `json:"problems"`
}

// Verify checks backup name of t: it has a manifest; every partition of
// the table is there, once, with a CURRENT file (RocksDB opens nothing
// without one); every file the manifest lists is there with its size and
// CRC32C, read whole. A backup with problems returns them in the report
// and an error wrapping ErrCorrupt; one without a manifest ErrIncomplete.
func Verify(ctx context.Context, t Target, name string) (*Report, error) {
	b, err := t.ReadManifest(ctx, name)
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(b)
	if err != nil {
		return nil, err
	}
	r := &Report{Manifest: m, Problems: []Problem{}}
	add := func(part int64, file, format string, args ...any) {
		r.Problems = append(r.Problems, Problem{Partition: part, File: file, Reason: fmt.Sprintf(format, args...)})
	}
	seen := make(map[uint32]bool)
	for _, p := range m.Partitions {
		if p.ID >= m.Table.PartitionCount {
			add(int64(p.ID), "", "not a partition of a table of %d", m.Table.PartitionCount)
			continue
		}
		if seen[p.ID] {
			add(int64(p.ID), "", "listed twice")
			continue
		}
		seen[p.ID] = true
		if !slices.ContainsFunc(p.Files, func(f File) bool { return f.Name == "CURRENT" }) {
			add(int64(p.ID), "", "no CURRENT file")
		}
		for _, f := range p.Files {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if !localName(p.Dir) || !localName(f.Name) {
				add(int64(p.ID), "", "bad file name %q in %q: not a path below the backup", f.Name, p.Dir)
				continue
			}
			file := path.Join(p.Dir, f.Name)
			crc, size, err := checksum(ctx, t, name, file)
			r.Files++
			r.Bytes += size
			switch {
			case errors.Is(err, fs.ErrNotExist):
				add(int64(p.ID), file, "missing")
			case err != nil:
				add(int64(p.ID), file, "unreadable: %v", err)
			case size != f.Size:
				add(int64(p.ID), file, "%d bytes, the manifest says %d", size, f.Size)
			case crc != f.CRC32C:
				add(int64(p.ID), file, "crc32c %08x, the manifest says %08x", crc, f.CRC32C)
			}
		}
	}
	for id := range m.Table.PartitionCount {
		if !seen[id] {
			add(int64(id), "", "missing from the manifest")
		}
	}
	if len(r.Problems) > 0 {
		return r, fmt.Errorf("%w: %s: %d problems, first: %s", ErrCorrupt, name, len(r.Problems), r.Problems[0])
	}
	return r, nil
}

// localName reports whether a manifest's name is a clean relative path
// that stays below its directory.
func localName(name string) bool {
	return name != "" && !strings.ContainsRune(name, '\\') && path.Clean(name) == name && filepath.IsLocal(filepath.FromSlash(name))
}

func checksum(ctx context.Context, t Target, name, file string) (crc uint32, size uint64, err error) {
	rc, err := t.Open(ctx, name, file)
	if err != nil {
		return 0, 0, err
	}
	defer rc.Close()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		n, rerr := rc.Read(buf)
		crc = crc32.Update(crc, castagnoli, buf[:n])
		size += uint64(n)
		if rerr == io.EOF {
			return crc, size, nil
		}
		if rerr != nil {
			return 0, 0, rerr
		}
	}
}

// Entry is one backup of a target, as List shows it.
type Entry struct {
	Name string
	// Manifest is nil for an incomplete backup (Err says why).
	Manifest *Manifest
	Err      error
}

// List returns every backup of t with its manifest, incomplete ones
// included (Manifest nil, Err ErrIncomplete or the manifest's problem).
func List(ctx context.Context, t Target) ([]Entry, error) {
	names, err := t.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(names))
	for _, n := range names {
		e := Entry{Name: n}
		b, err := t.ReadManifest(ctx, n)
		if err == nil {
			e.Manifest, err = parseManifest(b)
		}
		e.Err = err
		out = append(out, e)
	}
	return out, nil
}
