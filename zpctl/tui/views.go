package tui

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/bytesize"
	"github.com/zeppelin-kv/zeppelin/zpctl/health"
	"github.com/zeppelin-kv/zeppelin/zpctl/movetally"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// overviewView is everything at a glance, each section cut short so that
// all fit: meta, nodes, tables, problems, recent epoch changes.
func (m Model) overviewView(h int) []string {
	var out []string
	section := func(title string, lines []string, maxLines int) {
		if len(lines) == 0 {
			return
		}
		out = append(out, m.st.title.Render(title))
		out = append(out, indent(fit(lines, 1<<20, maxLines))...)
	}
	section("META", m.metaLines(), 6)
	section("NODES", m.nodeLines(false, nil), 9)
	section("TABLES", m.tableLines(nil), 6)
	if n := m.activeMoves(); n > 0 {
		section(fmt.Sprintf("MOVES (%d in progress)", n), m.moveLines(), 3)
	}
	if len(m.report.Problems) > 0 {
		section(fmt.Sprintf("PROBLEMS (%d)", len(m.report.Problems)), m.problemLines(), 4)
	}
	left := h - len(out) - 1
	if left >= 2 && len(m.events) > 0 {
		section("RECENT EPOCH CHANGES", m.eventLines(), left)
	}
	return out
}

func indent(lines []string) []string {
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return lines
}

func (m Model) metaLines() []string {
	s := m.snap
	if s.Meta == nil {
		return []string{m.st.crit.Render("no meta status: " + errString(s.MetaErr))}
	}
	var rows [][]cell
	for _, mm := range s.Meta.Members {
		if !mm.Reachable {
			rows = append(rows, []cell{plain(mm.Addr), styled("unreachable", m.st.crit), plain("-"), plain("-"), plain("-"), styled(mm.Error, m.st.dim)})
			continue
		}
		state := plain(mm.State)
		if mm.Leader {
			state = styled(mm.State, m.st.ok)
		}
		rows = append(rows, []cell{plain(mm.Addr), state, plain(fmt.Sprint(mm.Term)), plain(fmt.Sprint(mm.AppliedIndex)),
			plain(fmt.Sprint(mm.Epoch)), plain("")})
	}
	return grid(m.st, []string{"ADDR", "STATE", "TERM", "APPLIED", "EPOCH", ""}, rows)
}

