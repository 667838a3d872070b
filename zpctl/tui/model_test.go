package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey/surveytest"
)

// Golden files are in testdata/; `go test ./zpctl/tui -update` rewrites
// them after a deliberate change of the views (review the diff).

func newTestModel(profile termenv.Profile, runner Runner) Model {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(profile)
	return New(Options{Title: "test-cluster", Renderer: r, Location: time.UTC, Runner: runner})
}

// keys turns "4", "j", "enter", "tab" ... into key messages.
func keys(names ...string) []tea.Msg {
	var out []tea.Msg
	for _, n := range names {
		switch n {
		case "enter":
			out = append(out, tea.KeyMsg{Type: tea.KeyEnter})
		case "tab":
			out = append(out, tea.KeyMsg{Type: tea.KeyTab})
		case "esc":
			out = append(out, tea.KeyMsg{Type: tea.KeyEsc})
		case "down":
			out = append(out, tea.KeyMsg{Type: tea.KeyDown})
		case "pgdown":
			out = append(out, tea.KeyMsg{Type: tea.KeyPgDown})
		default:
			out = append(out, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(n)})
		}
	}
	return out
}

// drive sends msgs to m in order, running the commands they return (as
// the program would) except quitting.
func drive(t *testing.T, m Model, msgs ...tea.Msg) Model {
	t.Helper()
	for len(msgs) > 0 {
		msg := msgs[0]
		msgs = msgs[1:]
		next, cmd := m.Update(msg)
		m = next.(Model)
		if cmd != nil {
			if out := cmd(); out != nil {
				if _, quit := out.(tea.QuitMsg); !quit {
					msgs = append([]tea.Msg{out}, msgs...)
				}
			}
		}
	}
	return m
}

func size(w, h int) tea.Msg { return tea.WindowSizeMsg{Width: w, Height: h} }

func healthy() tea.Msg { return SnapshotMsg{Snapshot: surveytest.Healthy()} }

// withEmptyNode is Healthy with a fourth node, UP and holding nothing.
func withEmptyNode() tea.Msg {
	s := surveytest.Healthy()
	n := client.Node{Addr: "127.0.0.1:9234", State: "UP", Zone: "zone-d", Rack: "r4", Weight: 100}
	s.Topology.Nodes = append(s.Topology.Nodes, n)
	s.Nodes = append(s.Nodes, survey.NodeReport{Node: n, Info: client.Info{}})
	return SnapshotMsg{Snapshot: s}
}
func degraded() tea.Msg { return SnapshotMsg{Snapshot: surveytest.Degraded()} }

// withCordonedNode is Healthy with its second node cordoned.
func withCordonedNode() tea.Msg {
	s := surveytest.Healthy()
	s.Nodes[1].Cordoned = true
	return SnapshotMsg{Snapshot: s}
}

// withStartingNode is Healthy with its second node DOWN and starting: it
// answers no INFO, the meta leader has its progress.
func withStartingNode() tea.Msg {
	s := surveytest.Healthy()
	s.Nodes[1].State = "DOWN"
	s.Nodes[1].Starting = &client.StartupProgress{Opened: 4512, Total: 10000, ElapsedMs: 5000}
	s.Nodes[1].Err = errors.New("dial tcp: connection refused")
	return SnapshotMsg{Snapshot: s}
}

// checkFrame asserts the view fills the terminal exactly, no line wider.
func checkFrame(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) != h {
		t.Errorf("view has %d lines, terminal %d", len(lines), h)
	}
	for i, l := range lines {
		if lw := ansi.StringWidth(l); lw > w {
			t.Errorf("line %d is %d cells wide, terminal %d: %q", i, lw, w, l)
		}
	}
}

