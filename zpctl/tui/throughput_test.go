package tui

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/muesli/termenv"

	"github.com/zeppelin-kv/zeppelin/zpctl/survey/surveytest"
)

// busy is Healthy taken at T0+sec, each node i having served (i+1)*100
// operations a second on each table since T0; node 9232 restarted at
// restartAt (its counters start again from 0).
func busy(sec int, restartAt int) tea.Msg {
	s := surveytest.Healthy()
	s.Taken = surveytest.T0.Add(time.Duration(sec) * time.Second)
	for i := range s.Nodes {
		for j := range s.Nodes[i].Info.Stats {
			since := sec
			if i == 1 && restartAt > 0 && sec >= restartAt {
				since = sec - restartAt
			}
			s.Nodes[i].Info.Stats[j].Ops = uint64(5000*boolInt(since == sec) + 100*(i+1)*since)
		}
	}
	return SnapshotMsg{Snapshot: s}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The Nodes and Tables views draw each node's and table's operations per
// second between surveys, from the nodes' counters: a footer for the
// selected row, a TREND column where the terminal has room.
func TestSparklines(t *testing.T) {
	m := drive(t, newTestModel(termenv.Ascii, nil), size(120, 24))
	for sec := range 6 {
		m = drive(t, m, busy(sec, 3))
	}
	fmtRates := func(vs []float64) string {
		var out []string
		for _, v := range vs {
			if math.IsNaN(v) {
				out = append(out, "NaN")
			} else {
				out = append(out, fmt.Sprint(v))
			}
		}
		return strings.Join(out, " ")
	}
	// Two tables: 2×100, 2×200, 2×300 a second; 9232's restart is a gap.
	for node, want := range map[string]string{
		surveytest.Nodes[0]: "200 200 200 200 200",
		surveytest.Nodes[1]: "400 400 NaN 400 400",
		surveytest.Nodes[2]: "600 600 600 600 600",
	} {
		if got := fmtRates(m.hist.nodes[node]); got != want {
			t.Errorf("node %s: %s, want %s", node, got, want)
		}
	}
	if got, want := fmtRates(m.hist.tables["users"]), "600 600 NaN 600 600"; got != want {
		t.Errorf("table users: %s, want %s", got, want)
	}
	m = drive(t, m, keys("2", "j")...)
	v := m.View()
	checkFrame(t, v, 120, 24)
	golden.RequireEqual(t, []byte(v))
}

func TestSparkline(t *testing.T) {
	tests := []struct {
		vs   []float64
		want string
	}{
		{nil, ""},
		{[]float64{0, 0}, "▁▁"},
		{[]float64{0, 50, 100, math.NaN(), 100}, "▁▄█ █"},
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8}, "▁▂▃▄▅▆▇█"},
	}
	for _, tt := range tests {
		if got := sparkline(tt.vs); got != tt.want {
			t.Errorf("sparkline(%v) = %q, want %q", tt.vs, got, tt.want)
		}
	}
}
