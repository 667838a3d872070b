package engine

import (
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/linxGnu/grocksdb"
)

// Defaults applied to zero fields.
const (
	DefaultBlockCacheSize  = 256 << 20
	DefaultWriteBufferSize = 256 << 20
	DefaultMemtableSize    = 32 << 20
	DefaultMaxOpenFiles    = 512
)

// SharedOptions configures the resources all DBs of a process share.
type SharedOptions struct {
	// BlockCacheSize is the capacity of the LRU block cache, which also
	// holds index and filter blocks. Default DefaultBlockCacheSize.
	BlockCacheSize uint64

	// WriteBufferSize caps the memtable memory of all DBs together; when it
	// is exceeded RocksDB flushes the largest memtable. Default
	// DefaultWriteBufferSize.
	WriteBufferSize uint64

	// BackgroundJobs is the number of flush and compaction jobs a DB may
	// run at once. RocksDB runs them on process-wide thread pools that grow
	// to the largest request, so this is also about the number of
	// background threads. Default runtime.NumCPU(), at least 2.
	BackgroundJobs int

	// MallocTrimInterval is how often the C allocator's free memory goes
	// back to the OS (see DefaultMallocTrimInterval). Default
	// DefaultMallocTrimInterval; negative turns trimming off.
	MallocTrimInterval time.Duration
}

func (o SharedOptions) withDefaults() (SharedOptions, error) {
	if o.BlockCacheSize == 0 {
		o.BlockCacheSize = DefaultBlockCacheSize
	}
	if o.WriteBufferSize == 0 {
		o.WriteBufferSize = DefaultWriteBufferSize
	}
	if o.BackgroundJobs < 0 {
		return o, fmt.Errorf("engine: negative BackgroundJobs %d", o.BackgroundJobs)
	}
	if o.BackgroundJobs == 0 {
		o.BackgroundJobs = max(2, runtime.NumCPU())
	}
	if o.MallocTrimInterval == 0 {
		o.MallocTrimInterval = DefaultMallocTrimInterval
	}
	return o, nil
}

// Options configures one DB.
type Options struct {
	// Shared holds the block cache, the write buffer budget and the
	// statistics. When nil, the DB gets a private 8 MiB cache, no shared
	// memtable budget and no statistics, which suits tests and one-off
	// tools, not a node.
	Shared *Shared

	// Logger receives open, close and repair events. Default
	// slog.Default(). RocksDB's own LOG file stays in the DB directory.
	Logger *slog.Logger

	// MemtableSize is the size of one memtable (write_buffer_size).
	// Default DefaultMemtableSize.
	MemtableSize uint64

	// MaxOpenFiles bounds the table files the DB keeps open; a node hosts
	// many DBs, so this bounds its file descriptors. -1 means no limit.
	// Default DefaultMaxOpenFiles.
	MaxOpenFiles int

	// DisableWAL turns RocksDB's write-ahead log off, for callers that log
	// every write themselves (a replica's binlog) and replay after the
	// applied position on open. Writes then live only in the memtable until
	// a flush: such a caller must Flush before dropping its own log, and
	// Close flushes.
	DisableWAL bool

	// tuning changes the RocksDB options Open builds; nil changes nothing.
	// Only BenchmarkIdleCost sets it, to try option changes one at a time.
	tuning *rocksTuning
	// memtableBloom gives the memtables a bloom filter; Open sets it.
	memtableBloom bool
}

// rocksTuning is an experimental change to the RocksDB options of a DB.
type rocksTuning struct {
	noTickers bool                    // not counted into the Shared's statistics
	tune      func(*grocksdb.Options) // applied last
}

func (o Options) withDefaults() (Options, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MemtableSize == 0 {
		o.MemtableSize = DefaultMemtableSize
	}
	if o.MemtableSize < 1<<20 {
		return o, fmt.Errorf("engine: MemtableSize %d below 1 MiB", o.MemtableSize)
	}
	switch {
	case o.MaxOpenFiles == 0:
		o.MaxOpenFiles = DefaultMaxOpenFiles
	case o.MaxOpenFiles < -1 || o.MaxOpenFiles > -1 && o.MaxOpenFiles < 16:
		return o, fmt.Errorf("engine: MaxOpenFiles %d (want -1 or at least 16)", o.MaxOpenFiles)
	}
	return o, nil
}