func TestViews(t *testing.T) {
	// Every action fails, as a stale epoch would.
	stale := func(_ context.Context, a Action) (Outcome, error) {
		return Outcome{}, fmt.Errorf("%s: STALE_EPOCH: expected epoch %d, current is 9", a.Kind, a.Epoch)
	}
	migrating := SnapshotMsg{Snapshot: surveytest.Migrating()}
	tests := []struct {
		name string
		w, h int
		msgs []tea.Msg
	}{
		{"waiting", 80, 24, nil},
		{"overview_healthy", 80, 24, []tea.Msg{healthy()}},
		{"overview_degraded", 80, 24, []tea.Msg{healthy(), degraded()}},
		{"overview_small", 60, 15, []tea.Msg{healthy(), degraded()}},
		{"overview_large", 120, 40, []tea.Msg{healthy(), degraded()}},
		{"nodes", 80, 24, append([]tea.Msg{healthy(), degraded()}, keys("2", "j")...)},
		{"nodes_cordoned", 80, 24, append([]tea.Msg{withCordonedNode()}, keys("2")...)},
		{"nodes_starting", 100, 24, append([]tea.Msg{withStartingNode()}, keys("2")...)},
		{"dialog_cordon", 80, 24, append([]tea.Msg{withCordonedNode()}, keys("2", "x")...)},
		{"dialog_uncordon", 80, 24, append([]tea.Msg{withCordonedNode()}, keys("2", "j", "x")...)},
		{"nodes_wide", 110, 24, append([]tea.Msg{healthy(), degraded()}, keys("2")...)},
		{"tables", 80, 24, append([]tea.Msg{healthy(), degraded()}, keys("3")...)},
		{"partitions", 100, 30, append([]tea.Msg{healthy(), degraded()}, keys("4", "j")...)},
		{"partitions_80x24", 80, 24, append([]tea.Msg{healthy(), degraded()}, keys("4")...)},
		{"partitions_next_table", 80, 24, append([]tea.Msg{healthy(), degraded()}, keys("4", "]", "j", "j")...)},
		{"partitions_from_tables", 80, 24, append([]tea.Msg{healthy()}, keys("3", "j", "enter")...)},
		{"partitions_scrolled", 80, 12, append([]tea.Msg{healthy()}, keys("4", "pgdown", "down")...)},
		{"dialog_failover", 80, 24, append([]tea.Msg{healthy(), degraded()}, keys("4", "j", "f")...)},
		{"dialog_confirmed", 80, 24, append([]tea.Msg{healthy(), degraded()}, keys("4", "j", "f", "y")...)},
		{"dialog_declined", 80, 24, append([]tea.Msg{healthy()}, keys("4", "f", "esc")...)},
		{"dialog_migrate", 80, 24, append([]tea.Msg{healthy()}, keys("4", "]", "m")...)},
		{"migrate_nowhere", 80, 24, append([]tea.Msg{healthy()}, keys("4", "m")...)},
		{"dialog_shrink", 80, 24, append([]tea.Msg{healthy()}, keys("2", "j", "j", "s")...)},
		{"dialog_expand_even", 80, 24, append([]tea.Msg{healthy()}, keys("e")...)},
		{"dialog_expand_new_node", 80, 24, append([]tea.Msg{withEmptyNode()}, keys("2", "e")...)},
		{"cancel_without_migrations", 80, 24, append([]tea.Msg{healthy()}, keys("5", "c")...)},
		{"cancel_finished", 80, 24, append([]tea.Msg{migrating}, keys("5", "j", "j", "c")...)},
		{"dialog_cancel", 80, 24, append([]tea.Msg{migrating}, keys("5", "c")...)},
		{"migrations_empty", 80, 24, append([]tea.Msg{healthy()}, keys("5")...)},
		{"migrations", 80, 24, append([]tea.Msg{migrating}, keys("5")...)},
		{"migrations_stuck", 80, 24, append([]tea.Msg{migrating}, keys("5", "j")...)},
		{"migrations_failed", 80, 24, append([]tea.Msg{migrating}, keys("5", "j", "j", "j")...)},
		{"migrations_small", 60, 12, append([]tea.Msg{migrating}, keys("5", "j", "j")...)},
		{"migrations_wide", 120, 30, append([]tea.Msg{migrating}, keys("5")...)},
		{"overview_moves", 80, 24, []tea.Msg{migrating}},
		{"events", 80, 24, append([]tea.Msg{healthy(), degraded()}, keys("6")...)},
		{"help", 80, 24, append([]tea.Msg{healthy()}, keys("?")...)},
		{"tab_cycles", 80, 24, append([]tea.Msg{healthy()}, keys("tab", "tab", "tab", "tab", "tab", "tab", "tab", "tab")...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestModel(termenv.Ascii, stale)
			m = drive(t, m, append([]tea.Msg{size(tt.w, tt.h)}, tt.msgs...)...)
			v := m.View()
			checkFrame(t, v, tt.w, tt.h)
			golden.RequireEqual(t, []byte(v))
		})
	}
}

