package cmd

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// tableSplitCommand is `table split TABLE PARTITION [--at SLOT]` and `table
// split TABLE --all`: an operation like the moves (plan, confirm, queue,
// follow), whose moves are SPLITs (docs/topology.md, "Split").
func (a *app) tableSplitCommand() *cobra.Command {
	var (
		ro  runOptions
		at  uint32
		all bool
	)
	cmd := &cobra.Command{
		Use:   "split TABLE (PARTITION [--at SLOT] | --all)",
		Short: "Split a partition's slot range in two, online",
		Long: `Split a partition in two: it keeps the lower part of its slot range and a
new partition, with the same replicas, master and term, takes the upper
part from --at SLOT on (default: the slot that halves the partition's
data by size, which its master estimates from a sample of a few thousand
keys when the split is queued; the middle of the range for a partition
with too little data to say). No data is
copied: each replica creates the new partition from a checkpoint (hard
links) of its data at the master's split record, and both halves then
delete the other's keys in the background. Writes to the moving range
wait (WAIT, retried by clients) from the split record until the meta
leader commits the split, typically under a second. --all splits every
partition of the table by size, one at a time.

A table created or altered with --split-size splits its partitions by
itself (zpctl table alter).

` + followHelp,
		Example: `  zpctl table split default 3 --yes
  zpctl table split default 3 --at 1000 --yes -o json
  zpctl table split default --all --yes`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: a.completeTables,
		RunE: func(cmd *cobra.Command, args []string) error {
			var pid uint32
			switch {
			case all && len(args) == 2:
				return usagef("give a PARTITION or --all, not both")
			case all && cmd.Flags().Changed("at"):
				return usagef("--at splits one partition: not with --all")
			case !all && len(args) == 1:
				return usagef("split needs a PARTITION (or --all)")
			case !all:
				var err error
				if pid, err = parsePartition(args[1]); err != nil {
					return err
				}
			}
			return a.runOperation(cmd, splitOperation(args[0], pid, at, all), ro)
		},
	}
	ro.register(cmd)
	cmd.Flags().Uint32Var(&at, "at", 0, "first slot of the new partition (default: the slot that halves the partition's data)")
	cmd.Flags().BoolVar(&all, "all", false, "split every partition of the table, each where its data halves")
	return cmd
}

// splitOperation plans the splits from a pulled topology, checking the
// point given by lib/topo's rule (the meta leader checks them again when
// they are queued), and queues them at its epoch. Without --at the plan
// leaves the point to the partition's master, which weighs its data when
// the split is queued.
func splitOperation(table string, pid, at uint32, all bool) operation {
	return operation{
		name: "split",
		plan: func(ctx context.Context, c *client.Client) (*Plan, error) {
			cur, err := c.Pull(ctx, table)
			if err != nil {
				return nil, err
			}
			tb := cur.Tables[0]
			parts := make([]*zppb.Partition, len(tb.Partitions))
			for i, p := range tb.Partitions {
				parts[i] = &zppb.Partition{Id: p.ID, SlotBegin: p.SlotBegin, SlotEnd: p.SlotEnd}
			}
			p := &Plan{Operation: "split", Epoch: cur.Epoch, Steps: []PlanStep{}}
			add := func(id, at uint32) error {
				if id >= uint32(len(parts)) {
					return status.New(zppb.Code_INVALID_ARGUMENT, "table %q has no partition %d", table, id)
				}
				if _, err := topo.SplitPoint(parts, parts[id], at); err != nil {
					return err
				}
				p.Steps = append(p.Steps, PlanStep{Action: string(client.MoveSplit), Table: table, Partition: id, At: at})
				return nil
			}
			if !all {
				if err := add(pid, at); err != nil {
					return nil, err
				}
				return p, nil
			}
			for id := range parts {
				if err := add(uint32(id), 0); err != nil {
					return nil, err
				}
			}
			return p, nil
		},
		queue: func(ctx context.Context, c *client.Client, p *Plan) ([]client.Move, error) {
			if all {
				return c.Split(ctx, table, 0, 0, true, p.Epoch)
			}
			return c.Split(ctx, table, p.Steps[0].Partition, p.Steps[0].At, false, p.Epoch)
		},
	}
}

// splitArrow is a split's "at SLOT", with "-> partition N" once the new
// partition has its id.
func splitArrow(m client.Move) string {
	s := "at " + strconv.FormatUint(uint64(m.SplitAt), 10)
	if m.SplitChild != 0 {
		s += fmt.Sprintf(" -> partition %d", m.SplitChild)
	}
	return s
}
