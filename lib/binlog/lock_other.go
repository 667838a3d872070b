//go:build !unix

package binlog

import "os"

// lockDir is a no-op where flock is unavailable.
func lockDir(dir string) (*os.File, error) { return nil, nil }

func unlockDir(f *os.File) error { return nil }
