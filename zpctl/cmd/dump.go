package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/bytesize"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

// dumpJSON is `table dump --output json`.
type dumpJSON struct {
	Table string     `json:"table"`
	Epoch uint64     `json:"epoch"`
	Nodes []dumpNode `json:"nodes"`
}

// dumpNode is what one node carries of the table. QPS and UsedBytes are
// null when the node did not answer INFO.
type dumpNode struct {
	Addr       string          `json:"addr"`
	State      string          `json:"state"`
	Zone       string          `json:"zone"`
	Rack       string          `json:"rack"`
	Replicas   int             `json:"replicas"`
	Masters    int             `json:"masters"`
	QPS        *float64        `json:"qps"`
	UsedBytes  *uint64         `json:"used_bytes"`
	Partitions []dumpPartition `json:"partitions"`
}

type dumpPartition struct {
	ID     uint32 `json:"id"`
	Master bool   `json:"master"`
}

func (a *app) tableDumpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "dump NAME",
		Short: "Show the load a table puts on each node: replicas, masters (marked *), QPS, disk",
		Long: `Show, for every node of the cluster (those holding nothing of the table
too, e.g. new nodes), how many replicas of the table it holds, how many of
them it masters, the table's QPS and bytes on it (from INFO), and the
partitions, masters marked with *.`,
		Example:           "  zpctl table dump default",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTableArg,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			s := survey.Take(ctx, c, survey.Options{Table: args[0], SkipMeta: true, NodeTimeout: a.nodeTimeout(),
				Sections: []client.InfoSection{client.InfoStats, client.InfoCapacity}})
			if s.Topology == nil {
				return s.TopologyErr
			}
			out, err := dumpFromSurvey(s, args[0])
			if err != nil {
				return err
			}
			return a.printer.Print(out, func(w io.Writer) error { return writeDump(w, out) })
		}),
	}
}

// dumpFromSurvey is what table dump shows of table.
func dumpFromSurvey(s *survey.Snapshot, table string) (dumpJSON, error) {
	tb, ok := s.Table(table)
	if !ok {
		return dumpJSON{}, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found", table)
	}
	out := dumpJSON{Table: tb.Name, Epoch: s.Topology.Epoch, Nodes: []dumpNode{}}
	for i, l := range s.Loads(tb.Name) {
		n := s.Nodes[i]
		dn := dumpNode{Addr: n.Addr, State: n.State, Zone: n.Zone, Rack: n.Rack, Replicas: l.Replicas, Masters: l.Masters,
			Partitions: []dumpPartition{}}
		if n.Err == nil {
			dn.QPS, dn.UsedBytes = &l.QPS, &l.UsedBytes
		}
		for _, p := range tb.Partitions {
			switch {
			case p.Master == n.Addr:
				dn.Partitions = append(dn.Partitions, dumpPartition{ID: p.ID, Master: true})
			case p.Holds(n.Addr):
				dn.Partitions = append(dn.Partitions, dumpPartition{ID: p.ID})
			}
		}
		out.Nodes = append(out.Nodes, dn)
	}
	return out, nil
}

func writeDump(w io.Writer, d dumpJSON) error {
	t := output.Table{Header: []string{"NODE", "STATE", "ZONE", "RACK", "REPLICAS", "MASTERS", "QPS", "USED", "PARTITIONS (* = master)"}}
	minR, maxR, minM, maxM := -1, 0, -1, 0
	for _, n := range d.Nodes {
		qps, used := "-", "-"
		if n.QPS != nil {
			qps, used = fmt.Sprintf("%.1f", *n.QPS), bytesize.Format(*n.UsedBytes)
		}
		var ps []string
		for _, p := range n.Partitions {
			s := fmt.Sprint(p.ID)
			if p.Master {
				s += "*"
			}
			ps = append(ps, s)
		}
		parts := "-"
		if len(ps) > 0 {
			parts = strings.Join(ps, " ")
		}
		t.Rows = append(t.Rows, []string{n.Addr, n.State, output.Dash(n.Zone), output.Dash(n.Rack), fmt.Sprint(n.Replicas),
			fmt.Sprint(n.Masters), qps, used, parts})
		if n.State == "UP" {
			if minR < 0 || n.Replicas < minR {
				minR = n.Replicas
			}
			if minM < 0 || n.Masters < minM {
				minM = n.Masters
			}
			maxR, maxM = max(maxR, n.Replicas), max(maxM, n.Masters)
		}
	}
	if _, err := fmt.Fprintf(w, "table %s at epoch %d\n\n", d.Table, d.Epoch); err != nil {
		return err
	}
	if err := output.WriteTable(w, t); err != nil {
		return err
	}
	if minR >= 0 {
		_, err := fmt.Fprintf(w, "\nper UP node: replicas %d-%d, masters %d-%d\n", minR, maxR, minM, maxM)
		return err
	}
	return nil
}
