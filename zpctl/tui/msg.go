package tui

import (
	"time"

	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

// SnapshotMsg carries one survey of the cluster into the model.
type SnapshotMsg struct {
	Snapshot *survey.Snapshot
	// Migrations are the migrations running; none until the cluster
	// keeps migration state (see Migration).
	Migrations []Migration
}

// Migration is one replica being moved, for the migrations panel. The
// poller sends none until it reads the meta servers' MOVE_STATUS; the
// panel and its progress bars are ready for it.
type Migration struct {
	Table     string
	Partition uint32
	From, To  string
	// Phase is "copying", "slowdown", "stuck" or "handover".
	Phase string
	// Done and Total are the records copied and to copy.
	Done, Total uint64
	Started     time.Time
}

// actionDoneMsg reports how a confirmed action ended.
type actionDoneMsg struct {
	action Action
	err    error
}