// The views are coloured by health: green, yellow, red (ANSI 256 here).
func TestColours(t *testing.T) {
	m := newTestModel(termenv.ANSI256, nil)
	m = drive(t, m, size(100, 30), healthy(), degraded(), keys("4")[0])
	v := m.View()
	checkFrame(t, v, 100, 30)
	for _, want := range []string{"\x1b[38;5;34m", "\x1b[38;5;178m", "\x1b[1;38;5;196m"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks colour %q", want)
		}
	}
	golden.RequireEqualEscape(t, []byte(v), true)
}

func TestResizeKeepsFrame(t *testing.T) {
	m := drive(t, newTestModel(termenv.Ascii, nil), size(80, 24), healthy(), degraded())
	for _, s := range [][2]int{{80, 24}, {40, 10}, {200, 60}, {20, 6}, {100, 30}} {
		for tb := range numTabs {
			m = drive(t, m, size(s[0], s[1]), keys(string(rune('1' + tb)))[0])
			checkFrame(t, m.View(), max(s[0], 20), max(s[1], 6))
		}
	}
}

func TestFailoverPicksMostAdvancedSlave(t *testing.T) {
	s := surveytest.Healthy()
	// default/0: master 9231, slaves 9232 (lsn 1000) and 9233 (ahead).
	s.ReplicaInfo(surveytest.Nodes[2], "default", 0).LSN = 1001
	var got Action
	refreshed := 0
	m := New(Options{Title: "test-cluster", Renderer: lipgloss.NewRenderer(io.Discard), Location: time.UTC,
		Runner: func(_ context.Context, a Action) (Outcome, error) {
			got = a
			return Outcome{Status: "setmaster: queued move 3"}, nil
		},
		Refresh: func() { refreshed++ }})
	m = drive(t, m, size(80, 24), SnapshotMsg{Snapshot: s})
	m = drive(t, m, keys("4", "f", "y")...)
	want := Action{Kind: "setmaster", Table: "default", Partition: 0, From: surveytest.Nodes[0], To: surveytest.Nodes[2], Epoch: 7}
	if got.Kind != want.Kind || got.To != want.To || got.From != want.From || got.Table != want.Table || got.Epoch != want.Epoch {
		t.Fatalf("action %+v, want %+v", got, want)
	}
	// The runner's word in the status line, and a survey at once to show
	// the move.
	if m.status != "setmaster: queued move 3" || m.statusLevel != levelOK || refreshed != 1 {
		t.Fatalf("status %q (%v), %d refreshes", m.status, m.statusLevel, refreshed)
	}
}

// The other actions carry what their runner needs: the selected node,
// the selected move, the epoch on screen.
func TestActions(t *testing.T) {
	var got []Action
	runner := func(_ context.Context, a Action) (Outcome, error) { got = append(got, a); return Outcome{}, nil }
	m := drive(t, newTestModel(termenv.Ascii, runner), size(80, 24), SnapshotMsg{Snapshot: surveytest.Migrating()})
	m = drive(t, m, keys("2", "j", "s", "y", "e", "y", "5", "c", "y", "4", "]", "m", "y")...)
	want := []Action{
		{Kind: "shrink", Nodes: []string{surveytest.Nodes[1]}, Epoch: 7},
		{Kind: "expand", Epoch: 7}, // 9234 holds the replica it is being copied
		{Kind: "cancel", MoveID: 11, Move: "migrate", Table: "default", Partition: 3, From: surveytest.Nodes[1], To: "127.0.0.1:9234"},
		{Kind: "migrate", Table: "users", Partition: 0, From: surveytest.Nodes[0], To: "127.0.0.1:9234", Epoch: 7},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("actions\n%+v\nwant\n%+v", got, want)
	}
	if m.status != "migrate: started" {
		t.Fatalf("status %q", m.status)
	}
}

