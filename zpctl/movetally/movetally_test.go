package movetally

import (
	"fmt"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
)

var t0 = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

// mv is a move of the operation queued at t0.
func mv(id uint64, st client.MoveState, copied, total uint64, eta time.Duration) client.Move {
	return client.Move{ID: id, State: st, Origin: "expand", CreatedMs: t0.UnixMilli(),
		BytesCopied: copied, BytesTotal: total, EtaMs: eta.Milliseconds()}
}

func TestSummarize(t *testing.T) {
	const MiB = 1 << 20
	tests := []struct {
		name string
		// seen are earlier MOVE_STATUS answers, observed in order; last
		// is the one summed up, at now.
		seen [][]client.Move
		last []client.Move
		now  time.Duration
		want Summary
	}{
		{"all pending", nil, []client.Move{mv(1, client.MovePending, 0, 0, 0), mv(2, client.MovePending, 0, 0, 0)}, time.Second,
			Summary{Moves: 2, Pending: 2}},
		{"one sync running, others pending: unknown", nil,
			[]client.Move{mv(1, client.MoveCatchingUp, 10*MiB, 40*MiB, 30*time.Second), mv(2, client.MovePending, 0, 0, 0)}, time.Second,
			Summary{Moves: 2, Running: 1, Pending: 1, BytesMoved: 10 * MiB}},
		{"the last syncs running: their longest ETA", nil,
			[]client.Move{mv(1, client.MoveCatchingUp, 10*MiB, 40*MiB, 30*time.Second), mv(2, client.MoveCatchingUp, 0, 0, 5*time.Second)}, time.Second,
			Summary{Moves: 2, Running: 2, BytesMoved: 10 * MiB, ETA: 30 * time.Second, ETAKnown: true}},
		{"a done move's whole sync counts, though MOVE_STATUS drops its bytes",
			[][]client.Move{{mv(1, client.MoveCatchingUp, 30*MiB, 40*MiB, time.Second), mv(2, client.MoveCatchingUp, 5*MiB, 0, 0)}},
			[]client.Move{mv(1, client.MoveDone, 0, 0, 0), mv(2, client.MoveSlowdown, 0, 0, 0), mv(3, client.MovePending, 0, 0, 0),
				mv(4, client.MovePending, 0, 0, 0)},
			// 1 of 4 ended after 20s: 3 left take 60s.
			20 * time.Second,
			Summary{Moves: 4, Ended: 1, Running: 1, Pending: 2, BytesMoved: 45 * MiB, ETA: time.Minute, ETAKnown: true}},
		{"never less than a sync's own ETA", nil,
			[]client.Move{mv(1, client.MoveDone, 0, 0, 0), mv(2, client.MoveCatchingUp, MiB, 100*MiB, 5*time.Minute)}, 10 * time.Second,
			Summary{Moves: 2, Ended: 1, Running: 1, BytesMoved: MiB, ETA: 5 * time.Minute, ETAKnown: true}},
		{"rolled back moves move nothing; all ended: ETA 0",
			[][]client.Move{{mv(1, client.MoveCatchingUp, 8*MiB, 9*MiB, 0), mv(2, client.MoveCatchingUp, 2*MiB, 4*MiB, 0)}},
			[]client.Move{mv(1, client.MoveCancelled, 0, 0, 0), mv(2, client.MoveDone, 0, 0, 0)}, time.Minute,
			Summary{Moves: 2, Ended: 2, BytesMoved: 4 * MiB, ETAKnown: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tl Tally
			for _, s := range tt.seen {
				tl.Observe(s)
			}
			tl.Observe(tt.last)
			if got := tl.Summarize(tt.last, t0.Add(tt.now)); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestOperations(t *testing.T) {
	moves := []client.Move{
		{ID: 1, Origin: "manual", CreatedMs: 100},
		{ID: 2, Origin: "expand", CreatedMs: 200},
		{ID: 3, Origin: "expand", CreatedMs: 200},
		{ID: 4, Origin: "manual", CreatedMs: 300},
		{ID: 5, Origin: "expand", CreatedMs: 200},
	}
	var got [][]uint64
	for _, op := range Operations(moves) {
		var ids []uint64
		for _, m := range op {
			ids = append(ids, m.ID)
		}
		got = append(got, ids)
	}
	if want := [][]uint64{{1}, {2, 3, 5}, {4}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("operations %v, want %v", got, want)
	}
}
