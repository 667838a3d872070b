package tui

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/health"
	"github.com/zeppelin-kv/zeppelin/zpctl/movetally"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

// tab is one view of the TUI.
type tab int

const (
	tabOverview tab = iota
	tabNodes
	tabTables
	tabPartitions
	tabMigrations
	tabEvents
	tabSlowlog
	tabLog
	numTabs
)

var tabNames = [numTabs]string{"Overview", "Nodes", "Tables", "Partitions", "Migrations", "Events", "Slowlog", "Log"}

// Options configures New.
type Options struct {
	// Title names the cluster in the header, e.g. the meta addresses.
	Title string
	// Renderer renders the styles; default lipgloss.DefaultRenderer().
	Renderer *lipgloss.Renderer
	// Runner carries out confirmed actions; nil fails every action with
	// ErrNoRunner.
	Runner Runner
	// Planner makes the plan an expand or shrink dialog shows; nil shows
	// none.
	Planner Planner
	// SlowLog reads the nodes' slow logs for the Slowlog view, at each
	// survey while it is shown; nil shows none.
	SlowLog SlowLogReader
	// NodeLog reads the log lines of the node selected in the Nodes view
	// for the Log view, at each survey while it is shown; nil shows none.
	NodeLog NodeLogReader
	// ActionTimeout bounds one action; default 30s.
	ActionTimeout time.Duration
	// Refresh asks the poller for a survey now ('r'); may be nil.
	Refresh func()
	// Health tunes the checks that colour the views.
	Health health.Options
	// Location formats times; default time.Local.
	Location *time.Location
	// StatusTTL is how long a message stays in the status line (it is
	// cleared at the first survey after); default 10s.
	StatusTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// ErrNoRunner is what an action reports when the model has no Runner.
var ErrNoRunner = errors.New("no runner for actions")

// Model is the TUI's state. Its zero value is not usable: call New.
type Model struct {
	opts Options
	st   styles
	keys keyMap
	help help.Model

	width, height int

	snap   *survey.Snapshot
	report health.Report
	// migrations are the moves the panel lists: those in progress, then
	// the last few finished.
	migrations []client.Move
	events     []Event // newest first
	// byPart and byNode index the report's problems.
	byPart map[partKey]level
	byRepl map[replKey]level
	byNode map[string]level

	tab    tab
	table  string // the table the partitions view shows
	cursor [numTabs]int
	offset [numTabs]int

	dialog *Action
	// plan is the dialog's plan (expand, shrink) once made; planning
	// says it is being made, under the number planSeq, which a plan
	// made for a dialog since closed does not carry.
	plan     *Plan
	planning bool
	planSeq  int
	// planErr is why the plan could not be made: the dialog says it, and
	// only closes.
	planErr error
	// targets are the nodes the migrate dialog offers, the chosen one
	// being dialog.To.
	targets []target
	// filter and sorting are each list view's ('/', 'o'); filtering says
	// the filter is being typed.
	filter    [numTabs]string
	sorting   [numTabs]sorting
	filtering bool
	status    string
	// statusLevel colours the status line.
	statusLevel level
	// statusAt is when the status was set; statusBusy keeps it while an
	// action runs.
	statusAt   time.Time
	statusBusy bool
	// follow is a move an action queued: once a survey lists it, the
	// migrations cursor goes to it.
	follow uint64
	// tally remembers the moves' full syncs, for the bytes moved of the
	// operations in progress. A pointer: the model is copied on Update.
	tally *movetally.Tally
	// hist is the throughput of each node and table, for the sparklines.
	hist *throughput
	// slow is the last reading of the slow logs; slowReading says one
	// is under way.
	slow        *SlowLog
	slowReading bool
	// nodeLog is the last reading of a node's log; logReading says one is
	// under way.
	nodeLog    *NodeLog
	logReading bool
}

type partKey struct {
	table string
	id    uint32
}

type replKey struct {
	partKey
	addr string
}

// New returns a model that shows nothing until the first SnapshotMsg.
func New(opts Options) Model {
	if opts.Renderer == nil {
		opts.Renderer = lipgloss.DefaultRenderer()
	}
	if opts.ActionTimeout <= 0 {
		opts.ActionTimeout = 30 * time.Second
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.StatusTTL <= 0 {
		opts.StatusTTL = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st := newStyles(opts.Renderer)
	h := help.New()
	h.ShortSeparator = " • "
	h.Styles.ShortKey, h.Styles.ShortDesc, h.Styles.ShortSeparator = st.helpKey, st.helpDesc, st.helpSep
	h.Styles.FullKey, h.Styles.FullDesc, h.Styles.FullSeparator = st.helpKey, st.helpDesc, st.helpSep
	h.Styles.Ellipsis = st.helpSep
	return Model{opts: opts, st: st, keys: newKeyMap(), help: h, width: 80, height: 24, tally: &movetally.Tally{}, hist: newThroughput()}
}

// Init implements tea.Model. The model starts nothing: data arrives from
// the poller.
func (m Model) Init() tea.Cmd { return nil }

// Update implements tea.Model.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		m.clamp()
	case SnapshotMsg:
		m.apply(msg)
		if m.status != "" && !m.statusBusy && m.opts.Now().Sub(m.statusAt) >= m.opts.StatusTTL {
			m.status, m.statusLevel = "", levelNone
		}
		return m, m.readViews()
	case nodeLogMsg:
		m.tookNodeLog(NodeLog(msg))
	case slowLogMsg:
		sl := SlowLog(msg)
		m.slow, m.slowReading = &sl, false
		m.clamp()
	case actionDoneMsg:
		if msg.err != nil {
			// Runner errors name the action already.
			m.setStatus(msg.err.Error(), levelCrit)
		} else {
			m.setStatus(cmp.Or(msg.out.Status, msg.action.Kind+": started"), levelOK)
			if len(msg.out.Moves) > 0 {
				m.follow = msg.out.Moves[0]
			}
		}
		// Show the moves it queued (or their absence) at once.
		if m.opts.Refresh != nil {
			m.opts.Refresh()
		}
	case planDoneMsg:
		m.planned(msg)
	case tea.KeyMsg:
		return m.keyBurst(msg)
	}
	return m, nil
}

// planned takes in the plan made for the dialog.
func (m *Model) planned(msg planDoneMsg) {
	if m.dialog == nil || msg.seq != m.planSeq {
		return // the dialog was closed meanwhile
	}
	m.planning = false
	switch {
	case msg.err != nil:
		m.planErr = msg.err
	case len(msg.plan.Steps) == 0:
		m.setStatus(m.dialog.Kind+": nothing to do, the load is even", levelOK)
		m.dialog = nil
	default:
		// The moves are queued at the plan's epoch: what was shown runs,
		// or nothing does (STALE_EPOCH).
		m.plan = &msg.plan
		m.dialog.Epoch = msg.plan.Epoch
	}
}

// keyBurst takes a key message. Keys typed in one burst (tmux send-keys,
// a fast typist over ssh) reach bubbletea in one read, which it delivers
// as one message of several runes ("jjj"): each rune is taken as a key
// of its own, in order, so that "jjjs" moves three rows and then shrinks.
func (m Model) keyBurst(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	if msg.Type != tea.KeyRunes || len(msg.Runes) < 2 || msg.Paste {
		return m.key(msg)
	}
	var cmds []tea.Cmd
	for _, r := range msg.Runes {
		next, cmd := m.key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt})
		m = next.(Model)
		if cmd != nil {
			cmds = append(cmds, cmd)
		}
	}
	switch len(cmds) {
	case 0:
		return m, nil
	case 1:
		return m, cmds[0]
	}
	return m, tea.Sequence(cmds...)
}

