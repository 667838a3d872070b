package cmd

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/muesli/termenv"
	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
	"github.com/zeppelin-kv/zeppelin/zpctl/progress"
)

// A topology change (migrate, setmaster, expand ...) runs in four
// phases: a plan made from the current cluster, shown to the operator; a
// confirmation (--yes, or a prompt on a terminal); the moves queued on the
// meta leader with the plan's epoch as the expected one, so that a plan
// made stale meanwhile fails (STALE_EPOCH, exit 6) rather than doing the
// wrong thing; then, unless --no-wait, the moves followed with MOVE_STATUS
// until each has ended, with progress on stderr. runOperation does the
// phases; each command supplies a planner and the call that queues.

// Plan is what a topology change will do.
type Plan struct {
	Operation string `json:"operation"`
	// Epoch is the topology the plan was made from, sent as the expected
	// epoch when the moves are queued.
	Epoch uint64     `json:"epoch"`
	Steps []PlanStep `json:"steps"`
}

// PlanStep is one move of one partition.
type PlanStep struct {
	// Action is the move's kind: "migrate", "setmaster", "addslave" or
	// "removeslave".
	Action    string `json:"action"`
	Table     string `json:"table"`
	Partition uint32 `json:"partition"`
	// From and To are node addresses; either may be empty for actions
	// that have only one side.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// At is a split's first slot of the new partition; 0 (left out) for
	// the slot that halves the partition's data, which the partition's
	// master chooses when the split is queued.
	At uint32 `json:"at,omitempty"`
}

func (s PlanStep) String() string {
	where := fmt.Sprintf("%s/%d", s.Table, s.Partition)
	switch {
	case s.Action == string(client.MoveSplit):
		if s.At == 0 {
			return fmt.Sprintf("%s %s at the slot that halves its data", s.Action, where)
		}
		return fmt.Sprintf("%s %s at %d", s.Action, where, s.At)
	case s.From != "" && s.To != "":
		return fmt.Sprintf("%s %s: %s -> %s", s.Action, where, s.From, s.To)
	case s.To != "":
		return fmt.Sprintf("%s %s: %s", s.Action, where, s.To)
	case s.From != "":
		return fmt.Sprintf("%s %s: %s", s.Action, where, s.From)
	}
	return s.Action + " " + where
}

// String makes a Plan readable in test failures.
func (p *Plan) String() string { return fmt.Sprintf("%s@%d%v", p.Operation, p.Epoch, p.Steps) }

// stepOf is the plan step of a move.
func stepOf(m client.Move) PlanStep {
	return PlanStep{Action: string(m.Kind), Table: m.Table, Partition: m.Partition, From: m.From, To: m.To, At: m.SplitAt}
}

// operation is one topology-changing command.
type operation struct {
	name string
	// plan reads the cluster and decides the moves; a plan without steps
	// means there is nothing to do.
	plan func(ctx context.Context, c *client.Client) (*Plan, error)
	// queue asks the meta leader to carry the plan out, with p.Epoch as
	// the expected epoch, and returns the moves as queued.
	queue func(ctx context.Context, c *client.Client, p *Plan) ([]client.Move, error)
}

// runOptions are the flags every operation has.
type runOptions struct {
	yes         bool
	dryRun      bool
	noWait      bool
	waitTimeout time.Duration
	poll        time.Duration
}

func (ro *runOptions) register(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&ro.yes, "yes", "y", false, "run the plan without asking")
	cmd.Flags().BoolVar(&ro.dryRun, "dry-run", false, "show the plan and stop")
	cmd.Flags().BoolVar(&ro.noWait, "no-wait", false, "return once the moves are queued, without following them")
	cmd.Flags().DurationVar(&ro.waitTimeout, "wait-timeout", 0, "stop following the moves after this long (exit 4; they keep running); 0 = until they end")
	cmd.Flags().DurationVar(&ro.poll, "poll-interval", 250*time.Millisecond, "time between two move status requests while following")
	cmd.Flags().MarkHidden("poll-interval")
}