// nodeLines is the node table, of the nodes of order (every node when
// nil); full adds the epoch, the node's checks and, when the terminal is
// wide enough, its RESP address, uptime and version (which a rolling
// upgrade changes node by node).
func (m Model) nodeLines(full bool, order []int) []string {
	s := m.snap
	if s.Topology == nil {
		return []string{m.st.crit.Render("no topology: " + errString(s.TopologyErr))}
	}
	header := []string{"ADDR", "STATE", "ZONE/RACK", "REPL", "MAST", "QPS", "DISK"}
	wide := full && m.width >= 100
	if full {
		header = append(header, "EPOCH", "HEALTH")
		if wide {
			header = append(header, "REDIS", "UPTIME", "VERSION")
		}
	}
	if full {
		header = m.sortLabel(tabNodes, header)
	}
	if order == nil {
		order = make([]int, len(s.Nodes))
		for i := range order {
			order[i] = i
		}
	}
	loads := s.Loads("")
	leaving := client.LeavingNodes(s.Moves)
	var rows [][]cell
	for _, i := range order {
		n, l := s.Nodes[i], loads[i]
		state := styled(n.State, m.st.ok)
		if p := n.Starting; p != nil {
			// The meta leader's word (survey.Options.Starting): the
			// node answers nothing while it starts.
			state = styled(fmt.Sprintf("%s (starting %s/%s)", n.State, output.Count(uint64(p.Opened)), output.Count(uint64(p.Total))), m.st.warn)
		} else if n.State != "UP" {
			state = styled(n.State, m.st.crit)
		} else if n.Err != nil {
			state = styled("UP?", m.st.crit)
		} else if n.Cordoned && leaving[n.Addr] {
			state = styled("UP/draining", m.st.warn)
		} else if n.Cordoned {
			state = styled("UP/cordoned", m.st.warn)
		}
		qps, disk := "-", "-"
		if n.Err == nil {
			qps, disk = fmt.Sprintf("%.1f", l.QPS), bytesize.Format(l.UsedBytes)
		}
		row := []cell{plain(n.Addr), state, plain(dash(n.Zone) + "/" + dash(n.Rack)), plain(fmt.Sprint(l.Replicas)),
			plain(fmt.Sprint(l.Masters)), plain(qps), plain(disk)}
		if full {
			epoch, uptime := "-", "-"
			if si := n.Info.Server; si != nil {
				epoch = fmt.Sprint(si.Epoch)
				uptime = (time.Duration(si.UptimeMs) * time.Millisecond).Truncate(time.Second).String()
			}
			check := styled("ok", m.st.ok)
			switch {
			case n.State != "UP":
				check = styled("down", m.st.crit)
			case n.Err != nil:
				check = styled("unreachable", m.st.crit)
			case m.byNode[n.Addr] == levelCrit:
				check = styled("CRIT", m.st.crit)
			case m.byNode[n.Addr] == levelWarn:
				check = styled("warn", m.st.warn)
			}
			row = append(row, plain(epoch), check)
			if wide {
				row = append(row, plain(dash(n.RedisAddr)), plain(uptime), plain(dash(n.RunningVersion())))
			}
		}
		rows = append(rows, row)
	}
	if full {
		trends := make([]string, len(order))
		for r, i := range order {
			trends[r] = sparkline(m.hist.nodes[s.Nodes[i].Addr])
		}
		header, rows = m.withTrend(header, rows, trends)
	}
	return grid(m.st, header, rows)
}

// trendWidth is the cells of the TREND column: the newest surveys'.
const trendWidth = 12

// withTrend adds a TREND column (the newest of each row's sparkline) when
// the terminal has room for it after the selection margin.
func (m Model) withTrend(header []string, rows [][]cell, trends []string) ([]string, [][]cell) {
	w := 0
	for _, l := range grid(m.st, header, rows) {
		w = max(w, ansi.StringWidth(l))
	}
	if 2+w+2+trendWidth > m.width {
		return header, rows
	}
	header = append(slices.Clone(header), "TREND")
	for i := range rows {
		t := []rune(trends[i])
		t = t[max(len(t)-trendWidth, 0):]
		rows[i] = append(rows[i], styled(string(t), m.st.ok))
	}
	return header, rows
}

// sparkFooter is the lines under the Nodes and Tables lists: a blank one
// and the selected row's throughput over the last surveys.
const sparkFooter = 2

// sparkLine is the footer's line: what, its sparkline, the latest rate
// and the highest.
func (m Model) sparkLine(what string, vs []float64) []string {
	line := "  " + what + " ops/s  "
	now, ok := last(vs)
	if !ok {
		return []string{"", line + m.st.dim.Render("(from the next survey on)")}
	}
	top := 0.0
	for _, v := range vs {
		if !math.IsNaN(v) {
			top = max(top, v)
		}
	}
	return []string{"", line + m.st.ok.Render(sparkline(vs)) +
		m.st.dim.Render(fmt.Sprintf("  %.1f now, at most %.1f over %s", now, top, plural(len(vs), "survey")))}
}

// tableLines is the table list, of the tables of order (all when nil).
func (m Model) tableLines(order []int) []string {
	tables := m.snapTables()
	header := []string{"NAME", "PARTITIONS", "REPLICAS", "MIN_SYNC", "QPS", "USED", "PARTITION HEALTH"}
	natural := order == nil
	if natural {
		order = make([]int, len(tables))
		for i := range order {
			order[i] = i
		}
	} else {
		header = m.sortLabel(tabTables, header)
	}
	if len(tables) == 0 {
		return []string{m.st.dim.Render("no tables")}
	}
	var rows [][]cell
	trends := make([]string, len(order))
	for r, i := range order {
		rows = append(rows, m.tableRow(tables[i]))
		trends[r] = sparkline(m.hist.tables[tables[i].Name])
	}
	if !natural {
		header, rows = m.withTrend(header, rows, trends)
	}
	return grid(m.st, header, rows)
}

