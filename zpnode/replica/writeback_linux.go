package replica

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing n bytes of f at off to
// disk without waiting for them, so that the fsync that ends a staged
// file waits only for its last chunks (as RocksDB's bytes_per_sync does).
// Advisory: an error only means the fsync does all the work.
func startWriteback(f *os.File, off int64, n int) {
	unix.SyncFileRange(int(f.Fd()), off, int64(n), unix.SYNC_FILE_RANGE_WRITE)
}