// The cursor of the migrations view follows its move when the list
// changes under it.
func TestMigrationCursorFollowsMove(t *testing.T) {
	s := surveytest.Migrating()
	m := drive(t, newTestModel(termenv.Ascii, nil), size(80, 24), SnapshotMsg{Snapshot: s}, keys("5", "j")[0], keys("5", "j")[1])
	if got := m.migrations[m.cursor[tabMigrations]].ID; got != 12 {
		t.Fatalf("cursor on move %d, want 12", got)
	}
	// Move 11 finishes: it goes below 12, which is now first.
	next := surveytest.Migrating()
	next.Moves[2].State, next.Moves[2].UpdatedMs = client.MoveDone, surveytest.T0.UnixMilli()
	m = drive(t, m, SnapshotMsg{Snapshot: next})
	if m.cursor[tabMigrations] != 0 || m.migrations[0].ID != 12 {
		t.Fatalf("cursor %d on move %d, want 0 on 12", m.cursor[tabMigrations], m.migrations[m.cursor[tabMigrations]].ID)
	}
}

// teatest runs the model in a real bubbletea program: keys typed, output
// rendered, q quits.
func TestProgram(t *testing.T) {
	m := newTestModel(termenv.Ascii, nil)
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	tm.Send(healthy())
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return strings.Contains(string(b), "HEALTHY") },
		teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
	tm.Type("4")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return strings.Contains(string(b), "MASTER (TERM,LSN)") },
		teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
	tm.Type("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	final := tm.FinalModel(t).(Model)
	if final.tab != tabPartitions {
		t.Fatalf("final tab %v", final.tab)
	}
	golden.RequireEqual(t, []byte(final.View()))
}

// Esc closes the full key list, as it closes a dialog.
func TestEscClosesHelp(t *testing.T) {
	m := drive(t, newTestModel(termenv.Ascii, nil), size(80, 24), healthy(), keys("2", "?")[0], keys("2", "?")[1])
	if !m.help.ShowAll {
		t.Fatal("? did not open the key list")
	}
	m = drive(t, m, keys("esc")...)
	if m.help.ShowAll || m.tab != tabNodes {
		t.Fatalf("after esc: key list shown %v, tab %v", m.help.ShowAll, m.tab)
	}
}

// A status message goes away at the first survey StatusTTL after it was
// set; one of an action still running stays.
func TestStatusClears(t *testing.T) {
	now := surveytest.T0
	block := make(chan struct{})
	runner := func(context.Context, Action) (Outcome, error) { <-block; return Outcome{}, nil }
	m := New(Options{Title: "test-cluster", Renderer: lipgloss.NewRenderer(io.Discard), Location: time.UTC,
		Runner: runner, StatusTTL: 10 * time.Second, Now: func() time.Time { return now }})
	m = drive(t, m, size(80, 24), healthy(), keys("f")[0])
	if !strings.HasPrefix(m.status, "failover: select a partition") {
		t.Fatalf("status %q", m.status)
	}
	now = now.Add(9 * time.Second)
	if m = drive(t, m, healthy()); m.status == "" {
		t.Fatal("status cleared after 9s")
	}
	now = now.Add(time.Second)
	if m = drive(t, m, healthy()); m.status != "" {
		t.Fatalf("status %q still shown after 10s", m.status)
	}
	// An action running: its "running…" stays however long it takes.
	next, _ := m.Update(keys("2")[0])
	next, _ = next.Update(keys("s")[0])
	next, cmd := next.Update(keys("y")[0])
	m = next.(Model)
	now = now.Add(time.Minute)
	if m = drive(t, m, healthy()); m.status != "shrink: running…" {
		t.Fatalf("status %q while the action runs", m.status)
	}
	close(block)
	if m = drive(t, m, cmd()); m.status != "shrink: started" {
		t.Fatalf("status %q once the action ended", m.status)
	}
}

