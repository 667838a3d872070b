package cmd

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/bytesize"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

// nodeInfoJSON is `node info --output json`. Sections not asked for are
// null.
type nodeInfoJSON struct {
	Addr string `json:"addr"`
	// Node is the meta servers' record of the node; null when the
	// topology does not list it (INFO is asked all the same).
	Node        *client.Node           `json:"node"`
	Server      *client.ServerInfo     `json:"server"`
	Stats       []client.TableStats    `json:"stats"`
	Capacity    []client.TableCapacity `json:"capacity"`
	Replication []client.ReplicaInfo   `json:"replication"`
}

// fill sets the sections asked for (all when secs is empty) from info.
func (out *nodeInfoJSON) fill(info client.Info, secs []client.InfoSection) {
	asked := func(s client.InfoSection) bool { return len(secs) == 0 || slices.Contains(secs, s) }
	out.Server = info.Server
	if asked(client.InfoStats) {
		out.Stats = listed(info.Stats)
	}
	if asked(client.InfoCapacity) {
		out.Capacity = listed(info.Capacity)
	}
	if asked(client.InfoReplication) {
		out.Replication = listed(info.Replication)
	}
}

var infoSections = map[string]client.InfoSection{
	"server":      client.InfoServer,
	"stats":       client.InfoStats,
	"capacity":    client.InfoCapacity,
	"replication": client.InfoReplication,
}

