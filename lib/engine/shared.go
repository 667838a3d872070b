package engine

import (
	"fmt"
	"sync"
	"time"

	"github.com/linxGnu/grocksdb"
)

// Shared holds the memory budgets every DB of a process draws from: one
// block cache and one write buffer manager; and the statistics they all
// count into. Create one per process, pass it in Options, and close it
// after the DBs.
type Shared struct {
	opts    SharedOptions
	cache   *grocksdb.Cache
	wbm     *writeBufferManager
	tickers *tickers
	trimmer *mallocTrimmer // nil when trimming is off

	mu     sync.Mutex
	open   int // DBs opened with it and not closed yet
	blooms int // of those, the ones whose memtables have a bloom filter
	closed bool
}

// NewShared creates the shared cache and write buffer manager.
func NewShared(opts SharedOptions) (*Shared, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	// The memtables the write buffer manager budgets are only bounded in
	// RSS once freed ones go back to the OS (see mmapThreshold).
	if err := tuneMalloc(); err != nil {
		return nil, err
	}
	wbm, err := newWriteBufferManager(opts.WriteBufferSize)
	if err != nil {
		return nil, err
	}
	t, err := newTickers()
	if err != nil {
		wbm.destroy()
		return nil, err
	}
	s := &Shared{
		opts:    opts,
		cache:   grocksdb.NewLRUCache(opts.BlockCacheSize),
		wbm:     wbm,
		tickers: t,
	}
	if opts.MallocTrimInterval > 0 {
		s.trimmer = startMallocTrimmer(opts.MallocTrimInterval)
	}
	return s, nil
}

// Memtable bloom filters: RocksDB allocates one with every memtable, empty
// or not, at 2% of write_buffer_size (655 KB for 32 MiB), and charges it to
// the write buffer manager. Past some 350 open DBs the idle ones' filters
// alone used up the 256 MiB budget, and the manager then switched and
// flushed a memtable on every write (BenchmarkIdleCost). A smaller filter
// is no way out: the memtable's arena serves objects under a quarter of
// its 1 MiB block from a whole new block, so any filter under 256 KB
// costs 1 MiB. So a DB's memtables get a filter while the filters of the
// open DBs that have one take at most an eighth of the budget (50 DBs at
// the defaults), and none beyond: an idle DB without one charges 4 KB.
const (
	memtableBloomRatio = 0.02
	memtableBloomShare = 8
)

// acquire registers a DB about to open with memtables of memtableSize
// bytes, and says whether they get a bloom filter (see memtableBloomShare).
func (s *Shared) acquire(memtableSize uint64) (bloom bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, fmt.Errorf("%w: shared resources", ErrClosed)
	}
	s.open++
	filter := uint64(float64(memtableSize) * memtableBloomRatio)
	if uint64(s.blooms+1)*filter <= s.opts.WriteBufferSize/memtableBloomShare {
		s.blooms++
		bloom = true
	}
	return bloom, nil
}

// release unregisters a DB that closed or failed to open; bloom is what
// acquire said.
func (s *Shared) release(bloom bool) {
	s.mu.Lock()
	s.open--
	if bloom {
		s.blooms--
	}
	s.mu.Unlock()
}

// Close frees the shared resources. It fails with ErrInUse while DBs
// opened with s are still open.
func (s *Shared) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.open > 0 {
		return fmt.Errorf("%w: %d DBs still open", ErrInUse, s.open)
	}
	s.closed = true
	if s.trimmer != nil {
		s.trimmer.close()
	}
	s.cache.Destroy()
	s.wbm.destroy()
	s.tickers.destroy()
	return nil
}

// SharedStats reports the shared budgets' use, in bytes, and the block
// cache lookups.
type SharedStats struct {
	BlockCacheUsage    uint64
	BlockCachePinned   uint64
	BlockCacheCapacity uint64
	WriteBufferUsage   uint64
	WriteBufferLimit   uint64
	OpenDBs            int
	// Trims of the C allocator's free memory (see
	// DefaultMallocTrimInterval) and the time they took, since the Shared
	// was created.
	MallocTrims    uint64
	MallocTrimTime time.Duration
	// Block cache lookups of every DB opened with the Shared since it was
	// created (DBs closed since included).
	BlockCacheHits, BlockCacheMisses uint64
}

// Stats returns the current use of the shared budgets.
func (s *Shared) Stats() SharedStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return SharedStats{}
	}
	hits, misses := s.tickers.blockCache()
	var trims uint64
	var trimTime time.Duration
	if s.trimmer != nil {
		trims, trimTime = s.trimmer.trims.Load(), time.Duration(s.trimmer.nanos.Load())
	}
	return SharedStats{
		MallocTrims:        trims,
		MallocTrimTime:     trimTime,
		BlockCacheHits:     hits,
		BlockCacheMisses:   misses,
		BlockCacheUsage:    s.cache.GetUsage(),
		BlockCachePinned:   s.cache.GetPinnedUsage(),
		BlockCacheCapacity: s.cache.GetCapacity(),
		WriteBufferUsage:   s.wbm.usage(),
		WriteBufferLimit:   s.wbm.limit(),
		OpenDBs:            s.open,
	}
}
