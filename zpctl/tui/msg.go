package tui

import (
	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

// SnapshotMsg carries one survey of the cluster into the model; the
// migrations panel shows its moves.
type SnapshotMsg struct {
	Snapshot *survey.Snapshot
}

// actionDoneMsg reports how a confirmed action ended.
type actionDoneMsg struct {
	action Action
	out    Outcome
	err    error
}

// planDoneMsg brings the plan made for dialog number seq.
type planDoneMsg struct {
	seq  int
	plan Plan
	err  error
}
