package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

func (a *app) tableCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "table",
		Short: "Create, list, describe, dump, flush, split, alter and drop tables; their quota and auth (passwords)",
		RunE:  groupRunE,
	}
	cmd.AddCommand(a.tableCreateCommand(), a.tableListCommand(), a.tableDescribeCommand(), a.tableDumpCommand(),
		a.tableDropCommand(), a.tableFlushCommand(), a.tableQuotaCommand(), a.tableAuthCommand(), a.tableSplitCommand(),
		a.tableAlterCommand())
	return cmd
}

func (a *app) tableCreateCommand() *cobra.Command {
	var (
		spec          client.TableSpec
		ifNotExists   bool
		wait          bool
		passwordFiles []string
		splitSize     string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a table",
		Long: `Create a table and print it with its partitions' placement.

With --if-not-exists an existing table of that name is not an error (it is
printed as it is, whatever its settings). With --wait the command returns
only when the master of every partition serves the table, so that the next
write does not meet a replica still opening.

--ops and --bytes set the table's quota (see 'zpctl table quota --help');
0, the default, is unlimited.

--split-size splits each partition by itself once its master holds more
than that much data (see 'zpctl table alter --help'); off, the default,
never.

--password-file protects the table with the password in the file (given
more than once, with each): its data commands then need one of them (see
'zpctl table auth --help'). With --wait, the first file's password is the
one the wait presents.`,
		Example: `  zpctl table create users --partitions 64 --replicas 3 --min-sync 1 --wait
  zpctl table create sessions --ops 5000 --bytes 10485760
  zpctl table create events --partitions 4 --split-size 8GiB
  zpctl table create billing --password-file ~/.secrets/billing --wait`,
		Args: cobra.ExactArgs(1),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			spec.Name = args[0]
			spec.Passwords = nil
			var err error
			if spec.SplitSize, err = parseSplitSize(splitSize); err != nil {
				return err
			}
			for _, f := range passwordFiles {
				pw, err := a.readSecret("password-file", f, "flag --password-file")
				if err != nil {
					return err
				}
				spec.Passwords = append(spec.Passwords, pw)
			}
			tb, err := c.CreateTable(ctx, spec)
			if err != nil && ifNotExists && errors.Is(err, status.ErrTableExists) {
				var topo *client.Topology
				topo, err = c.Pull(ctx, spec.Name)
				if err == nil && len(topo.Tables) == 1 {
					tb = topo.Tables[0]
				}
			}
			if err != nil {
				return err
			}
			if wait {
				if len(spec.Passwords) > 0 {
					// The wait probes the table: with its password.
					wc, err := a.newClientWith(ctx, map[string][]byte{spec.Name: spec.Passwords[0]})
					if err != nil {
						return err
					}
					defer wc.Close()
					c = wc
				}
				if err := c.WaitTableWritable(ctx, spec.Name); err != nil {
					return err
				}
			}
			return a.printer.Print(tb, func(w io.Writer) error { return writeTableDetail(w, tb, nil, detailRows) })
		}),
	}
	f := cmd.Flags()
	f.Uint32Var(&spec.Partitions, "partitions", 16, "number of partitions, fixed for the table's life (1-16384)")
	f.Uint32Var(&spec.Replicas, "replicas", 3, "replicas per partition, the master included")
	f.Uint32Var(&spec.MinSyncReplicas, "min-sync", 0, "slaves that must persist a write before it is acknowledged (0 = asynchronous)")
	f.Uint64Var(&spec.ExpectedEpoch, "expected-epoch", 0, "fail (exit 6) unless the cluster is at this epoch; 0 = no check")
	f.Uint64Var(&spec.Quota.OpsPerSec, "ops", 0, "quota: operations (keys) per second over the cluster; 0 = unlimited")
	f.Uint64Var(&spec.Quota.BytesPerSec, "bytes", 0, "quota: key and value bytes per second over the cluster; 0 = unlimited")
	f.StringVar(&splitSize, "split-size", "off", "split partitions automatically past this size (e.g. 8GiB; off = never)")
	f.BoolVar(&ifNotExists, "if-not-exists", false, "succeed when the table already exists")
	f.BoolVar(&wait, "wait", false, "wait until every partition's master serves the table")
	f.StringArrayVar(&passwordFiles, "password-file", nil, "protect the table with the password in this file (repeatable)")
	return cmd
}

// tableListJSON is `table list --output json`.
type tableListJSON struct {
	Epoch  uint64         `json:"epoch"`
	Tables []client.Table `json:"tables"`
}

