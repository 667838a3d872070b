//go:build unix

package dbsync

import (
	"os"
	"syscall"
)

// devIno returns the device and inode of fi.
func devIno(fi os.FileInfo) (dev, ino uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(st.Dev), uint64(st.Ino), true // Dev is int32 on some platforms
}
