package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/bytesize"
	"github.com/zeppelin-kv/zeppelin/zpctl/movetally"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// Topology moves as the meta servers report them (MOVE_STATUS): how they
// are printed, and how a command follows the moves it queued until they
// end (see docs/topology.md for the state machine).

// ErrMoveFailed means a move the command queued ended FAILED or CANCELLED
// (and was rolled back).
var ErrMoveFailed = errors.New("move did not complete")

// listed is s, or an empty slice for nil: JSON lists print as [] rather
// than null.
func listed[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// moveWhat is "migrate default/3 A -> B".
func moveWhat(m client.Move) string {
	return fmt.Sprintf("%s %s/%d %s", m.Kind, m.Table, m.Partition, moveArrow(m))
}

// moveArrow is "A -> B", "-> B" or "A ->" for the one-sided kinds.
func moveArrow(m client.Move) string {
	if m.Kind == client.MoveSplit {
		return splitArrow(m)
	}
	return strings.TrimSpace(m.From + " -> " + m.To)
}

// writeMoves prints moves as a table.
func writeMoves(w io.Writer, moves []client.Move) error {
	t := output.Table{Header: []string{"ID", "KIND", "PARTITION", "MOVE", "STATE", "COPIED", "BEHIND", "RATE", "ETA", "STUCK", "ERROR"}}
	for _, m := range moves {
		copied, behind, rate, eta, stuck := "-", "-", "-", "-", "-"
		if m.BytesTotal > 0 {
			copied = fmt.Sprintf("%s/%s", bytesize.Format(m.BytesCopied), bytesize.Format(m.BytesTotal))
		}
		if m.State.Running() {
			behind = fmt.Sprint(m.RecordsBehind)
		}
		if m.State == client.MovePrepare {
			// A split: the replicas holding the new partition so far.
			copied = fmt.Sprintf("%d replicas", m.SplitChildren)
		}
		if m.BytesPerSec > 0 {
			rate = bytesize.Format(uint64(m.BytesPerSec)) + "/s"
		}
		if m.EtaMs > 0 {
			eta = msDuration(m.EtaMs).String()
		}
		if m.StuckMs > 0 {
			stuck = msDuration(m.StuckMs).String()
		}
		t.Rows = append(t.Rows, []string{fmt.Sprint(m.ID), string(m.Kind), fmt.Sprintf("%s/%d", m.Table, m.Partition),
			moveArrow(m), string(m.State), copied, behind, rate, eta, stuck, output.Dash(m.Error)})
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
// and the bytes they copied, then, of the whole operation (sum), the
// bytes its full syncs moved and its ETA.
func progressSummary(moves []client.Move, sum movetally.Summary) string {
	var running, pending int
	var copied, total, behind uint64
	for _, m := range moves {
		switch {
		case m.State == client.MovePending:
			pending++
		case !m.State.Ended():
			running++
			copied += m.BytesCopied
			total += m.BytesTotal
			if m.State.Running() {
				behind += m.RecordsBehind
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
	// Moved says more than copied once moves that copied have ended.
	if sum.BytesMoved > copied {
		parts = append(parts, "moved "+bytesize.Format(sum.BytesMoved))
	}
	if sum.ETAKnown && sum.ETA > 0 {
		parts = append(parts, "ETA "+sum.ETA.Round(time.Second).String())
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
// order, and the bytes their full syncs moved (movetally). A move that
// ends FAILED or CANCELLED makes the error ErrMoveFailed (naming each);
// the moves are returned with any error. Interrupted or out of time, it
// says that the moves keep running.
func (a *app) followMoves(ctx context.Context, c *client.Client, label string, queued []client.Move, fo followOptions) ([]client.Move, uint64, error) {
	latest := slices.Clone(queued)
	// forgotten marks the moves the meta servers no longer list.
	forgotten := make([]bool, len(latest))
	kept := func() []client.Move {
		var out []client.Move
		for i, m := range latest {
			if !forgotten[i] {
				out = append(out, m)
			}
		}
		return out
	}
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
	var tally movetally.Tally
	moved := func() uint64 { return tally.Summarize(kept(), time.Now()).BytesMoved }
	for _, m := range queued {
		if verbose {
			logf("move %d queued: %s", m.ID, moveWhat(m))
		}
		if m.State.Ended() {
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
			return kept(), moved(), err
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
				return kept(), moved(), err
			}
			logf("move status: %v", err)
			continue
		}
		lastOK = time.Now()
		byID := make(map[uint64]client.Move, len(moves))
		for _, m := range moves {
			byID[m.ID] = m
		}
		// The moves that ended in this poll count once the detail says
		// how the others are, so that the line or bar agrees.
		newlyEnded := 0
		for i, old := range latest {
			if forgotten[i] || old.State.Ended() {
				continue
			}
			m, ok := byID[old.ID]
			if !ok {
				// Finished moves are kept for a while only; one queued a
				// moment ago is always listed, so three misses in a row
				// mean it ended long enough ago to be forgotten.
				if missing[old.ID]++; missing[old.ID] >= 3 {
					logf("move %d is no longer listed by the meta servers", old.ID)
					forgotten[i] = true
					ended++
					gone++
					newlyEnded++
				}
				continue
			}
			delete(missing, m.ID)
			if m.From == "" {
				// The leader names a SETMASTER's source once it runs it;
				// the command knew it from its plan.
				m.From = old.From
			}
			latest[i] = m
			if m.State == old.State {
				continue
			}
			switch {
			case m.State.Failed():
				logf("move %d %s: %s", m.ID, string(m.State), output.Dash(m.Error))
			case m.State == client.MoveDone:
				stuck := ""
				if m.StuckMs > 0 {
					stuck = fmt.Sprintf(" (STUCK %v)", msDuration(m.StuckMs))
				}
				logf("move %d DONE: %s%s", m.ID, moveWhat(m), stuck)
			case verbose:
				logf("move %d %s -> %s", m.ID, string(old.State), string(m.State))
			}
			if m.State.Ended() {
				ended++
				newlyEnded++
			}
		}
		tally.Observe(kept())
		summary := progressSummary(kept(), tally.Summarize(kept(), time.Now()))
		prog.SetDetail(summary)
		if newlyEnded > 0 {
			lastLine = time.Now()
			prog.Add(int64(newlyEnded))
		}
		if !term && summary != "" && time.Since(lastLine) >= quietLines {
			logf("%d/%d moves ended, %s", ended, len(latest), summary)
		}
	}
	out := kept()
	if b := moved(); b > 0 {
		logf("full syncs moved %s", bytesize.Format(b))
	}
	var failed []string
	for _, m := range out {
		if m.State.Failed() {
			failed = append(failed, fmt.Sprintf("move %d (%s/%d) %s: %s", m.ID, m.Table, m.Partition,
				string(m.State), output.Dash(m.Error)))
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
	return out, moved(), err
}
