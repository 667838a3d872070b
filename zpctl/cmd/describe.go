package cmd

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

// describeJSON is `table describe --output json`: the table, and each
// partition with its replicas as their nodes report them.
type describeJSON struct {
	client.Table
	Epoch      uint64              `json:"epoch"`
	Partitions []describePartition `json:"partitions"`
}

type describePartition struct {
	client.Partition
	Replicas []survey.Replica `json:"replicas"`
}

func (a *app) tableDescribeCommand() *cobra.Command {
	var (
		sel   partitionSelection
		parts string
	)
	cmd := &cobra.Command{
		Use:     "describe NAME",
		Aliases: []string{"show"},
		Short:   "Show a table: its partitions' master, slaves, state, term, and each replica's (term, lsn) and lag",
		Long: `Show a table's settings and, per partition, its slot range, state and term,
its master and slaves, and for each replica the (term, lsn) its node reports
in INFO replication, the lag behind the master in records, and a slave's
replication state when it is not streaming. A replica its node does not
report is shown with a question mark and the reason in JSON.

--partitions (ids and ranges: 0-99,512) and --node (the partitions with a
replica on that node) select partitions, in the text and in JSON. The
text shows at most ` + fmt.Sprint(detailRows) + ` of the selected partitions and says how many it
left out; --all shows every one. JSON has every selected partition.`,
		Example: `  zpctl table describe default
  zpctl table describe default --partitions 0-99,512 --node 10.0.0.2:9231
  zpctl table describe default -o json | jq '.partitions[] | select(.replicas[].lag > 0) | .id'`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTableArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if sel.ranges, err = parsePartitionRanges(parts); err != nil {
				return err
			}
			return a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
				s := survey.Take(ctx, c, survey.Options{Table: args[0], SkipMeta: true,
					Sections: []client.InfoSection{client.InfoReplication}, NodeTimeout: a.nodeTimeout()})
				if s.Topology == nil {
					return s.TopologyErr
				}
				out, err := describeFromSurvey(s, args[0], sel)
				if err != nil {
					return err
				}
				rows := detailRows
				if sel.all {
					rows = 0
				}
				return a.printer.Print(out, func(w io.Writer) error { return writeTableDetail(w, out.Table, out.Partitions, rows) })
			})(cmd, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&parts, "partitions", "", "only these partitions: ids and ranges, e.g. 0-99,512")
	f.StringVar(&sel.node, "node", "", "only the partitions with a replica on this node (host:port)")
	f.BoolVar(&sel.all, "all", false, "show every selected partition in the text, not the first "+fmt.Sprint(detailRows))
	return cmd
}

// detailRows is how many partitions the text of table describe and table
// create shows unless told --all: a table of thousands of partitions would
// print megabytes.
const detailRows = 100

// partitionSelection is which partitions of a table describe shows.
type partitionSelection struct {
	ranges [][2]uint32 // inclusive; none selects every partition
	node   string      // only partitions with a replica on it
	all    bool        // the text shows every selected partition
}

func (sel partitionSelection) selects(p client.Partition) bool {
	if sel.node != "" && !p.Holds(sel.node) {
		return false
	}
	if len(sel.ranges) == 0 {
		return true
	}
	for _, r := range sel.ranges {
		if p.ID >= r[0] && p.ID <= r[1] {
			return true
		}
	}
	return false
}

// parsePartitionRanges parses "0-99,512" into inclusive ranges; empty is
// none.
func parsePartitionRanges(s string) ([][2]uint32, error) {
	if s == "" {
		return nil, nil
	}
	var out [][2]uint32
	for _, item := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(item), "-")
		a, err := strconv.ParseUint(lo, 10, 32)
		b := a
		if err == nil && isRange {
			b, err = strconv.ParseUint(hi, 10, 32)
		}
		if err != nil || b < a {
			return nil, usagef("--partitions: %q is not a partition id or a range like 0-99", item)
		}
		out = append(out, [2]uint32{uint32(a), uint32(b)})
	}
	return out, nil
}

// describeFromSurvey is what table describe shows of table: the
// partitions sel selects.
func describeFromSurvey(s *survey.Snapshot, table string, sel partitionSelection) (describeJSON, error) {
	tb, ok := s.Table(table)
	if !ok {
		return describeJSON{}, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found", table)
	}
	out := describeJSON{Table: tb, Epoch: s.Topology.Epoch, Partitions: []describePartition{}}
	for _, p := range tb.Partitions {
		if sel.selects(p) {
			out.Partitions = append(out.Partitions, describePartition{Partition: p, Replicas: s.Replicas(tb, p)})
		}
	}
	return out, nil
}

