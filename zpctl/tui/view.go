package tui

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/zeppelin-kv/zeppelin/lib/client"
)

// View implements tea.Model: a header bar, the tab bar, a summary line,
// the current view (or the dialog, or the full key list), the status line
// and the help bar; never more lines than the terminal has, none wider.
func (m Model) View() string {
	w, h := max(m.width, 20), max(m.height, 6)
	bh := m.bodyHeight()
	var body []string
	switch {
	case m.dialog != nil:
		body = m.dialogView(w, bh)
	case m.help.ShowAll:
		body = strings.Split(m.help.View(m.keys.helpFor(m.tab, false)), "\n")
	case m.snap == nil:
		body = []string{"", m.st.dim.Render("  waiting for the first survey of " + m.opts.Title + " …")}
	default:
		body = m.bodyView(bh)
	}
	body = fit(body, w, bh)
	for len(body) < bh {
		body = append(body, "")
	}
	lines := []string{m.headerView(w), m.tabsView(), m.summaryView()}
	lines = append(lines, body...)
	helpBar := m.help.ShortHelpView(m.keys.helpFor(m.tab, m.dialog != nil).ShortHelp())
	if m.filtering {
		helpBar = m.help.ShortHelpView(m.keys.filterHelp())
	}
	lines = append(lines, m.statusView(), helpBar)
	return strings.Join(fit(lines, w, h), "\n")
}

func (m Model) headerView(w int) string {
	bar := m.st.header
	right := ""
	if m.snap != nil {
		right = "  " + m.snap.Taken.In(m.opts.Location).Format("15:04:05") + " "
	}
	badge := m.badge()
	left := " zpctl top"
	if m.opts.Title != "" {
		left += " · " + m.opts.Title
	}
	// The title gives way first: the verdict and the time always show.
	room := w - ansi.StringWidth(badge) - ansi.StringWidth(right) - 1
	left = ansi.Truncate(left, max(room, 0), "…")
	gap := max(room-ansi.StringWidth(left), 0) + 1
	return bar.Render(left+strings.Repeat(" ", gap)) + m.badgeStyle().Inherit(bar).Render(badge) + bar.Render(right)
}

func (m Model) tabsView() string {
	var parts []string
	for i, name := range tabNames {
		label := fmt.Sprintf("%d %s", i+1, name)
		if tab(i) == m.tab {
			parts = append(parts, m.st.activeTab.Render(label))
		} else {
			parts = append(parts, m.st.tab.Render(label))
		}
	}
	// 80 columns fit every tab with one space between them, not two.
	if bar := " " + strings.Join(parts, "  "); ansi.StringWidth(bar) <= max(m.width, 20) {
		return bar
	}
	return " " + strings.Join(parts, " ")
}

// badge is the cluster's verdict: HEALTHY, or the problem counts.
func (m Model) badge() string {
	if m.snap == nil {
		return "…"
	}
	crit, warn := m.report.Counts()
	switch {
	case crit > 0:
		return fmt.Sprintf("● %d CRIT %d WARN", crit, warn)
	case warn > 0:
		return fmt.Sprintf("● %d WARN", warn)
	}
	return "● HEALTHY"
}

func (m Model) badgeStyle() lipgloss.Style {
	if m.snap == nil {
		return m.st.dim
	}
	crit, warn := m.report.Counts()
	switch {
	case crit > 0:
		return m.st.crit
	case warn > 0:
		return m.st.warn
	}
	return m.st.ok
}

func (m Model) summaryView() string {
	if m.snap == nil {
		return ""
	}
	s, sm := m.snap, m.report.Summary
	leader := "none"
	if s.Meta != nil && s.Meta.Leader != "" {
		leader = s.Meta.Leader
	}
	line := fmt.Sprintf(" epoch %d · leader %s · meta %d/%d · nodes %d/%d up · %s",
		s.Epoch(), leader, sm.MetaReachable, sm.MetaMembers, sm.NodesUp, sm.Nodes, plural(sm.Tables, "table"))
	if n := m.activeMoves(); n > 0 {
		line += " · " + plural(n, "move")
	}
	if sc := schedulerSummary(s.Schedule); sc != "" {
		line += " · " + sc
	}
	return m.st.dim.Render(line)
}

func (m Model) statusView() string {
	if m.filtering || (m.filter[m.tab] != "" && m.status == "" && m.dialog == nil) {
		return m.filterView()
	}
	if m.status != "" {
		if m.statusLevel == levelNone {
			return " " + m.status
		}
		return " " + m.st.of(m.statusLevel).Render(m.status)
	}
	if m.snap == nil {
		return ""
	}
	if len(m.report.Problems) == 0 {
		return " " + m.st.ok.Render("all checks pass")
	}
	p := m.report.Problems[0]
	l := levelOf(p.Severity)
	more := ""
	if n := len(m.report.Problems) - 1; n > 0 {
		more = fmt.Sprintf(" (+%d more)", n)
	}
	return " " + m.st.of(l).Render(p.Message+more)
}

// filterView is the status line while the view is filtered: the filter
// (being typed, with a cursor) and how many rows it leaves.
func (m Model) filterView() string {
	f := "/" + m.filter[m.tab]
	if m.filtering {
		f += "█"
	}
	return " " + m.st.helpKey.Render(f) + m.st.dim.Render(fmt.Sprintf("  %d of %d rows", m.rows(m.tab), m.itemCount(m.tab)))
}

