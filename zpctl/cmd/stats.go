package cmd

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/bytesize"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

func (a *app) statsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Per-node statistics from INFO: qps, latency, space, repl",
		Long: `Ask every node for INFO and show one aspect across the cluster, for one
table or (without TABLE) for all. A node that does not answer is listed
with its error and left out of the totals.`,
		RunE: groupRunE,
	}
	cmd.AddCommand(
		a.statsSubcommand("qps", "Requests per second, request counts and quota refusals, per node and table", client.InfoStats, writeStatsQPS),
		a.statsSubcommand("latency", "Latency per node (INFO has none: shows what it has; see the nodes' metrics)", client.InfoStats, writeStatsLatency),
		a.statsSubcommand("space", "Bytes on disk per node and table: RocksDB and binlog", client.InfoCapacity, writeStatsSpace),
		a.statsSubcommand("repl", "Every replica's role, state, (term, lsn) and lag", client.InfoReplication, writeStatsRepl),
	)
	return cmd
}

// statsNodeJSON is one node of `stats qps|latency|space` in JSON.
type statsNodeJSON struct {
	Addr     string                 `json:"addr"`
	State    string                 `json:"state"`
	Error    string                 `json:"error,omitempty"`
	Stats    []client.TableStats    `json:"stats,omitempty"`
	Capacity []client.TableCapacity `json:"capacity,omitempty"`
}

// statsJSONDoc is `stats qps|latency|space --output json`.
type statsJSONDoc struct {
	Table string          `json:"table"`
	Epoch uint64          `json:"epoch"`
	Nodes []statsNodeJSON `json:"nodes"`
	// Latency: Available is false while INFO has no latency figures, and
	// Note says so.
	Available *bool  `json:"available,omitempty"`
	Note      string `json:"note,omitempty"`
}

// statsReplJSON is `stats repl --output json`.
type statsReplJSON struct {
	Table    string        `json:"table"`
	Epoch    uint64        `json:"epoch"`
	Replicas []replRowJSON `json:"replicas"`
}

type replRowJSON struct {
	Table     string `json:"table"`
	Partition uint32 `json:"partition"`
	survey.Replica
}

// latencyNote is what `stats latency` says while nodes report no latency.
const latencyNote = "INFO reports no latency figures yet: nodes count requests (ops, reads, writes, errors) and their rate, not their duration. Shown: what INFO has. Latency by table and command is in the nodes' Prometheus metrics (zeppelin_node_request_duration_seconds, see docs/observability.md); for client-side latency run zpbench."

// statsWriter turns a survey into the JSON document and the text form of
// one stats command.
type statsWriter func(s *survey.Snapshot, table string) (any, func(io.Writer) error)

func (a *app) statsSubcommand(name, short string, section client.InfoSection, write statsWriter) *cobra.Command {
	return &cobra.Command{
		Use:               name + " [TABLE]",
		Short:             short,
		Example:           fmt.Sprintf("  zpctl stats %s default\n  zpctl stats %s -o json", name, name),
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: a.completeTableArg,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			table := ""
			if len(args) == 1 {
				table = args[0]
			}
			s := survey.Take(ctx, c, survey.Options{Table: table, SkipMeta: true, NodeTimeout: a.nodeTimeout(),
				Sections: []client.InfoSection{section}})
			if s.Topology == nil {
				return s.TopologyErr
			}
			if _, ok := s.Table(table); table != "" && !ok {
				return status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found", table)
			}
			doc, text := write(s, table)
			return a.printer.Print(doc, text)
		}),
	}
}

func statsDoc(s *survey.Snapshot, table string) statsJSONDoc {
	doc := statsJSONDoc{Table: table, Epoch: s.Topology.Epoch, Nodes: []statsNodeJSON{}}
	for _, n := range s.Nodes {
		nj := statsNodeJSON{Addr: n.Addr, State: n.State}
		if n.Err != nil {
			nj.Error = n.Err.Error()
		}
		for _, st := range n.Info.Stats {
			if table == "" || st.Table == table {
				nj.Stats = append(nj.Stats, st)
			}
		}
		for _, c := range n.Info.Capacity {
			if table == "" || c.Table == table {
				nj.Capacity = append(nj.Capacity, c)
			}
		}
		doc.Nodes = append(doc.Nodes, nj)
	}
	return doc
}

func writeStatsQPS(s *survey.Snapshot, table string) (any, func(io.Writer) error) {
	doc := statsDoc(s, table)
	return doc, func(w io.Writer) error { return writeQPSTable(w, doc) }
}

