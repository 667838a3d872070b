package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/bytesize"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// Topology moves as the meta servers report them (MOVE_STATUS): how they
// are printed, and how a command follows the moves it queued until they
// end (see docs/topology.md for the state machine).

// ErrMoveFailed means a move the command queued ended FAILED or CANCELLED
// (and was rolled back).
var ErrMoveFailed = errors.New("move did not complete")

// moveJSON is one move in --output json or yaml.
type moveJSON struct {
	ID uint64 `json:"id"`
	// Kind is "migrate", "setmaster", "addslave" or "removeslave".
	Kind      string `json:"kind"`
	Table     string `json:"table"`
	Partition uint32 `json:"partition"`
	From      string `json:"from"`
	To        string `json:"to"`
	// State is PENDING, CATCHING_UP, SLOWDOWN, STUCK, REMOVING, DONE,
	// FAILED or CANCELLED.
	State string `json:"state"`
	Error string `json:"error"`
	// Origin is what queued it: "manual", "expand", "shrink", "replace".
	Origin    string `json:"origin"`
	CreatedMs int64  `json:"created_ms"`
	UpdatedMs int64  `json:"updated_ms"`
	// Progress while the target catches up: its full sync's bytes, rate
	// and ETA, and the records it is behind the master.
	BytesTotal    uint64  `json:"bytes_total"`
	BytesCopied   uint64  `json:"bytes_copied"`
	RecordsBehind uint64  `json:"records_behind"`
	BytesPerSec   float64 `json:"bytes_per_sec"`
	EtaMs         int64   `json:"eta_ms"`
	// StuckMs is how long the partition was STUCK, once past it.
	StuckMs int64 `json:"stuck_ms"`
}

func movesJSON(moves []*zppb.Move) []moveJSON {
	out := make([]moveJSON, 0, len(moves))
	for _, m := range moves {
		out = append(out, moveJSON{ID: m.GetId(), Kind: moveKind(m.GetKind()), Table: m.GetTable(), Partition: m.GetPartition(),
			From: m.GetFrom(), To: m.GetTo(), State: moveState(m.GetState()), Error: m.GetError(), Origin: m.GetOrigin(),
			CreatedMs: m.GetCreatedMs(), UpdatedMs: m.GetUpdatedMs(), BytesTotal: m.GetBytesTotal(), BytesCopied: m.GetBytesCopied(),
			RecordsBehind: m.GetRecordsBehind(), BytesPerSec: m.GetBytesPerSec(), EtaMs: m.GetEtaMs(), StuckMs: m.GetStuckMs()})
	}
	return out
}

// moveKind is "migrate", "setmaster" ...: the command that queues it.
func moveKind(k zppb.MoveKind) string { return strings.ToLower(k.String()) }

// moveState is the state without its MOVE_ prefix: CATCHING_UP, DONE ...
func moveState(s zppb.MoveState) string { return strings.TrimPrefix(s.String(), "MOVE_") }

func moveEnded(s zppb.MoveState) bool {
	return s == zppb.MoveState_MOVE_DONE || s == zppb.MoveState_MOVE_FAILED || s == zppb.MoveState_MOVE_CANCELLED
}

func moveFailed(s zppb.MoveState) bool {
	return s == zppb.MoveState_MOVE_FAILED || s == zppb.MoveState_MOVE_CANCELLED
}

// moveRunning reports whether the target is catching up or handing over:
// the states in which records behind means something.
func moveRunning(s zppb.MoveState) bool {
	return s == zppb.MoveState_MOVE_CATCHING_UP || s == zppb.MoveState_MOVE_SLOWDOWN || s == zppb.MoveState_MOVE_STUCK
}

// moveWhat is "migrate default/3 A -> B".
func moveWhat(m *zppb.Move) string {
	return fmt.Sprintf("%s %s/%d %s", moveKind(m.GetKind()), m.GetTable(), m.GetPartition(), moveArrow(m))
}

// moveArrow is "A -> B", "-> B" or "A ->" for the one-sided kinds.
func moveArrow(m *zppb.Move) string {
	return strings.TrimSpace(m.GetFrom() + " -> " + m.GetTo())
}

