package tui

import (
	"context"
	"fmt"
	"strings"

	"github.com/zeppelin-kv/zeppelin/lib/client"
)

// Action is a topology change the operator can start from the TUI.
type Action struct {
	// Kind is "setmaster", "migrate", "expand", "shrink", "cordon",
	// "uncordon" or "cancel".
	Kind      string
	Table     string
	Partition uint32
	From, To  string
	// Nodes are the nodes shrink drains or cordon (uncordon) marks; for
	// expand, the UP nodes that hold nothing yet (expand spreads the load
	// over every UP node).
	Nodes []string
	// MoveID is the move cancel stops, Move its kind.
	MoveID uint64
	Move   string
	// Epoch is the topology the action was proposed from: moves are
	// queued with it as the expected epoch, so an action proposed from a
	// view that is out of date fails (STALE_EPOCH) rather than doing
	// something else than the dialog said.
	Epoch uint64
}

// Describe is the question the confirmation dialog asks.
func (a Action) Describe() string {
	where := fmt.Sprintf("%s/%d", a.Table, a.Partition)
	switch a.Kind {
	case "setmaster":
		return fmt.Sprintf("Fail over %s: make %s its master (now %s)?", where, a.To, a.From)
	case "migrate":
		return fmt.Sprintf("Migrate the replica of %s on %s to %s?", where, a.From, a.To)
	case "expand":
		if len(a.Nodes) == 0 {
			return "Expand: even out the load over every UP node (none is empty)?"
		}
		return fmt.Sprintf("Expand onto %s: spread the load over every UP node, new ones included?", strings.Join(a.Nodes, ", "))
	case "shrink":
		return fmt.Sprintf("Shrink: move every replica off %s?", strings.Join(a.Nodes, ", "))
	case "cordon":
		return fmt.Sprintf("Cordon %s: place no new replica or master on it (it keeps what it has)?", strings.Join(a.Nodes, ", "))
	case "uncordon":
		return fmt.Sprintf("Uncordon %s: let it receive replicas and masters again?", strings.Join(a.Nodes, ", "))
	case "cancel":
		return fmt.Sprintf("Cancel move %d (%s %s: %s) and roll it back?", a.MoveID, a.Move, where, arrow(a.From, a.To))
	}
	return a.Kind + "?"
}

// Planner makes the plan of an expand or shrink the operator is asked to
// confirm: the moves `zpctl expand` or `shrink` would show, at the epoch
// they were planned at, with which they are then queued.
type Planner func(ctx context.Context, a Action) (Plan, error)

// Plan is the moves an action would queue.
type Plan struct {
	Epoch uint64
	// Steps are the moves, one line each, as the CLI prints them
	// ("migrate users/3: 10.0.0.1:9231 -> 10.0.0.4:9231").
	Steps []string
}

// Runner carries out a confirmed action and returns its outcome. It runs
// outside the program's event loop; its error is shown in the status
// line.
type Runner func(ctx context.Context, a Action) (Outcome, error)

// Outcome is what a Runner did.
type Outcome struct {
	// Status is what to say in the status line (e.g. the moves queued).
	Status string
	// Moves are the ids of the moves queued, in order; the migrations
	// view's cursor goes to the first once a survey lists it.
	Moves []uint64
}

// arrow is "A → B", or one side for moves that have one.
func arrow(from, to string) string {
	return strings.TrimSpace(from + " → " + to)
}

// moveArrow is a move's arrow, its nodes as name gives them; a split's
// is its slot and, once known, its new partition.
func moveArrow(mv client.Move, name func(string) string) string {
	if mv.Kind == client.MoveSplit {
		s := fmt.Sprintf("at %d", mv.SplitAt)
		if mv.SplitChild != 0 {
			s += fmt.Sprintf(" → p%d", mv.SplitChild)
		}
		return s
	}
	return arrow(name(mv.From), name(mv.To))
}
