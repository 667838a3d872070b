package cmd

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// The topology-changing commands: each plans, shows the plan, asks, queues
// its moves on the meta leader (lib/client/moves.go) and follows them (see
// operation.go).

// followHelp is the part of every operation's help about what happens
// after the plan.
const followHelp = `The plan is shown first; it runs after --yes or a "y" on a terminal
(without a terminal and without --yes: exit 2; declining: exit 8). The
moves are queued with the epoch the plan was made at; if the epoch moved
on meanwhile, zpctl plans again and queues the very same moves at the new
epoch, or, if the plan changed, exits 6 and changes nothing. It then
follows the moves until they end (a progress bar on a terminal, lines
otherwise, with the bytes the full syncs moved and the overall ETA;
--no-wait returns once queued, --wait-timeout gives up after a while
with exit 4): exit 0 when every move is DONE, 11 when one ended
FAILED or CANCELLED (rolled back). Ctrl-C stops following (exit 8), not
the moves.`

func (a *app) topologyCommands() []*cobra.Command {
	return []*cobra.Command{
		a.migrateCommand(),
		a.partitionOpCommand("setmaster", "Make a slave the master of a partition (planned failover)",
			`The slave on ADDR catches up, the partition goes SLOWDOWN then STUCK for
a moment (no reads or writes), and ADDR takes over as master; the old
master stays a slave.`, client.MoveSetMaster, queueSetMaster,
			"  zpctl setmaster default 0 10.0.0.2:9231 --yes\n  zpctl setmaster default 0 10.0.0.2:9231 --yes -o json | jq '.moves[0].stuck_ms'"),
		a.partitionOpCommand("addslave", "Add a slave of a partition on a node",
			`ADDR gets a new replica, which full-syncs from the master and then
streams its binlog; the move is DONE once it has caught up.`, client.MoveAddSlave, queueAddSlave,
			"  zpctl addslave default 3 10.0.0.4:9231 --yes"),
		a.partitionOpCommand("removeslave", "Remove a slave of a partition from a node",
			`The slave on ADDR is dropped and its node deletes the replica. The master
cannot be removed this way: setmaster another node first.`, client.MoveRemoveSlave, queueRemoveSlave,
			"  zpctl removeslave default 3 10.0.0.4:9231 --yes"),
		a.rebalanceCommand("expand", "Spread the load onto every UP node (new nodes take their share)", client.RebalanceExpand),
		a.rebalanceCommand("shrink", "Move every replica off nodes, so they can be stopped and removed", client.RebalanceShrink),
		a.rebalanceCommand("replace-node", "Move every replica of node OLD to node NEW", client.RebalanceReplace),
	}
}

// queueFunc queues a one-move plan.
type queueFunc func(ctx context.Context, c *client.Client, p *Plan) ([]client.Move, error)

func queueSetMaster(ctx context.Context, c *client.Client, p *Plan) ([]client.Move, error) {
	s := p.Steps[0]
	return c.SetMaster(ctx, s.Table, s.Partition, s.To, p.Epoch)
}

func queueAddSlave(ctx context.Context, c *client.Client, p *Plan) ([]client.Move, error) {
	s := p.Steps[0]
	return c.AddSlave(ctx, s.Table, s.Partition, s.To, p.Epoch)
}

func queueRemoveSlave(ctx context.Context, c *client.Client, p *Plan) ([]client.Move, error) {
	s := p.Steps[0]
	return c.RemoveSlave(ctx, s.Table, s.Partition, s.From, p.Epoch)
}

func queueMigrate(ctx context.Context, c *client.Client, p *Plan) ([]client.Move, error) {
	s := p.Steps[0]
	return c.Migrate(ctx, s.Table, s.Partition, s.From, s.To, p.Epoch)
}