// writeMoves prints moves as a table.
func writeMoves(w io.Writer, moves []*zppb.Move) error {
	t := output.Table{Header: []string{"ID", "KIND", "PARTITION", "MOVE", "STATE", "COPIED", "BEHIND", "RATE", "ETA", "STUCK", "ERROR"}}
	for _, m := range moves {
		copied, behind, rate, eta, stuck := "-", "-", "-", "-", "-"
		if m.GetBytesTotal() > 0 {
			copied = fmt.Sprintf("%s/%s", bytesize.Format(m.GetBytesCopied()), bytesize.Format(m.GetBytesTotal()))
		}
		if moveRunning(m.GetState()) {
			behind = fmt.Sprint(m.GetRecordsBehind())
		}
		if m.GetBytesPerSec() > 0 {
			rate = bytesize.Format(uint64(m.GetBytesPerSec())) + "/s"
		}
		if m.GetEtaMs() > 0 {
			eta = msDuration(m.GetEtaMs()).String()
		}
		if m.GetStuckMs() > 0 {
			stuck = msDuration(m.GetStuckMs()).String()
		}
		t.Rows = append(t.Rows, []string{fmt.Sprint(m.GetId()), moveKind(m.GetKind()), fmt.Sprintf("%s/%d", m.GetTable(), m.GetPartition()),
			moveArrow(m), moveState(m.GetState()), copied, behind, rate, eta, stuck, output.Dash(m.GetError())})
	}
	return output.WriteTable(w, t)
}

func msDuration(ms int64) time.Duration {
	d := time.Duration(ms) * time.Millisecond
	if d >= 10*time.Second {
		return d.Round(time.Second)
	}
	return d
}

// progressSummary is the detail of a follow's progress: the moves running
// and the bytes they copied.
func progressSummary(moves []*zppb.Move) string {
	var running, pending int
	var copied, total, behind uint64
	for _, m := range moves {
		switch {
		case m.GetState() == zppb.MoveState_MOVE_PENDING:
			pending++
		case !moveEnded(m.GetState()):
			running++
			copied += m.GetBytesCopied()
			total += m.GetBytesTotal()
			if moveRunning(m.GetState()) {
				behind += m.GetRecordsBehind()
			}
		}
	}
	var parts []string
	if running > 0 {
		parts = append(parts, fmt.Sprintf("%d running", running))
	}
	if pending > 0 {
		parts = append(parts, fmt.Sprintf("%d pending", pending))
	}
	if total > 0 {
		parts = append(parts, fmt.Sprintf("copied %s/%s", bytesize.Format(copied), bytesize.Format(total)))
	}
	if behind > 0 {
		parts = append(parts, fmt.Sprintf("%d records behind", behind))
	}
	return strings.Join(parts, ", ")
}

// quietLines is the longest a follow off a terminal stays silent.
const quietLines = 10 * time.Second

// followOptions tune followMoves.
type followOptions struct {
	// poll is the time between two MOVE_STATUS calls.
	poll time.Duration
	// timeout bounds the whole wait; 0 waits until the moves end.
	timeout time.Duration
}

