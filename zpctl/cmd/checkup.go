package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/health"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

func (a *app) checkupCommand() *cobra.Command {
	var maxLag uint64
	cmd := &cobra.Command{
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

It prints every problem found with its severity (critical: lost
availability or durability now; warning: one failure away), check name and
location, and exits 0 when healthy, 10 when not. --output json gives the
report for programs: {"healthy", "epoch", "leader", "checked_at",
"summary", "problems": [{"severity", "check", "node", "table",
"partition", "message"}]}.`,
		Example: `  zpctl checkup
  zpctl checkup -o json | jq -r '.problems[] | select(.severity == "critical") | .message'
  zpctl checkup --max-lag 100 || page-oncall`,
		Args: cobra.NoArgs,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			s := survey.Take(ctx, c, survey.Options{NodeTimeout: a.nodeTimeout()})
			r := health.Check(s, health.Options{MaxLag: maxLag})
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
	return cmd
}

func writeCheckup(w io.Writer, r health.Report) error {
	sm := r.Summary
	verdict := "HEALTHY"
	if !r.Healthy {
		crit, warn := r.Counts()
		verdict = fmt.Sprintf("UNHEALTHY: %d critical, %d warning", crit, warn)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", verdict)
	fmt.Fprintf(&b, "epoch %d, meta leader %s, %d/%d meta servers answer, %d/%d nodes UP, %s, %s, %s\n",
		r.Epoch, output.Dash(r.Leader), sm.MetaReachable, sm.MetaMembers, sm.NodesUp, sm.Nodes,
		plural(sm.Tables, "table"), plural(sm.Partitions, "partition"), plural(sm.Replicas, "replica"))
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if r.Healthy {
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