// Once a survey lists a move queued from the TUI, the migrations cursor
// is on it.
func TestCursorFollowsQueuedMove(t *testing.T) {
	runner := func(context.Context, Action) (Outcome, error) {
		return Outcome{Status: "setmaster: queued move 12", Moves: []uint64{12}}, nil
	}
	m := drive(t, newTestModel(termenv.Ascii, runner), size(80, 24), healthy(), keys("4", "f", "y")[0], keys("4", "f", "y")[1], keys("4", "f", "y")[2])
	if m.follow != 12 {
		t.Fatalf("follow %d", m.follow)
	}
	m = drive(t, m, SnapshotMsg{Snapshot: surveytest.Migrating()}, keys("5")[0])
	if got := m.migrations[m.cursor[tabMigrations]].ID; got != 12 {
		t.Fatalf("cursor on move %d, want 12", got)
	}
	// Then the operator moves it freely.
	m = drive(t, m, keys("k")[0], SnapshotMsg{Snapshot: surveytest.Migrating()})
	if got := m.migrations[m.cursor[tabMigrations]].ID; got != 11 {
		t.Fatalf("cursor on move %d after k, want 11", got)
	}
}

// A slave's replication error is cut so that the partition's row fits
// the terminal and its other replicas stay in view.
func TestReplicaErrorFits(t *testing.T) {
	s := surveytest.Healthy()
	// default/0: master 9231, slaves 9232 and 9233.
	s.ReplicaInfo(surveytest.Nodes[1], "default", 0).State = "error: trysync with 127.0.0.1:9231: dial tcp 127.0.0.1:9231: " +
		"connect: connection refused (retrying in 1s, attempt 12 of unlimited, last success 5m ago)"
	for _, w := range []int{80, 120} {
		m := drive(t, newTestModel(termenv.Ascii, nil), size(w, 24), SnapshotMsg{Snapshot: s}, keys("4")[0])
		v := m.View()
		checkFrame(t, v, w, 24)
		var row string
		for _, l := range strings.Split(v, "\n") {
			if strings.HasPrefix(strings.TrimSpace(strings.TrimPrefix(l, "›")), "0 ") {
				row = l
			}
		}
		if !strings.Contains(row, ":9232 (1,1000) error: ") || !strings.Contains(row, ":9233 (1,1000)") || strings.HasSuffix(row, "…") && !strings.Contains(row, "…  :9233") {
			t.Errorf("width %d: row of default/0 %q", w, row)
		}
	}
	m := drive(t, newTestModel(termenv.Ascii, nil), size(80, 24), SnapshotMsg{Snapshot: s}, keys("4")[0])
	golden.RequireEqual(t, []byte(m.View()))
}