// apply takes in a new survey: it logs an epoch change, judges the
// cluster, and keeps the selection where it was.
func (m *Model) apply(msg SnapshotMsg) {
	s := msg.Snapshot
	if s == nil {
		return
	}
	prev := m.snap
	if s.Topology != nil {
		switch {
		case prev == nil || prev.Topology == nil:
			if len(m.events) == 0 {
				m.events = []Event{{At: s.Taken, To: s.Topology.Epoch, Changes: []string{"first survey"}}}
			}
		case prev.Topology.Epoch != s.Topology.Epoch:
			ev := Event{At: s.Taken, From: prev.Topology.Epoch, To: s.Topology.Epoch, Changes: diffTopology(prev.Topology, s.Topology)}
			m.events = append([]Event{ev}, m.events...)
			if len(m.events) > maxEvents {
				m.events = m.events[:maxEvents]
			}
		}
	}
	m.snap = s
	// While the operator watches a move in progress, the cursor stays on
	// it wherever it is now listed (once finished, below those in
	// progress); otherwise it stays on its row, so that new moves show
	// under it.
	var selected uint64
	if c, ok := m.item(tabMigrations); ok && m.tab == tabMigrations && !m.migrations[c].State.Ended() {
		selected = m.migrations[c].ID
	}
	m.migrations = panelMoves(s)
	m.tally.Observe(s.Moves)
	m.hist.observe(s)
	if i := slices.IndexFunc(m.migrations, func(mv client.Move) bool { return mv.ID == selected }); i >= 0 && m.rowOf(tabMigrations, i) >= 0 {
		m.cursor[tabMigrations] = m.rowOf(tabMigrations, i)
	}
	// A move just queued here takes the cursor, so that view 5 shows it.
	if i := slices.IndexFunc(m.migrations, func(mv client.Move) bool { return mv.ID == m.follow }); m.follow != 0 && i >= 0 {
		if r := m.rowOf(tabMigrations, i); r >= 0 {
			m.cursor[tabMigrations] = r
		}
		m.follow = 0
	}
	m.report = health.Check(s, m.opts.Health)
	m.byPart, m.byRepl, m.byNode = map[partKey]level{}, map[replKey]level{}, map[string]level{}
	for _, p := range m.report.Problems {
		l := levelOf(p.Severity)
		if p.Table != "" && p.Partition != nil {
			pk := partKey{p.Table, *p.Partition}
			m.byPart[pk] = max(m.byPart[pk], l)
			if p.Node != "" {
				rk := replKey{pk, p.Node}
				m.byRepl[rk] = max(m.byRepl[rk], l)
			}
		} else if p.Node != "" {
			m.byNode[p.Node] = max(m.byNode[p.Node], l)
		}
	}
	tables := s.Tables()
	if len(tables) > 0 && !slices.ContainsFunc(tables, func(t client.Table) bool { return t.Name == m.table }) {
		m.table = tables[0].Name
	}
	m.clamp()
}

