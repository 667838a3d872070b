package engine

import (
	"fmt"
	"sync"

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

	mu     sync.Mutex
	open   int // DBs opened with it and not closed yet
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
	return &Shared{
		opts:    opts,
		cache:   grocksdb.NewLRUCache(opts.BlockCacheSize),
		wbm:     wbm,
		tickers: t,
	}, nil
}

// acquire registers a DB about to open.
func (s *Shared) acquire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%w: shared resources", ErrClosed)
	}
	s.open++
	return nil
}

// release unregisters a DB that closed or failed to open.
func (s *Shared) release() {
	s.mu.Lock()
	s.open--
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
	return SharedStats{
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
