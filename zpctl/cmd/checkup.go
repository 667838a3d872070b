package cmd

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/health"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

// DefaultEpochGrace is how long checkup lets a node or meta member take up
// a topology change before reporting it behind: three heartbeats at
// zpnode's default --ping-interval (nodes the meta leader does not NOTIFY
// learn of a change with their next PING).
const DefaultEpochGrace = 3 * time.Second

// upgradingEnv set to 1 (true) is --upgrading: a rolling upgrade can set it
// for every checkup it runs, whatever zpctl version each host has.
const upgradingEnv = "ZP_UPGRADING"

// checkupPoll is how often checkup looks again while someone is behind on
// the epoch within the grace.
const checkupPoll = 200 * time.Millisecond

func (a *app) checkupCommand() *cobra.Command {
	var (
		maxLag     uint64
		epochGrace time.Duration
		upgrading  bool
		cmd        *cobra.Command
	)
	cmd = &cobra.Command{
		Use:   "checkup",
		Short: "Check the cluster's health; exit 10 and name what is wrong when unhealthy",
		Long: `Survey the whole cluster (every meta server, the topology, INFO of every
node) and check:

  meta     every member answers, a majority of voters does, all name the same
           leader and have applied the same epoch
  nodes    every node is UP, answers INFO, and has applied the meta epoch
  tables   per partition: a master on an UP node, all replicas placed, each
           replica held by its node in its role, slaves streaming and at most
           --max-lag records behind, state ACTIVE (not SLOWDOWN/STUCK), no two
           replicas on one node nor in one zone when the cluster has zones
           enough
  versions every node and meta server runs the same version

Nodes learn of a topology change with their next heartbeat, so right after
one they are briefly behind the meta epoch. A node or meta member behind is
reported (node_epoch, meta_epoch) only when it is behind the epoch meta had
--epoch-grace ago: while anyone is behind, checkup surveys again every
200ms until they have caught up or the grace has passed, so a checkup right
after a change waits up to --epoch-grace and does not fail. --epoch-grace 0
reports anyone behind at once. The grace must be shorter than --timeout;
unset, it is 3s (three heartbeats) or half of --timeout when that is less.

Mixed versions (version_mixed) are a warning; during a rolling upgrade say
so with --upgrading (or ZP_UPGRADING=1 in the environment, which a zpctl
too old to know it ignores), which makes them info: listed, but healthy.

It prints every problem found with its severity (critical: lost
availability or durability now; warning: one failure away; info: expected,
healthy), check name and location, and exits 0 when healthy (no critical
or warning problem), 10 when not. --output json gives the report for
programs: {"healthy", "epoch", "leader", "checked_at", "summary",
"problems": [{"severity", "check", "node", "table", "partition",
"message"}]}.`,
		Example: `  zpctl checkup
  zpctl checkup -o json | jq -r '.problems[] | select(.severity == "critical") | .message'
  zpctl checkup --max-lag 100 || page-oncall
  zpctl checkup --upgrading        # while rolling out a new version`,
		Args: cobra.NoArgs,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			if !cmd.Flags().Changed("upgrading") {
				if v := a.env.Getenv(upgradingEnv); v != "" {
					var err error
					if upgrading, err = strconv.ParseBool(v); err != nil {
						return usagef("%s=%q: want 1 or 0 (true or false)", upgradingEnv, v)
					}
				}
			}
			if !cmd.Flags().Changed("epoch-grace") {
				// Leave a short --timeout time to survey after it.
				epochGrace = min(DefaultEpochGrace, a.timeout/2)
			}
			if epochGrace < 0 || epochGrace >= a.timeout {
				return usagef("--epoch-grace %v must be at least 0 and shorter than --timeout %v", epochGrace, a.timeout)
			}
			take := func(ctx context.Context) *survey.Snapshot {
				return survey.Take(ctx, c, survey.Options{NodeTimeout: a.nodeTimeout(), Schedule: true, Security: true, Starting: true})
			}
			r := checkupSettled(ctx, take, health.Options{MaxLag: maxLag, Upgrading: upgrading}, epochGrace)
			if err := a.printer.Print(r, func(w io.Writer) error { return writeCheckup(w, r) }); err != nil {
				return err
			}
			if r.Healthy {
				return nil
			}
			crit, warn := r.Counts()
			first := r.Problems[0]
			return fmt.Errorf("%w: %d critical, %d warning; first: %s", ErrUnhealthy, crit, warn, first.Message)
		}),
	}
	cmd.Flags().Uint64Var(&maxLag, "max-lag", health.DefaultMaxLag, "records a slave may be behind its master")
	cmd.Flags().DurationVar(&epochGrace, "epoch-grace", DefaultEpochGrace, "how long a node or meta member may be behind the meta epoch after a topology change (0: not at all)")
	cmd.Flags().BoolVar(&upgrading, "upgrading", false, "an upgrade is in progress: mixed versions are info, not a warning (env ZP_UPGRADING=1)")
	return cmd
}

