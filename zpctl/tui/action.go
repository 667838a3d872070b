package tui

import (
	"context"
	"fmt"
	"strings"
)

// Action is a topology change the operator can start from the TUI.
type Action struct {
	// Kind is "setmaster", "migrate", "expand", "shrink" or "cancel".
	Kind      string
	Table     string
	Partition uint32
	From, To  string
	// Nodes are the nodes expand moves replicas onto, or shrink off.
	Nodes []string
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
		return fmt.Sprintf("Expand onto %s: move replicas there until the load is even?", strings.Join(a.Nodes, ", "))
	case "shrink":
		return fmt.Sprintf("Shrink: move every replica off %s?", strings.Join(a.Nodes, ", "))
	case "cancel":
		return fmt.Sprintf("Cancel the migration of %s from %s to %s?", where, a.From, a.To)
	}
	return a.Kind + "?"
}

// Runner carries out a confirmed action. It runs outside the program's
// event loop; its error is shown in the status line.
type Runner func(ctx context.Context, a Action) error
