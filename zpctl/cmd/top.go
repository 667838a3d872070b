package cmd

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/health"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
	"github.com/zeppelin-kv/zeppelin/zpctl/tui"
)

func (a *app) topCommand() *cobra.Command {
	var (
		interval time.Duration
		maxLag   uint64
	)
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Live view of the cluster in the terminal (q to quit)",
		Long: `A live view of the cluster, surveyed every --interval: meta members and
leader, epoch, nodes (state, zone/rack, replicas, masters, QPS, disk),
tables, a per-table partition grid (master, slaves, state, each replica's
(term, lsn) and lag, coloured by health), running migrations (with the
bytes moved and ETA of an expand, shrink or replace-node), a log of the
epoch changes seen, the nodes' slow logs merged (as zpctl slowlog shows
them), and the recent log lines of the node selected in the Nodes view (L
there, or 8; as zpctl node logs shows them). Nodes and tables have throughput sparklines. Keys are listed
at the bottom; ? shows them all, esc closes that list. In the list views
/ filters the rows (enter keeps the filter, esc clears it), o sorts by
the next column and O reverses.

Actions ask for confirmation, then queue moves on the meta leader at the
epoch on screen (the migrations view follows them): f fails the selected
partition over to its most up-to-date UP slave (SETMASTER), m migrates a
replica of it from its busiest holder to a node without one (the idlest
offered first, ↑↓ choose another), e expands (REBALANCE EXPAND), s
shrinks the selected node, x cordons or uncordons it, c cancels the
selected move. The expand and shrink dialogs show the plan, as 'zpctl
expand --dry-run' does, and its moves are queued at the plan's epoch. Errors show in the status line for
10s. --timeout bounds each survey's INFO calls; the view itself runs
until q or Ctrl-C.`,
		Example: "  zpctl top\n  zpctl top --interval 2s --meta 10.0.0.1:9221",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < 100*time.Millisecond {
				return usagef("--interval must be at least 100ms")
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			c, err := a.newClient(ctx)
			if err != nil {
				return &cmdFailed{err}
			}
			defer c.Close()

			renderer := lipgloss.NewRenderer(a.env.Stdout)
			var poller *tui.Poller
			model := tui.New(tui.Options{
				Title:    strings.Join(a.metaAddrs(), ","),
				Renderer: renderer,
				Runner:   tuiRunner(c),
				Planner:  tuiPlanner(c),
				SlowLog:  tuiSlowLog(c, a.nodeTimeout()),
				NodeLog:  tuiNodeLog(c, a.nodeTimeout()),
				Refresh:  func() { poller.Refresh() },
				Health:   health.Options{MaxLag: maxLag},
			})
			opts := []tea.ProgramOption{tea.WithAltScreen(), tea.WithContext(ctx)}
			// With the process's own stdin bubbletea finds a terminal
			// itself (opening /dev/tty when stdin is a pipe).
			if a.env.Stdin != os.Stdin {
				opts = append(opts, tea.WithInput(a.env.Stdin))
			}
			if a.env.Stdout != os.Stdout {
				opts = append(opts, tea.WithOutput(a.env.Stdout))
			}
			p := tea.NewProgram(model, opts...)
			nodeTimeout := min(a.timeout, interval)
			poller = tui.NewPoller(interval, func(ctx context.Context) *survey.Snapshot {
				return survey.Take(ctx, c, survey.Options{NodeTimeout: nodeTimeout, Moves: true, Schedule: true, Starting: true})
			}, p.Send)
			go poller.Run(ctx)
			if _, err := p.Run(); err != nil && ctx.Err() == nil {
				return &cmdFailed{fmt.Errorf("top: %w", err)}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often to survey the cluster")
	cmd.Flags().Uint64Var(&maxLag, "max-lag", health.DefaultMaxLag, "records a slave may be behind before it is shown lagging")
	return cmd
}

// tuiSlowLogLimit is how many of the newest slow requests the TUI lists.
const tuiSlowLogLimit = 200

// tuiSlowLog reads the slow logs the TUI's Slowlog view lists, as `zpctl
// slowlog` does (INFO SLOWLOG of each node, merged newest first), each
// node within timeout.
func tuiSlowLog(c *client.Client, timeout time.Duration) tui.SlowLogReader {
	return func(ctx context.Context, nodes []string) tui.SlowLog {
		nctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		doc, err := slowlogFromInfo(c.InfoNodes(nctx, nodes, "", client.InfoSlowlog), "", tuiSlowLogLimit)
		out := tui.SlowLog{Nodes: len(nodes), Err: err}
		for _, e := range doc.Entries {
			key := ""
			if e.Key != nil {
				b, _ := e.Key.Decode()
				key = keyText(b)
			}
			out.Entries = append(out.Entries, tui.SlowEntry{Time: time.UnixMilli(e.TimeMs), Node: e.Node, Command: e.Command,
				Table: e.Table, Key: key, Duration: time.Duration(e.DurationUs) * time.Microsecond, Code: e.Code})
		}
		return out
	}
}

// tuiNodeLogLines is how many of a node's newest log lines the TUI lists.
const tuiNodeLogLines = 200

// tuiNodeLog reads the log lines the TUI's Log view lists, as `zpctl node
// logs` does (INFO log, oldest first), within timeout.
func tuiNodeLog(c *client.Client, timeout time.Duration) tui.NodeLogReader {
	return func(ctx context.Context, node string) tui.NodeLog {
		nctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		lines, err := c.NodeLog(nctx, node, tuiNodeLogLines, "")
		out := tui.NodeLog{Node: node, Err: err}
		for _, l := range lines {
			out.Lines = append(out.Lines, tui.LogLine{Time: time.UnixMilli(l.TimeMs), Level: l.Level, Message: l.Message, Attrs: l.Attrs})
		}
		return out
	}
}

// tuiPlanner makes the plans the TUI's expand and shrink dialogs show:
// those of `zpctl expand` and `zpctl shrink` (the meta leader's dry run).
func tuiPlanner(c *client.Client) tui.Planner {
	return func(ctx context.Context, act tui.Action) (tui.Plan, error) {
		mode := client.RebalanceExpand
		if act.Kind == "shrink" {
			mode = client.RebalanceShrink
		}
		p, err := rebalanceOperation(act.Kind, mode, act.Nodes).plan(ctx, c)
		if err != nil {
			return tui.Plan{}, fmt.Errorf("%s: plan: %w", act.Kind, err)
		}
		out := tui.Plan{Epoch: p.Epoch}
		for _, s := range p.Steps {
			out.Steps = append(out.Steps, s.String())
		}
		return out, nil
	}
}

// tuiRunner carries out the actions confirmed in the TUI with c: it
// queues the moves, with the epoch of the topology the operator saw as the
// expected one, and says which it queued; the migrations panel follows
// them.
func tuiRunner(c *client.Client) tui.Runner {
	return func(ctx context.Context, act tui.Action) (tui.Outcome, error) {
		var (
			moves []client.Move
			err   error
		)
		switch act.Kind {
		case "setmaster":
			moves, err = c.SetMaster(ctx, act.Table, act.Partition, act.To, act.Epoch)
		case "migrate":
			moves, err = c.Migrate(ctx, act.Table, act.Partition, act.From, act.To, act.Epoch)
		case "expand":
			moves, err = c.Rebalance(ctx, client.RebalanceExpand, nil, false, act.Epoch)
		case "shrink":
			moves, err = c.Rebalance(ctx, client.RebalanceShrink, act.Nodes, false, act.Epoch)
		case "cordon", "uncordon":
			if _, err := c.CordonNodes(ctx, act.Nodes, act.Kind == "cordon"); err != nil {
				return tui.Outcome{}, fmt.Errorf("%s: %w", act.Kind, err)
			}
			return tui.Outcome{Status: fmt.Sprintf("%s: %sed %s", act.Kind, act.Kind, strings.Join(act.Nodes, ", "))}, nil
		case "cancel":
			res, err := c.CancelMoves(ctx, []uint64{act.MoveID})
			if err != nil {
				return tui.Outcome{}, fmt.Errorf("cancel: %w", err)
			}
			if len(res.NotCancelled) > 0 {
				return tui.Outcome{}, fmt.Errorf("cancel: move %d not cancelled: %s", act.MoveID, notCancelledWhy(res.NotCancelled[0]))
			}
			return tui.Outcome{Status: fmt.Sprintf("cancel: move %d cancelled and rolled back", act.MoveID)}, nil
		default:
			return tui.Outcome{}, fmt.Errorf("%s: unknown action", act.Kind)
		}
		if err != nil {
			return tui.Outcome{}, fmt.Errorf("%s: %w", act.Kind, err)
		}
		out := tui.Outcome{}
		for _, m := range moves {
			out.Moves = append(out.Moves, m.ID)
		}
		switch len(moves) {
		case 0:
			out.Status = act.Kind + ": nothing to do, the load is even"
		case 1:
			m := moves[0]
			if m.From == "" && act.From != "" && act.Kind == "setmaster" {
				// The leader fills in the master later; the dialog said it.
				m.From = act.From
			}
			out.Status = fmt.Sprintf("%s: queued move %d: %s/%d %s; view 5 follows it", act.Kind, m.ID, m.Table, m.Partition, moveArrow(m))
		default:
			out.Status = fmt.Sprintf("%s: queued %d moves (%d-%d); view 5 follows them", act.Kind, len(moves), moves[0].ID, moves[len(moves)-1].ID)
		}
		return out, nil
	}
}
