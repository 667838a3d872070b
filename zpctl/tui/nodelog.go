package tui

import (
	"context"
	"fmt"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// NodeLogReader reads one node's recent log lines, oldest first, as `zpctl
// node logs` does.
type NodeLogReader func(ctx context.Context, node string) NodeLog

// NodeLog is what a node answered for its log.
type NodeLog struct {
	Node string
	// Lines are oldest first.
	Lines []LogLine
	// Err is why the node did not answer.
	Err error
}

// LogLine is one record of a node's log.
type LogLine struct {
	Time time.Time
	// Level is "INFO", "WARN" or "ERROR".
	Level   string
	Message string
	// Attrs are the record's attributes as key=value text.
	Attrs string
}

// nodeLogMsg brings a reading of a node's log.
type nodeLogMsg NodeLog

// logNode is the node the Log view shows: the one under the Nodes view's
// cursor, "" when there is none.
func (m *Model) logNode() string {
	if m.snap == nil {
		return ""
	}
	if i, ok := m.item(tabNodes); ok {
		return m.snap.Nodes[i].Addr
	}
	return ""
}

// readNodeLog returns the command reading the log of the node selected in
// the Nodes view, while the Log view is shown and no reading is under way.
func (m *Model) readNodeLog() tea.Cmd {
	node := m.logNode()
	if m.tab != tabLog || m.opts.NodeLog == nil || node == "" || m.logReading {
		return nil
	}
	m.logReading = true
	read, timeout := m.opts.NodeLog, m.opts.ActionTimeout
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return nodeLogMsg(read(ctx, node))
	}
}

// tookNodeLog takes in a reading. The view follows the newest line, as
// `tail -f` does, unless the operator moved the cursor up from it.
func (m *Model) tookNodeLog(nl NodeLog) {
	follow := m.nodeLog == nil || m.nodeLog.Node != nl.Node || m.cursor[tabLog] >= m.rows(tabLog)-1
	m.nodeLog, m.logReading = &nl, false
	if follow {
		m.cursor[tabLog] = m.rows(tabLog) - 1
	}
	m.clamp()
}

// nodeLogView lists the selected node's log lines, newest last, each on
// one line cut to the terminal's width.
func (m Model) nodeLogView(h int) []string {
	if m.opts.NodeLog == nil {
		return []string{m.st.dim.Render("no node log reader")}
	}
	node := m.logNode()
	if node == "" {
		return []string{m.st.dim.Render("select a node in the Nodes view (2)")}
	}
	if m.nodeLog == nil {
		return []string{m.st.dim.Render("reading the log of " + node + " …")}
	}
	nl := m.nodeLog
	out := []string{"  " + m.st.title.Render("log of "+nl.Node) + m.st.dim.Render(" (the node selected in view 2), newest last")}
	if nl.Err != nil {
		out = append(out, "  "+m.st.crit.Render(nl.Err.Error()))
	}
	if len(nl.Lines) == 0 {
		if nl.Err == nil {
			out = append(out, fmt.Sprintf("  no log lines kept on %s", nl.Node))
		}
		return out
	}
	var body []string
	for _, i := range m.order(tabLog) {
		l := nl.Lines[i]
		level := fmt.Sprintf("%-5s", l.Level)
		switch l.Level {
		case "WARN":
			level = m.st.warn.Render(level)
		case "ERROR":
			level = m.st.crit.Render(level)
		}
		line := l.Time.In(m.opts.Location).Format("15:04:05.000") + " " + level + " " + l.Message
		if l.Attrs != "" {
			line += " " + m.st.dim.Render(l.Attrs)
		}
		body = append(body, line)
	}
	from := min(m.offset[tabLog], len(body))
	body = body[from:min(from+max(h-len(out), 1), len(body))]
	m.selectRow(body, m.cursor[tabLog]-from)
	return append(out, body...)
}