func (m Model) tableRow(tb client.Table) []cell {
	crit, warn := 0, 0
	for _, p := range tb.Partitions {
		switch m.byPart[partKey{tb.Name, p.ID}] {
		case levelCrit:
			crit++
		case levelWarn:
			warn++
		}
	}
	hc := styled("ok", m.st.ok)
	switch {
	case crit > 0:
		hc = styled(fmt.Sprintf("%d crit %d warn", crit, warn), m.st.crit)
	case warn > 0:
		hc = styled(fmt.Sprintf("%d warn", warn), m.st.warn)
	}
	var qps float64
	var used uint64
	for _, l := range m.snap.Loads(tb.Name) {
		qps += l.QPS
		used += l.UsedBytes
	}
	return []cell{plain(tb.Name), plain(fmt.Sprint(tb.PartitionCount)), plain(fmt.Sprint(tb.Replicas)),
		plain(fmt.Sprint(tb.MinSyncReplicas)), plain(fmt.Sprintf("%.1f", qps)), plain(bytesize.Format(used)), hc}
}

func (m Model) problemLines() []string {
	var rows [][]cell
	for _, p := range m.report.Problems {
		sev := styled("WARN", m.st.warn)
		if p.Severity == health.Critical {
			sev = styled("CRIT", m.st.crit)
		}
		rows = append(rows, []cell{sev, plain(p.Message)})
	}
	return grid(m.st, nil, rows)
}

// eventLines is the epoch log, newest first: a line per change.
func (m Model) eventLines() []string {
	var out []string
	for _, ev := range m.events {
		at := ev.At.In(m.opts.Location).Format("15:04:05")
		head := fmt.Sprintf("epoch %d", ev.To)
		if ev.From != 0 {
			head = fmt.Sprintf("epoch %d → %d", ev.From, ev.To)
		}
		for i, c := range ev.Changes {
			if i == 0 {
				out = append(out, m.st.dim.Render(at)+"  "+head+"  "+c)
			} else {
				out = append(out, strings.Repeat(" ", len(at)+2+len(head)+2)+c)
			}
		}
	}
	return out
}

func (m Model) nodesView(h int) []string {
	lines := m.nodeLines(true, m.order(tabNodes))
	if m.snap.Topology == nil || len(lines) < 2 {
		return lines
	}
	header, rows := lines[0], lines[1:]
	from := min(m.offset[tabNodes], len(rows))
	rows = rows[from:min(from+max(h-1-sparkFooter, 1), len(rows))]
	m.selectRow(rows, m.cursor[tabNodes]-from)
	out := append([]string{"  " + header}, rows...)
	if i, ok := m.item(tabNodes); ok {
		addr := m.snap.Nodes[i].Addr
		out = append(out, m.sparkLine(addr, m.hist.nodes[addr])...)
	}
	return out
}

func (m Model) tablesView(h int) []string {
	lines := m.tableLines(m.order(tabTables))
	if len(lines) < 2 {
		return lines
	}
	header, rows := lines[0], lines[1:]
	from := min(m.offset[tabTables], len(rows))
	rows = rows[from:min(from+max(h-1-sparkFooter, 1), len(rows))]
	m.selectRow(rows, m.cursor[tabTables]-from)
	out := append([]string{"  " + header}, rows...)
	if i, ok := m.item(tabTables); ok {
		name := m.snapTables()[i].Name
		out = append(out, m.sparkLine(name, m.hist.tables[name])...)
	}
	return out
}

