// Package movetally sums up an operation of several topology moves
// (expand, shrink, replace-node): how many have ended, the bytes their
// full syncs moved, and an overall ETA. `zpctl expand` and the others
// report it while they follow their moves, and `zpctl top` for each
// operation in progress, so the two agree.
//
// The meta servers report a move's bytes only while its full sync runs
// (MOVE_STATUS); a Tally remembers the most it saw of each move, so that
// the bytes of moves that have ended still count.
package movetally

import (
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
)

// Tally remembers what it saw of each move's full sync. The zero value
// is ready to use; it is not safe for concurrent use.
type Tally struct {
	seen map[uint64]fullSync
}

// fullSync is the most seen of one move's full sync.
type fullSync struct{ copied, total uint64 }

// Summary is where an operation stands.
type Summary struct {
	// Moves counts the operation's moves; Ended those DONE, FAILED or
	// CANCELLED; Running those past PENDING and not ended.
	Moves, Ended, Running, Pending int
	// BytesMoved is what the full syncs copied: the whole of each sync
	// of a move DONE, so far of those running; nothing of moves rolled
	// back.
	BytesMoved uint64
	// ETA is when the last move should end, from now; valid only when
	// ETAKnown (see Summarize for how it is reckoned).
	ETA      time.Duration
	ETAKnown bool
}

// Observe takes in the moves of one MOVE_STATUS (or survey).
func (t *Tally) Observe(moves []client.Move) {
	if t.seen == nil {
		t.seen = map[uint64]fullSync{}
	}
	for _, m := range moves {
		s := t.seen[m.ID]
		s.copied, s.total = max(s.copied, m.BytesCopied), max(s.total, m.BytesTotal)
		t.seen[m.ID] = s
	}
}

// Summarize sums up moves, the operation's as last seen (after Observe),
// at now.
//
// The ETA is reckoned from the moves that ended: the time since the first
// was queued (the meta leader's CreatedMs), times the moves left over the
// moves ended, as moves of one operation are alike and run a few at a
// time; but never less than the longest ETA of a full sync running (the
// node's own, from its copy rate). Before any move ended it is that
// longest ETA when no move is still PENDING, else unknown.
func (t *Tally) Summarize(moves []client.Move, now time.Time) Summary {
	var s Summary
	var first int64
	var longest time.Duration
	for _, m := range moves {
		s.Moves++
		seen := t.seen[m.ID]
		switch {
		case m.State.Ended():
			s.Ended++
			if m.State == client.MoveDone {
				// A sync seen copying was copied whole.
				s.BytesMoved += max(seen.total, seen.copied)
			}
		case m.State == client.MovePending:
			s.Pending++
		default:
			s.Running++
			s.BytesMoved += max(seen.copied, m.BytesCopied)
			longest = max(longest, time.Duration(m.EtaMs)*time.Millisecond)
		}
		if m.CreatedMs > 0 && (first == 0 || m.CreatedMs < first) {
			first = m.CreatedMs
		}
	}
	left := s.Moves - s.Ended
	switch {
	case left == 0:
		s.ETAKnown = true
	case s.Ended > 0 && first > 0:
		elapsed := max(now.Sub(time.UnixMilli(first)), 0)
		s.ETA = max(elapsed*time.Duration(left)/time.Duration(s.Ended), longest)
		s.ETAKnown = true
	case s.Pending == 0 && longest > 0:
		s.ETA, s.ETAKnown = longest, true
	}
	return s
}

// Operations groups moves into the operations that queued them: the
// moves one REBALANCE queued share their origin and their creation time
// (one Raft entry). Groups come in the order of their first move.
func Operations(moves []client.Move) [][]client.Move {
	type key struct {
		origin  string
		created int64
	}
	idx := map[key]int{}
	var out [][]client.Move
	for _, m := range moves {
		k := key{m.Origin, m.CreatedMs}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], m)
	}
	return out
}
