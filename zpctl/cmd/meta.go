package cmd

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

func (a *app) metaCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "meta",
		Short: "Inspect the meta servers and change the Raft membership",
		RunE:  groupRunE,
	}
	cmd.AddCommand(a.metaListCommand(), a.metaAddCommand(), a.metaRemoveCommand())
	return cmd
}

func (a *app) metaAddCommand() *cobra.Command {
	var nonvoter bool
	cmd := &cobra.Command{
		Use:   "add ADDR",
		Short: "Add a meta server to the Raft group",
		Long: `Add the meta server at ADDR to the Raft group as a voter, or with --nonvoter
as a non-voting member that replicates the state without voting. Start it
first with --bootstrap=false and an empty --data; it must answer under ADDR
(its --addr) and belong to no other group. It catches up in the background:
'zpctl meta list' shows its APPLIED index. Prints the membership afterwards,
as 'meta list' does.

Adding a member again changes nothing (exit 0); adding an existing voter
with --nonvoter demotes it, an existing nonvoter without it promotes it.
Nodes and zpctl do not learn the new address: add it to their --meta lists.

Exit codes: 5 ADDR is malformed, does not answer as a meta server, belongs
to another group, or is the last voter (demotion); 4 no leader or no meta
server reachable within --timeout.`,
		Example: `  zpmeta --addr 10.0.0.4:9221 --data /var/lib/zpmeta --bootstrap=false &
  zpctl meta add 10.0.0.4:9221
  zpctl meta add 10.0.0.5:9221 --nonvoter -o json | jq '.members[] | {addr, suffrage}'`,
		Args: cobra.ExactArgs(1),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			lm, err := c.AddMeta(ctx, args[0], nonvoter)
			if err != nil {
				return err
			}
			return a.printMembership(ctx, c, lm)
		}),
	}
	cmd.Flags().BoolVar(&nonvoter, "nonvoter", false, "join as a non-voting member")
	return cmd
}

func (a *app) metaRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove ADDR",
		Short: "Remove a meta server from the Raft group",
		Long: `Remove the meta server at ADDR from the Raft group, whether it runs or not.
Removing the leader makes it hand leadership over to another voter first.
Removing an address that is not a member changes nothing (exit 0). Prints the
membership afterwards, as 'meta list' does.

Then stop the removed server, and take its address out of the --meta lists
of the nodes and of zpctl. Do not start it again with its old --data: add it
back with an empty one.

Exit codes: 5 ADDR is malformed or the last voter; 4 no leader or no meta
server reachable within --timeout.`,
		Example: `  zpctl meta remove 10.0.0.3:9221
  zpctl meta remove 10.0.0.3:9221 -o json | jq -r '.leader'`,
		Args: cobra.ExactArgs(1),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			lm, err := c.RemoveMeta(ctx, args[0])
			if err != nil {
				return err
			}
			return a.printMembership(ctx, c, lm)
		}),
	}
}

// printMembership prints the group after a membership change as `meta list`
// does, each member asked for its state. When none answers any more, it
// prints the membership the change answered with.
func (a *app) printMembership(ctx context.Context, c *client.Client, changed *client.MetaStatus) error {
	st, err := c.ListMeta(ctx)
	if err != nil {
		st = changed
		for i := range st.Members {
			if !st.Members[i].Reachable {
				st.Members[i].Error = err.Error()
			}
		}
	}
	return a.printer.Print(st, func(w io.Writer) error { return writeMeta(w, st) })
}

func (a *app) metaListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the meta servers: leader, members, reachability, epoch",
		Long: `Ask every meta server (those given with --meta and every member of the Raft
configuration they report) for its state: suffrage, leadership, Raft state,
term, commit and applied index, topology epoch, and the version it runs.
Unreachable members are listed with the error; the command fails (exit 4)
only when none answered, after printing what it knows.`,
		Example: `  zpctl meta list
  zpctl meta list -o json | jq -r '.leader'`,
		Args: cobra.NoArgs,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			st, err := c.ListMeta(ctx)
			if st == nil {
				return err
			}
			perr := a.printer.Print(st, func(w io.Writer) error { return writeMeta(w, st) })
			if err != nil {
				return err
			}
			return perr
		}),
	}
}

func writeMeta(w io.Writer, st *client.MetaStatus) error {
	if _, err := fmt.Fprintf(w, "leader: %s\nepoch:  %d\n\n", output.Dash(st.Leader), st.Epoch); err != nil {
		return err
	}
	t := output.Table{Header: []string{"ADDR", "ID", "SUFFRAGE", "LEADER", "REACHABLE", "STATE", "TERM", "COMMIT", "APPLIED", "EPOCH", "VERSION", "ERROR"}}
	for _, m := range st.Members {
		row := []string{m.Addr, output.Dash(m.ID), output.Dash(m.Suffrage), yesNo(m.Leader), yesNo(m.Reachable)}
		if m.Reachable {
			row = append(row, m.State, fmt.Sprint(m.Term), fmt.Sprint(m.CommitIndex), fmt.Sprint(m.AppliedIndex), fmt.Sprint(m.Epoch), output.Dash(m.Version), "-")
		} else {
			row = append(row, "-", "-", "-", "-", "-", "-", m.Error)
		}
		t.Rows = append(t.Rows, row)
	}
	return output.WriteTable(w, t)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
