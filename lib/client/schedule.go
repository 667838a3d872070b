package client

import (
	"context"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// ScheduleChange names the scheduler settings to change; nil fields stay.
type ScheduleChange struct {
	Paused *bool
	// DownTimeout is how long a node stays DOWN before its replicas are
	// rebuilt elsewhere; negative: never.
	DownTimeout     *time.Duration
	MasterBalance   *bool
	MaxMovesPerNode *uint32
	MaxMoves        *uint32
	// FullSyncRate is the bytes per second each node may serve full syncs
	// at; 0 unlimited.
	FullSyncRate *uint64
}

// ScheduleSettings are the scheduler's settings, defaults filled in.
type ScheduleSettings struct {
	Paused bool `json:"paused"`
	// DownTimeoutMs is negative when DOWN nodes are never repaired.
	DownTimeoutMs   int64  `json:"down_timeout_ms"`
	MasterBalance   bool   `json:"master_balance"`
	MaxMovesPerNode uint32 `json:"max_moves_per_node"`
	MaxMoves        uint32 `json:"max_moves"`
	// FullSyncRate is bytes per second per node; 0 unlimited.
	FullSyncRate uint64 `json:"fullsync_rate"`
}

// ScheduleEvent is one recorded decision of the scheduler or change of its
// settings.
type ScheduleEvent struct {
	UnixMs  int64    `json:"unix_ms"`
	Kind    string   `json:"kind"`
	Message string   `json:"message"`
	Moves   []uint64 `json:"moves,omitempty"`
}

// Shortfall is a partition with fewer replicas than its table asks for.
type Shortfall struct {
	Table     string `json:"table"`
	Partition uint32 `json:"partition"`
	Replicas  uint32 `json:"replicas"`
	Want      uint32 `json:"want"`
}

// DownNode is a DOWN node and when the scheduler rebuilds its replicas.
type DownNode struct {
	Addr string `json:"addr"`
	// DownSinceMs is 0 when unknown (marked by an older meta leader).
	DownSinceMs int64 `json:"down_since_ms"`
	// RepairAtMs is 0 when it is never repaired.
	RepairAtMs int64  `json:"repair_at_ms"`
	Replicas   uint32 `json:"replicas"`
}

// ScheduleStatus is the scheduler's settings and what it is doing.
type ScheduleStatus struct {
	Settings        ScheduleSettings `json:"settings"`
	Doing           string           `json:"doing"`
	MovesInFlight   uint32           `json:"moves_in_flight"`
	MasterImbalance uint32           `json:"master_imbalance"`
	UnderReplicated []Shortfall      `json:"under_replicated"`
	Down            []DownNode       `json:"down"`
	Events          []ScheduleEvent  `json:"events"`
	Epoch           uint64           `json:"epoch"`
}

// Schedule changes the scheduler settings ch names (none: a read) and
// returns the scheduler's status. A meta leader older than the scheduler
// answers INVALID_ARGUMENT.
func (c *core) Schedule(ctx context.Context, ch ScheduleChange) (*ScheduleStatus, error) {
	req := &zppb.ScheduleRequest{Paused: ch.Paused, MasterBalance: ch.MasterBalance, MaxMovesPerNode: ch.MaxMovesPerNode, MaxMoves: ch.MaxMoves,
		FullsyncRate: ch.FullSyncRate}
	if ch.DownTimeout != nil {
		ms := ch.DownTimeout.Milliseconds()
		req.DownTimeoutMs = &ms
	}
	write := ch != (ScheduleChange{})
	resp, _, err := c.callMeta(ctx, "schedule", func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_Schedule{Schedule: req}}
	}, write)
	if err != nil {
		return nil, err
	}
	return scheduleFromPB(resp.GetSchedule()), nil
}

func scheduleFromPB(r *zppb.ScheduleResponse) *ScheduleStatus {
	sc := r.GetSchedule()
	st := &ScheduleStatus{
		Settings: ScheduleSettings{Paused: sc.GetPaused(), DownTimeoutMs: sc.GetDownTimeoutMs(), MasterBalance: !sc.GetMasterBalanceOff(),
			MaxMovesPerNode: sc.GetMaxMovesPerNode(), MaxMoves: sc.GetMaxMoves(), FullSyncRate: sc.GetFullsyncRate()},
		Doing: r.GetDoing(), MovesInFlight: r.GetMovesInFlight(), MasterImbalance: r.GetMasterImbalance(), Epoch: r.GetEpoch(),
		UnderReplicated: []Shortfall{}, Down: []DownNode{}, Events: []ScheduleEvent{},
	}
	for _, u := range r.GetUnderReplicated() {
		st.UnderReplicated = append(st.UnderReplicated, Shortfall{Table: u.GetTable(), Partition: u.GetPartition(), Replicas: u.GetReplicas(), Want: u.GetWant()})
	}
	for _, d := range r.GetDown() {
		st.Down = append(st.Down, DownNode{Addr: d.GetAddr(), DownSinceMs: d.GetDownSinceUnixMs(), RepairAtMs: d.GetRepairAtUnixMs(), Replicas: d.GetReplicas()})
	}
	for _, e := range r.GetEvents() {
		st.Events = append(st.Events, ScheduleEvent{UnixMs: e.GetUnixMs(), Kind: e.GetKind(), Message: e.GetMessage(), Moves: e.GetMoves()})
	}
	return st
}
