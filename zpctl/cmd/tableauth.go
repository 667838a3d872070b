package cmd

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// tableAuthJSON is `table auth list|add|remove --output json`: the
// table's passwords after the command, never a password or its hash.
type tableAuthJSON struct {
	Table string `json:"table"`
	// Added or Removed is the id of the password the command added or
	// removed.
	Added     string                 `json:"added,omitempty"`
	Removed   string                 `json:"removed,omitempty"`
	Passwords []client.TablePassword `json:"passwords"`
}

func (a *app) tableAuthCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "List, add and remove a table's passwords",
		Long: `List, add and remove a table's passwords. A table with passwords refuses
every data command (both protocols, SCAN, INFO of its keys, FLUSH) that
does not present one of them: zpctl --table-password-file, the client's
Options.TablePasswords, Redis AUTH <table> <password>. The meta servers
keep only an argon2id hash of each; a password is named by its id, a
fingerprint of that hash.

Rotation without downtime: add the new password, move the clients to it,
remove the old one. Both open the table in between. A password removed
opens nothing from then on, not even a Redis connection that gave it
earlier. The last password cannot be removed.

Every subcommand needs the admin token of meta servers started with one
(--admin-token-file; exit 12 without it). Passwords come from files only,
never from the command line.`,
		RunE: groupRunE,
	}
	cmd.AddCommand(a.tableAuthListCommand(), a.tableAuthAddCommand(), a.tableAuthRemoveCommand())
	return cmd
}

func (a *app) printTableAuth(out tableAuthJSON) error {
	return a.printer.Print(out, func(w io.Writer) error {
		switch {
		case out.Added != "":
			if _, err := fmt.Fprintf(w, "added password %s to table %s\n", out.Added, out.Table); err != nil {
				return err
			}
		case out.Removed != "":
			if _, err := fmt.Fprintf(w, "removed password %s from table %s\n", out.Removed, out.Table); err != nil {
				return err
			}
		}
		t := output.Table{Header: []string{"ID", "CREATED", "SCHEME"}}
		for _, p := range out.Passwords {
			t.Rows = append(t.Rows, []string{p.ID, p.CreatedAt.Format(time.RFC3339), p.Scheme})
		}
		return output.WriteTable(w, t)
	})
}

func (a *app) tableAuthListCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "list TABLE",
		Short:             "List a table's passwords: ids, dates, schemes",
		Example:           "  zpctl --admin-token-file ~/.secrets/admin table auth list billing",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTableArg,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			pws, err := c.TablePasswords(ctx, args[0])
			if err != nil {
				return err
			}
			return a.printTableAuth(tableAuthJSON{Table: args[0], Passwords: pws})
		}),
	}
}

func (a *app) tableAuthAddCommand() *cobra.Command {
	var passwordFile string
	cmd := &cobra.Command{
		Use:   "add TABLE --password-file FILE",
		Short: "Add a password to a table (protecting it, if it had none)",
		Long: `Add the password in FILE to the table's and print them all. A table that
had none is protected from then on: its clients need a password. Nodes
take the change within a few seconds.`,
		Example:           "  zpctl table auth add billing --password-file ~/.secrets/billing-2027",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTableArg,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			pw, err := a.readSecret("password-file", passwordFile, "flag --password-file")
			if err != nil {
				return err
			}
			id, pws, err := c.AddTablePassword(ctx, args[0], pw)
			if err != nil {
				return err
			}
			return a.printTableAuth(tableAuthJSON{Table: args[0], Added: id, Passwords: pws})
		}),
	}
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "file holding the password to add")
	cmd.MarkFlagRequired("password-file")
	return cmd
}

func (a *app) tableAuthRemoveCommand() *cobra.Command {
	var passwordFile, id string
	cmd := &cobra.Command{
		Use:   "remove TABLE (--password-file FILE | --id ID)",
		Short: "Remove one of a table's passwords",
		Long: `Remove a password from the table, named by the password itself (in FILE)
or by its id ('zpctl table auth list'), and print those left. A password
the table does not have exits 3; the last one cannot be removed (exit 5).`,
		Example: `  zpctl table auth remove billing --password-file ~/.secrets/billing-2026
  zpctl table auth remove billing --id 3f9a0c51d2e4`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTableArg,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if (passwordFile == "") == (id == "") {
				return usagef("table auth remove: give --password-file or --id, one of them")
			}
			return nil
		},
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			pw, err := a.readSecret("password-file", passwordFile, "flag --password-file")
			if err != nil {
				return err
			}
			removed, pws, err := c.RemoveTablePassword(ctx, args[0], pw, id)
			if err != nil {
				return err
			}
			return a.printTableAuth(tableAuthJSON{Table: args[0], Removed: removed, Passwords: pws})
		}),
	}
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "file holding the password to remove")
	cmd.Flags().StringVar(&id, "id", "", "id of the password to remove")
	return cmd
}