func (m Model) partitionsView(h int) []string {
	tables := m.snapTables()
	tb, ok := m.snap.Table(m.table)
	if !ok {
		return []string{m.st.dim.Render("no tables")}
	}
	idx := 0
	for i, t := range tables {
		if t.Name == tb.Name {
			idx = i + 1
		}
	}
	short := m.shortAddr()
	title := fmt.Sprintf("%s  %d partitions × %d replicas, min_sync %d", m.st.title.Render(tb.Name), tb.PartitionCount, tb.Replicas, tb.MinSyncReplicas)
	if len(tables) > 1 {
		title += m.st.dim.Render(fmt.Sprintf("   ← table %d of %d →", idx, len(tables)))
	}
	columns := []string{"P", "STATE", "TERM", "MASTER (TERM,LSN)", "SLAVES (TERM,LSN) [LAG]"}
	// A replica's cell is where it is and how far; then its state, which
	// may be a long error ("error: dial tcp ..."): that is cut so that
	// the row fits the terminal and the other replicas stay in view.
	type replicaCell struct {
		where, state string
		l            level
	}
	var rows [][]cell
	var replicas [][]replicaCell
	fixed := [3]int{len(columns[0]), len(columns[1]), len(columns[2])}
	for _, pi := range m.order(tabPartitions) {
		p := tb.Partitions[pi]
		pl := m.byPart[partKey{tb.Name, p.ID}]
		state := plain(p.State)
		if p.State != "ACTIVE" {
			state = styled(p.State, m.st.warn)
		}
		row := []cell{styled(fmt.Sprint(p.ID), m.st.of(pl)), state, plain(fmt.Sprint(p.Term))}
		for i, c := range row {
			fixed[i] = max(fixed[i], ansi.StringWidth(c.text))
		}
		var rc []replicaCell
		for _, r := range m.snap.Replicas(tb, p) {
			c := replicaCell{where: short(r.Addr)}
			switch {
			case !r.Reported:
				c.where += " (?)"
				if r.NodeState != "" && r.NodeState != "UP" {
					c.state = r.NodeState
				}
			case r.Role == "master":
				c.where += fmt.Sprintf(" (%d,%d)", r.Term, r.LSN)
			default:
				c.where += fmt.Sprintf(" (%d,%d)", r.Term, r.LSN)
				if r.Lag > 0 {
					c.where += fmt.Sprintf(" lag %d", r.Lag)
				}
				if r.State != "streaming" {
					c.state = r.State
				}
			}
			c.l = m.byRepl[replKey{partKey{tb.Name, p.ID}, r.Addr}]
			if !r.Reported && c.l == levelOK {
				c.l = levelWarn
			}
			if r.NodeState != "" && r.NodeState != "UP" {
				c.l = levelCrit
			}
			rc = append(rc, c)
		}
		if p.Master == "" {
			rc = nil
			row = append(row, styled("no master", m.st.crit))
		}
		rows = append(rows, row)
		replicas = append(replicas, rc)
	}
	cells := 0
	for _, rc := range replicas {
		cells = max(cells, len(rc))
	}
	// The room of one replica's cell: the width left of the selection
	// margin and the fixed columns, shared between the replicas.
	budget := 0
	if cells > 0 {
		budget = (max(m.width, 20) - 2 - fixed[0] - fixed[1] - fixed[2] - 2*(3+cells-1)) / cells
	}
	for i, rc := range replicas {
		for _, c := range rc {
			text := c.where
			if c.state != "" {
				room := max(budget-ansi.StringWidth(c.where)-1, minStateWidth)
				text += " " + ansi.Truncate(c.state, room, "…")
			}
			rows[i] = append(rows[i], styled(text, m.st.of(c.l)))
		}
	}
	lines := grid(m.st, m.sortLabel(tabPartitions, columns), rows)
	header, body := lines[0], lines[1:]
	from := min(m.offset[tabPartitions], len(body))
	body = body[from:min(from+max(h-2, 1), len(body))]
	m.selectRow(body, m.cursor[tabPartitions]-from)
	return append([]string{"  " + title, "  " + header}, body...)
}

// minStateWidth is the least of a replica's state a partition row shows:
// enough for "error…" or "fullsync".
const minStateWidth = 8

// migrationFooter is the lines under the moves list that describe the
// selected move: a blank line and three of text.
const migrationFooter = 4

