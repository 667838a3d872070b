package cmd

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/bytesize"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// alterJSON is `table alter --output json`: the setting as the change
// left it, and the epoch of the change.
type alterJSON struct {
	Table     string `json:"table"`
	SplitSize uint64 `json:"split_size"`
	Epoch     uint64 `json:"epoch"`
}

// parseSplitSize reads a --split-size: a size in bytes (suffixes K, M, G,
// KiB...) or "off" (0).
func parseSplitSize(v string) (uint64, error) {
	if v == "off" || v == "0" {
		return 0, nil
	}
	n, err := bytesize.Parse(v)
	if err != nil {
		return 0, usagef("--split-size %q: want a size such as 64MiB, or off", v)
	}
	return n, nil
}

// splitSizeText is a table's split size in one cell.
func splitSizeText(n uint64) string {
	if n == 0 {
		return "off"
	}
	return bytesize.Format(n)
}

func (a *app) tableAlterCommand() *cobra.Command {
	var (
		splitSize     string
		expectedEpoch uint64
	)
	cmd := &cobra.Command{
		Use:   "alter NAME --split-size SIZE",
		Short: "Change a table's settings: its automatic split size",
		Long: `Change a table's settings and print them. --split-size makes the meta
leader's scheduler split, by itself, each partition whose master holds more
data than SIZE (RocksDB's table files and memtables, as the master reports
them every few seconds), at the slot that halves its data; "off" (or 0)
stops it. SIZE is at least 1MiB. Splits go one per partition at a time,
within the scheduler's max-moves, not while the table is being restored,
and not within 30 seconds of a split of the same partition (its halves
report their size once trimmed). See docs/topology.md, "Split".

The quota is changed by 'zpctl table quota'.`,
		Example: `  zpctl table alter users --split-size 8GiB
  zpctl table alter users --split-size off -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTableArg,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("split-size") {
				return usagef("table alter: give --split-size (off turns automatic splits off)")
			}
			return nil
		},
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			size, err := parseSplitSize(splitSize)
			if err != nil {
				return err
			}
			epoch, err := c.SetSplitSize(ctx, args[0], size, expectedEpoch)
			if err != nil {
				return err
			}
			out := alterJSON{Table: args[0], SplitSize: size, Epoch: epoch}
			return a.printer.Print(out, func(w io.Writer) error {
				return output.WriteTable(w, output.Table{Rows: [][]string{
					{"table:", out.Table},
					{"split size:", splitSizeText(out.SplitSize)},
					{"epoch:", fmt.Sprint(out.Epoch)},
				}})
			})
		}),
	}
	cmd.Flags().StringVar(&splitSize, "split-size", "", "split partitions automatically past this size (e.g. 8GiB; off = never)")
	cmd.Flags().Uint64Var(&expectedEpoch, "expected-epoch", 0, "fail (exit 6) unless the cluster is at this epoch; 0 = no check")
	return cmd
}