func writeQPSTable(w io.Writer, doc statsJSONDoc) error {
	t := output.Table{Header: []string{"NODE", "TABLE", "QPS", "OPS", "READS", "WRITES", "ERRORS", "QUOTA_EXCEEDED"}}
	var total client.TableStats
	for _, n := range doc.Nodes {
		if n.Error != "" {
			t.Rows = append(t.Rows, []string{n.Addr, "-", "-", "-", "-", "-", "-", "error: " + n.Error})
			continue
		}
		for _, st := range n.Stats {
			t.Rows = append(t.Rows, []string{n.Addr, st.Table, fmt.Sprintf("%.1f", st.QPS), fmt.Sprint(st.Ops), fmt.Sprint(st.Reads),
				fmt.Sprint(st.Writes), fmt.Sprint(st.Errors), fmt.Sprint(st.QuotaExceeded)})
			total.QPS += st.QPS
			total.Ops += st.Ops
			total.Reads += st.Reads
			total.Writes += st.Writes
			total.Errors += st.Errors
			total.QuotaExceeded += st.QuotaExceeded
		}
	}
	t.Rows = append(t.Rows, []string{"total", output.Dash(doc.Table), fmt.Sprintf("%.1f", total.QPS), fmt.Sprint(total.Ops),
		fmt.Sprint(total.Reads), fmt.Sprint(total.Writes), fmt.Sprint(total.Errors), fmt.Sprint(total.QuotaExceeded)})
	return output.WriteTable(w, t)
}

func writeStatsLatency(s *survey.Snapshot, table string) (any, func(io.Writer) error) {
	doc := statsDoc(s, table)
	no := false
	doc.Available, doc.Note = &no, latencyNote
	return doc, func(w io.Writer) error {
		if _, err := fmt.Fprintf(w, "%s\n\n", latencyNote); err != nil {
			return err
		}
		return writeQPSTable(w, doc)
	}
}

func writeStatsSpace(s *survey.Snapshot, table string) (any, func(io.Writer) error) {
	doc := statsDoc(s, table)
	return doc, func(w io.Writer) error {
		t := output.Table{Header: []string{"NODE", "TABLE", "REPLICAS", "USED", "DB", "BINLOG"}}
		var total client.TableCapacity
		for _, n := range doc.Nodes {
			if n.Error != "" {
				t.Rows = append(t.Rows, []string{n.Addr, "-", "-", "-", "-", "error: " + n.Error})
				continue
			}
			for _, c := range n.Capacity {
				t.Rows = append(t.Rows, []string{n.Addr, c.Table, fmt.Sprint(c.Replicas), bytesize.Format(c.UsedBytes), bytesize.Format(c.DBBytes), bytesize.Format(c.BinlogBytes)})
				total.Replicas += c.Replicas
				total.UsedBytes += c.UsedBytes
				total.DBBytes += c.DBBytes
				total.BinlogBytes += c.BinlogBytes
			}
		}
		t.Rows = append(t.Rows, []string{"total", output.Dash(doc.Table), fmt.Sprint(total.Replicas), bytesize.Format(total.UsedBytes),
			bytesize.Format(total.DBBytes), bytesize.Format(total.BinlogBytes)})
		return output.WriteTable(w, t)
	}
}

func writeStatsRepl(s *survey.Snapshot, table string) (any, func(io.Writer) error) {
	doc := statsReplJSON{Table: table, Epoch: s.Topology.Epoch, Replicas: []replRowJSON{}}
	for _, tb := range s.Tables() {
		if table != "" && tb.Name != table {
			continue
		}
		for _, p := range tb.Partitions {
			for _, r := range s.Replicas(tb, p) {
				doc.Replicas = append(doc.Replicas, replRowJSON{Table: tb.Name, Partition: p.ID, Replica: r})
			}
		}
	}
	return doc, func(w io.Writer) error {
		t := output.Table{Header: []string{"TABLE", "PARTITION", "NODE", "ROLE", "STATE", "TERM", "LSN", "APPLIED", "LAG"}}
		var maxLag uint64
		for _, r := range doc.Replicas {
			if !r.Reported {
				t.Rows = append(t.Rows, []string{r.Table, fmt.Sprint(r.Partition), r.Addr, r.Role, "? " + r.Error, "-", "-", "-", "-"})
				continue
			}
			state := r.State
			if r.ReportedRole != r.Role {
				state += " (acts as " + r.ReportedRole + ")"
			}
			t.Rows = append(t.Rows, []string{r.Table, fmt.Sprint(r.Partition), r.Addr, r.Role, state, fmt.Sprint(r.Term),
				fmt.Sprint(r.LSN), fmt.Sprint(r.AppliedLSN), fmt.Sprint(r.Lag)})
			maxLag = max(maxLag, r.Lag)
		}
		if err := output.WriteTable(w, t); err != nil {
			return err
		}
		lagging := slices.IndexFunc(doc.Replicas, func(r replRowJSON) bool { return r.Lag > 0 || !r.Reported }) >= 0
		_, err := fmt.Fprintf(w, "\n%d replicas, max lag %d records, all caught up: %s\n", len(doc.Replicas), maxLag, yesNo(!lagging))
		return err
	}
}
