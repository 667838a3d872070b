package engine

// #include "shim.h"
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/linxGnu/grocksdb"
)

// The expiry compaction filter is written in C++ (shim.cc) rather than as a
// grocksdb Go CompactionFilter: RocksDB calls it for every value it
// compacts, from its own threads, and a cgo callback per value would cost
// more than the compaction's own work on small values. See the package
// documentation for why dropping expired values in compaction is safe on
// every replica independently.

// expiryFilter is a new filter and the handle to its clock.
type expiryFilter struct {
	filter grocksdb.CompactionFilter
	clock  *expiryClock
}

// expiryClock lets tests pin the filter's notion of now. It is owned by
// the filter and lives as long as the DB's options.
type expiryClock struct {
	c *C.zp_expiry_clock_t
}

func newExpiryFilter() expiryFilter {
	var clock *C.zp_expiry_clock_t
	cf := C.zp_expiry_filter_create(&clock)
	return expiryFilter{
		filter: grocksdb.NewNativeCompactionFilter(unsafe.Pointer(cf)),
		clock:  &expiryClock{c: clock},
	}
}

// set makes the filter use nowMs as the current time; 0 restores the wall
// clock.
func (c *expiryClock) set(nowMs int64) { C.zp_expiry_clock_set(c.c, C.int64_t(nowMs)) }

// sweepBudget bounds the keys one ExpiredKeys call examines, so that a
// call costs about the same however sparse expired keys are.
const sweepBudget = 10_000

// ExpiredKeys returns up to limit keys that are expired at nowMs, for the
// master's sweep to delete through the binlog (see the package
// documentation). It examines at most about 10,000 keys per call, starting
// after cursor; pass nil to start a pass, then the returned next, which is
// nil once the pass has covered the whole key space. The cursor is opaque.
//
// The keys are candidates: the node must check each with Expired under its
// write lock before logging a delete.
func (d *DB) ExpiredKeys(cursor []byte, nowMs int64, limit int) (keys [][]byte, next []byte, err error) {
	if limit <= 0 {
		return nil, nil, fmt.Errorf("%w: limit %d", ErrInvalidArgument, limit)
	}
	start := []byte{dataPrefix}
	if len(cursor) > 0 {
		if cursor[0] != dataPrefix {
			return nil, nil, fmt.Errorf("%w: bad sweep cursor", ErrInvalidArgument)
		}
		start = append(append(make([]byte, 0, len(cursor)+1), cursor...), 0)
	}
	if err := d.enter(); err != nil {
		return nil, nil, err
	}
	defer d.closeMu.RUnlock()

	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	ro.SetFillCache(false) // a sweep must not evict the working set
	ro.SetIterateUpperBound([]byte{dataPrefix + 1})
	it := d.db.NewIterator(ro)
	defer it.Close()

	var last []byte
	examined := 0
	for it.Seek(start); it.Valid(); it.Next() {
		k := it.Key().Data()
		_, exp, err := decodeValue(it.Value().Data())
		if err != nil {
			return nil, nil, fmt.Errorf("raw key %q: %w", k, err)
		}
		examined++
		if expired(exp, nowMs) {
			user, err := userKeyOf(k)
			if err != nil {
				return nil, nil, err
			}
			keys = append(keys, append([]byte(nil), user...))
		}
		if len(keys) == limit || examined == sweepBudget {
			last = append([]byte(nil), k...)
			break
		}
	}
	if err := it.Err(); err != nil {
		return nil, nil, fmt.Errorf("engine: sweep: %w", err)
	}
	if last != nil {
		it.Next()
		if it.Valid() {
			next = last
		}
	}
	return keys, next, nil
}