// rows is how many selectable rows view t shows.
func (m *Model) rows(t tab) int { return len(m.order(t)) }

// bodyHeight is the lines between the tab bar and the status line.
func (m *Model) bodyHeight() int { return max(m.height-5, 1) }

// clamp keeps every cursor on a row and in the visible window.
func (m *Model) clamp() {
	for t := range numTabs {
		n := m.rows(t)
		m.cursor[t] = max(min(m.cursor[t], n-1), 0)
		visible := max(m.bodyHeight()-m.listHeaderLines(t), 1)
		if m.cursor[t] < m.offset[t] {
			m.offset[t] = m.cursor[t]
		}
		if m.cursor[t] >= m.offset[t]+visible {
			m.offset[t] = m.cursor[t] - visible + 1
		}
		m.offset[t] = max(min(m.offset[t], n-visible), 0)
	}
}

func (m Model) key(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.keys
	if m.dialog != nil {
		switch {
		case (key.Matches(msg, k.Confirm) || msg.Type == tea.KeyEnter) && (m.planning || m.planErr != nil):
			// Nothing to confirm before the plan is shown.
		case key.Matches(msg, k.Up), key.Matches(msg, k.Down):
			m.chooseTarget(key.Matches(msg, k.Down))
		case key.Matches(msg, k.Confirm), msg.Type == tea.KeyEnter:
			a := *m.dialog
			m.closeDialog()
			m.setStatus(fmt.Sprintf("%s: running…", a.Kind), levelNone)
			m.statusBusy = true
			return m, m.run(a)
		case key.Matches(msg, k.Decline), key.Matches(msg, k.Quit) && msg.String() != "ctrl+c":
			m.closeDialog()
			m.setStatus("cancelled", levelNone)
		case msg.String() == "ctrl+c":
			return m, tea.Quit
		}
		return m, nil
	}
	if m.filtering {
		if msg.Type == tea.KeyCtrlC {
			return m, tea.Quit
		}
		m.editFilter(msg)
		m.clamp()
		return m, nil
	}
	before := m.tab
	switch {
	case msg.Type == tea.KeyEsc && m.help.ShowAll:
		m.help.ShowAll = false
	case msg.Type == tea.KeyEsc && m.filter[m.tab] != "":
		m.filter[m.tab] = ""
	case key.Matches(msg, k.Filter) && m.listView():
		m.filtering, m.help.ShowAll = true, false
	case key.Matches(msg, k.Sort) && m.listView():
		m.cycleSort(m.tab)
	case key.Matches(msg, k.Reverse) && m.listView():
		m.sorting[m.tab].reverse = !m.sorting[m.tab].reverse
	case key.Matches(msg, k.Quit):
		return m, tea.Quit
	case key.Matches(msg, k.NextTab):
		m.tab = (m.tab + 1) % numTabs
	case key.Matches(msg, k.PrevTab):
		m.tab = (m.tab + numTabs - 1) % numTabs
	case key.Matches(msg, k.Tabs):
		m.tab = tab(msg.Runes[0] - '1')
	case key.Matches(msg, k.Up):
		m.cursor[m.tab]--
	case key.Matches(msg, k.Down):
		m.cursor[m.tab]++
	case key.Matches(msg, k.PageUp):
		m.cursor[m.tab] -= m.bodyHeight() - 2
	case key.Matches(msg, k.PageDown):
		m.cursor[m.tab] += m.bodyHeight() - 2
	case key.Matches(msg, k.PrevTable), key.Matches(msg, k.NextTable):
		m.switchTable(key.Matches(msg, k.NextTable))
	case key.Matches(msg, k.Log) && m.tab == tabNodes:
		m.tab = tabLog
	case key.Matches(msg, k.Enter) && m.tab == tabTables:
		if i, ok := m.item(tabTables); ok {
			m.table = m.snapTables()[i].Name
			m.tab, m.cursor[tabPartitions], m.offset[tabPartitions] = tabPartitions, 0, 0
		}
	case key.Matches(msg, k.Failover), key.Matches(msg, k.Migrate), key.Matches(msg, k.Expand),
		key.Matches(msg, k.Shrink), key.Matches(msg, k.Cordon), key.Matches(msg, k.Cancel):
		cmd := m.propose(msg)
		m.clamp()
		return m, cmd
	case key.Matches(msg, k.Refresh):
		if m.opts.Refresh != nil {
			m.opts.Refresh()
		}
		m.setStatus("refreshing…", levelNone)
	case key.Matches(msg, k.Help):
		m.help.ShowAll = !m.help.ShowAll
	}
	m.clamp()
	if m.tab != before {
		return m, m.readViews()
	}
	return m, nil
}

