package tui

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"
	"github.com/muesli/termenv"

	"github.com/zeppelin-kv/zeppelin/zpctl/survey/surveytest"
)

// View 7 reads the UP nodes' slow logs when it opens and at each survey
// while it is shown, and lists them newest first; '/' and 'o' work there
// as in the other lists.
func TestSlowlogView(t *testing.T) {
	var asked [][]string
	read := func(_ context.Context, nodes []string) SlowLog {
		asked = append(asked, nodes)
		at := func(ms int) time.Time { return surveytest.T0.Add(time.Duration(ms) * time.Millisecond) }
		return SlowLog{Nodes: len(nodes), Err: errors.New("127.0.0.1:9232: connection refused"), Entries: []SlowEntry{
			{Time: at(-1000), Node: surveytest.Nodes[0], Command: "mget", Table: "users", Duration: 11 * time.Millisecond, Code: "OK"},
			{Time: at(-2000), Node: surveytest.Nodes[2], Command: "set", Table: "default", Key: "0xff0001", Duration: 250 * time.Millisecond, Code: "NOT_ENOUGH_REPLICAS"},
			{Time: at(-3000), Node: surveytest.Nodes[0], Command: "get", Table: "default", Key: "user:2", Duration: 12500 * time.Microsecond, Code: "NOT_FOUND"},
		}}
	}
	m := newTestModel(termenv.Ascii, nil)
	m.opts.SlowLog = read
	m = drive(t, m, size(80, 24), degraded(), keys("2")[0])
	if len(asked) != 0 {
		t.Fatalf("read the slow logs outside view 7: %v", asked)
	}
	m = drive(t, m, keys("7")[0])
	if len(asked) != 1 || !slices.Equal(asked[0], []string{surveytest.Nodes[0], surveytest.Nodes[2]}) {
		t.Fatalf("asked %v, want the UP nodes", asked)
	}
	v := m.View()
	checkFrame(t, v, 80, 24)
	golden.RequireEqual(t, []byte(v))
	m = drive(t, m, degraded())
	if len(asked) != 2 {
		t.Fatalf("not read again at the next survey: %v", asked)
	}
	// The slowest first: DURATION is the fifth column.
	m = drive(t, m, keys("o", "o", "o", "o", "o")...)
	if i, _ := m.item(tabSlowlog); m.slow.Entries[i].Duration != 250*time.Millisecond || !strings.Contains(m.View(), "DURATION▼") {
		t.Fatalf("sorted by %+v: first %+v", m.sorting[tabSlowlog], m.slow.Entries[i])
	}
	m = drive(t, m, keys("/", "user:", "enter")...)
	if m.rows(tabSlowlog) != 1 {
		t.Fatalf("filter user:: %d rows", m.rows(tabSlowlog))
	}
}