func (m Model) migrationsView(h int) []string {
	if len(m.migrations) == 0 {
		if m.snap.MovesErr != nil {
			return []string{m.st.crit.Render("no move status: " + m.snap.MovesErr.Error())}
		}
		return []string{
			"No moves in progress.",
			"",
			m.st.dim.Render("Start one with f (failover) or m (migrate) in Partitions (4), e (expand)"),
			m.st.dim.Render("or s (shrink) in Nodes (2), or with zpctl migrate, setmaster, expand ..."),
		}
	}
	bar := progress.New(progress.WithSolidFill(string(colBlue)), progress.WithWidth(16), progress.WithoutPercentage(),
		progress.WithColorProfile(m.opts.Renderer.ColorProfile()))
	short := m.shortAddr()
	var rows [][]cell
	for _, mv := range m.movesOrder() {
		rows = append(rows, []cell{plain(fmt.Sprint(mv.ID)), plain(fmt.Sprintf("%s/%d", mv.Table, mv.Partition)),
			plain(string(mv.Kind)), plain(moveArrow(mv, short)),
			styled(string(mv.State), m.stateStyle(mv.State)), plain(bar.ViewAs(moveFraction(mv)))})
	}
	lines := grid(m.st, m.sortLabel(tabMigrations, []string{"ID", "PARTITION", "KIND", "MOVE", "STATE", "PROGRESS"}), rows)
	header, body := lines[0], lines[1:]
	ops := m.operationLines()
	from := min(m.offset[tabMigrations], len(body))
	body = body[from:min(from+max(h-1-len(ops)-migrationFooter, 1), len(body))]
	m.selectRow(body, m.cursor[tabMigrations]-from)
	out := append(indent(ops), "  "+header)
	out = append(out, body...)
	if c, ok := m.item(tabMigrations); ok {
		out = append(out, "")
		for _, l := range m.moveDetail(m.migrations[c]) {
			if l != "" {
				l = "  " + l
			}
			out = append(out, l)
		}
	}
	return out
}

// maxOperationLines is how many operations in progress the migrations
// view sums up above its list.
const maxOperationLines = 2

// operationLines sum up the operations of several moves (expand, shrink,
// replace-node) still in progress: moves ended, bytes moved, overall ETA
// (zpctl/movetally, as the CLI reports them while it follows).
func (m Model) operationLines() []string {
	if m.snap == nil {
		return nil
	}
	var out []string
	for _, op := range movetally.Operations(m.snap.Moves) {
		sum := m.tally.Summarize(op, m.snap.Taken)
		if sum.Moves < 2 || sum.Ended == sum.Moves {
			continue
		}
		line := fmt.Sprintf("%s: %d/%d moves ended", cmp.Or(op[0].Origin, "moves"), sum.Ended, sum.Moves)
		if sum.BytesMoved > 0 {
			line += " · moved " + bytesize.Format(sum.BytesMoved)
		}
		if sum.ETAKnown {
			line += " · ETA " + shortDuration(sum.ETA)
		} else {
			line += " · ETA -"
		}
		out = append(out, m.st.title.Render(line))
	}
	if len(out) > maxOperationLines {
		out = append(out[:maxOperationLines-1], m.st.dim.Render(fmt.Sprintf("… %d more operations", len(out)-maxOperationLines+1)))
	}
	return out
}