// movePlan plans one move: the meta leader checks it as it would check
// queueing it and shows it as it would queue it (PLAN_MOVES), so the plan
// shown knows what only the leader knows (the moves in progress). A meta
// leader older than PLAN_MOVES does not know the request: the move is then
// checked against the topology by the same rules (localPlan).
func movePlan(name string, m client.Move) func(context.Context, *client.Client) (*Plan, error) {
	return func(ctx context.Context, c *client.Client) (*Plan, error) {
		moves, epoch, err := c.PlanMoves(ctx, []client.Move{m})
		if status.UnknownCommand(err) {
			cur, err := c.Pull(ctx, "")
			if err != nil {
				return nil, err
			}
			return localPlan(name, cur, m)
		}
		if err != nil {
			return nil, err
		}
		return planOf(name, epoch, moves), nil
	}
}

// localPlan plans move m against cur by the meta servers' rules, without
// the moves in progress, which cur does not hold.
func localPlan(name string, cur *client.Topology, m client.Move) (*Plan, error) {
	moves, err := cur.PlanMoves([]client.Move{m})
	if err != nil {
		return nil, err
	}
	return planOf(name, cur.Epoch, moves), nil
}

// planOf is the plan of operation name: moves, made at epoch.
func planOf(name string, epoch uint64, moves []client.Move) *Plan {
	p := &Plan{Operation: name, Epoch: epoch, Steps: []PlanStep{}}
	for _, m := range moves {
		p.Steps = append(p.Steps, stepOf(m))
	}
	return p
}

// partitionOpCommand is `NAME TABLE PARTITION ADDR`: a move of kind on
// ADDR (its target, or for REMOVESLAVE its source).
func (a *app) partitionOpCommand(name, short, long string, kind client.MoveKind, queue queueFunc, example string) *cobra.Command {
	var ro runOptions
	cmd := &cobra.Command{
		Use:               name + " TABLE PARTITION ADDR",
		Short:             short,
		Long:              short + ". " + long + "\n\n" + followHelp,
		Example:           example,
		Args:              cobra.ExactArgs(3),
		ValidArgsFunction: a.completeTableThenNodes(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pid, err := parsePartition(args[1])
			if err != nil {
				return err
			}
			m := client.Move{Kind: kind, Table: args[0], Partition: pid, To: args[2]}
			if kind == client.MoveRemoveSlave {
				m.From, m.To = m.To, ""
			}
			return a.runOperation(cmd, operation{name: name, plan: movePlan(name, m), queue: queue}, ro)
		},
	}
	ro.register(cmd)
	return cmd
}

func parsePartition(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, usagef("partition %q is not a number", s)
	}
	return uint32(n), nil
}

func (a *app) migrateCommand() *cobra.Command {
	var (
		ro       runOptions
		from, to string
	)
	cmd := &cobra.Command{
		Use:   "migrate TABLE PARTITION --from ADDR --to ADDR",
		Short: "Move a replica of a partition to another node",
		Long: `Move the replica of a partition on --from to --to, keeping its role: --to
is added as a slave and catches up (full sync, then binlog); if --from is
the master, the partition goes SLOWDOWN then STUCK for the hand-over and
--to becomes master; then --from is removed. 'migrate status' shows the
moves in progress and 'migrate cancel' stops one.

` + followHelp,
		Example: `  zpctl migrate default 3 --from 10.0.0.1:9231 --to 10.0.0.4:9231 --yes
  zpctl migrate default 3 --from 10.0.0.1:9231 --to 10.0.0.4:9231 --yes --no-wait
  zpctl migrate status --watch`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeTableThenNodes(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pid, err := parsePartition(args[1])
			if err != nil {
				return err
			}
			if from == "" || to == "" {
				return usagef("migrate needs --from and --to")
			}
			m := client.Move{Kind: client.MoveMigrate, Table: args[0], Partition: pid, From: from, To: to}
			return a.runOperation(cmd, operation{name: "migrate", plan: movePlan("migrate", m), queue: queueMigrate}, ro)
		},
	}
	ro.register(cmd)
	cmd.Flags().StringVar(&from, "from", "", "node that holds the replica now")
	cmd.Flags().StringVar(&to, "to", "", "node to move it to")
	cmd.RegisterFlagCompletionFunc("from", a.completeNodes)
	cmd.RegisterFlagCompletionFunc("to", a.completeNodes)
	cmd.AddCommand(a.migrateStatusCommand(), a.migrateCancelCommand())
	return cmd
}

