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
(term, lsn) and lag, coloured by health), running migrations, and a log of
the epoch changes seen. Keys are listed at the bottom; ? shows them all.

Actions (f failover, m migrate, e expand, s shrink, c cancel migration)
ask for confirmation; they report "not supported yet" until zpctl drives
the meta servers' move requests. --timeout bounds each survey's INFO
calls; the view itself runs until q or Ctrl-C.`,
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
				Runner:   a.runTUIAction,
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
				return survey.Take(ctx, c, survey.Options{NodeTimeout: nodeTimeout})
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

// runTUIAction carries out an action confirmed in the TUI. None is
// supported by the servers yet; each reports why, as its command does.
func (a *app) runTUIAction(_ context.Context, act tui.Action) error {
	switch act.Kind {
	case "setmaster":
		return unsupported("setmaster", whySetMaster)
	case "migrate", "cancel":
		return unsupported(act.Kind, whyMigrate)
	case "expand", "shrink":
		return unsupported(act.Kind, whyExpand)
	}
	return unsupported(act.Kind, "unknown action")
}