// checkupSettled surveys the cluster and judges it, giving nodes and meta
// members behind the meta epoch up to grace to take up the change: while
// the only reason to report them is an epoch newer than what meta had grace
// ago, it surveys again (every checkupPoll) instead. Once the grace has
// passed it judges the last survey against the epoch meta had then
// (health.Options.SettledEpoch). It stops looking when ctx would not leave
// time for another survey, and then judges strictly.
func checkupSettled(ctx context.Context, take func(context.Context) *survey.Snapshot, opts health.Options, grace time.Duration) health.Report {
	type seen struct {
		at    time.Time
		epoch uint64
	}
	var history []seen
	for {
		start := time.Now()
		s := take(ctx)
		took := time.Since(start)
		history = append(history, seen{s.Taken, s.Epoch()})
		r := health.Check(s, opts)
		if grace <= 0 || !slices.ContainsFunc(r.Problems, epochProblem) {
			return r
		}
		settled := opts
		for _, h := range history {
			if !h.at.After(s.Taken.Add(-grace)) {
				settled.SettledEpoch = h.epoch
			}
		}
		if settled.SettledEpoch != 0 {
			return health.Check(s, settled)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < took+checkupPoll+100*time.Millisecond {
			return r
		}
		t := time.NewTimer(checkupPoll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return r
		}
	}
}

// epochProblem reports whether p is someone behind the meta epoch, which a
// topology change makes everyone for a moment.
func epochProblem(p health.Problem) bool {
	return p.Check == health.CheckNodeEpoch || p.Check == health.CheckMetaEpoch
}

func writeCheckup(w io.Writer, r health.Report) error {
	sm := r.Summary
	verdict := "HEALTHY"
	if !r.Healthy {
		crit, warn := r.Counts()
		verdict = fmt.Sprintf("UNHEALTHY: %d critical, %d warning", crit, warn)
	} else if n := len(r.Problems); n > 0 {
		verdict += fmt.Sprintf(" (%d info)", n)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", verdict)
	fmt.Fprintf(&b, "epoch %d, meta leader %s, %d/%d meta servers answer, %d/%d nodes UP, %s, %s, %s\n",
		r.Epoch, output.Dash(r.Leader), sm.MetaReachable, sm.MetaMembers, sm.NodesUp, sm.Nodes,
		plural(sm.Tables, "table"), plural(sm.Partitions, "partition"), plural(sm.Replicas, "replica"))
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if len(r.Problems) == 0 {
		return nil
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	// Messages name the node, table and partition themselves.
	t := output.Table{Header: []string{"SEVERITY", "CHECK", "PROBLEM"}}
	for _, p := range r.Problems {
		t.Rows = append(t.Rows, []string{strings.ToUpper(string(p.Severity)), p.Check, p.Message})
	}
	return output.WriteTable(w, t)
}

// plural is "1 table", "2 tables".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
