package engine

// #include "shim.h"
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"unsafe"

	"github.com/linxGnu/grocksdb"
)

// ErrIngestFile is returned by ApplyBatch for a record that ingests a
// table file (WriteRecord.ingest) the caller gave no path for, or whose
// file RocksDB refuses; nothing of the record is applied.
var ErrIngestFile = errors.New("engine: cannot ingest table file")

// SortKey returns the bytes whose order is the order in which an
// SSTWriter takes user keys: the key as the DB stores it. Bulk loaders
// sort by it.
func SortKey(userKey []byte) []byte { return dataKey(userKey) }

// SSTWriter writes a table file of user keys, values and expiries in the
// DB's own encoding, for a DB to ingest (a bulk load; Record.IngestPath).
// Keys must come in ascending SortKey order, each once.
type SSTWriter struct {
	path  string
	env   *grocksdb.EnvOptions
	opts  *grocksdb.Options
	w     *grocksdb.SSTFileWriter
	last  []byte // the last key's SortKey
	count uint64
	done  bool
}

// CreateSST creates a table file at path.
func CreateSST(path string) (*SSTWriter, error) {
	env := grocksdb.NewDefaultEnvOptions()
	opts := grocksdb.NewDefaultOptions()
	// The table format of a DB's data family (newRocksOptions). An
	// ingested file usually lands in the last level, hence its
	// compression; it is also the smaller file to ship to every replica
	// (LZ4 made a bulk load's files half as large again, and the load no
	// faster).
	opts.SetCompression(grocksdb.ZSTDCompression)
	bbto := newTableOptions()
	opts.SetBlockBasedTableFactory(bbto)
	bbto.Destroy()
	w := grocksdb.NewSSTFileWriter(env, opts)
	if err := w.Open(path); err != nil {
		w.Destroy()
		opts.Destroy()
		env.Destroy()
		return nil, fmt.Errorf("engine: creating table file %s: %w", path, err)
	}
	return &SSTWriter{path: path, env: env, opts: opts, w: w}, nil
}

// Put adds a key. The key is checked as Apply checks it; expireAtMs is
// unix milliseconds, 0 for none.
func (s *SSTWriter) Put(userKey, value []byte, expireAtMs int64) error {
	if err := checkKey(userKey); err != nil {
		return err
	}
	if expireAtMs < 0 {
		return fmt.Errorf("%w: negative expiry %d", ErrInvalidArgument, expireAtMs)
	}
	k := dataKey(userKey)
	if s.last != nil && bytes.Compare(k, s.last) <= 0 {
		return fmt.Errorf("%w: key %q out of order in a table file", ErrInvalidArgument, userKey)
	}
	if err := s.w.Put(k, encodeValue(value, expireAtMs)); err != nil {
		return fmt.Errorf("engine: writing table file %s: %w", s.path, err)
	}
	s.last = k
	s.count++
	return nil
}

// Count returns the keys put so far.
func (s *SSTWriter) Count() uint64 { return s.count }

// Finish completes the file (and syncs it). A writer given no key makes
// no file: RocksDB cannot write an empty table, and Finish returns false.
func (s *SSTWriter) Finish() (written bool, err error) {
	if s.done {
		return false, fmt.Errorf("%w: table file finished twice", ErrInvalidArgument)
	}
	defer s.free()
	if s.count == 0 {
		os.Remove(s.path)
		return false, nil
	}
	if err := s.w.Finish(); err != nil {
		return false, fmt.Errorf("engine: finishing table file %s: %w", s.path, err)
	}
	return true, nil
}

// Abort drops the file; harmless after Finish (the file stays).
func (s *SSTWriter) Abort() {
	if s.done {
		return
	}
	s.free()
	os.Remove(s.path)
}

func (s *SSTWriter) free() {
	s.done = true
	s.w.Destroy()
	s.opts.Destroy()
	s.env.Destroy()
}

// ingest ingests the table file at path into the data family, then sets
// the applied position to (term, lsn); the caller holds applyMu. RocksDB
// gives the file's keys a sequence number above every key written before
// (flushing a memtable that overlaps it first), so the file wins over
// writes logged before its record and loses to those after.
//
// The file at path stays as it is: a slave may fetch it, and a replay
// after a crash between the two steps ingests it again (the same keys,
// values and expiries: no write came between). RocksDB takes it through a
// hard link, told not to write the sequence number into the file
// (keepFiles); where that cannot be set it copies the file instead.
func (d *DB) ingest(path string, term, lsn uint64) error {
	if path == "" {
		return fmt.Errorf("%w: lsn %d: no staged file", ErrIngestFile, lsn)
	}
	io := grocksdb.NewDefaultIngestExternalFileOptions()
	defer io.Destroy()
	io.SetAllowGlobalSeqNo(true)
	io.SetAllowBlockingFlush(true)
	src := path
	if keepFiles(io) {
		src = path + ".ingesting"
		os.Remove(src)
		if err := os.Link(path, src); err != nil {
			return fmt.Errorf("%w: lsn %d: %w", ErrIngestFile, lsn, err)
		}
		defer os.Remove(src) // still there when ingestion failed
	}
	// A CLEAR's compaction flushes too, and a RocksDB built with
	// assertions aborts when two flushes meet in one atomic flush (Flush).
	d.reclaim.wait()
	if err := d.db.IngestExternalFileCF(d.data, []string{src}, io); err != nil {
		return fmt.Errorf("%w: lsn %d: %w", ErrIngestFile, lsn, err)
	}
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	wb.PutCF(d.meta, keyApplied, encodeApplied(term, lsn))
	if err := d.db.Write(d.wo, wb); err != nil {
		return fmt.Errorf("engine: apply lsn %d: %w", lsn, err)
	}
	d.appliedLSN, d.appliedTerm = lsn, term
	return nil
}

// keepFiles sets io to move (hard-link) files without writing to them
// (shim.cc), and reports whether it could; io is left copying otherwise.
func keepFiles(io *grocksdb.IngestExternalFileOptions) bool {
	t := reflect.TypeFor[grocksdb.IngestExternalFileOptions]()
	if t.NumField() == 0 || t.Field(0).Name != "c" || t.Field(0).Offset != 0 ||
		t.Field(0).Type.Kind() != reflect.Pointer || t.Field(0).Type.Elem().Name() != "_Ctype_struct_rocksdb_ingestexternalfileoptions_t" {
		return false
	}
	c := (*C.rocksdb_ingestexternalfileoptions_t)(*(*unsafe.Pointer)(unsafe.Pointer(io)))
	io.SetMoveFiles(true)
	if c == nil || C.zp_ingest_options_keep_files(c, 1, 1) != 0 {
		io.SetMoveFiles(false)
		return false
	}
	return true
}
