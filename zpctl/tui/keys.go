package tui

import (
	"github.com/charmbracelet/bubbles/key"
)

// keyMap is every key the TUI knows. The help bar shows the ones that do
// something in the current view.
type keyMap struct {
	Quit, NextTab, PrevTab, Tabs key.Binding
	Up, Down, PageUp, PageDown   key.Binding
	PrevTable, NextTable, Enter  key.Binding
	Failover, Migrate            key.Binding
	Expand, Shrink, Cancel       key.Binding
	Cordon                       key.Binding
	Refresh, Help, CloseHelp     key.Binding
	Log                          key.Binding
	Filter, Sort, Reverse        key.Binding
	Confirm, Decline             key.Binding
	// Move and Table only label pairs of keys in the short help.
	Move, Table key.Binding
}

func newKeyMap() keyMap {
	b := func(help, desc string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return keyMap{
		Quit:      b("q", "quit", "q", "ctrl+c"),
		NextTab:   b("tab", "next view", "tab"),
		PrevTab:   b("shift+tab", "previous view", "shift+tab"),
		Tabs:      b("1-8", "view", "1", "2", "3", "4", "5", "6", "7", "8"),
		Up:        b("↑/k", "up", "up", "k"),
		Down:      b("↓/j", "down", "down", "j"),
		PageUp:    b("pgup", "page up", "pgup"),
		PageDown:  b("pgdn", "page down", "pgdown"),
		PrevTable: b("←/[", "prev table", "left", "["),
		NextTable: b("→/]", "next table", "right", "]"),
		Enter:     b("enter", "partitions", "enter"),
		Failover:  b("f", "failover", "f"),
		Migrate:   b("m", "migrate", "m"),
		Expand:    b("e", "expand", "e"),
		Shrink:    b("s", "shrink", "s"),
		Cordon:    b("x", "cordon", "x"),
		Cancel:    b("c", "cancel move", "c"),
		Log:       b("L", "node log", "L"),
		Refresh:   b("r", "refresh", "r"),
		Help:      b("?", "more keys", "?"),
		CloseHelp: b("esc", "close keys", "esc"),
		Filter:    b("/", "filter", "/"),
		Sort:      b("o", "sort column", "o"),
		Reverse:   b("O", "reverse order", "O"),
		Confirm:   b("y", "yes", "y", "Y"),
		Decline:   b("n/esc", "no", "n", "N", "esc"),
		Move:      b("↑↓", "move", "up", "down"),
		Table:     b("←→", "table", "left", "right"),
	}
}

// helpKeys is what the help bar shows: implements help.KeyMap.
type helpKeys struct {
	short []key.Binding
	full  [][]key.Binding
}

func (h helpKeys) ShortHelp() []key.Binding  { return h.short }
func (h helpKeys) FullHelp() [][]key.Binding { return h.full }

// filterHelp is the help bar while a filter is typed.
func (k keyMap) filterHelp() []key.Binding {
	return []key.Binding{
		key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "keep filter")),
		key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear filter")),
		k.Move,
	}
}

// helpFor returns the keys of view t.
func (k keyMap) helpFor(t tab, dialog bool) helpKeys {
	if dialog {
		return helpKeys{short: []key.Binding{k.Confirm, k.Decline}}
	}
	var view []key.Binding
	switch t {
	case tabNodes:
		view = []key.Binding{k.Move, k.Log, k.Expand, k.Shrink, k.Cordon}
	case tabTables:
		view = []key.Binding{k.Move, k.Enter}
	case tabPartitions:
		view = []key.Binding{k.Table, k.Move, k.Failover, k.Migrate}
	case tabMigrations:
		view = []key.Binding{k.Move, k.Cancel}
	case tabEvents, tabSlowlog:
		view = []key.Binding{k.Move, k.Filter, k.Sort}
	case tabLog:
		view = []key.Binding{k.Move, k.Filter}
	}
	// The view's own keys first: the bar is cut at the terminal's width.
	short := append(view, k.Quit, k.Help)
	if t == tabOverview {
		short = []key.Binding{k.Tabs, k.NextTab, k.Refresh, k.Quit, k.Help}
	}
	full := [][]key.Binding{
		{k.Quit, k.NextTab, k.PrevTab, k.Tabs, k.Refresh, k.Help, k.CloseHelp},
		{k.Up, k.Down, k.PageUp, k.PageDown, k.PrevTable, k.NextTable, k.Enter, k.Log},
		{k.Failover, k.Migrate, k.Expand, k.Shrink, k.Cordon, k.Cancel, k.Filter, k.Sort, k.Reverse},
	}
	return helpKeys{short: short, full: full}
}
