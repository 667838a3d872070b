package fsm

import (
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// The scheduler's settings and defaults. A zero field of zppb.Schedule
// means its default, so that a state from before the scheduler (and a
// setting never changed) schedules by default.
const (
	// DefaultRepairDownAfter is how long a node stays DOWN before its
	// replicas are rebuilt elsewhere: TiKV's max-store-down-time.
	DefaultRepairDownAfter = 30 * time.Minute
	// DefaultMaxSchedulerMoves bounds the scheduler's moves in flight.
	DefaultMaxSchedulerMoves = 8
	// MinFullSyncRate is the lowest fullsync-rate accepted: a slave keeps a
	// few fetches of 1 MiB in flight (zpnode/dbsync), each of which must
	// be served within its fetch timeout (1 minute).
	MinFullSyncRate = 1 << 20
	// keepEvents is how many scheduler events the state remembers.
	keepEvents = 200
)

// Settings is a Schedule with its defaults resolved.
type Settings struct {
	Paused bool
	// RepairDownAfter is how long a node stays DOWN before its replicas
	// are rebuilt; negative: never.
	RepairDownAfter time.Duration
	MasterBalance   bool
	// MaxMovesPerNode is 0 when the meta server's flag decides.
	MaxMovesPerNode int
	MaxMoves        int
}

// Resolve returns sc's settings with the defaults filled in.
func Resolve(sc *zppb.Schedule) Settings {
	st := Settings{
		Paused:          sc.GetPaused(),
		RepairDownAfter: time.Duration(sc.GetDownTimeoutMs()) * time.Millisecond,
		MasterBalance:   !sc.GetMasterBalanceOff(),
		MaxMovesPerNode: int(sc.GetMaxMovesPerNode()),
		MaxMoves:        int(sc.GetMaxMoves()),
	}
	if st.RepairDownAfter == 0 {
		st.RepairDownAfter = DefaultRepairDownAfter
	}
	if st.MaxMoves == 0 {
		st.MaxMoves = DefaultMaxSchedulerMoves
	}
	return st
}

// Schedule returns a copy of the scheduler's settings (never nil) and its
// events, oldest first.
func (f *FSM) Schedule() (*zppb.Schedule, []*zppb.ScheduleEvent) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	sc := &zppb.Schedule{}
	if f.st.schedule != nil {
		sc = proto.Clone(f.st.schedule).(*zppb.Schedule)
	}
	return sc, cloneAll(f.st.events)
}

// ScheduleSettings returns a copy of the scheduler's settings alone (never
// nil), for the PINGs and the move loop that need no events.
func (f *FSM) ScheduleSettings() *zppb.Schedule {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.st.schedule == nil {
		return &zppb.Schedule{}
	}
	return proto.Clone(f.st.schedule).(*zppb.Schedule)
}

// SetSchedule returns the command that replaces the scheduler's settings,
// recording ev.
func SetSchedule(sc *zppb.Schedule, ev *zppb.ScheduleEvent) *zppb.MetaCommand {
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_SetSchedule{SetSchedule: &zppb.SetScheduleCommand{Schedule: sc, Event: ev}}}
}

// setSchedule changes no topology: nodes never see the settings, so the
// epoch stays.
func (s *state) setSchedule(c *zppb.SetScheduleCommand) error {
	sc := c.GetSchedule()
	if sc == nil {
		return status.New(zppb.Code_INVALID_ARGUMENT, "no schedule settings")
	}
	s.schedule = proto.Clone(sc).(*zppb.Schedule)
	s.recordEvent(c.GetEvent(), nil)
	return nil
}

// recordEvent appends ev (nil: nothing) naming the moves it queued,
// forgetting the oldest beyond keepEvents.
func (s *state) recordEvent(ev *zppb.ScheduleEvent, moves []*zppb.Move) {
	if ev == nil {
		return
	}
	ev = proto.Clone(ev).(*zppb.ScheduleEvent)
	for _, m := range moves {
		ev.Moves = append(ev.Moves, m.Id)
	}
	s.events = append(s.events, ev)
	if n := len(s.events) - keepEvents; n > 0 {
		s.events = append(s.events[:0:0], s.events[n:]...)
	}
}