// moveDetail is what the footer says of the selected move: what and
// where, how far, and its error.
func (m Model) moveDetail(mv client.Move) []string {
	head := fmt.Sprintf("move %d · %s %s/%d · %s", mv.ID, string(mv.Kind), mv.Table, mv.Partition,
		moveArrow(mv, func(a string) string { return a }))
	if o := mv.Origin; o != "" {
		head += " · " + o
	}
	var parts []string
	third := ""
	created, updated := time.UnixMilli(mv.CreatedMs), time.UnixMilli(mv.UpdatedMs)
	switch {
	case mv.State.Ended():
		p := string(mv.State)
		if mv.CreatedMs > 0 && mv.UpdatedMs >= mv.CreatedMs {
			p += " after " + shortDuration(updated.Sub(created))
		}
		parts = append(parts, p)
	default:
		// How long in this state, and since queued (the meta leader's
		// clock against ours: never below zero).
		p := string(mv.State)
		if mv.UpdatedMs > 0 {
			p += " for " + shortDuration(m.snap.Taken.Sub(updated))
		}
		if mv.CreatedMs > 0 && mv.State != client.MovePending {
			p += ", queued " + shortDuration(m.snap.Taken.Sub(created)) + " ago"
		}
		parts = append(parts, p)
		if mv.State != client.MovePending && mv.State != client.MoveRemoving {
			parts = append(parts, fmt.Sprintf("%d records behind", mv.RecordsBehind))
		}
		if t := mv.BytesTotal; t > 0 {
			third = fmt.Sprintf("full sync: copied %s of %s (%d%%)", bytesize.Format(mv.BytesCopied), bytesize.Format(t), min(mv.BytesCopied*100/t, 100))
			if r := mv.BytesPerSec; r > 0 {
				third += fmt.Sprintf(" at %s/s", bytesize.Format(uint64(r)))
			}
			if e := mv.EtaMs; e > 0 {
				third += ", ETA " + shortDuration(time.Duration(e)*time.Millisecond)
			}
		}
	}
	if st := mv.StuckMs; st > 0 {
		parts = append(parts, fmt.Sprintf("STUCK %v", time.Duration(st)*time.Millisecond))
	}
	switch {
	case mv.Error != "":
		third = m.st.crit.Render("error: " + mv.Error)
	case m.snap.MovesErr != nil:
		third = m.st.crit.Render("move status: " + m.snap.MovesErr.Error())
	}
	return []string{head, strings.Join(parts, " · "), third}
}

func (m Model) stateStyle(s client.MoveState) lipgloss.Style {
	switch s {
	case client.MoveDone:
		return m.st.ok
	case client.MoveFailed, client.MoveCancelled:
		return m.st.crit
	case client.MoveSlowdown, client.MoveStuck:
		return m.st.warn
	}
	return lipgloss.Style{}
}

// moveFraction is how full a move's bar is: the bytes of the full sync
// while it copies (up to 70%), else a share for the step it is at.
func moveFraction(mv client.Move) float64 {
	switch mv.State {
	case client.MoveCatchingUp:
		if t := mv.BytesTotal; t > 0 {
			return 0.7 * float64(min(mv.BytesCopied, t)) / float64(t)
		}
		return 0.5
	case client.MoveSlowdown:
		return 0.75
	case client.MoveStuck:
		return 0.85
	case client.MoveRemoving:
		return 0.95
	case client.MoveDone:
		return 1
	}
	return 0
}

// shortDuration is d for people: 0s, 340ms, 2.4s, 1m30s.
func shortDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// moveLines is the overview's short list of the moves in progress.
func (m Model) moveLines() []string {
	short := m.shortAddr()
	var rows [][]cell
	for _, mv := range m.migrations {
		if mv.State.Ended() {
			continue
		}
		rows = append(rows, []cell{plain(fmt.Sprint(mv.ID)), plain(string(mv.Kind)),
			plain(fmt.Sprintf("%s/%d", mv.Table, mv.Partition)), plain(moveArrow(mv, short)),
			styled(string(mv.State), m.stateStyle(mv.State))})
	}
	return grid(m.st, nil, rows)
}

// activeMoves counts the moves in progress.
func (m Model) activeMoves() int {
	n := 0
	for _, mv := range m.migrations {
		if !mv.State.Ended() {
			n++
		}
	}
	return n
}

func (m Model) eventsView(h int) []string {
	all := m.eventLines()
	if len(all) == 0 {
		return []string{m.st.dim.Render("no epoch change seen yet")}
	}
	var lines []string
	for _, i := range m.order(tabEvents) {
		lines = append(lines, all[i])
	}
	from := min(m.offset[tabEvents], len(lines))
	lines = lines[from:min(from+h, len(lines))]
	m.selectRow(lines, m.cursor[tabEvents]-from)
	return lines
}

func errString(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}
