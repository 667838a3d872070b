package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/bytesize"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// quotaJSON is `table quota --output json`: the table's quota as the
// change left it, and the epoch of the change.
type quotaJSON struct {
	Table string       `json:"table"`
	Quota client.Quota `json:"quota"`
	Epoch uint64       `json:"epoch"`
}

// quotaRetries bounds how often `table quota` re-reads the table when the
// epoch it read moved before its change (without --expected-epoch).
const quotaRetries = 10

func (a *app) tableQuotaCommand() *cobra.Command {
	var (
		ops, bytes    uint64
		expectedEpoch uint64
	)
	var cmd *cobra.Command
	cmd = &cobra.Command{
		Use:   "quota NAME --ops N --bytes N",
		Short: "Set a table's quota: operations and bytes per second",
		Long: `Set a table's quota and print it. --ops limits operations per second (an
MGET or MSET counts one per key), --bytes the key and value bytes per
second; both are for the whole cluster, and each node enforces the share of
the table's partitions it masters. 0 removes a limit; a limit not given is
left as it is. Requests over the quota are refused with QUOTA_EXCEEDED
(exit 5 in zpctl), counted in 'zpctl stats qps' and in the nodes' metrics.
Nodes apply a change within a few seconds (at once when the meta leader's
NOTIFY reaches them, else at their next PING), without restarts.

Changing one limit reads the other from the meta servers first; the change
is then made only if the topology did not move in between (the command
reads again and retries if it did). --expected-epoch makes the whole change
conditional on that epoch instead (exit 6 when stale).`,
		Example: `  zpctl table quota users --ops 500
  zpctl table quota users --bytes 10485760      # 10 MiB/s; ops unchanged
  zpctl table quota users --ops 0 --bytes 0     # unlimited`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTableArg,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("ops") && !cmd.Flags().Changed("bytes") {
				return usagef("table quota: give --ops, --bytes or both (0 removes a limit)")
			}
			return nil
		},
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			name := args[0]
			opsSet, bytesSet := cmd.Flags().Changed("ops"), cmd.Flags().Changed("bytes")
			out, err := setQuota(ctx, c, name, client.Quota{OpsPerSec: ops, BytesPerSec: bytes}, opsSet, bytesSet, expectedEpoch)
			if err != nil {
				return err
			}
			return a.printer.Print(out, func(w io.Writer) error {
				return output.WriteTable(w, output.Table{Rows: [][]string{
					{"table:", out.Table},
					{"ops/s:", limitText(out.Quota.OpsPerSec, fmt.Sprint(out.Quota.OpsPerSec))},
					{"bytes/s:", limitText(out.Quota.BytesPerSec, fmt.Sprintf("%d (%s/s)", out.Quota.BytesPerSec, bytesize.Format(out.Quota.BytesPerSec)))},
					{"epoch:", fmt.Sprint(out.Epoch)},
				}})
			})
		}),
	}
	f := cmd.Flags()
	f.Uint64Var(&ops, "ops", 0, "operations (keys) per second over the cluster; 0 = unlimited")
	f.Uint64Var(&bytes, "bytes", 0, "key and value bytes per second over the cluster; 0 = unlimited")
	f.Uint64Var(&expectedEpoch, "expected-epoch", 0, "fail (exit 6) unless the cluster is at this epoch; 0 = no check")
	return cmd
}

// setQuota sets table's quota to q; a limit not set (opsSet, bytesSet)
// keeps its current value, read from the meta servers. Without
// expectedEpoch, such a read-modify-write is made conditional on the epoch
// read, and retried when that moved.
func setQuota(ctx context.Context, c *client.Client, table string, q client.Quota, opsSet, bytesSet bool, expectedEpoch uint64) (quotaJSON, error) {
	for attempt := 1; ; attempt++ {
		want, expected, cas := q, expectedEpoch, false
		if !opsSet || !bytesSet {
			topo, err := c.Pull(ctx, table)
			if err != nil {
				return quotaJSON{}, err
			}
			if len(topo.Tables) != 1 {
				return quotaJSON{}, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found", table)
			}
			cur := topo.Tables[0].Quota
			if !opsSet {
				want.OpsPerSec = cur.OpsPerSec
			}
			if !bytesSet {
				want.BytesPerSec = cur.BytesPerSec
			}
			if expected == 0 {
				expected, cas = topo.Epoch, true
			}
		}
		epoch, err := c.SetQuota(ctx, table, want, expected)
		if err == nil {
			return quotaJSON{Table: table, Quota: want, Epoch: epoch}, nil
		}
		if !cas || !errors.Is(err, status.ErrStaleEpoch) || attempt >= quotaRetries || ctx.Err() != nil {
			return quotaJSON{}, err
		}
		// The topology moved (or a lagging meta server answered the read):
		// read again.
		t := time.NewTimer(time.Duration(attempt) * 20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return quotaJSON{}, err
		case <-t.C:
		}
	}
}

// limitText is text for a limit of n, or "unlimited" when n is 0.
func limitText(n uint64, text string) string {
	if n == 0 {
		return "unlimited"
	}
	return text
}

// quotaText is a quota in one cell: "500 ops/s, 1.0 MiB/s", or "" when
// unlimited.
func quotaText(q client.Quota) string {
	var parts []string
	if q.OpsPerSec > 0 {
		parts = append(parts, fmt.Sprintf("%d ops/s", q.OpsPerSec))
	}
	if q.BytesPerSec > 0 {
		parts = append(parts, bytesize.Format(q.BytesPerSec)+"/s")
	}
	return strings.Join(parts, ", ")
}
