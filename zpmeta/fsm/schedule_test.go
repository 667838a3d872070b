package fsm

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestScheduleState: the settings and events are replicated state: they
// change no epoch, survive a snapshot, record the ids of the moves a
// decision queued, and keep the last keepEvents events.
func TestScheduleState(t *testing.T) {
	f := movesFSM(t)
	epoch := f.Epoch()
	sc := &zppb.Schedule{Paused: true, DownTimeoutMs: 5000}
	res := mustApply(t, f, SetSchedule(sc, &zppb.ScheduleEvent{Kind: "settings", Message: "paused"}))
	if res.Changed || res.Epoch != epoch {
		t.Fatalf("settings changed the epoch: %+v", res)
	}
	cmd := AddMoves([]*zppb.Move{{Kind: zppb.MoveKind_MIGRATE, Table: "t", From: "a:1", To: "d:1", Origin: "scheduler", Reason: "why"}}, 0, 1)
	cmd.GetAddMoves().Event = &zppb.ScheduleEvent{Kind: "repair", Message: "node a:1 DOWN"}
	res = mustApply(t, f, cmd)
	gotSc, events := f.Schedule()
	if !proto.Equal(gotSc, sc) {
		t.Errorf("settings %v, want %v", gotSc, sc)
	}
	if len(events) != 2 || events[1].Kind != "repair" || len(events[1].Moves) != 1 || events[1].Moves[0] != res.Moves[0].Id {
		t.Fatalf("events %v; want the repair naming move %d", events, res.Moves[0].Id)
	}
	g := restored(t, f, nil)
	gSc, gEvents := g.Schedule()
	if !proto.Equal(gSc, sc) || len(gEvents) != 2 || g.Moves(false)[0].Reason != "why" {
		t.Errorf("after restore: settings %v, events %v, moves %v", gSc, gEvents, g.Moves(false))
	}
	for i := range keepEvents + 5 {
		mustApply(t, f, SetSchedule(sc, &zppb.ScheduleEvent{Kind: "settings", Message: fmt.Sprint(i)}))
	}
	if _, events := f.Schedule(); len(events) != keepEvents || events[len(events)-1].Message != fmt.Sprint(keepEvents+4) {
		t.Errorf("%d events, last %v; want the last %d", len(events), events[len(events)-1], keepEvents)
	}
}

// TestDownSince: marking a node DOWN records when the leader decided;
// UP clears it.
func TestDownSince(t *testing.T) {
	f := movesFSM(t)
	mustApply(t, f, SetNodeState("d:1", zppb.NodeState_DOWN, 1234))
	if n := f.Node("d:1"); n.DownSinceUnixMs != 1234 {
		t.Errorf("down since %d, want 1234", n.DownSinceUnixMs)
	}
	mustApply(t, f, SetNodeState("d:1", zppb.NodeState_UP, 5678))
	if n := f.Node("d:1"); n.DownSinceUnixMs != 0 {
		t.Errorf("UP node down since %d, want 0", n.DownSinceUnixMs)
	}
}