func (a *app) tableListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the tables",
		Example: "  zpctl table list\n  zpctl table list -o json | jq -r '.tables[].name'",
		Args:    cobra.NoArgs,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			tables, epoch, err := c.ListTables(ctx)
			if err != nil {
				return err
			}
			return a.printer.Print(tableListJSON{Epoch: epoch, Tables: tables}, func(w io.Writer) error {
				t := output.Table{Header: []string{"NAME", "PARTITIONS", "REPLICAS", "MIN_SYNC", "CREATED_EPOCH", "PROTECTED", "QUOTA", "SPLIT_SIZE"}}
				for _, tb := range tables {
					t.Rows = append(t.Rows, []string{tb.Name, fmt.Sprint(tb.PartitionCount), fmt.Sprint(tb.Replicas),
						fmt.Sprint(tb.MinSyncReplicas), fmt.Sprint(tb.CreatedEpoch), fmt.Sprint(tb.Protected), output.Dash(quotaText(tb.Quota)), splitSizeText(tb.SplitSize)})
				}
				return output.WriteTable(w, t)
			})
		}),
	}
}

// tableDropJSON is `table drop --output json`.
type tableDropJSON struct {
	Table   string `json:"table"`
	Dropped bool   `json:"dropped"`
	Epoch   uint64 `json:"epoch"`
}

func (a *app) tableDropCommand() *cobra.Command {
	var (
		yes           bool
		expectedEpoch uint64
	)
	cmd := &cobra.Command{
		Use:   "drop NAME",
		Short: "Drop a table and all its data",
		Long: `Drop a table and all its data. It asks for confirmation on a terminal;
scripts (stdin not a terminal) must pass --yes, or the command exits 2.
Declining exits 8.`,
		Example:           "  zpctl table drop scratch --yes",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTableArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Confirm before the --timeout clock starts: a person is typing.
			if !yes {
				if err := a.confirm(cmd.Context(), fmt.Sprintf("Drop table %q and all its data?", args[0])); err != nil {
					return &cmdFailed{err}
				}
			}
			return a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
				epoch, err := c.DropTable(ctx, args[0], expectedEpoch)
				if err != nil {
					return err
				}
				return a.printer.Line(tableDropJSON{Table: args[0], Dropped: true, Epoch: epoch},
					fmt.Sprintf("dropped table %s (epoch %d)", args[0], epoch))
			})(cmd, args)
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "drop without asking")
	cmd.Flags().Uint64Var(&expectedEpoch, "expected-epoch", 0, "fail (exit 6) unless the cluster is at this epoch; 0 = no check")
	return cmd
}

// tableFlushJSON is `table flush --output json`.
type tableFlushJSON struct {
	Table      string   `json:"table"`
	Partitions uint32   `json:"partitions"`
	Flushed    []uint32 `json:"flushed"`
}

func (a *app) tableFlushCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "flush NAME",
		Short: "Delete every key of a table, keeping the table",
		Long: `Delete every key of a table on every replica, online, keeping the table,
its settings and its placement. Each partition's master logs the flush in
its binlog like a write, so slaves follow it in order, and it is
acknowledged like a write (after min_sync_replicas slaves have it). Writes
acknowledged after the command returns are kept; writes racing it may land
before or after the flush of their partition.

It asks for confirmation on a terminal; scripts (stdin not a terminal)
must pass --yes, or the command exits 2. Declining exits 8. An unknown
table exits 3 and changes nothing. When some partitions were not
confirmed flushed before --timeout (their master unreachable or waiting),
the error names them and the command exits 4: the others were flushed,
those named may or may not have been. Running it again flushes them (and
again the others).`,
		Example:           "  zpctl table flush scratch --yes\n  zpctl table flush scratch --yes -o json | jq '.flushed | length'",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTableArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Confirm before the --timeout clock starts: a person is typing.
			if !yes {
				if err := a.confirm(cmd.Context(), fmt.Sprintf("Flush table %q: delete every key on every replica?", args[0])); err != nil {
					return &cmdFailed{err}
				}
			}
			return a.withClient(a.flushTable)(cmd, args)
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "flush without asking")
	return cmd
}

// flushTable flushes the table args[0] and prints which partitions were
// flushed.
func (a *app) flushTable(ctx context.Context, c *client.Client, args []string) error {
	// The partition count for the report; this also fails an unknown
	// table before anything is sent to a node.
	topo, err := c.Pull(ctx, args[0])
	if err != nil {
		return err
	}
	n := topo.Tables[0].PartitionCount
	if err := c.FlushTable(ctx, args[0]); err != nil {
		return err
	}
	flushed := make([]uint32, n)
	for i := range flushed {
		flushed[i] = uint32(i)
	}
	return a.printer.Line(tableFlushJSON{Table: args[0], Partitions: n, Flushed: flushed},
		fmt.Sprintf("flushed table %s (%d partitions)", args[0], n))
}