// operationJSON is what an operation prints with --output json or yaml.
type operationJSON struct {
	Plan *Plan `json:"plan"`
	// DryRun is true when the plan was only shown.
	DryRun bool `json:"dry_run"`
	// Waited is true when zpctl followed the moves until they ended (or
	// gave up): Moves then have their last state, else as queued.
	Waited bool          `json:"waited"`
	Moves  []client.Move `json:"moves"`
	// Done and Failed count the moves that ended DONE, and FAILED or
	// CANCELLED.
	Done   int `json:"done"`
	Failed int `json:"failed"`
	// BytesMoved is what the moves' full syncs copied while zpctl
	// followed them (the whole sync of each move DONE); 0 unless Waited.
	BytesMoved uint64 `json:"bytes_moved"`
}

func (r *operationJSON) setMoves(moves []client.Move) {
	r.Moves = listed(moves)
	r.Done, r.Failed = 0, 0
	for _, m := range moves {
		switch {
		case m.State == client.MoveDone:
			r.Done++
		case m.State.Failed():
			r.Failed++
		}
	}
}

// runOperation plans, shows, confirms, queues and follows op. The plan
// and the queueing get --timeout each; the confirmation has no deadline,
// since a person is reading the plan, and following none unless
// --wait-timeout (each MOVE_STATUS call has --timeout).
func (a *app) runOperation(cmd *cobra.Command, op operation, ro runOptions) error {
	ctx := cmd.Context()
	c, err := a.newClient(ctx)
	if err != nil {
		return &cmdFailed{err}
	}
	defer c.Close()

	pctx, cancel := context.WithTimeout(ctx, a.timeout)
	plan, err := op.plan(pctx, c)
	cancel()
	if err != nil {
		return &cmdFailed{fmt.Errorf("%s: plan: %w", op.name, err)}
	}
	text := !a.printer.Format.Structured()
	result := operationJSON{Plan: plan, DryRun: ro.dryRun, Moves: []client.Move{}}
	if text {
		if err := writePlan(a.env.Stdout, plan); err != nil {
			return &cmdFailed{err}
		}
	}
	if ro.dryRun || len(plan.Steps) == 0 {
		if text {
			if len(plan.Steps) == 0 {
				fmt.Fprintln(a.env.Stdout, "Nothing to do.")
			}
			return nil
		}
		return a.printer.Print(result, nil)
	}
	if !ro.yes {
		q := fmt.Sprintf("Run these %d moves?", len(plan.Steps))
		if len(plan.Steps) == 1 {
			q = "Run this move?"
		}
		if err := a.confirm(ctx, q); err != nil {
			return &cmdFailed{err}
		}
	}

	queued, err := a.queue(ctx, c, op, plan)
	if err != nil {
		return &cmdFailed{fmt.Errorf("%s: %w", op.name, err)}
	}
	fillSources(plan, queued)
	if d := planDiff(plan, queued); d != "" {
		fmt.Fprintf(a.env.Stderr, "zpctl: %s: the meta leader queued other moves than planned (%s); following those\n", op.name, d)
	}
	if ro.noWait {
		result.setMoves(queued)
		if !text {
			return a.printer.Print(result, nil)
		}
		ids := make([]string, len(queued))
		for i, m := range queued {
			ids[i] = fmt.Sprint(m.ID)
		}
		fmt.Fprintf(a.env.Stdout, "\nQueued %s %s; follow with 'zpctl migrate status --watch'.\n", plural(len(queued), "move"), strings.Join(ids, ", "))
		return nil
	}
	final, moved, ferr := a.followMoves(ctx, c, op.name, queued, followOptions{poll: ro.poll, timeout: ro.waitTimeout})
	result.Waited, result.BytesMoved = true, moved
	result.setMoves(final)
	if text {
		fmt.Fprintln(a.env.Stdout)
		if err := writeMoves(a.env.Stdout, final); err != nil {
			return &cmdFailed{err}
		}
	} else if err := a.printer.Print(result, nil); err != nil {
		return &cmdFailed{err}
	}
	if ferr != nil {
		return &cmdFailed{ferr}
	}
	return nil
}

// replans is how often queue plans again after STALE_EPOCH.
const replans = 3

