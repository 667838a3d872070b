package client

import (
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// MoveKind is what a move changes, named as the zpctl command that queues
// it.
type MoveKind string

// The kinds of move.
const (
	// MoveMigrate moves a replica from one node to another, keeping its
	// role.
	MoveMigrate MoveKind = "migrate"
	// MoveSetMaster hands a partition to one of its slaves.
	MoveSetMaster MoveKind = "setmaster"
	// MoveAddSlave adds a slave.
	MoveAddSlave MoveKind = "addslave"
	// MoveRemoveSlave removes a slave.
	MoveRemoveSlave MoveKind = "removeslave"
	// MoveSplit splits a partition's slot range in two.
	MoveSplit MoveKind = "split"
)

// MoveState is where a move is in the meta servers' state machine (see
// docs/topology.md).
type MoveState string

// The states of a move, in the order a move that succeeds goes through
// them; FAILED and CANCELLED end a move that was rolled back.
const (
	MovePending    MoveState = "PENDING"
	MoveCatchingUp MoveState = "CATCHING_UP"
	MoveSlowdown   MoveState = "SLOWDOWN"
	MoveStuck      MoveState = "STUCK"
	MoveRemoving   MoveState = "REMOVING"
	MoveDone       MoveState = "DONE"
	MoveFailed     MoveState = "FAILED"
	MoveCancelled  MoveState = "CANCELLED"
	// A split's states: its replicas create the new partition at the
	// master's fence (PREPARE), then the ranges switch (COMMITTED).
	MovePrepare   MoveState = "PREPARE"
	MoveCommitted MoveState = "COMMITTED"
)

// Ended reports whether the move is over: DONE, FAILED or CANCELLED.
func (s MoveState) Ended() bool { return s == MoveDone || s.Failed() }

// Failed reports whether the move ended without its change: FAILED or
// CANCELLED, and rolled back.
func (s MoveState) Failed() bool { return s == MoveFailed || s == MoveCancelled }

// Running reports whether the target is catching up or taking over: the
// states in which Move.RecordsBehind means something.
func (s MoveState) Running() bool { return s == MoveCatchingUp || s == MoveSlowdown || s == MoveStuck }

// Move is one topology change of one partition as the meta leader reports
// it.
type Move struct {
	ID        uint64   `json:"id"`
	Kind      MoveKind `json:"kind"`
	Table     string   `json:"table"`
	Partition uint32   `json:"partition"`
	// From and To are the replica's node before and after a MIGRATE; the
	// new master of a SETMASTER (To, with From its old master once known);
	// the node an ADDSLAVE adds (To) or a REMOVESLAVE removes (From).
	From  string    `json:"from"`
	To    string    `json:"to"`
	State MoveState `json:"state"`
	// Error says why a move FAILED or was CANCELLED.
	Error string `json:"error"`
	// Origin is what queued it: "manual", "expand", "shrink", "replace",
	// "scheduler".
	Origin string `json:"origin"`
	// Reason says why the scheduler queued it.
	Reason string `json:"reason,omitempty"`
	// CreatedMs and UpdatedMs are Unix milliseconds.
	CreatedMs int64 `json:"created_ms"`
	UpdatedMs int64 `json:"updated_ms"`
	// Term is the partition's term when the move entered SLOWDOWN; 0
	// before.
	Term uint64 `json:"term"`
	// Progress while the target catches up: its full sync's bytes, rate
	// and ETA, and the records it is behind the master.
	BytesTotal    uint64  `json:"bytes_total"`
	BytesCopied   uint64  `json:"bytes_copied"`
	RecordsBehind uint64  `json:"records_behind"`
	BytesPerSec   float64 `json:"bytes_per_sec"`
	EtaMs         int64   `json:"eta_ms"`
	// StuckMs is how long the partition was STUCK, once past it.
	StuckMs int64 `json:"stuck_ms"`
	// A split: the first slot of the new partition, its id (from
	// PREPARE), and in PREPARE how many replicas hold it.
	SplitAt       uint32 `json:"split_at,omitempty"`
	SplitChild    uint32 `json:"split_child,omitempty"`
	SplitChildren uint32 `json:"split_children,omitempty"`
}

// Leaving returns the node the move takes a replica or a master off
// while it runs: a MIGRATE's or REMOVESLAVE's source, a SETMASTER's old
// master (known once it started); "" for an ADDSLAVE and a move that ended.
func (m Move) Leaving() string {
	if m.State.Ended() || m.Kind == MoveAddSlave {
		return ""
	}
	return m.From
}

// LeavingNodes are the nodes moves take something off (Move.Leaving): a
// cordoned one among them is being drained.
func LeavingNodes(moves []Move) map[string]bool {
	out := make(map[string]bool)
	for _, m := range moves {
		if a := m.Leaving(); a != "" {
			out[a] = true
		}
	}
	return out
}

// ETA is EtaMs as a duration.
func (m Move) ETA() time.Duration { return time.Duration(m.EtaMs) * time.Millisecond }

// Stuck is StuckMs as a duration.
func (m Move) Stuck() time.Duration { return time.Duration(m.StuckMs) * time.Millisecond }

func movesFromPB(in []*zppb.Move) []Move {
	out := make([]Move, 0, len(in))
	for _, m := range in {
		out = append(out, Move{ID: m.GetId(), Kind: MoveKind(strings.ToLower(m.GetKind().String())), Table: m.GetTable(),
			Partition: m.GetPartition(), From: m.GetFrom(), To: m.GetTo(),
			State: MoveState(strings.TrimPrefix(m.GetState().String(), "MOVE_")), Error: m.GetError(), Origin: m.GetOrigin(), Reason: m.GetReason(),
			CreatedMs: m.GetCreatedMs(), UpdatedMs: m.GetUpdatedMs(), Term: m.GetTerm(),
			BytesTotal: m.GetBytesTotal(), BytesCopied: m.GetBytesCopied(), RecordsBehind: m.GetRecordsBehind(),
			BytesPerSec: m.GetBytesPerSec(), EtaMs: m.GetEtaMs(), StuckMs: m.GetStuckMs(),
			SplitAt: m.GetSplitAt(), SplitChild: m.GetSplitChild(), SplitChildren: m.GetSplitChildren()})
	}
	return out
}

// movesPB returns the moves' kinds, partitions and nodes as the protocol
// has them.
func movesPB(moves []Move) ([]*zppb.Move, error) {
	out := make([]*zppb.Move, len(moves))
	for i, m := range moves {
		k := zppb.MoveKind(zppb.MoveKind_value[strings.ToUpper(string(m.Kind))])
		if k == zppb.MoveKind_MOVE_KIND_UNKNOWN {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "unknown move kind %q", m.Kind)
		}
		out[i] = &zppb.Move{Kind: k, Table: m.Table, Partition: m.Partition, From: m.From, To: m.To}
	}
	return out, nil
}

// RebalanceMode is the kind of plan Rebalance makes.
type RebalanceMode string

// The rebalance plans.
const (
	// RebalanceExpand spreads the replicas over every UP node.
	RebalanceExpand RebalanceMode = "expand"
	// RebalanceShrink moves every replica off the nodes given.
	RebalanceShrink RebalanceMode = "shrink"
	// RebalanceReplace moves every replica of nodes[0] to nodes[1].
	RebalanceReplace RebalanceMode = "replace"
)

func (m RebalanceMode) pb() (zppb.RebalanceRequest_Mode, bool) {
	v, ok := zppb.RebalanceRequest_Mode_value[strings.ToUpper(string(m))]
	return zppb.RebalanceRequest_Mode(v), ok
}
