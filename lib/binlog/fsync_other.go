//go:build !linux

package binlog

import "os"

// fdatasync falls back to fsync (on macOS, F_FULLFSYNC via os.File.Sync).
func fdatasync(f *os.File) error { return f.Sync() }
