package cmd

import (
	"context"
	"fmt"
	"io"
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
	return &cobra.Command{
		Use:     "describe NAME",
		Aliases: []string{"show"},
		Short:   "Show a table: its partitions' master, slaves, state, term, and each replica's (term, lsn) and lag",
		Long: `Show a table's settings and, per partition, its slot range, state and term,
its master and slaves, and for each replica the (term, lsn) its node reports
in INFO replication, the lag behind the master in records, and a slave's
replication state when it is not streaming. A replica its node does not
report is shown with a question mark and the reason in JSON.`,
		Example:           "  zpctl table describe default\n  zpctl table describe default -o json | jq '.partitions[] | select(.replicas[].lag > 0) | .id'",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTableArg,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			s := survey.Take(ctx, c, survey.Options{Table: args[0], SkipMeta: true,
				Sections: []client.InfoSection{client.InfoReplication}, NodeTimeout: a.nodeTimeout()})
			if s.Topology == nil {
				return s.TopologyErr
			}
			out, err := describeFromSurvey(s, args[0])
			if err != nil {
				return err
			}
			return a.printer.Print(out, func(w io.Writer) error { return writeTableDetail(w, out.Table, out.Partitions) })
		}),
	}
}

// describeFromSurvey is what table describe shows of table.
func describeFromSurvey(s *survey.Snapshot, table string) (describeJSON, error) {
	tb, ok := s.Table(table)
	if !ok {
		return describeJSON{}, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found", table)
	}
	out := describeJSON{Table: tb, Epoch: s.Topology.Epoch, Partitions: []describePartition{}}
	for _, p := range tb.Partitions {
		out.Partitions = append(out.Partitions, describePartition{Partition: p, Replicas: s.Replicas(tb, p)})
	}
	return out, nil
}

// nodeTimeout bounds the INFO calls of a survey: half of --timeout, so that
// a hung node leaves time to print what the others said.
func (a *app) nodeTimeout() time.Duration { return a.timeout / 2 }

// writeTableDetail prints a table's settings, then one row per partition;
// with parts (from describe) each replica's position too.
func writeTableDetail(w io.Writer, tb client.Table, parts []describePartition) error {
	err := output.WriteTable(w, output.Table{Rows: [][]string{
		{"name:", tb.Name},
		{"partitions:", fmt.Sprint(tb.PartitionCount)},
		{"replicas:", fmt.Sprint(tb.Replicas)},
		{"min sync replicas:", fmt.Sprint(tb.MinSyncReplicas)},
		{"created epoch:", fmt.Sprint(tb.CreatedEpoch)},
		{"quota:", limitText(max(tb.Quota.OpsPerSec, tb.Quota.BytesPerSec), quotaText(tb.Quota))},
	}})
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
		t := output.Table{Header: []string{"PARTITION", "SLOTS", "STATE", "TERM", "MASTER", "SLAVES"}}
		for _, p := range tb.Partitions {
			t.Rows = append(t.Rows, []string{fmt.Sprint(p.ID), slots(p), p.State,
				fmt.Sprint(p.Term), output.Dash(p.Master), output.Join(p.Slaves)})
		}
		return output.WriteTable(w, t)
	}
	t := output.Table{Header: []string{"PARTITION", "SLOTS", "STATE", "TERM", "MASTER (TERM,LSN)", "SLAVES (TERM,LSN)"}}
	for _, dp := range parts {
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
	return output.WriteTable(w, t)
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
