package engine

// #cgo CXXFLAGS: -std=c++17 -O2
// #cgo LDFLAGS: -lrocksdb -lstdc++
// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/linxGnu/grocksdb"
)

// RocksDB's WriteBufferManager caps the memtable memory of many DBs with one
// budget, flushing the largest memtable when the sum runs over. That is what
// lets one node host hundreds of partition replicas without hundreds of
// independent memtable budgets. RocksDB 7.8's C API (and so grocksdb
// v1.7.15) cannot create or attach one, so a few lines of C++ in shim.cc do
// it, reaching into rocksdb_options_t, whose definition is private to
// RocksDB's c.cc. Two guards keep that honest:
//
//   - checkOptionsLayout verifies, once, that grocksdb.Options still keeps
//     its *rocksdb_options_t in its first field;
//   - zp_options_set_wbm compares two option values set through the C API
//     with what it reads through its own struct definition and refuses to
//     write when they differ.
//
// With grocksdb >= 1.8 / RocksDB >= 8 this file can go: use
// grocksdb.NewWriteBufferManager.

// errLayout reports that the C++ shim's view of RocksDB's option struct does
// not match the linked library; the write buffer manager cannot be attached.
var errLayout = errors.New("engine: rocksdb_options_t layout check failed (grocksdb or RocksDB version changed?)")

// writeBufferManager owns one C++ WriteBufferManager.
type writeBufferManager struct {
	c *C.zp_wbm_t
}

func newWriteBufferManager(size uint64) (*writeBufferManager, error) {
	if err := checkOptionsLayout(); err != nil {
		return nil, err
	}
	c := C.zp_wbm_create(C.size_t(size))
	if c == nil {
		return nil, errors.New("engine: creating write buffer manager failed")
	}
	return &writeBufferManager{c: c}, nil
}

// usage returns the bytes of memtable memory currently charged.
func (w *writeBufferManager) usage() uint64 { return uint64(C.zp_wbm_memory_usage(w.c)) }

// limit returns the budget.
func (w *writeBufferManager) limit() uint64 { return uint64(C.zp_wbm_buffer_size(w.c)) }

// attach makes opts use w. opts must have had SetWriteBufferSize and
// SetDbWriteBufferSize called with the two values given, which the shim uses
// to verify the struct layout.
func (w *writeBufferManager) attach(opts *grocksdb.Options, writeBufferSize, dbWriteBufferSize uint64) error {
	copts, err := cOptions(opts)
	if err != nil {
		return err
	}
	if C.zp_options_set_wbm(copts, w.c, C.size_t(writeBufferSize), C.size_t(dbWriteBufferSize)) != 0 {
		return errLayout
	}
	return nil
}

// destroy releases this handle. DBs opened with it keep their own reference
// to the C++ object, so it is safe to call while they are open.
func (w *writeBufferManager) destroy() {
	if w.c != nil {
		C.zp_wbm_destroy(w.c)
		w.c = nil
	}
}

// cOptions returns the C options behind opts, which grocksdb keeps in its
// first field (checkOptionsLayout verifies that it still does).
func cOptions(opts *grocksdb.Options) (*C.rocksdb_options_t, error) {
	if err := checkOptionsLayout(); err != nil {
		return nil, err
	}
	copts := (*C.rocksdb_options_t)(*(*unsafe.Pointer)(unsafe.Pointer(opts)))
	if copts == nil {
		return nil, errors.New("engine: options already destroyed")
	}
	return copts, nil
}

// checkOptionsLayout verifies that the first field of grocksdb.Options is the
// C options pointer, which attach reads without grocksdb's help.
func checkOptionsLayout() error {
	t := reflect.TypeFor[grocksdb.Options]()
	if t.NumField() == 0 {
		return errLayout
	}
	f := t.Field(0)
	if f.Name != "c" || f.Offset != 0 || f.Type.Kind() != reflect.Pointer ||
		f.Type.Elem().Name() != "_Ctype_struct_rocksdb_options_t" {
		return fmt.Errorf("%w: grocksdb.Options field 0 is %s %s", errLayout, f.Name, f.Type)
	}
	return nil
}
