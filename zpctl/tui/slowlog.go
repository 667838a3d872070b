package tui

import (
	"context"
	"fmt"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// SlowLogReader reads the slow logs of nodes, merged newest first, as
// `zpctl slowlog` does.
type SlowLogReader func(ctx context.Context, nodes []string) SlowLog

// SlowLog is the nodes' slow logs, merged.
type SlowLog struct {
	Entries []SlowEntry
	// Nodes is how many nodes were asked; Err names those that did not
	// answer (their entries are missing).
	Nodes int
	Err   error
}

// SlowEntry is one slow request.
type SlowEntry struct {
	Time     time.Time
	Node     string
	Command  string
	Table    string
	Key      string // as text or 0x-hex; "" for commands without one
	Duration time.Duration
	Code     string
}

// slowLogMsg brings a reading of the slow logs.
type slowLogMsg SlowLog

// readSlowLog returns the command reading the slow logs of the UP nodes,
// while the Slowlog view is shown and no reading is under way.
func (m *Model) readSlowLog() tea.Cmd {
	if m.tab != tabSlowlog || m.opts.SlowLog == nil || m.snap == nil || m.slowReading {
		return nil
	}
	var up []string
	for _, n := range m.snap.Nodes {
		if n.State == "UP" {
			up = append(up, n.Addr)
		}
	}
	m.slowReading = true
	read, timeout := m.opts.SlowLog, m.opts.ActionTimeout
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return slowLogMsg(read(ctx, up))
	}
}

// slowLogView lists the slow requests, newest first (or as sorted).
func (m Model) slowLogView(h int) []string {
	if m.opts.SlowLog == nil {
		return []string{m.st.dim.Render("no slow log reader")}
	}
	if m.slow == nil {
		return []string{m.st.dim.Render("reading the slow logs …")}
	}
	var out []string
	if m.slow.Err != nil {
		out = append(out, "  "+m.st.crit.Render(m.slow.Err.Error()))
	}
	if len(m.slow.Entries) == 0 {
		return append(out, fmt.Sprintf("no slow requests logged on %d node(s)", m.slow.Nodes))
	}
	short := m.shortAddr()
	var rows [][]cell
	for _, i := range m.order(tabSlowlog) {
		e := m.slow.Entries[i]
		code := styled(e.Code, m.st.crit)
		if e.Code == "OK" || e.Code == "NOT_FOUND" {
			code = plain(e.Code)
		}
		rows = append(rows, []cell{plain(e.Time.In(m.opts.Location).Format("15:04:05.000")), plain(short(e.Node)), plain(e.Command),
			plain(dash(e.Table)), plain(dash(e.Key)), plain(e.Duration.String()), code})
	}
	lines := grid(m.st, m.sortLabel(tabSlowlog, []string{"TIME", "NODE", "COMMAND", "TABLE", "KEY", "DURATION", "CODE"}), rows)
	header, body := lines[0], lines[1:]
	from := min(m.offset[tabSlowlog], len(body))
	body = body[from:min(from+max(h-len(out)-1, 1), len(body))]
	m.selectRow(body, m.cursor[tabSlowlog]-from)
	out = append(out, "  "+header)
	return append(out, body...)
}
