package engine

// #include <stdlib.h>
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

// AppendSortKey appends SortKey(userKey) to b.
func AppendSortKey(b, userKey []byte) []byte { return appendDataKey(b, userKey) }

// SortKeyLen returns len(SortKey(userKey)).
func SortKeyLen(userKey []byte) int { return dataKeyLen(userKey) }

// SSTWriter writes a table file of user keys, values and expiries in the
// DB's own encoding, for a DB to ingest (a bulk load; Record.IngestPath).
// Keys must come in ascending SortKey order, each once.
//
// The file is a scratch copy: it is not synced and its pages stay in the
// page cache (shim.cc), as the loader reads it back at once to ship it and
// then deletes it. A replica makes its staged copy durable itself.
type SSTWriter struct {
	path  string
	c     *C.zp_sstwriter_t
	last  []byte // the last key's SortKey
	buf   []byte // the key and value being put
	count uint64
	done  bool
}

// The write buffer sizes set on a table file writer's options, only for the
// shim's layout check (a table file writer has no memtable).
const (
	sstLayoutWriteBuffer   = 64<<20 + 1
	sstLayoutDBWriteBuffer = 128<<20 + 3
)

// CreateSST creates a table file at path.
func CreateSST(path string) (*SSTWriter, error) {
	opts := grocksdb.NewDefaultOptions()
	defer opts.Destroy() // the writer keeps its own copy
	// The table format of a DB's data family (newRocksOptions). An
	// ingested file usually lands in the last level, hence its
	// compression; it is also the smaller file to ship to every replica
	// (LZ4 made a bulk load's files half as large again, and the load no
	// faster).
	opts.SetCompression(grocksdb.ZSTDCompression)
	// ZSTD's level 1, not the default 3: a fifth less of the loader's
	// time for files as small on the benchmark's data
	// (BenchmarkWrite in zpctl/bulkload: 0.7006 vs 0.7008 of the
	// input); compactions rewrite the file at the DB's own level.
	opts.SetCompressionOptions(grocksdb.NewCompressionOptions(-14, 1, 0, 0))
	bbto := newTableOptions()
	opts.SetBlockBasedTableFactory(bbto)
	bbto.Destroy()
	opts.SetWriteBufferSize(sstLayoutWriteBuffer)
	opts.SetDbWriteBufferSize(sstLayoutDBWriteBuffer)
	copts, err := cOptions(opts)
	if err != nil {
		return nil, err
	}
	var cerr *C.char
	c := C.zp_sstwriter_create(copts, sstLayoutWriteBuffer, sstLayoutDBWriteBuffer, &cerr)
	if c == nil {
		return nil, fmt.Errorf("engine: table file writer: %w", takeCError(cerr))
	}
	w := &SSTWriter{path: path, c: c}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if C.zp_sstwriter_open(c, cpath, &cerr) != 0 {
		w.free()
		return nil, fmt.Errorf("engine: creating table file %s: %w", path, takeCError(cerr))
	}
	return w, nil
}

// takeCError turns an error string the shim allocated into an error and
// frees it.
func takeCError(c *C.char) error {
	if c == nil {
		return errors.New("unknown error")
	}
	defer C.free(unsafe.Pointer(c))
	return errors.New(C.GoString(c))
}

// Put adds a key. The key is checked as Apply checks it; expireAtMs is
// unix milliseconds, 0 for none.
func (s *SSTWriter) Put(userKey, value []byte, expireAtMs int64) error {
	if s.done {
		return fmt.Errorf("%w: table file finished", ErrInvalidArgument)
	}
	if err := checkKey(userKey); err != nil {
		return err
	}
	if expireAtMs < 0 {
		return fmt.Errorf("%w: negative expiry %d", ErrInvalidArgument, expireAtMs)
	}
	// One buffer holds the encoded key and value, reused for every key.
	s.buf = appendDataKey(s.buf[:0], userKey)
	k := s.buf
	if s.last != nil && bytes.Compare(k, s.last) <= 0 {
		return fmt.Errorf("%w: key %q out of order in a table file", ErrInvalidArgument, userKey)
	}
	s.buf = appendValue(s.buf, value, expireAtMs)
	v := s.buf[len(k):]
	var cerr *C.char
	if C.zp_sstwriter_put(s.c, (*C.char)(unsafe.Pointer(&k[0])), C.size_t(len(k)),
		(*C.char)(unsafe.Pointer(&v[0])), C.size_t(len(v)), &cerr) != 0 {
		return fmt.Errorf("engine: writing table file %s: %w", s.path, takeCError(cerr))
	}
	s.last = append(s.last[:0], k...)
	s.count++
	return nil
}

// Count returns the keys put so far.
func (s *SSTWriter) Count() uint64 { return s.count }

// Finish completes the file. A writer given no key makes no file: RocksDB
// cannot write an empty table, and Finish returns false.
func (s *SSTWriter) Finish() (written bool, err error) {
	if s.done {
		return false, fmt.Errorf("%w: table file finished twice", ErrInvalidArgument)
	}
	defer s.free()
	if s.count == 0 {
		os.Remove(s.path)
		return false, nil
	}
	var cerr *C.char
	if C.zp_sstwriter_finish(s.c, &cerr) != 0 {
		return false, fmt.Errorf("engine: finishing table file %s: %w", s.path, takeCError(cerr))
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
	C.zp_sstwriter_destroy(s.c)
	s.c = nil
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
