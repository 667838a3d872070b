// Package failpoint holds a server at a named point of its work until a
// test lets it go, so that a test can crash processes at an exact step of
// a multi-step operation (a split's PREPARE, its commit, its trims)
// without sleeping and hoping. It does nothing unless the process was
// started with DirEnv set, which only tests do (lib/testcluster,
// Options.Failpoints).
//
// A point is armed while the file DIR/NAME exists. A process that reaches
// an armed point creates DIR/NAME.held.PID, so the test knows who holds
// it, and waits until the file DIR/NAME is removed (or its context ends);
// then it goes on as if nothing had happened. Files rather than a socket:
// the test arms a point before the processes start, keeps it armed across
// their restarts, and a process killed while holding leaves nothing to
// clean up but a file naming a dead pid.
package failpoint

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// DirEnv names the environment variable holding the directory of armed
// points; unset (as in every deployment), Hold returns at once.
const DirEnv = "ZP_FAILPOINT_DIR"

// The points the servers hold at, named for the step they stop before.
const (
	// SplitPrepare: the meta leader is to take a SPLIT out of PENDING.
	SplitPrepare = "split-prepare"
	// SplitStage: a node applied a split's fence to a replica (the fence
	// is in its binlog and its data) and is to stage the child.
	SplitStage = "split-stage"
	// SplitCommit: the meta leader learnt that enough replicas hold the
	// child and is to commit the split.
	SplitCommit = "split-commit"
	// SplitDone: the meta leader is to end a committed split.
	SplitDone = "split-done"
	// SplitTrim: a node opened a split's child as a partition and
	// recorded the trim of one half (slots.trim): it is to delete the
	// keys outside the range the half keeps.
	SplitTrim = "split-trim"
	// BulkIngest: a partition's master got BULK_INGEST for a table file
	// it holds staged and is to log the record that ingests it.
	BulkIngest = "bulk-ingest"
	// BulkApply: a slave received records that ingest table files, holds
	// the files (fetched from its master when it lacked them), and is to
	// log and apply the records.
	BulkApply = "bulk-apply"
)

// dir is DirEnv as the process started with it.
var dir = os.Getenv(DirEnv)

// pollInterval is how often a held point looks whether it is released.
const pollInterval = 10 * time.Millisecond

// Hold waits while point name is armed, and returns at once when it is not
// (or no test armed anything). It returns ctx's error if ctx ends first.
func Hold(ctx context.Context, logger *slog.Logger, name string) error {
	if dir == "" {
		return nil
	}
	armed := filepath.Join(dir, name)
	if _, err := os.Stat(armed); err != nil {
		return nil
	}
	held := HeldPath(dir, name, os.Getpid())
	if err := os.WriteFile(held, nil, 0o644); err != nil {
		logger.Warn("failpoint: cannot say it is held", "point", name, "err", err)
	}
	defer os.Remove(held)
	logger.Info("failpoint: holding", "point", name)
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if _, err := os.Stat(armed); err != nil {
			logger.Info("failpoint: released", "point", name)
			return nil
		}
	}
}

// HeldPath is the file that says process pid holds point name, in the
// directory dir of armed points.
func HeldPath(dir, name string, pid int) string {
	return filepath.Join(dir, fmt.Sprintf("%s.held.%d", name, pid))
}