// rebalanceCommand is expand, shrink or replace-node: the meta leader
// plans the moves (a dry run shows them) and runs them, a few per node at
// a time.
func (a *app) rebalanceCommand(name, short string, mode client.RebalanceMode) *cobra.Command {
	var ro runOptions
	cmd := &cobra.Command{Short: short, ValidArgsFunction: a.completeNodes}
	switch mode {
	case client.RebalanceExpand:
		cmd.Use, cmd.Args = name, cobra.NoArgs
		cmd.Long = short + `. Start the new nodes first: once they
are UP, the meta leader plans moves that bring every UP node to its
weight's share of replicas (in distinct zones, then racks; masters
balanced).`
		cmd.Example = "  zpctl node wait --count 6 && zpctl expand --yes"
	case client.RebalanceShrink:
		cmd.Use, cmd.Args = name+" ADDR...", cobra.MinimumNArgs(1)
		cmd.Long = short + `. The nodes are cordoned first (nothing new
is placed on them; 'zpctl node uncordon' undoes it), then the meta leader
plans moves that drain them onto the others (keeping zones distinct); then
stop the nodes and 'zpctl node remove' them.`
		cmd.Example = "  zpctl shrink 10.0.0.5:9231 10.0.0.6:9231 --yes && zpctl node remove 10.0.0.5:9231 10.0.0.6:9231 --yes"
	case client.RebalanceReplace:
		cmd.Use, cmd.Args = name+" OLD NEW", cobra.ExactArgs(2)
		cmd.Long = short + `, e.g. onto new hardware: each replica
keeps its role (NEW takes over OLD's masters).`
		cmd.Example = "  zpctl replace-node 10.0.0.3:9231 10.0.0.7:9231 --yes"
	}
	cmd.Long += " The plan is the meta leader's own (a dry run of\nREBALANCE).\n\n" + followHelp
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if mode == client.RebalanceReplace && args[0] == args[1] {
			return usagef("OLD and NEW are the same node")
		}
		return a.runOperation(cmd, rebalanceOperation(name, mode, args), ro)
	}
	ro.register(cmd)
	return cmd
}

// rebalanceOperation plans with a dry run of REBALANCE at the epoch of a
// fresh topology, and queues with that epoch.
func rebalanceOperation(name string, mode client.RebalanceMode, nodes []string) operation {
	return operation{
		name: name,
		plan: func(ctx context.Context, c *client.Client) (*Plan, error) {
			for attempt := 1; ; attempt++ {
				cur, err := c.Pull(ctx, "")
				if err != nil {
					return nil, err
				}
				moves, err := c.Rebalance(ctx, mode, nodes, true, cur.Epoch)
				// The topology may have changed between the two calls
				// (a move stepping); nothing was shown yet, so try again.
				if status.Code(err) == zppb.Code_STALE_EPOCH && attempt < 3 && ctx.Err() == nil {
					continue
				}
				if err != nil {
					return nil, err
				}
				return planOf(name, cur.Epoch, moves), nil
			}
		},
		// The meta leader cordons the nodes a SHRINK drains before it
		// queues the moves.
		queue: func(ctx context.Context, c *client.Client, p *Plan) ([]client.Move, error) {
			return c.Rebalance(ctx, mode, nodes, false, p.Epoch)
		},
	}
}

// migrateStatusJSON is `migrate status --output json`.
type migrateStatusJSON struct {
	Moves []client.Move `json:"moves"`
}

