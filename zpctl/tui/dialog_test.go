package tui

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/charmbracelet/x/exp/golden"
	"github.com/muesli/termenv"

	"github.com/zeppelin-kv/zeppelin/zpctl/survey/surveytest"
)

// The expand and shrink dialogs show the plan the Planner made (the
// CLI's), and the moves are queued at the plan's epoch.
func TestPlanPreview(t *testing.T) {
	steps := make([]string, 26)
	for i := range steps {
		steps[i] = fmt.Sprintf("migrate default/%d: %s -> 127.0.0.1:9234", i, surveytest.Nodes[i%3])
	}
	var planned, ran []Action
	planner := func(_ context.Context, a Action) (Plan, error) {
		planned = append(planned, a)
		return Plan{Epoch: 9, Steps: steps}, nil
	}
	runner := func(_ context.Context, a Action) (Outcome, error) { ran = append(ran, a); return Outcome{}, nil }
	m := newTestModel(termenv.Ascii, runner)
	m.opts.Planner = planner
	m = drive(t, m, size(80, 24), withEmptyNode())

	// Until the plan is in, the dialog says so and y does nothing.
	next, cmd := m.Update(keys("e")[0])
	m = next.(Model)
	if cmd == nil || !m.planning {
		t.Fatalf("e: no plan asked (planning %v)", m.planning)
	}
	m = drive(t, m, keys("y")[0])
	if m.dialog == nil || len(ran) != 0 {
		t.Fatalf("y before the plan: dialog %v, ran %v", m.dialog, ran)
	}
	golden.RequireEqual(t, []byte(m.View()))
	m = drive(t, m, cmd())
	if m.planning || m.plan == nil || m.dialog.Epoch != 9 {
		t.Fatalf("plan not taken: planning %v, plan %v, dialog %+v", m.planning, m.plan, m.dialog)
	}
	t.Run("plan", func(t *testing.T) {
		v := m.View()
		checkFrame(t, v, 80, 24)
		golden.RequireEqual(t, []byte(v))
	})
	m = drive(t, m, keys("y")...)
	if len(ran) != 1 || ran[0].Kind != "expand" || ran[0].Epoch != 9 {
		t.Fatalf("ran %+v, want an expand at epoch 9", ran)
	}
	// Shrink plans for the selected node.
	m = drive(t, m, keys("2", "j", "s")...)
	if len(planned) != 2 || planned[1].Kind != "shrink" || fmt.Sprint(planned[1].Nodes) != fmt.Sprint([]string{surveytest.Nodes[1]}) {
		t.Fatalf("planned %+v", planned)
	}
}

// A plan without moves closes the dialog; a planner's error stays in the
// dialog, which y does not confirm; a plan made for a dialog since closed
// is dropped.
func TestPlanOutcomes(t *testing.T) {
	m := newTestModel(termenv.Ascii, nil)
	m.opts.Planner = func(context.Context, Action) (Plan, error) { return Plan{Epoch: 7}, nil }
	m = drive(t, m, size(80, 24), healthy(), keys("e")[0])
	if m.dialog != nil || m.status != "expand: nothing to do, the load is even" {
		t.Fatalf("even: dialog %+v, status %q", m.dialog, m.status)
	}

	var ran []Action
	m = newTestModel(termenv.Ascii, func(_ context.Context, a Action) (Outcome, error) { ran = append(ran, a); return Outcome{}, nil })
	m.opts.Planner = func(context.Context, Action) (Plan, error) {
		return Plan{}, errors.New("shrink: plan: INVALID_ARGUMENT: too few nodes left for 3 replicas")
	}
	m = drive(t, m, size(80, 24), healthy(), keys("2")[0], keys("s")[0], keys("y")[0])
	if m.dialog == nil || len(ran) != 0 {
		t.Fatalf("error: dialog %+v, ran %v", m.dialog, ran)
	}
	t.Run("error", func(t *testing.T) {
		v := m.View()
		checkFrame(t, v, 80, 24)
		golden.RequireEqual(t, []byte(v))
	})
	if m = drive(t, m, keys("n")[0]); m.dialog != nil || m.planErr != nil {
		t.Fatalf("n: dialog %+v, error %v", m.dialog, m.planErr)
	}

	m = newTestModel(termenv.Ascii, nil)
	m.opts.Planner = func(context.Context, Action) (Plan, error) { return Plan{Epoch: 7, Steps: []string{"x"}}, nil }
	m = drive(t, m, size(80, 24), healthy())
	next, cmd := m.Update(keys("e")[0])
	m = drive(t, next.(Model), keys("n")[0], keys("2")[0])
	next, _ = m.Update(keys("s")[0]) // a new dialog, its plan still coming
	m = drive(t, next.(Model), cmd())
	if m.dialog == nil || m.dialog.Kind != "shrink" || m.plan != nil || !m.planning {
		t.Fatalf("the old plan was taken: dialog %+v, plan %v", m.dialog, m.plan)
	}
}

// m offers every UP node without a replica of the partition, idlest
// first and chosen; ↑↓ choose another.
func TestMigrateTargetChoice(t *testing.T) {
	var ran []Action
	runner := func(_ context.Context, a Action) (Outcome, error) { ran = append(ran, a); return Outcome{}, nil }
	m := drive(t, newTestModel(termenv.Ascii, runner), size(80, 24), SnapshotMsg{Snapshot: surveytest.Migrating()})
	// users/0: master 9231, slave 9232; 9234 holds 1 replica, 9233 many.
	m = drive(t, m, keys("4", "]", "m")...)
	if m.dialog == nil || m.dialog.To != "127.0.0.1:9234" || len(m.targets) != 2 {
		t.Fatalf("dialog %+v, targets %+v", m.dialog, m.targets)
	}
	m = drive(t, m, keys("j", "j")...)
	v := m.View()
	checkFrame(t, v, 80, 24)
	golden.RequireEqual(t, []byte(v))
	m = drive(t, m, keys("k", "j", "y")...)
	if len(ran) != 1 || ran[0].To != surveytest.Nodes[2] || ran[0].From != surveytest.Nodes[0] {
		t.Fatalf("ran %+v, want a migration to %s", ran, surveytest.Nodes[2])
	}
}