// An operation of several moves (here an expand) is summed up above the
// moves: moves ended, bytes its full syncs moved (those of the moves
// done count, though MOVE_STATUS no longer reports them), overall ETA.
func TestOperationProgress(t *testing.T) {
	const MiB = 1 << 20
	expand := func(taken time.Duration, states []client.MoveState, copied, total []uint64) tea.Msg {
		s := surveytest.Healthy()
		s.Taken = surveytest.T0.Add(taken)
		for i, st := range states {
			s.Moves = append(s.Moves, client.Move{ID: uint64(20 + i), Kind: client.MoveMigrate, Table: "default", Partition: uint32(i),
				From: surveytest.Nodes[i], To: "127.0.0.1:9234", State: st, Origin: "expand", CreatedMs: surveytest.T0.UnixMilli(),
				UpdatedMs: s.Taken.UnixMilli(), BytesCopied: copied[i], BytesTotal: total[i]})
		}
		return SnapshotMsg{Snapshot: s}
	}
	m := drive(t, newTestModel(termenv.Ascii, nil), size(80, 24),
		expand(10*time.Second, []client.MoveState{client.MoveCatchingUp, client.MovePending, client.MovePending}, []uint64{30 * MiB, 0, 0}, []uint64{40 * MiB, 0, 0}),
		keys("5")[0])
	if got := m.operationLines(); len(got) != 1 || got[0] != "expand: 0/3 moves ended · moved 30.0 MiB · ETA -" {
		t.Fatalf("before a move ended: %q", got)
	}
	m = drive(t, m, expand(30*time.Second, []client.MoveState{client.MoveDone, client.MoveCatchingUp, client.MovePending}, []uint64{0, MiB, 0}, []uint64{0, 8 * MiB, 0}))
	if got := m.operationLines(); len(got) != 1 || got[0] != "expand: 1/3 moves ended · moved 41.0 MiB · ETA 1m0s" {
		t.Fatalf("after one ended: %q", got)
	}
	v := m.View()
	checkFrame(t, v, 80, 24)
	golden.RequireEqual(t, []byte(v))
}

// TestSchedulerInSummary: the summary line says when the scheduler is
// paused, moving or leaves partitions under-replicated, and nothing when
// it is idle or absent.
func TestSchedulerInSummary(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   *client.ScheduleStatus
		want string
	}{
		{"absent", nil, ""},
		{"idle", &client.ScheduleStatus{Doing: "idle"}, ""},
		{"paused and short", &client.ScheduleStatus{Settings: client.ScheduleSettings{Paused: true}, UnderReplicated: []client.Shortfall{{Table: "t"}}}, "scheduler paused · 1 under-replicated"},
		{"repairing", &client.ScheduleStatus{MovesInFlight: 2, UnderReplicated: []client.Shortfall{{Table: "t"}, {Table: "t", Partition: 1}}}, "scheduler: 2 moves · 2 under-replicated"},
	} {
		s := surveytest.Healthy()
		s.Schedule = tc.st
		m := drive(t, newTestModel(termenv.Ascii, nil), size(120, 24), SnapshotMsg{Snapshot: s})
		if got := m.summaryView(); tc.want != "" && !strings.HasSuffix(got, " · "+tc.want) || tc.want == "" && strings.Contains(got, "scheduler") {
			t.Errorf("%s: summary %q; want it to end with %q", tc.name, got, tc.want)
		}
	}
}

// TestDrainingNode: a cordoned node that a move in flight takes a
// replica off shows as draining on the Nodes view; cordoned alone, as
// cordoned.
func TestDrainingNode(t *testing.T) {
	s := surveytest.Healthy()
	s.Nodes[0].Cordoned, s.Nodes[1].Cordoned = true, true
	s.Moves = []client.Move{{ID: 7, Kind: client.MoveMigrate, Table: "default", From: s.Nodes[0].Addr, To: s.Nodes[2].Addr, State: client.MoveCatchingUp}}
	m := drive(t, newTestModel(termenv.Ascii, nil), size(120, 30), SnapshotMsg{Snapshot: s})
	v := m.View()
	if !strings.Contains(v, "UP/draining") || !strings.Contains(v, "UP/cordoned") {
		t.Errorf("nodes view without UP/draining and UP/cordoned:\n%s", v)
	}
}

// TestSplitInMigrations: the migrations view lists a split with its slot
// and new partition.
func TestSplitInMigrations(t *testing.T) {
	s := surveytest.Healthy()
	s.Moves = []client.Move{{ID: 7, Kind: client.MoveSplit, Table: "default", Partition: 3, SplitAt: 7168, SplitChild: 8, State: client.MovePrepare}}
	m := drive(t, newTestModel(termenv.Ascii, nil), size(120, 30), SnapshotMsg{Snapshot: s}, keys("5")[0])
	if v := m.View(); !strings.Contains(v, "at 7168 → p8") || !strings.Contains(v, "PREPARE") {
		t.Errorf("migrations view without the split:\n%s", v)
	}
}
