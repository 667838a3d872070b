package server

import (
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestPositionReport(t *testing.T) {
	pos := func(id uint32, lsn uint64) *zppb.ReplicaPosition {
		return &zppb.ReplicaPosition{Table: "t", Partition: id, Term: 1, Lsn: lsn}
	}
	state := func(ps ...*zppb.ReplicaPosition) map[replicaKey]*zppb.ReplicaPosition {
		m := map[replicaKey]*zppb.ReplicaPosition{}
		for _, p := range ps {
			m[replicaKey{p.Table, p.Partition}] = p
		}
		return m
	}
	deltaOK := func(seq uint64) *zppb.PingResponse {
		return &zppb.PingResponse{PositionsDelta: true, PositionsSeq: seq}
	}
	tests := []struct {
		name      string
		cur       map[replicaKey]*zppb.ReplicaPosition
		resp      func(seq uint64) *zppb.PingResponse
		base      bool     // the PING is a delta
		positions []uint32 // partitions it carries
		removed   []uint32
		again     bool
	}{
		{"first: all", state(pos(0, 1), pos(1, 1), pos(2, 1)), deltaOK, false, []uint32{0, 1, 2}, nil, false},
		{"nothing changed: nothing", state(pos(0, 1), pos(1, 1), pos(2, 1)), deltaOK, true, nil, nil, false},
		{"one write, one replica gone", state(pos(0, 2), pos(1, 1)), deltaOK, true, []uint32{0}, []uint32{2}, false},
		{"a new leader holds none: ping again", state(pos(0, 2), pos(1, 1)),
			func(uint64) *zppb.PingResponse { return deltaOK(0) }, true, nil, nil, true},
		{"then all", state(pos(0, 2), pos(1, 1)), deltaOK, false, []uint32{0, 1}, nil, false},
		{"an older leader took the delta for all: ping again", state(pos(0, 3), pos(1, 1)),
			func(uint64) *zppb.PingResponse { return &zppb.PingResponse{} }, true, []uint32{0}, nil, true},
		{"all to it, every time", state(pos(0, 3), pos(1, 1)),
			func(uint64) *zppb.PingResponse { return &zppb.PingResponse{} }, false, []uint32{0, 1}, nil, false},
		{"a newer leader again: still all", state(pos(0, 3), pos(1, 1)), deltaOK, false, []uint32{0, 1}, nil, false},
		{"deltas again", state(pos(0, 3), pos(1, 2)), deltaOK, true, []uint32{1}, nil, false},
	}
	var r positionReport
	for _, tt := range tests {
		req := &zppb.PingRequest{}
		r.fill(req, tt.cur)
		if (req.PositionsBase != 0) != tt.base {
			t.Errorf("%s: base %d, want a delta: %v", tt.name, req.PositionsBase, tt.base)
		}
		if got := partitions(req.Positions); !equalSet(got, tt.positions) {
			t.Errorf("%s: positions of %v, want %v", tt.name, got, tt.positions)
		}
		if got := partitions(req.RemovedPositions); !equalSet(got, tt.removed) {
			t.Errorf("%s: removed %v, want %v", tt.name, got, tt.removed)
		}
		if again := r.answered(req.PositionsSeq, req.PositionsBase != 0, tt.resp(req.PositionsSeq)); again != tt.again {
			t.Errorf("%s: again %v, want %v", tt.name, again, tt.again)
		}
	}
}

func partitions(ps []*zppb.ReplicaPosition) []uint32 {
	var out []uint32
	for _, p := range ps {
		out = append(out, p.Partition)
	}
	return out
}

func equalSet(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[uint32]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		if seen[x] == 0 {
			return false
		}
		seen[x]--
	}
	return true
}
