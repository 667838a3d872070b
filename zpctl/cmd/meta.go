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
	add := &cobra.Command{
		Use:   "add ADDR",
		Short: "Add a meta server to the Raft group",
		Long: `Add the meta server at ADDR (started with --bootstrap=false) to the Raft
group as a voter, or with --nonvoter as a non-voting member.

Not supported yet (exit 9): ` + whyMetaMember + `.`,
		Args: cobra.ExactArgs(1),
		RunE: a.unsupportedRunE("meta add", whyMetaMember),
	}
	add.Flags().Bool("nonvoter", false, "join as a non-voting member")
	cmd.AddCommand(a.metaListCommand(), add, &cobra.Command{
		Use:   "remove ADDR",
		Short: "Remove a meta server from the Raft group",
		Long:  "Not supported yet (exit 9): " + whyMetaMember + ".",
		Args:  cobra.ExactArgs(1),
		RunE:  a.unsupportedRunE("meta remove", whyMetaMember),
	})
	return cmd
}

func (a *app) metaListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the meta servers: leader, members, reachability, epoch",
		Long: `Ask every meta server (those given with --meta and every member of the Raft
configuration they report) for its state. Unreachable members are listed with
the error; the command fails (exit 4) only when none answered, after printing
what it knows.`,
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
	t := output.Table{Header: []string{"ADDR", "ID", "SUFFRAGE", "LEADER", "REACHABLE", "STATE", "TERM", "COMMIT", "APPLIED", "EPOCH", "ERROR"}}
	for _, m := range st.Members {
		row := []string{m.Addr, output.Dash(m.ID), output.Dash(m.Suffrage), yesNo(m.Leader), yesNo(m.Reachable)}
		if m.Reachable {
			row = append(row, m.State, fmt.Sprint(m.Term), fmt.Sprint(m.CommitIndex), fmt.Sprint(m.AppliedIndex), fmt.Sprint(m.Epoch), "-")
		} else {
			row = append(row, "-", "-", "-", "-", "-", m.Error)
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
