package engine

// #include "shim.h"
import "C"

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// mmapThreshold is the allocation size from which the C allocator maps
// memory on its own. RocksDB allocates memtables in arena blocks of an
// eighth of the memtable size (4 MiB by default) and frees them when the
// memtable is flushed. glibc maps a block that large and unmaps it on free,
// but then raises its threshold to the freed size (up to 32 MiB), so every
// later block comes from its heaps, where a freed block stays resident: a
// node under writes kept about as much RSS as its memtables had ever held,
// on top of what they held now (the bench soak's "other", 80-125 MiB, was
// 30-45 MiB with the threshold fixed). A fixed threshold of 1 MiB keeps
// arena blocks mapped, so RSS follows the memtables; the block cache's
// 16 KiB blocks and other small allocations stay on the heaps. Mapping a
// fresh block costs a page fault per 4 KiB, about 1,000 per 4 MiB of
// writes: nothing next to the writes themselves.
const mmapThreshold = 1 << 20

var tuneMallocOnce sync.Once

// tuneMalloc fixes the C allocator's mmap threshold once per process,
// unless MALLOC_MMAP_THRESHOLD_ in the environment already chose one (glibc
// reads it at start; an operator's choice wins).
func tuneMalloc() error {
	var err error
	tuneMallocOnce.Do(func() {
		if _, set := os.LookupEnv("MALLOC_MMAP_THRESHOLD_"); set {
			return
		}
		if C.zp_malloc_set_mmap_threshold(C.size_t(mmapThreshold)) != 0 {
			err = fmt.Errorf("engine: mallopt(M_MMAP_THRESHOLD, %d) failed", mmapThreshold)
		}
	})
	return err
}

// mallocWouldMmap reports whether the C allocator maps an allocation of n
// bytes on its own. For tests.
func mallocWouldMmap(n int) (bool, error) {
	switch C.zp_malloc_would_mmap(C.size_t(n)) {
	case 1:
		return true, nil
	case 0:
		return false, nil
	}
	return false, fmt.Errorf("engine: malloc(%d) failed", n)
}

// mallocChurn allocates and frees n bytes of C memory. For tests.
func mallocChurn(n int) { C.zp_malloc_churn(C.size_t(n)) }

// The block cache allocates and frees its blocks (16 KiB and less, below
// the mmap threshold) on the heaps of up to 8 glibc arenas per CPU, each
// thread on its own; a block freed on one arena is only reused by the
// threads of that arena, and glibc returns a heap's free memory to the OS
// only from its top. So once the cache is full and churns, every arena's
// heap grows toward the most that arena ever held, and RSS with it: a
// soaked node kept 57 MB free in its arenas and gained 4-5 MiB a minute
// (docs/performance.md, Memory). malloc_trim(0) hands every free page of
// every arena back (madvise), leaving RSS at what is in use plus partial
// pages. It takes each arena's lock in turn while it walks that arena's
// free chunks: a trim of a soaked node with a full 256 MiB cache took
// 52.6 ms on average on a loaded 2-vCPU machine, about 3 ms per arena
// (zeppelin_node_malloc_trim_seconds_total keeps count), which every 30 s
// is a small price for bounding the drift to what 30 s of churn can free.
const DefaultMallocTrimInterval = 30 * time.Second

// mallocTrimmer trims the C heaps every interval until stopped.
type mallocTrimmer struct {
	stop  chan struct{}
	done  chan struct{}
	trims atomic.Uint64
	nanos atomic.Int64
}

func startMallocTrimmer(interval time.Duration) *mallocTrimmer {
	t := &mallocTrimmer{stop: make(chan struct{}), done: make(chan struct{})}
	go t.run(interval)
	return t
}

func (t *mallocTrimmer) run(interval time.Duration) {
	defer close(t.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.trim()
		}
	}
}

func (t *mallocTrimmer) trim() {
	start := time.Now()
	C.zp_malloc_trim()
	t.nanos.Add(int64(time.Since(start)))
	t.trims.Add(1)
}

// close stops the trimmer and waits for it.
func (t *mallocTrimmer) close() {
	close(t.stop)
	<-t.done
}

// mallocFragment leaves count*size bytes of freed, resident C memory below
// a live chunk, and returns a func that frees that chunk. For tests.
func mallocFragment(count, size int) (free func()) {
	p := C.zp_malloc_fragment(C.size_t(count), C.size_t(size))
	return func() { C.zp_free(p) }
}
