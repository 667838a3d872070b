package tui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"
	"github.com/muesli/termenv"

	"github.com/zeppelin-kv/zeppelin/zpctl/survey/surveytest"
)

// View 8 (or L in the Nodes view) reads the log of the node under the
// Nodes view's cursor when it opens and at each survey while it is shown;
// it lists the lines newest last, cut to the terminal's width, and keeps
// the newest in view as lines arrive unless the cursor left it.
func TestNodeLogView(t *testing.T) {
	var asked []string
	logged := 30
	read := func(_ context.Context, node string) NodeLog {
		asked = append(asked, node)
		nl := NodeLog{Node: node}
		for i := range logged {
			l := LogLine{Time: surveytest.T0.Add(time.Duration(i-logged) * time.Second), Level: "INFO",
				Message: fmt.Sprintf("line %d", i), Attrs: "epoch=" + fmt.Sprint(i)}
			switch i {
			case 25:
				l.Level, l.Message, l.Attrs = "WARN", "pull failed", `meta=127.0.0.1:9221 err="rpc: dial 127.0.0.1:9221: connection refused"`
			case 27:
				l.Level, l.Message, l.Attrs = "ERROR", "cannot open replica", "table=users partition=3 err="+strings.Repeat("x", 100)
			}
			nl.Lines = append(nl.Lines, l)
		}
		return nl
	}
	m := newTestModel(termenv.Ascii, nil)
	m.opts.NodeLog = read
	m = drive(t, m, size(80, 24), degraded())
	m = drive(t, m, keys("2", "7")...)
	if len(asked) != 0 {
		t.Fatalf("read a node's log outside view 8: %v", asked)
	}
	// The third node, from the Nodes view.
	m = drive(t, m, keys("2", "j", "j", "L")...)
	if m.tab != tabLog || len(asked) != 1 || asked[0] != surveytest.Nodes[2] {
		t.Fatalf("view %d asked %v, want %s", m.tab+1, asked, surveytest.Nodes[2])
	}
	v := m.View()
	checkFrame(t, v, 80, 24)
	golden.RequireEqual(t, []byte(v))
	if !strings.Contains(v, "line 29 epoch=29") || strings.Contains(v, "line 0 ") {
		t.Fatalf("the newest lines are not in view:\n%s", v)
	}
	// A new line at the next survey: still in view.
	logged = 31
	m = drive(t, m, degraded())
	if v := m.View(); len(asked) != 2 || !strings.Contains(v, "line 30 epoch=30") {
		t.Fatalf("asked %v; after a survey:\n%s", asked, v)
	}
	// Scrolled up, the view stays where the operator put it.
	m = drive(t, m, keys("k", "k", "k", "k", "k", "k", "k", "k", "k", "k", "k", "k", "k", "k", "k", "k", "k", "k", "k", "k")...)
	logged = 32
	m = drive(t, m, degraded())
	if v := m.View(); strings.Contains(v, "line 31 ") || !strings.Contains(v, "line 11 ") {
		t.Fatalf("scrolled up, then a survey:\n%s", v)
	}
	m = drive(t, m, keys("/", "warn", "enter")...)
	if m.rows(tabLog) != 1 {
		t.Fatalf("filter warn: %d rows", m.rows(tabLog))
	}
	// Another node's log: 8 follows the Nodes cursor.
	m = drive(t, m, keys("2", "k", "k", "8")...)
	if asked[len(asked)-1] != surveytest.Nodes[0] || !strings.Contains(m.View(), "log of "+surveytest.Nodes[0]) {
		t.Fatalf("asked %v:\n%s", asked, m.View())
	}
}

// A node that does not answer is named above the (empty) list.
func TestNodeLogViewError(t *testing.T) {
	m := newTestModel(termenv.Ascii, nil)
	m.opts.NodeLog = func(_ context.Context, node string) NodeLog {
		return NodeLog{Node: node, Err: fmt.Errorf("client: info %s: connection refused", node)}
	}
	m = drive(t, m, size(80, 24), degraded())
	m = drive(t, m, keys("2", "j", "8")...)
	if v := m.View(); !strings.Contains(v, "client: info "+surveytest.Nodes[1]+": connection refused") {
		t.Fatalf("view:\n%s", v)
	}
}