// nodeTimeout bounds the INFO calls of a survey: half of --timeout, so that
// a hung node leaves time to print what the others said.
func (a *app) nodeTimeout() time.Duration { return a.timeout / 2 }

// writeTableDetail prints a table's settings, then one row per partition;
// with parts (from describe) each replica's position too. With rows > 0 it
// prints at most that many partitions and a line saying how many it left
// out.
func writeTableDetail(w io.Writer, tb client.Table, parts []describePartition, rows int) error {
	settings := [][]string{
		{"name:", tb.Name},
		{"partitions:", fmt.Sprint(tb.PartitionCount)},
		{"replicas:", fmt.Sprint(tb.Replicas)},
		{"min sync replicas:", fmt.Sprint(tb.MinSyncReplicas)},
		{"created epoch:", fmt.Sprint(tb.CreatedEpoch)},
		{"quota:", limitText(max(tb.Quota.OpsPerSec, tb.Quota.BytesPerSec), quotaText(tb.Quota))},
		{"protected:", fmt.Sprint(tb.Protected)},
		{"split size:", splitSizeText(tb.SplitSize)},
	}
	if tb.Restoring {
		settings = append(settings, []string{"restoring:", "yes: zpctl backup restore is installing it; nodes answer WAIT"})
	}
	err := output.WriteTable(w, output.Table{Rows: settings})
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	slots := func(p client.Partition) string {
		if p.SlotEnd <= p.SlotBegin {
			return "-"
		}
		return fmt.Sprintf("%d-%d", p.SlotBegin, p.SlotEnd-1)
	}
	if parts == nil {
		shown := limitRows(tb.Partitions, rows)
		t := output.Table{Header: []string{"PARTITION", "SLOTS", "STATE", "TERM", "MASTER", "SLAVES"}}
		for _, p := range shown {
			t.Rows = append(t.Rows, []string{fmt.Sprint(p.ID), slots(p), p.State,
				fmt.Sprint(p.Term), output.Dash(p.Master), output.Join(p.Slaves)})
		}
		if err := output.WriteTable(w, t); err != nil {
			return err
		}
		return writeLeftOut(w, tb.Name, len(shown), len(tb.Partitions))
	}
	shown := limitRows(parts, rows)
	t := output.Table{Header: []string{"PARTITION", "SLOTS", "STATE", "TERM", "MASTER (TERM,LSN)", "SLAVES (TERM,LSN)"}}
	for _, dp := range shown {
		p := dp.Partition
		master, slaves := "-", []string{}
		for _, r := range dp.Replicas {
			if r.Role == "master" {
				master = replicaCell(r)
			} else {
				slaves = append(slaves, replicaCell(r))
			}
		}
		t.Rows = append(t.Rows, []string{fmt.Sprint(p.ID), slots(p), p.State,
			fmt.Sprint(p.Term), master, joinOrDash(slaves)})
	}
	if err := output.WriteTable(w, t); err != nil {
		return err
	}
	return writeLeftOut(w, tb.Name, len(shown), len(parts))
}

// limitRows is the first rows of items, all of them for rows <= 0.
func limitRows[T any](items []T, rows int) []T {
	if rows > 0 && len(items) > rows {
		return items[:rows]
	}
	return items
}

// writeLeftOut says how many partitions a detail left out, and how to see
// them.
func writeLeftOut(w io.Writer, table string, shown, total int) error {
	if shown >= total {
		return nil
	}
	_, err := fmt.Fprintf(w, "... %d more partitions not shown: zpctl table describe %s --partitions %d-%d (or --node ADDR, --all)\n",
		total-shown, table, shown, total-1)
	return err
}

func joinOrDash(items []string) string {
	if len(items) == 0 {
		return "-"
	}
	return strings.Join(items, ", ")
}

// replicaCell is "addr (term,lsn)" with, for a slave, its lag when it has
// one and its state when it is not streaming; "addr (?)" when its node did not report it.
func replicaCell(r survey.Replica) string {
	if !r.Reported {
		s := r.Addr + " (?)"
		if r.NodeState != "" && r.NodeState != "UP" {
			s += " " + r.NodeState
		}
		return s
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d,%d)", r.Addr, r.Term, r.LSN)
	if r.Role == "slave" {
		if r.Lag > 0 {
			fmt.Fprintf(&b, " lag %d", r.Lag)
		}
		if r.State != "streaming" {
			b.WriteString(" " + r.State)
		}
	}
	if r.ReportedRole != r.Role {
		b.WriteString(" acts-as-" + r.ReportedRole)
	}
	return b.String()
}
