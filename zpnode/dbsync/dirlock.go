package dbsync

import (
	"fmt"
	"path/filepath"
	"sync"
)

// busyDirs holds the replica directories a Run, Install, Recover or
// Discard is working on in this process: two of them on one staging
// directory would corrupt each other.
var (
	busyMu   sync.Mutex
	busyDirs = map[string]bool{}
)

// lockReplicaDir claims dir or fails with ErrInUse.
func lockReplicaDir(dir string) (unlock func(), err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("dbsync: %w", err)
	}
	busyMu.Lock()
	defer busyMu.Unlock()
	if busyDirs[abs] {
		return nil, fmt.Errorf("%w: %s", ErrInUse, abs)
	}
	busyDirs[abs] = true
	return func() {
		busyMu.Lock()
		delete(busyDirs, abs)
		busyMu.Unlock()
	}, nil
}