func (a *app) migrateStatusCommand() *cobra.Command {
	var (
		all, watch bool
		interval   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the moves in progress and how far each is",
		Long: `Show the topology moves in progress (--all: the finished ones the meta
leader remembers too): kind, partition, from -> to, state, bytes of the
full sync copied, records behind the master, copy rate, ETA, how long the
partition was STUCK, and the error of a failed move. --watch redraws every
--interval until Ctrl-C (with --output json: a document per interval).`,
		Example: "  zpctl migrate status\n  zpctl migrate status --all -o json | jq '.moves[] | select(.state == \"FAILED\")'\n  zpctl migrate status --watch",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !watch {
				return a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
					moves, err := c.MoveStatus(ctx, all)
					if err != nil {
						return err
					}
					return a.printMoves(a.env.Stdout, moves, all)
				})(cmd, nil)
			}
			if interval < 100*time.Millisecond {
				return usagef("--interval must be at least 100ms")
			}
			return a.watchMoves(cmd.Context(), all, interval)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "include finished moves")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "redraw every --interval until Ctrl-C")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often --watch asks")
	return cmd
}

func (a *app) printMoves(w io.Writer, moves []client.Move, all bool) error {
	p := output.Printer{W: w, Format: a.printer.Format}
	return p.Print(migrateStatusJSON{Moves: listed(moves)}, func(w io.Writer) error {
		if len(moves) == 0 {
			msg := "no moves in progress"
			if all {
				msg = "no moves"
			}
			_, err := fmt.Fprintln(w, msg)
			return err
		}
		return writeMoves(w, moves)
	})
}