func (a *app) nodeInfoCommand() *cobra.Command {
	var (
		sections []string
		table    string
	)
	cmd := &cobra.Command{
		Use:   "info ADDR",
		Short: "Show what one node says about itself: server, stats, capacity, replication",
		Long: `Ask the node at ADDR for INFO: server (version, uptime, epoch, last ping),
stats (requests per table), capacity (bytes on disk per table) and
replication (every replica's role, state, (term, lsn) and lag), next to what
the meta servers know of it. --section limits the sections, --table the
tables. The node is asked even when the topology does not list it.

A node does not answer while it starts (it listens once its replicas are
open), but it tells the meta leader how far it got: node info then shows
"starting: opened X of Y replicas, N/s, ETA ..." (node.starting in JSON,
the sections null) and exits as for an unreachable node (4).`,
		Example: `  zpctl node info 127.0.0.1:9231
  zpctl node info 127.0.0.1:9231 --section replication --table default
  zpctl node info 127.0.0.1:9231 -o json | jq '.replication[] | select(.lag_records > 0)'`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeNodes,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			var secs []client.InfoSection
			for _, s := range sections {
				sec, ok := infoSections[strings.ToLower(s)]
				if !ok {
					return usagef("--section %q: want server, stats, capacity or replication", s)
				}
				if !slices.Contains(secs, sec) {
					secs = append(secs, sec)
				}
			}
			slices.Sort(secs)
			addr := args[0]
			out := nodeInfoJSON{Addr: addr}
			if nodes, _, err := c.ListNodes(ctx); err == nil {
				for _, n := range nodes {
					if n.Addr == addr {
						out.Node = &n
					}
				}
			}
			ni := c.InfoNodes(ctx, []string{addr}, table, secs...)[0]
			if ni.Err != nil {
				if out.Node == nil || out.Node.Starting == nil {
					return ni.Err
				}
				// What the meta leader knows, then why the node
				// itself did not answer.
				if err := a.printer.Print(out, func(w io.Writer) error { return writeNodeInfo(w, out, time.Now()) }); err != nil {
					return err
				}
				return fmt.Errorf("node %s is starting: %w", addr, ni.Err)
			}
			out.fill(ni.Info, secs)
			return a.printer.Print(out, func(w io.Writer) error { return writeNodeInfo(w, out, time.Now()) })
		}),
	}
	cmd.Flags().StringSliceVar(&sections, "section", nil, "sections to show: server, stats, capacity, replication (default all)")
	cmd.Flags().StringVar(&table, "table", "", "only this table")
	cmd.RegisterFlagCompletionFunc("section", cobra.FixedCompletions([]string{"server", "stats", "capacity", "replication"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RegisterFlagCompletionFunc("table", a.completeTables)
	return cmd
}

func writeNodeInfo(w io.Writer, ni nodeInfoJSON, now time.Time) error {
	var blocks []func() error
	if n, s := ni.Node, ni.Server; n != nil || s != nil {
		blocks = append(blocks, func() error {
			t := output.Table{Rows: [][]string{{"addr:", ni.Addr}}}
			if n != nil {
				t.Rows = append(t.Rows,
					[]string{"state:", n.State + " (as the meta servers see it)"},
					[]string{"zone/rack:", output.Dash(n.Zone) + " / " + output.Dash(n.Rack)},
					[]string{"weight:", fmt.Sprint(n.Weight)},
					[]string{"last heartbeat:", heartbeatAgo(*n, now)})
				if n.Starting != nil {
					t.Rows = append(t.Rows, []string{"starting:", survey.StartupText(*n.Starting)})
				}
			} else {
				t.Rows = append(t.Rows, []string{"state:", "not in the topology"})
			}
			if s != nil {
				ping := "-"
				if s.LastPingMs > 0 {
					ping = now.Sub(time.UnixMilli(s.LastPingMs)).Truncate(time.Millisecond).String() + " ago"
				}
				t.Rows = append(t.Rows,
					[]string{"version:", output.Dash(s.Version)},
					[]string{"uptime:", (time.Duration(s.UptimeMs) * time.Millisecond).Truncate(time.Second).String()},
					[]string{"epoch:", fmt.Sprint(s.Epoch)},
					[]string{"last ping:", ping},
					[]string{"tables:", output.Join(s.Tables)})
				if c := s.Replicas; c != nil {
					t.Rows = append(t.Rows, []string{"replicas:", replicaCountsText(*c)})
				}
				if s.MetaLeader != "" {
					t.Rows = append(t.Rows, []string{"meta leader:", s.MetaLeader})
				}
			}
			return output.WriteTable(w, t)
		})
	}
	if ni.Stats != nil {
		blocks = append(blocks, func() error {
			t := output.Table{Header: []string{"TABLE", "QPS", "OPS", "READS", "WRITES", "ERRORS", "QUOTA_EXCEEDED"}}
			for _, s := range ni.Stats {
				t.Rows = append(t.Rows, []string{s.Table, fmt.Sprintf("%.1f", s.QPS), fmt.Sprint(s.Ops), fmt.Sprint(s.Reads), fmt.Sprint(s.Writes),
					fmt.Sprint(s.Errors), fmt.Sprint(s.QuotaExceeded)})
			}
			return output.WriteTable(w, t)
		})
	}
	if ni.Capacity != nil {
		blocks = append(blocks, func() error {
			t := output.Table{Header: []string{"TABLE", "REPLICAS", "USED", "DB", "BINLOG"}}
			for _, c := range ni.Capacity {
				t.Rows = append(t.Rows, []string{c.Table, fmt.Sprint(c.Replicas), bytesize.Format(c.UsedBytes), bytesize.Format(c.DBBytes), bytesize.Format(c.BinlogBytes)})
			}
			return output.WriteTable(w, t)
		})
	}
	if ni.Replication != nil {
		blocks = append(blocks, func() error {
			t := output.Table{Header: []string{"TABLE", "PARTITION", "ROLE", "STATE", "TERM", "LSN", "APPLIED", "FIRST", "LAG", "MASTER/SLAVES"}}
			for _, r := range ni.Replication {
				peers := output.Dash(r.Master)
				if r.Role == "master" {
					var ps []string
					for _, p := range r.Peers {
						ps = append(ps, fmt.Sprintf("%s(%s,lag %d)", p.Addr, p.State, p.LagRecords))
					}
					peers = output.Join(ps)
				}
				state := r.State
				if f := r.FullSync; f != nil && f.State == "running" {
					state += fmt.Sprintf(" fullsync %s/%s", bytesize.Format(f.BytesFetched), bytesize.Format(f.BytesTotal))
				}
				t.Rows = append(t.Rows, []string{r.Table, fmt.Sprint(r.Partition), r.Role, state, fmt.Sprint(r.Term), fmt.Sprint(r.LSN),
					fmt.Sprint(r.AppliedLSN), fmt.Sprint(r.FirstLSN), fmt.Sprint(r.LagRecords), peers})
			}
			return output.WriteTable(w, t)
		})
	}
	for i, b := range blocks {
		if i > 0 {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		if err := b(); err != nil {
			return err
		}
	}
	return nil
}

// replicaCountsText is the replicas row of node info, e.g. "10000
// assigned, 10000 open (9990 parked, 6660 slaves watched), 0 opening".
func replicaCountsText(c client.ReplicaCounts) string {
	return fmt.Sprintf("%d assigned, %d open (%d parked, %d slaves watched), %d opening", c.Assigned, c.Open, c.Parked, c.Watched, c.Opening)
}
