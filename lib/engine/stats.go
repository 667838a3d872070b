package engine

// #include "shim.h"
import "C"

import (
	"github.com/linxGnu/grocksdb"
)

// enableTickers makes opts count RocksDB's tickers (block cache hits and
// misses feed the node's metrics) without the histograms and timers of
// grocksdb's EnableStatistics, which read the clock several times per read
// and write: on this machine kind, where reading the clock is slow, they
// cost more than the memtable insert itself. opts must have had
// SetWriteBufferSize and SetDbWriteBufferSize called with the two values
// given (see writeBufferManager.attach for the layout check).
func enableTickers(opts *grocksdb.Options, writeBufferSize, dbWriteBufferSize uint64) error {
	copts, err := cOptions(opts)
	if err != nil {
		return err
	}
	if C.zp_options_enable_tickers(copts, C.size_t(writeBufferSize), C.size_t(dbWriteBufferSize)) != 0 {
		return errLayout
	}
	return nil
}