// readViews returns the command reading what the current view shows
// beyond the survey (a slow log, a node's log), if any.
func (m *Model) readViews() tea.Cmd {
	return tea.Batch(m.readSlowLog(), m.readNodeLog())
}

// listView says the current view is a list, which '/' filters and 'o'
// sorts.
func (m *Model) listView() bool { return m.tab != tabOverview }

// editFilter takes a key typed into the filter: text, backspace, enter
// (done), esc (clears it); the arrows still move the cursor.
func (m *Model) editFilter(msg tea.KeyMsg) {
	f := &m.filter[m.tab]
	switch msg.Type {
	case tea.KeyRunes, tea.KeySpace:
		*f += string(msg.Runes)
	case tea.KeyBackspace:
		if r := []rune(*f); len(r) > 0 {
			*f = string(r[:len(r)-1])
		}
	case tea.KeyEnter:
		m.filtering = false
	case tea.KeyEsc:
		*f, m.filtering = "", false
	case tea.KeyUp:
		m.cursor[m.tab]--
	case tea.KeyDown:
		m.cursor[m.tab]++
	}
}

// setStatus shows text in the status line until StatusTTL has passed.
func (m *Model) setStatus(text string, l level) {
	m.status, m.statusLevel, m.statusAt, m.statusBusy = text, l, m.opts.Now(), false
}

func (m *Model) snapTables() []client.Table {
	if m.snap == nil {
		return nil
	}
	return m.snap.Tables()
}

func (m *Model) switchTable(next bool) {
	tables := m.snapTables()
	if len(tables) == 0 {
		return
	}
	i := slices.IndexFunc(tables, func(t client.Table) bool { return t.Name == m.table })
	if next {
		i = (i + 1) % len(tables)
	} else {
		i = (i - 1 + len(tables)) % len(tables)
	}
	m.table = tables[i].Name
	m.cursor[tabPartitions], m.offset[tabPartitions] = 0, 0
}

