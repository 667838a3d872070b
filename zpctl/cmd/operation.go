package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/muesli/termenv"
	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
	"github.com/zeppelin-kv/zeppelin/zpctl/progress"
)

// A topology change (migrate, setmaster, expand ...) runs in three
// phases: a plan made from the current topology, shown to the operator;
// a confirmation (--yes, or a prompt on a terminal); then the steps, one
// at a time, with progress on stderr. runOperation does the phases; each
// command supplies a planner and a step executor.

// Plan is what a topology change will do.
type Plan struct {
	Operation string `json:"operation"`
	// Epoch is the topology the plan was made from. Steps carry it to the
	// meta servers as the expected epoch, so that a plan made stale by
	// another change fails instead of doing the wrong thing.
	Epoch uint64     `json:"epoch"`
	Steps []PlanStep `json:"steps"`
}

// PlanStep is one change to one partition.
type PlanStep struct {
	// Action is "setmaster", "addslave", "removeslave" or "move".
	Action    string `json:"action"`
	Table     string `json:"table"`
	Partition uint32 `json:"partition"`
	// From and To are node addresses; either may be empty for actions
	// that have only one side.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

func (s PlanStep) String() string {
	where := fmt.Sprintf("%s/%d", s.Table, s.Partition)
	switch {
	case s.From != "" && s.To != "":
		return fmt.Sprintf("%s %s: %s -> %s", s.Action, where, s.From, s.To)
	case s.To != "":
		return fmt.Sprintf("%s %s: %s", s.Action, where, s.To)
	case s.From != "":
		return fmt.Sprintf("%s %s: %s", s.Action, where, s.From)
	}
	return s.Action + " " + where
}

// operation is one topology-changing command.
type operation struct {
	name string
	// plan reads the cluster and decides the steps; nil errors mean a
	// plan with at least one step.
	plan func(ctx context.Context, c *client.Client) (*Plan, error)
	// step carries out one step. Nil means the servers cannot do it yet:
	// the command fails with ErrUnsupported before touching the cluster,
	// and why says what is missing.
	step func(ctx context.Context, c *client.Client, p *Plan, s PlanStep) error
	why  string
}

// unsupported is the error of an operation the cluster cannot run yet.
func unsupported(name, why string) error {
	return fmt.Errorf("%s: %w: %s", name, ErrUnsupported, why)
}

// runOptions are the flags every operation has.
type runOptions struct {
	yes    bool
	dryRun bool
}

func (ro *runOptions) register(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&ro.yes, "yes", "y", false, "run the plan without asking")
	cmd.Flags().BoolVar(&ro.dryRun, "dry-run", false, "show the plan and stop")
}

// operationJSON is what an operation prints with --output json or yaml.
type operationJSON struct {
	Plan *Plan `json:"plan"`
	// DryRun is true when the plan was only shown.
	DryRun bool `json:"dry_run"`
	// Done is how many steps completed.
	Done int `json:"done"`
}

// runOperation plans, shows, confirms and runs op. The plan and each step
// get --timeout of their own; the confirmation has no deadline, since a
// person is reading the plan.
func (a *app) runOperation(cmd *cobra.Command, op operation, ro runOptions) error {
	if op.step == nil {
		return &cmdFailed{unsupported(op.name, op.why)}
	}
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
	if text {
		if err := writePlan(a.env.Stdout, plan); err != nil {
			return &cmdFailed{err}
		}
	}
	result := operationJSON{Plan: plan, DryRun: ro.dryRun}
	if ro.dryRun {
		if text {
			return nil
		}
		return a.printer.Print(result, nil)
	}
	if !ro.yes {
		q := fmt.Sprintf("Run these %d steps?", len(plan.Steps))
		if len(plan.Steps) == 1 {
			q = "Run this step?"
		}
		if err := a.confirm(ctx, q); err != nil {
			return &cmdFailed{err}
		}
	}

	prog := a.newProgress(op.name, "steps", int64(len(plan.Steps)))
	for i, s := range plan.Steps {
		sctx, cancel := context.WithTimeout(ctx, a.timeout)
		err := op.step(sctx, c, plan, s)
		cancel()
		if err != nil {
			err = fmt.Errorf("%s: step %d of %d (%s): %w", op.name, i+1, len(plan.Steps), s, err)
			prog.Done(err)
			if !text {
				a.printer.Print(result, nil)
			}
			return &cmdFailed{err}
		}
		result.Done++
		prog.Add(1)
	}
	prog.Done(nil)
	if text {
		return nil
	}
	return a.printer.Print(result, nil)
}

// writePlan prints a plan for people.
func writePlan(w io.Writer, p *Plan) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Plan: %s, %d step(s), made at epoch %d\n", p.Operation, len(p.Steps), p.Epoch)
	t := output.Table{Header: []string{"#", "ACTION", "TABLE", "PARTITION", "FROM", "TO"}}
	for i, s := range p.Steps {
		t.Rows = append(t.Rows, []string{fmt.Sprint(i + 1), s.Action, s.Table, fmt.Sprint(s.Partition), output.Dash(s.From), output.Dash(s.To)})
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
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
