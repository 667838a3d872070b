package tui

import (
	"context"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/muesli/termenv"

	"github.com/zeppelin-kv/zeppelin/zpctl/survey/surveytest"
)

// '/' filters the view's rows; the actions act on the row selected as
// shown; esc clears the filter.
func TestFilter(t *testing.T) {
	var ran []Action
	runner := func(_ context.Context, a Action) (Outcome, error) { ran = append(ran, a); return Outcome{}, nil }
	m := drive(t, newTestModel(termenv.Ascii, runner), size(80, 24), healthy(), keys("2")[0])
	// Typed in one burst: j and s are text while the filter is typed.
	m = drive(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("/:9233js")}, tea.KeyMsg{Type: tea.KeyBackspace},
		tea.KeyMsg{Type: tea.KeyBackspace})
	if !m.filtering || m.filter[tabNodes] != ":9233" || m.rows(tabNodes) != 1 {
		t.Fatalf("filter %q (typing %v), %d rows", m.filter[tabNodes], m.filtering, m.rows(tabNodes))
	}
	if v := m.View(); !strings.Contains(v, " /:9233█  1 of 3 rows") {
		t.Fatalf("no filter in the status line:\n%s", v)
	}
	m = drive(t, m, keys("enter")...)
	v := m.View()
	checkFrame(t, v, 80, 24)
	golden.RequireEqual(t, []byte(v))
	m = drive(t, m, keys("s", "y")...)
	if len(ran) != 1 || ran[0].Nodes[0] != surveytest.Nodes[2] {
		t.Fatalf("ran %+v, want a shrink of %s", ran, surveytest.Nodes[2])
	}
	// The other views keep their rows; esc clears this one's filter.
	if m.rows(tabTables) != 2 {
		t.Fatalf("tables filtered too: %d rows", m.rows(tabTables))
	}
	m = drive(t, m, keys("esc")...)
	if m.filter[tabNodes] != "" || m.rows(tabNodes) != 3 {
		t.Fatalf("after esc: filter %q, %d rows", m.filter[tabNodes], m.rows(tabNodes))
	}
	// A filter that matches a replica's state, in the Partitions view.
	s := surveytest.Healthy()
	s.ReplicaInfo(surveytest.Nodes[1], "default", 5).State = "fullsync"
	m = drive(t, m, SnapshotMsg{Snapshot: s}, keys("4")[0], tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("/fullsync")}, keys("enter")[0])
	if tb, p, ok := m.selectedPartition(); !ok || m.rows(tabPartitions) != 1 || tb.Name != "default" || p.ID != 5 {
		t.Fatalf("%d rows, selected %s/%d", m.rows(tabPartitions), tb.Name, p.ID)
	}
}

// 'o' sorts the view by its next column (numbers largest first), 'O'
// reverses; the actions act on the row selected as shown.
func TestSort(t *testing.T) {
	var ran []Action
	runner := func(_ context.Context, a Action) (Outcome, error) { ran = append(ran, a); return Outcome{}, nil }
	m := drive(t, newTestModel(termenv.Ascii, runner), size(80, 24), healthy(), keys("2")[0])
	// ADDR, STATE, ZONE/RACK, REPL, MAST, QPS: 9233 is the busiest.
	m = drive(t, m, keys("o", "o", "o", "o", "o", "o")...)
	v := m.View()
	checkFrame(t, v, 80, 24)
	if !strings.Contains(v, "QPS▼") {
		t.Fatalf("no sort mark:\n%s", v)
	}
	golden.RequireEqual(t, []byte(v))
	m = drive(t, m, keys("s", "y", "O", "s", "y")...)
	if len(ran) != 2 || ran[0].Nodes[0] != surveytest.Nodes[2] || ran[1].Nodes[0] != surveytest.Nodes[0] {
		t.Fatalf("ran %+v, want shrinks of %s then %s", ran, surveytest.Nodes[2], surveytest.Nodes[0])
	}
	// DISK (ties keep the view's own order), then, past the last column,
	// the view's own order again.
	m = drive(t, m, keys("O", "o")...)
	if i, _ := m.item(tabNodes); m.sorting[tabNodes].col != 7 || i != 0 || m.order(tabNodes)[2] != 2 {
		t.Fatalf("sorting %+v, item %d", m.sorting[tabNodes], i)
	}
	m = drive(t, m, keys("o")...)
	if m.sorting[tabNodes].col != 0 || strings.Contains(m.View(), "▼") {
		t.Fatalf("sorting %+v after the last column", m.sorting[tabNodes])
	}
}

// Ctrl-C quits while a filter is typed; q is text there.
func TestFilterKeys(t *testing.T) {
	m := drive(t, newTestModel(termenv.Ascii, nil), size(80, 24), healthy(), keys("2", "/")[0], keys("2", "/")[1])
	next, cmd := m.Update(keys("q")[0])
	if m = next.(Model); cmd != nil || m.filter[tabNodes] != "q" {
		t.Fatalf("q: filter %q, quits %v", m.filter[tabNodes], cmd != nil)
	}
	if _, cmd = m.Update(tea.KeyMsg{Type: tea.KeyCtrlC}); cmd == nil {
		t.Fatal("ctrl+c did not quit")
	}
	if _, quit := cmd().(tea.QuitMsg); !quit {
		t.Fatal("ctrl+c did not quit")
	}
}