// run starts a confirmed action.
func (m Model) run(a Action) tea.Cmd {
	runner, timeout := m.opts.Runner, m.opts.ActionTimeout
	return func() tea.Msg {
		if runner == nil {
			return actionDoneMsg{action: a, err: fmt.Errorf("%s: %w", a.Kind, ErrNoRunner)}
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		out, err := runner(ctx, a)
		return actionDoneMsg{action: a, out: out, err: err}
	}
}

// Finished moves stay in the panel for a while, so that the outcome of
// one started here shows; at most maxFinished of them.
const (
	keepFinished = 10 * time.Minute
	maxFinished  = 5
)

// panelMoves are the moves the migrations panel lists: those in progress
// by id, then the latest finished ones, newest first.
func panelMoves(s *survey.Snapshot) []client.Move {
	var active, finished []client.Move
	for _, mv := range s.Moves {
		switch {
		case !mv.State.Ended():
			active = append(active, mv)
		case s.Taken.Sub(time.UnixMilli(mv.UpdatedMs)) <= keepFinished:
			finished = append(finished, mv)
		}
	}
	slices.SortFunc(active, func(a, b client.Move) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(finished, func(a, b client.Move) int {
		return cmp.Or(cmp.Compare(b.UpdatedMs, a.UpdatedMs), cmp.Compare(b.ID, a.ID))
	})
	return append(active, finished[:min(len(finished), maxFinished)]...)
}

// epoch is the epoch of the topology on screen, which actions carry.
func (m *Model) epoch() uint64 {
	if m.snap == nil || m.snap.Topology == nil {
		return 0
	}
	return m.snap.Topology.Epoch
}

// closeDialog closes the dialog and forgets its plan and targets.
func (m *Model) closeDialog() {
	m.dialog, m.plan, m.planning, m.planErr, m.targets = nil, nil, false, nil, nil
}

// chooseTarget moves the migrate dialog's choice of target down or up.
func (m *Model) chooseTarget(down bool) {
	if len(m.targets) == 0 {
		return
	}
	i := slices.IndexFunc(m.targets, func(t target) bool { return t.addr == m.dialog.To })
	if down {
		i = min(i+1, len(m.targets)-1)
	} else {
		i = max(i-1, 0)
	}
	m.dialog.To = m.targets[i].addr
}

// propose opens the confirmation dialog for the action of key msg, filled
// in from the selection, and returns the command making its plan; or says
// in the status line why there is none.
func (m *Model) propose(msg tea.KeyMsg) tea.Cmd {
	k := m.keys
	var (
		a   Action
		why string
	)
	switch {
	case key.Matches(msg, k.Failover):
		a, why = m.proposeFailover()
	case key.Matches(msg, k.Migrate):
		a, why = m.proposeMigrate()
		if why == "" {
			m.targets = m.migrateTargets(a)
		}
	case key.Matches(msg, k.Expand):
		a, why = m.proposeExpand()
	case key.Matches(msg, k.Shrink):
		a, why = m.proposeShrink()
	case key.Matches(msg, k.Cordon):
		a, why = m.proposeCordon()
	case key.Matches(msg, k.Cancel):
		a, why = m.proposeCancel()
	}
	if why != "" {
		m.setStatus(why, levelWarn)
		return nil
	}
	if a.Kind != "cancel" {
		a.Epoch = m.epoch()
	}
	m.dialog = &a
	if m.opts.Planner == nil || (a.Kind != "expand" && a.Kind != "shrink") {
		return nil
	}
	m.planning = true
	m.planSeq++
	planner, timeout, seq := m.opts.Planner, m.opts.ActionTimeout, m.planSeq
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		p, err := planner(ctx, a)
		return planDoneMsg{seq: seq, plan: p, err: err}
	}
}

// selectedPartition is the partition under the cursor of the partitions
// view.
func (m *Model) selectedPartition() (client.Table, client.Partition, bool) {
	if m.snap == nil || m.tab != tabPartitions {
		return client.Table{}, client.Partition{}, false
	}
	tb, ok := m.snap.Table(m.table)
	i, sel := m.item(tabPartitions)
	if !ok || !sel {
		return client.Table{}, client.Partition{}, false
	}
	return tb, tb.Partitions[i], true
}

func (m *Model) proposeFailover() (Action, string) {
	tb, p, ok := m.selectedPartition()
	if !ok {
		return Action{}, "failover: select a partition in the Partitions view (4)"
	}
	// The UP slave with the highest (term, lsn): the one a failover loses
	// least with.
	var best *survey.Replica
	for _, r := range m.snap.Replicas(tb, p) {
		if r.Role != "slave" || r.NodeState != "UP" {
			continue
		}
		if best == nil || !best.Reported || (r.Reported && cmp.Or(cmp.Compare(r.Term, best.Term), cmp.Compare(r.LSN, best.LSN)) > 0) {
			best = &r
		}
	}
	if best == nil {
		return Action{}, fmt.Sprintf("failover: %s/%d has no UP slave", tb.Name, p.ID)
	}
	return Action{Kind: "setmaster", Table: tb.Name, Partition: p.ID, From: p.Master, To: best.Addr}, ""
}

func (m *Model) proposeMigrate() (Action, string) {
	tb, p, ok := m.selectedPartition()
	if !ok {
		return Action{}, "migrate: select a partition in the Partitions view (4)"
	}
	loads := m.snap.Loads("")
	load := map[string]int{}
	for _, l := range loads {
		load[l.Addr] = l.Replicas
	}
	holders := append([]string{p.Master}, p.Slaves...)
	// Move the replica on the busiest holder to the idlest UP node that
	// does not hold the partition.
	from := ""
	for _, h := range holders {
		if h != "" && (from == "" || load[h] > load[from]) {
			from = h
		}
	}
	to := ""
	for _, n := range m.snap.Nodes {
		if n.State != "UP" || slices.Contains(holders, n.Addr) {
			continue
		}
		if to == "" || load[n.Addr] < load[to] {
			to = n.Addr
		}
	}
	if from == "" || to == "" {
		return Action{}, fmt.Sprintf("migrate: no UP node without a replica of %s/%d", tb.Name, p.ID)
	}
	return Action{Kind: "migrate", Table: tb.Name, Partition: p.ID, From: from, To: to}, ""
}

// target is a node the migrate dialog offers.
type target struct {
	addr     string
	replicas int
	zone     string
}

// migrateTargets are the UP nodes that do not hold a's partition, idlest
// first: the first is what proposeMigrate picked.
func (m *Model) migrateTargets(a Action) []target {
	tb, ok := m.snap.Table(a.Table)
	if !ok || int(a.Partition) >= len(tb.Partitions) {
		return nil
	}
	p := tb.Partitions[a.Partition]
	holders := append([]string{p.Master}, p.Slaves...)
	var out []target
	for i, l := range m.snap.Loads("") {
		n := m.snap.Nodes[i]
		if n.State != "UP" || slices.Contains(holders, n.Addr) {
			continue
		}
		out = append(out, target{addr: n.Addr, replicas: l.Replicas, zone: n.Zone})
	}
	slices.SortStableFunc(out, func(x, y target) int {
		return cmp.Or(cmp.Compare(x.replicas, y.replicas), boolFirst(x.addr == a.To, y.addr == a.To))
	})
	return out
}

// boolFirst orders true before false.
func boolFirst(x, y bool) int {
	switch {
	case x == y:
		return 0
	case x:
		return -1
	}
	return 1
}

func (m *Model) proposeExpand() (Action, string) {
	if m.snap == nil || m.snap.Topology == nil {
		return Action{}, "expand: no topology yet"
	}
	// Expand spreads the load over every UP node; the dialog names the
	// empty ones, which take the most.
	var empty []string
	for i, l := range m.snap.Loads("") {
		if m.snap.Nodes[i].State == "UP" && l.Replicas == 0 {
			empty = append(empty, l.Addr)
		}
	}
	return Action{Kind: "expand", Nodes: empty}, ""
}

// selectedNode is the node under the cursor of the Nodes view, or why
// action op has none.
func (m *Model) selectedNode(op string) (client.Node, string) {
	i, ok := m.item(tabNodes)
	if m.snap == nil || m.tab != tabNodes || !ok {
		return client.Node{}, op + ": select a node in the Nodes view (2)"
	}
	return m.snap.Nodes[i].Node, ""
}

func (m *Model) proposeShrink() (Action, string) {
	n, why := m.selectedNode("shrink")
	return Action{Kind: "shrink", Nodes: []string{n.Addr}}, why
}

// proposeCordon cordons the selected node, or uncordons it if it is.
func (m *Model) proposeCordon() (Action, string) {
	n, why := m.selectedNode("cordon")
	kind := "cordon"
	if n.Cordoned {
		kind = "uncordon"
	}
	return Action{Kind: kind, Nodes: []string{n.Addr}}, why
}

func (m *Model) proposeCancel() (Action, string) {
	i, ok := m.item(tabMigrations)
	if m.tab != tabMigrations || !ok {
		return Action{}, "cancel: no move selected in the Migrations view (5)"
	}
	mv := m.migrations[i]
	switch {
	case mv.State.Ended():
		return Action{}, fmt.Sprintf("cancel: move %d already ended %s", mv.ID, string(mv.State))
	case mv.State == client.MoveRemoving:
		return Action{}, fmt.Sprintf("cancel: move %d is past its handover and will finish", mv.ID)
	}
	return Action{Kind: "cancel", MoveID: mv.ID, Move: string(mv.Kind), Table: mv.Table, Partition: mv.Partition,
		From: mv.From, To: mv.To}, ""
}
