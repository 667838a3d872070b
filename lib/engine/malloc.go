package engine

// #include "shim.h"
import "C"

import (
	"fmt"
	"os"
	"sync"
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
