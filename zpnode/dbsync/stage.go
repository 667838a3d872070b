package dbsync

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/zeppelin-kv/zeppelin/lib/atomicfile"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
)

// StageCheckpoint stages a checkpoint of db (hard links to its table
// files) as the complete DB of the replica in replicaDir, as a finished
// Run would: opening the replica then installs it (Recover) and restarts
// its binlog at the position returned (PendingInstall), with the same
// crash safety as a full sync. A split starts the new partition's replica
// so, from its parent's data. replicaDir must hold no DB nor staged one.
func StageCheckpoint(replicaDir string, db *engine.DB) (term, lsn uint64, err error) {
	unlock, err := lockReplicaDir(replicaDir)
	if err != nil {
		return 0, 0, err
	}
	defer unlock()
	for _, d := range []string{DBDir, StagingDir} {
		ok, err := exists(filepath.Join(replicaDir, d))
		if err != nil {
			return 0, 0, fmt.Errorf("dbsync: stage checkpoint: %w", err)
		}
		if ok {
			return 0, 0, fmt.Errorf("dbsync: stage checkpoint: %s exists", filepath.Join(replicaDir, d))
		}
	}
	if err := os.MkdirAll(replicaDir, 0o755); err != nil {
		return 0, 0, fmt.Errorf("dbsync: stage checkpoint: %w", err)
	}
	staging := filepath.Join(replicaDir, StagingDir)
	if term, lsn, err = db.Checkpoint(staging); err != nil {
		return 0, 0, fmt.Errorf("dbsync: stage checkpoint: %w", err)
	}
	if err := writeComplete(staging, term, lsn); err != nil {
		os.RemoveAll(staging)
		return 0, 0, fmt.Errorf("dbsync: stage checkpoint: %w", err)
	}
	if err := atomicfile.SyncDir(replicaDir); err != nil {
		return 0, 0, fmt.Errorf("dbsync: stage checkpoint: %w", err)
	}
	return term, lsn, nil
}