// watchMoves prints the moves every interval until ctx ends (Ctrl-C, which
// is the normal way out: exit 0). On a terminal each frame replaces the
// last; otherwise frames follow each other, each under a time line.
func (a *app) watchMoves(ctx context.Context, all bool, interval time.Duration) error {
	c, err := a.newClient(ctx)
	if err != nil {
		return &cmdFailed{err}
	}
	defer c.Close()
	term := a.env.StdoutIsTerminal != nil && a.env.StdoutIsTerminal() && !a.printer.Format.Structured()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, a.timeout)
		moves, err := c.MoveStatus(cctx, all)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if !a.printer.Format.Structured() {
			if term {
				fmt.Fprint(a.env.Stdout, "\x1b[H\x1b[2J")
			}
			fmt.Fprintf(a.env.Stdout, "zpctl migrate status at %s (every %v, Ctrl-C to stop)\n\n", time.Now().Format("15:04:05"), interval)
		}
		if err != nil {
			fmt.Fprintf(a.env.Stderr, "zpctl: move status: %v\n", err)
		} else if err := a.printMoves(a.env.Stdout, moves, all); err != nil {
			return &cmdFailed{err}
		}
		if !term && !a.printer.Format.Structured() {
			fmt.Fprintln(a.env.Stdout)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// migrateCancelJSON is `migrate cancel --output json`.
type migrateCancelJSON struct {
	DryRun    bool          `json:"dry_run"`
	Cancelled []client.Move `json:"cancelled"`
	// NotCancelled are the moves shown that passed their handover or
	// ended before the cancel reached them.
	NotCancelled []client.Move `json:"not_cancelled"`
}

// notCancelledWhy says why a move named to cancel was left as it is.
func notCancelledWhy(m client.Move) string {
	switch {
	case m.State == client.MoveRemoving:
		return "past its handover (REMOVING): it will finish"
	case m.State != "":
		return "already ended " + string(m.State)
	default:
		return m.Error
	}
}

// errNotAllCancelled is migrate cancel's error when some of the moves it
// showed were not cancelled (exit 6: the moves changed meanwhile).
var errNotAllCancelled = status.New(zppb.Code_STALE_EPOCH, "some moves passed their handover or ended before the cancel reached them")

func (a *app) migrateCancelCommand() *cobra.Command {
	var yes, dryRun bool
	cmd := &cobra.Command{
		Use:   "cancel [ID | TABLE PARTITION]",
		Short: "Stop moves in progress and roll them back",
		Long: `Cancel a move by id, the move on a partition, or (without arguments)
every move in progress: each is rolled back (the partition ACTIVE again
with its old layout, an added target removed). A move past its handover
(REMOVING) can only finish and is left alone. The moves are shown first;
they are cancelled after --yes or a "y" on a terminal, all in one step on
the meta leader. One that passed its handover or ended after it was shown
is listed as not cancelled, and the command exits 6.`,
		Example: "  zpctl migrate cancel 12 --yes\n  zpctl migrate cancel default 3 --yes\n  zpctl migrate cancel --yes   # every move",
		Args:    cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var (
				id        uint64
				table     string
				partition uint32
			)
			switch len(args) {
			case 1:
				n, err := strconv.ParseUint(args[0], 10, 64)
				if err != nil || n == 0 {
					return usagef("move id %q is not a positive number (or give TABLE PARTITION)", args[0])
				}
				id = n
			case 2:
				pid, err := parsePartition(args[1])
				if err != nil {
					return err
				}
				table, partition = args[0], pid
			}
			ctx := cmd.Context()
			c, err := a.newClient(ctx)
			if err != nil {
				return &cmdFailed{err}
			}
			defer c.Close()
			sctx, cancel := context.WithTimeout(ctx, a.timeout)
			targets, err := cancelTargets(sctx, c, args, id, table, partition)
			cancel()
			if err != nil {
				return &cmdFailed{fmt.Errorf("migrate cancel: %w", err)}
			}
			text := !a.printer.Format.Structured()
			result := migrateCancelJSON{DryRun: dryRun, Cancelled: []client.Move{}, NotCancelled: []client.Move{}}
			if len(targets) == 0 {
				if text {
					fmt.Fprintln(a.env.Stdout, "no moves to cancel")
					return nil
				}
				return a.printer.Print(result, nil)
			}
			if text {
				fmt.Fprintf(a.env.Stdout, "To cancel: %s\n", plural(len(targets), "move"))
				if err := writeMoves(a.env.Stdout, targets); err != nil {
					return &cmdFailed{err}
				}
			}
			if dryRun {
				if text {
					return nil
				}
				return a.printer.Print(result, nil)
			}
			if !yes {
				q := fmt.Sprintf("Cancel these %d moves?", len(targets))
				if len(targets) == 1 {
					q = "Cancel this move?"
				}
				if err := a.confirm(ctx, q); err != nil {
					return &cmdFailed{err}
				}
			}
			ids := make([]uint64, len(targets))
			for i, m := range targets {
				ids[i] = m.ID
			}
			cctx, cancel := context.WithTimeout(ctx, a.timeout)
			res, err := c.CancelMoves(cctx, ids)
			cancel()
			if err != nil {
				return &cmdFailed{fmt.Errorf("migrate cancel: %w", err)}
			}
			result.Cancelled, result.NotCancelled = listed(res.Cancelled), listed(res.NotCancelled)
			var failed error
			if len(res.NotCancelled) > 0 {
				failed = &cmdFailed{fmt.Errorf("migrate cancel: %w", errNotAllCancelled)}
			}
			if !text {
				if err := a.printer.Print(result, nil); err != nil {
					return err
				}
				return failed
			}
			fmt.Fprintf(a.env.Stdout, "\nCancelled %s:\n", plural(len(res.Cancelled), "move"))
			if err := writeMoves(a.env.Stdout, res.Cancelled); err != nil {
				return &cmdFailed{err}
			}
			if len(res.NotCancelled) > 0 {
				fmt.Fprintf(a.env.Stdout, "\nNot cancelled: %s\n", plural(len(res.NotCancelled), "move"))
				for _, m := range res.NotCancelled {
					fmt.Fprintf(a.env.Stdout, "  %d  %s/%d: %s\n", m.ID, m.Table, m.Partition, notCancelledWhy(m))
				}
			}
			return failed
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "cancel without asking")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the moves and stop")
	return cmd
}

// cancelTargets are the moves migrate cancel would cancel: every move in
// progress not past its handover, the one with id, or the one on table's
// partition.
func cancelTargets(ctx context.Context, c *client.Client, args []string, id uint64, table string, partition uint32) ([]client.Move, error) {
	active, err := c.MoveStatus(ctx, false)
	if err != nil {
		return nil, err
	}
	var out []client.Move
	for _, m := range active {
		switch len(args) {
		case 0:
			if m.State != client.MoveRemoving {
				out = append(out, m)
			}
			continue
		case 1:
			if m.ID != id {
				continue
			}
		case 2:
			if m.Table != table || m.Partition != partition {
				continue
			}
		}
		if m.State == client.MoveRemoving {
			return nil, invalid("move %d is past its handover (REMOVING) and will finish", m.ID)
		}
		return []client.Move{m}, nil
	}
	switch len(args) {
	case 1:
		all, err := c.MoveStatus(ctx, true)
		if err != nil {
			return nil, err
		}
		for _, m := range all {
			if m.ID == id {
				return nil, invalid("move %d already ended %s", id, string(m.State))
			}
		}
		return nil, status.New(zppb.Code_NOT_FOUND, "no move %d", id)
	case 2:
		return nil, status.New(zppb.Code_NOT_FOUND, "no move in progress on %s/%d", table, partition)
	}
	return out, nil
}

// nodeRemoveJSON is `node remove --output json`.
type nodeRemoveJSON struct {
	Nodes   []string `json:"nodes"`
	DryRun  bool     `json:"dry_run"`
	Removed bool     `json:"removed"`
	// Epoch is the epoch the check was made at, or after the removal.
	Epoch uint64 `json:"epoch"`
}

func (a *app) nodeRemoveCommand() *cobra.Command {
	var yes, dryRun bool
	cmd := &cobra.Command{
		Use:   "remove ADDR...",
		Short: "Forget nodes that are DOWN and hold no replica",
		Long: `Forget nodes that are DOWN and hold no replica: shrink or replace-node
them first, then stop them. The nodes are checked against the topology
and shown; they are removed after --yes or a "y" on a terminal, at the
epoch they were checked at (a change meanwhile: exit 6).`,
		Example:           "  zpctl shrink 10.0.0.5:9231 --yes && ssh 10.0.0.5 systemctl stop zpnode && zpctl node remove 10.0.0.5:9231 --yes",
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: a.completeNodes,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.newClient(ctx)
			if err != nil {
				return &cmdFailed{err}
			}
			defer c.Close()
			pctx, cancel := context.WithTimeout(ctx, a.timeout)
			cur, err := c.Pull(pctx, "")
			cancel()
			if err != nil {
				return &cmdFailed{fmt.Errorf("node remove: %w", err)}
			}
			// The meta leader also refuses a node that is part of a move.
			if err := topo.CheckRemovable(cur.View(), args, nil); err != nil {
				return &cmdFailed{fmt.Errorf("node remove: %w", err)}
			}
			text := !a.printer.Format.Structured()
			result := nodeRemoveJSON{Nodes: args, DryRun: dryRun, Epoch: cur.Epoch}
			if text {
				fmt.Fprintf(a.env.Stdout, "Plan: remove %s (DOWN, no replicas), made at epoch %d\n", plural(len(args), "node"), cur.Epoch)
				for _, n := range args {
					fmt.Fprintf(a.env.Stdout, "  %s\n", n)
				}
			}
			if dryRun {
				if text {
					return nil
				}
				return a.printer.Print(result, nil)
			}
			if !yes {
				if err := a.confirm(ctx, fmt.Sprintf("Remove %s?", plural(len(args), "node"))); err != nil {
					return &cmdFailed{err}
				}
			}
			rctx, cancel := context.WithTimeout(ctx, a.timeout)
			epoch, err := c.RemoveNodes(rctx, args, cur.Epoch)
			cancel()
			if err != nil {
				return &cmdFailed{fmt.Errorf("node remove: %w", err)}
			}
			result.Removed, result.Epoch = true, epoch
			return a.printer.Line(result, fmt.Sprintf("removed %s (epoch %d)", plural(len(args), "node"), epoch))
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "remove without asking")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check the nodes and stop")
	return cmd
}

func invalid(format string, args ...any) error {
	return status.New(zppb.Code_INVALID_ARGUMENT, format, args...)
}