// queue queues plan's moves. The epoch moves on while other moves run
// (each of their steps bumps it), so a plan is often stale a moment after
// it was made without being wrong: on STALE_EPOCH queue plans again, and
// if the new plan has the very same moves, queues them at its epoch (the
// moves shown and confirmed are the moves run; *plan is updated). A plan
// that changed fails with the STALE_EPOCH error (exit 6).
func (a *app) queue(ctx context.Context, c *client.Client, op operation, plan *Plan) ([]client.Move, error) {
	for attempt := 1; ; attempt++ {
		qctx, cancel := context.WithTimeout(ctx, a.timeout)
		queued, err := op.queue(qctx, c, plan)
		cancel()
		if status.Code(err) != zppb.Code_STALE_EPOCH || attempt > replans || ctx.Err() != nil {
			return queued, err
		}
		pctx, cancel := context.WithTimeout(ctx, a.timeout)
		fresh, perr := op.plan(pctx, c)
		cancel()
		switch {
		case perr != nil:
			return nil, fmt.Errorf("%w; planning again: %w", err, perr)
		case !slices.Equal(fresh.Steps, plan.Steps):
			return nil, fmt.Errorf("%w; the plan changed meanwhile: see it again", err)
		case fresh.Epoch == plan.Epoch:
			// A meta server behind the leader: give it a moment.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		fmt.Fprintf(a.env.Stderr, "zpctl: %s: the epoch moved from %d to %d meanwhile; the plan is the same, queueing it at %d\n",
			op.name, plan.Epoch, fresh.Epoch, fresh.Epoch)
		plan.Epoch = fresh.Epoch
	}
}

// fillSources fills in the master a queued SETMASTER leaves out (the
// leader fills it in later) from the plan's step of its partition, for
// the progress lines.
func fillSources(p *Plan, queued []client.Move) {
	for i := range queued {
		m := &queued[i]
		if m.Kind != client.MoveSetMaster || m.From != "" {
			continue
		}
		for _, s := range p.Steps {
			if s.Action == "setmaster" && s.Table == m.Table && s.Partition == m.Partition && s.To == m.To {
				m.From = s.From
			}
		}
	}
}

// planDiff says how the moves queued differ from the plan, "" when they
// are the plan.
func planDiff(p *Plan, queued []client.Move) string {
	var want, got []string
	for _, s := range p.Steps {
		want = append(want, s.String())
	}
	for _, m := range queued {
		got = append(got, stepOf(m).String())
	}
	slices.Sort(want)
	slices.Sort(got)
	if slices.Equal(want, got) {
		return ""
	}
	return fmt.Sprintf("%d planned, %d queued", len(want), len(got))
}

// writePlan prints a plan for people.
func writePlan(w io.Writer, p *Plan) error {
	if _, err := fmt.Fprintf(w, "Plan: %s, %s, made at epoch %d\n", p.Operation, plural(len(p.Steps), "move"), p.Epoch); err != nil {
		return err
	}
	if len(p.Steps) == 0 {
		return nil
	}
	t := output.Table{Header: []string{"#", "ACTION", "TABLE", "PARTITION", "FROM", "TO"}}
	for i, s := range p.Steps {
		from, to := output.Dash(s.From), output.Dash(s.To)
		if s.Action == string(client.MoveSplit) {
			// The new partition takes [at, end) of the range.
			from, to = "-", fmt.Sprintf("slots %d.. to a new partition", s.At)
			if s.At == 0 {
				to = "the upper half by size to a new partition"
			}
		}
		t.Rows = append(t.Rows, []string{fmt.Sprint(i + 1), s.Action, s.Table, fmt.Sprint(s.Partition), from, to})
	}
	return output.WriteTable(w, t)
}

// newProgress reports on stderr: a bar on a terminal, lines otherwise.
func (a *app) newProgress(label, unit string, total int64) progress.Reporter {
	term := a.env.StderrIsTerminal != nil && a.env.StderrIsTerminal()
	profile := termenv.Ascii
	if term {
		profile = termenv.NewOutput(a.env.Stderr).EnvColorProfile()
	}
	return progress.New(a.env.Stderr, progress.Options{Label: label, Unit: unit, Total: total, Terminal: term, Profile: profile})
}