// followMoves asks MOVE_STATUS until every move of queued has ended,
// reporting on stderr, and returns the moves as they ended, in queued's
// order. A move that ends FAILED or CANCELLED makes the error
// ErrMoveFailed (naming each); the moves are returned with any error.
// Interrupted or out of time, it says that the moves keep running.
func (a *app) followMoves(ctx context.Context, c *client.Client, label string, queued []*zppb.Move, fo followOptions) ([]*zppb.Move, error) {
	latest := make([]*zppb.Move, len(queued))
	copy(latest, queued)
	term := a.env.StderrIsTerminal != nil && a.env.StderrIsTerminal()
	// On a terminal the bar says how far the whole is; each state change
	// of a handful of moves is worth a line, of a big rebalance not.
	verbose := !term || len(queued) <= 5
	prog := a.newProgress(label, "moves", int64(len(queued)))
	// Off a terminal nothing is redrawn: a line at least every
	// quietLines says the moves are alive (a long full sync).
	lastLine := time.Now()
	logf := func(format string, args ...any) {
		lastLine = time.Now()
		prog.Log(fmt.Sprintf(format, args...))
	}
	ended, gone := 0, 0
	missing := map[uint64]int{}
	for _, m := range queued {
		if verbose {
			logf("move %d queued: %s", m.GetId(), moveWhat(m))
		}
		if moveEnded(m.GetState()) {
			ended++
			prog.Add(1)
		}
	}
	if fo.poll <= 0 {
		fo.poll = 250 * time.Millisecond
	}
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if fo.timeout > 0 {
		wctx, cancel = context.WithTimeout(ctx, fo.timeout)
	}
	defer cancel()
	lastOK := time.Now()
	t := time.NewTicker(fo.poll)
	defer t.Stop()
	for ended < len(latest) {
		select {
		case <-wctx.Done():
			err := fmt.Errorf("%s: stopped following after %d of %d moves ended; the others keep running (zpctl migrate status): %w",
				label, ended, len(latest), wctx.Err())
			prog.Done(err)
			return latest, err
		case <-t.C:
		}
		// Each call gets --timeout of its own, within the caller's
		// context: --wait-timeout is checked between calls.
		cctx, ccancel := context.WithTimeout(ctx, a.timeout)
		moves, err := c.MoveStatus(cctx, true)
		ccancel()
		if err != nil {
			if ctx.Err() != nil {
				continue // reported at the top of the loop
			}
			// A new meta leader takes a few seconds; the moves go on.
			if time.Since(lastOK) > 3*a.timeout {
				err = fmt.Errorf("%s: move status: %w; the moves keep running (zpctl migrate status)", label, err)
				prog.Done(err)
				return latest, err
			}
			logf("move status: %v", err)
			continue
		}
		lastOK = time.Now()
		byID := make(map[uint64]*zppb.Move, len(moves))
		for _, m := range moves {
			byID[m.GetId()] = m
		}
		// The moves that ended in this poll count once the detail says
		// how the others are, so that the line or bar agrees.
		newlyEnded := 0
		for i, old := range latest {
			if old == nil || moveEnded(old.GetState()) {
				continue
			}
			m := byID[old.GetId()]
			if m == nil {
				// Finished moves are kept for a while only; one queued a
				// moment ago is always listed, so three misses in a row
				// mean it ended long enough ago to be forgotten.
				if missing[old.GetId()]++; missing[old.GetId()] >= 3 {
					logf("move %d is no longer listed by the meta servers", old.GetId())
					latest[i] = nil
					ended++
					gone++
					newlyEnded++
				}
				continue
			}
			delete(missing, m.GetId())
			latest[i] = m
			if m.GetState() == old.GetState() {
				continue
			}
			switch {
			case moveFailed(m.GetState()):
				logf("move %d %s: %s", m.GetId(), moveState(m.GetState()), output.Dash(m.GetError()))
			case m.GetState() == zppb.MoveState_MOVE_DONE:
				stuck := ""
				if m.GetStuckMs() > 0 {
					stuck = fmt.Sprintf(" (STUCK %v)", msDuration(m.GetStuckMs()))
				}
				logf("move %d DONE: %s%s", m.GetId(), moveWhat(m), stuck)
			case verbose:
				logf("move %d %s -> %s", m.GetId(), moveState(old.GetState()), moveState(m.GetState()))
			}
			if moveEnded(m.GetState()) {
				ended++
				newlyEnded++
			}
		}
		var live []*zppb.Move
		for _, m := range latest {
			if m != nil {
				live = append(live, m)
			}
		}
		summary := progressSummary(live)
		prog.SetDetail(summary)
		if newlyEnded > 0 {
			lastLine = time.Now()
			prog.Add(int64(newlyEnded))
		}
		if !term && summary != "" && time.Since(lastLine) >= quietLines {
			logf("%d/%d moves ended, %s", ended, len(latest), summary)
		}
	}
	out := make([]*zppb.Move, 0, len(latest))
	var failed []string
	for _, m := range latest {
		if m == nil {
			continue
		}
		out = append(out, m)
		if moveFailed(m.GetState()) {
			failed = append(failed, fmt.Sprintf("move %d (%s/%d) %s: %s", m.GetId(), m.GetTable(), m.GetPartition(),
				moveState(m.GetState()), output.Dash(m.GetError())))
		}
	}
	var err error
	switch {
	case len(failed) > 0:
		err = fmt.Errorf("%s: %w: %s", label, ErrMoveFailed, strings.Join(failed, "; "))
	case gone > 0:
		err = fmt.Errorf("%s: %d move(s) no longer listed by the meta servers: check the topology", label, gone)
	}
	prog.Done(err)
	return out, err
}
