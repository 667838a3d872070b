package engine

// #include <stdint.h>
// #include "shim.h"
import "C"

import (
	"errors"

	"github.com/linxGnu/grocksdb"
)

// tickers is one RocksDB statistics object that counts tickers (the block
// cache hits and misses feed the node's metrics), without the histograms
// and timers of grocksdb's EnableStatistics, which read the clock several
// times per read and write: on this machine kind, where reading the clock
// is slow, they cost more than the memtable insert itself.
//
// Every DB of a Shared counts into the Shared's one object. A statistics
// object is large even counting tickers only (RocksDB keeps a copy of every
// counter and histogram per core slot, at least 8): one per DB cost about
// 590 KB of RSS per DB (BenchmarkIdleCost, variant no-tickers), and the node
// only ever added the DBs' counts up.
type tickers struct {
	c *C.zp_stats_t
}

func newTickers() (*tickers, error) {
	c := C.zp_stats_create()
	if c == nil {
		return nil, errors.New("engine: creating statistics failed")
	}
	return &tickers{c: c}, nil
}

// attach makes opts count into t. opts must have had SetWriteBufferSize and
// SetDbWriteBufferSize called with the two values given (see
// writeBufferManager.attach for the layout check).
func (t *tickers) attach(opts *grocksdb.Options, writeBufferSize, dbWriteBufferSize uint64) error {
	copts, err := cOptions(opts)
	if err != nil {
		return err
	}
	if C.zp_options_set_stats(copts, t.c, C.size_t(writeBufferSize), C.size_t(dbWriteBufferSize)) != 0 {
		return errLayout
	}
	return nil
}

// blockCache returns the block cache hits and misses counted so far.
func (t *tickers) blockCache() (hits, misses uint64) {
	var h, m C.uint64_t
	C.zp_stats_block_cache(t.c, &h, &m)
	return uint64(h), uint64(m)
}

// destroy releases this handle. DBs opened with it keep their own reference
// to the C++ object, so it is safe to call while they are open.
func (t *tickers) destroy() {
	if t.c != nil {
		C.zp_stats_destroy(t.c)
		t.c = nil
	}
}