// dialogView is the confirmation dialog: the question, then the plan of
// an expand or shrink (or that it is being made, or why it could not
// be), or the targets a migration can choose from.
func (m Model) dialogView(w, h int) []string {
	a := *m.dialog
	width := max(min(w-8, 60), 10)
	text := strings.Split(lipgloss.NewStyle().Width(width).Render(a.Describe()), "\n")
	// What is left inside the box: its border, and a blank line and the
	// keys at its foot.
	room := func() int { return max(h-2-len(text)-2-1, 1) }
	keys := m.st.helpKey.Render("y") + " yes    " + m.st.helpKey.Render("n") + " no"
	switch {
	case m.planning:
		text = append(text, "", m.st.dim.Render("planning…"))
		keys = m.st.helpKey.Render("n") + " no"
	case m.planErr != nil:
		text = append(text, "")
		text = append(text, strings.Split(m.st.crit.Width(width).Render(m.planErr.Error()), "\n")...)
		keys = m.st.helpKey.Render("n") + " close"
	case m.plan != nil:
		text = append(text, "", m.st.title.Render(fmt.Sprintf("Plan: %s, made at epoch %d", plural(len(m.plan.Steps), "move"), m.plan.Epoch)))
		steps := make([]string, len(m.plan.Steps))
		for i, st := range m.plan.Steps {
			steps[i] = fmt.Sprintf("%3d  %s", i+1, st)
		}
		text = append(text, fit(steps, width, room())...)
	case len(m.targets) > 1:
		text = append(text, "", m.st.dim.Render("Target (↑↓ to choose):"))
		var rows [][]cell
		for _, t := range m.targets {
			mark := "  "
			if t.addr == a.To {
				mark = "› "
			}
			rows = append(rows, []cell{plain(mark + t.addr), plain(plural(t.replicas, "replica")), plain(dash(t.zone))})
		}
		lines := grid(m.st, nil, rows)
		// Keep the chosen one in view.
		chosen := slices.IndexFunc(m.targets, func(t target) bool { return t.addr == a.To })
		if r := room(); r >= 2 && chosen >= r-1 {
			lines = lines[chosen-r+2:]
		}
		text = append(text, fit(lines, width, room())...)
	}
	box := m.st.dialog.Render(strings.Join(text, "\n") + "\n\n" + keys)
	return strings.Split(m.opts.Renderer.Place(w, h, lipgloss.Center, lipgloss.Center, box), "\n")
}

// bodyView renders the current tab into at most h lines.
func (m Model) bodyView(h int) []string {
	switch m.tab {
	case tabNodes:
		return m.nodesView(h)
	case tabTables:
		return m.tablesView(h)
	case tabPartitions:
		return m.partitionsView(h)
	case tabMigrations:
		return m.migrationsView(h)
	case tabEvents:
		return m.eventsView(h)
	case tabSlowlog:
		return m.slowLogView(h)
	case tabLog:
		return m.nodeLogView(h)
	}
	return m.overviewView(h)
}

// listHeaderLines is how many lines view t has above its scrolled rows.
func (m *Model) listHeaderLines(t tab) int {
	switch t {
	case tabPartitions:
		return 2
	case tabNodes, tabTables:
		return 1 + sparkFooter
	case tabMigrations:
		return 1 + len(m.operationLines()) + migrationFooter
	case tabSlowlog:
		if m.slow != nil && m.slow.Err != nil {
			return 2
		}
		return 1
	case tabLog:
		if m.nodeLog != nil && m.nodeLog.Err != nil {
			return 2
		}
		return 1
	}
	return 0
}

// selectRow marks the line of the cursor: a pointer in the margin (which
// every other line leaves blank) and reverse video.
func (m Model) selectRow(lines []string, row int) {
	for i := range lines {
		if i == row {
			lines[i] = m.st.selected.Render("› " + ansi.Strip(lines[i]))
		} else {
			lines[i] = "  " + lines[i]
		}
	}
}

// shortAddr drops the host from node addresses when every node shares it
// (a local cluster): the partition grid then fits 80 columns.
func (m Model) shortAddr() func(string) string {
	host := ""
	if m.snap != nil {
		for i, n := range m.snap.Nodes {
			h, _, err := net.SplitHostPort(n.Addr)
			if err != nil || (i > 0 && h != host) {
				return func(s string) string { return s }
			}
			host = h
		}
	}
	if host == "" {
		return func(s string) string { return s }
	}
	return func(s string) string {
		if h, p, err := net.SplitHostPort(s); err == nil && h == host {
			return ":" + p
		}
		return s
	}
}

// plural is "1 table", "2 tables".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// schedulerSummary is the scheduler's state in a few words for the
// summary line: empty when it has nothing to say (idle, or a meta leader
// without a scheduler).
func schedulerSummary(st *client.ScheduleStatus) string {
	if st == nil {
		return ""
	}
	var parts []string
	if st.Settings.Paused {
		parts = append(parts, "scheduler paused")
	} else if st.MovesInFlight > 0 {
		parts = append(parts, fmt.Sprintf("scheduler: %s", plural(int(st.MovesInFlight), "move")))
	}
	if n := len(st.UnderReplicated); n > 0 {
		parts = append(parts, fmt.Sprintf("%d under-replicated", n))
	}
	return strings.Join(parts, " · ")
}
