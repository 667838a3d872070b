package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

func (a *app) nodeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "List data nodes, show one (info, logs), wait for them, cordon, uncordon, drain, remove DOWN ones",
		RunE:  groupRunE,
	}
	cmd.AddCommand(a.nodeListCommand(), a.nodeInfoCommand(), a.nodeLogsCommand(), a.nodeWaitCommand(),
		a.nodeCordonCommand(true), a.nodeCordonCommand(false), a.nodeDrainCommand(), a.nodeRemoveCommand())
	return cmd
}

// nodeRow is one node of `node list`: the meta servers' record and what
// it holds.
type nodeRow struct {
	client.Node
	Replicas int `json:"replicas"`
	Masters  int `json:"masters"`
	// Draining: cordoned, with moves taking replicas or masters off it in
	// flight (node drain, shrink).
	Draining bool `json:"draining,omitempty"`
}

// nodeListJSON is `node list --output json`.
type nodeListJSON struct {
	Epoch uint64    `json:"epoch"`
	Nodes []nodeRow `json:"nodes"`
}

func (a *app) nodeListCommand() *cobra.Command {
	var sel nodeSelection
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the data nodes the meta servers know, with the replicas they hold",
		Long: `List the data nodes the meta servers know: address, RESP address, state,
zone, rack, weight, the replicas and masters each holds, the time since its
last heartbeat, and the version it runs (as its heartbeats report it). A
node that is starting (opening its replicas, before it listens and
heartbeats) shows how far it got next to its state: DOWN (starting
4,512/10,000).

Heartbeats and versions are the meta leader's memory: whichever meta server
answers asks the leader for them. Without a leader they are unknown (shown
as -, and 0 and "" in JSON).

--output json gives {"epoch", "nodes": [{"addr", "state", "zone", "rack",
"weight", "last_heartbeat_unix_ms", "redis_addr", "version", "cordoned",
"down_since_unix_ms", "starting", "replicas", "masters", "draining"}]};
last_heartbeat_unix_ms is the Unix time of the last heartbeat in
milliseconds, 0 when unknown; down_since_unix_ms (DOWN nodes) when the meta
leader marked it DOWN; starting (starting nodes only) {"opened", "total",
"started_unix_ms", "elapsed_ms"}; draining (true only) a cordoned node with moves
taking its replicas or masters away in flight, shown as UP/draining.

--state and --zone select nodes, in the text and in JSON. The text shows at
most ` + fmt.Sprint(detailRows) + ` of the selected nodes and says how many it left out;
--all shows every one. JSON has every selected node.`,
		Example: "  zpctl node list\n  zpctl node list -o json | jq -r '.nodes[] | select(.state != \"UP\") | .addr'\n" +
			"  zpctl node list -o json | jq -r '.nodes[] | \"\\(.addr) \\(.version)\"'\n  zpctl node list --state DOWN --zone zone-a",
		Args: cobra.NoArgs,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			if err := sel.validate(); err != nil {
				return err
			}
			topo, err := c.Pull(ctx, "")
			if err != nil {
				return err
			}
			// The rows come from LIST_NODES: the leader's answer,
			// with heartbeats and versions, which a PULL of a
			// follower lacks.
			nodes, _, err := c.ListNodes(ctx)
			if err != nil {
				return err
			}
			s := &survey.Snapshot{Topology: topo}
			for _, n := range nodes {
				s.Nodes = append(s.Nodes, survey.NodeReport{Node: n})
			}
			// Moves in flight say which cordoned nodes are being
			// drained; without them (an error) none is shown so.
			var leaving map[string]bool
			if moves, err := c.MoveStatus(ctx, false); err == nil {
				leaving = client.LeavingNodes(moves)
			}
			out := nodeListJSON{Epoch: topo.Epoch, Nodes: []nodeRow{}}
			for i, l := range s.Loads("") {
				n := s.Nodes[i].Node
				if sel.selects(n) {
					out.Nodes = append(out.Nodes, nodeRow{Node: n, Replicas: l.Replicas, Masters: l.Masters, Draining: n.Cordoned && leaving[n.Addr]})
				}
			}
			return a.printer.Print(out, func(w io.Writer) error {
				rows := detailRows
				if sel.all {
					rows = 0
				}
				return writeNodeList(w, out.Nodes, rows, time.Now())
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&sel.state, "state", "", "only nodes in this state: UP or DOWN")
	f.StringVar(&sel.zone, "zone", "", "only nodes in this zone")
	f.BoolVar(&sel.all, "all", false, "show every selected node in the text, not the first "+fmt.Sprint(detailRows))
	return cmd
}

// nodeSelection is which nodes node list shows.
type nodeSelection struct {
	state string // UP or DOWN; any when empty
	zone  string // any when empty
	all   bool   // the text shows every selected node
}

func (sel *nodeSelection) validate() error {
	switch strings.ToUpper(sel.state) {
	case "", "UP", "DOWN":
		sel.state = strings.ToUpper(sel.state)
		return nil
	}
	return usagef("--state: %q is not UP or DOWN", sel.state)
}

func (sel nodeSelection) selects(n client.Node) bool {
	return (sel.state == "" || n.State == sel.state) && (sel.zone == "" || n.Zone == sel.zone)
}

// writeNodeList writes the first rows nodes (all of them for rows <= 0)
// and a line saying how many it left out.
func writeNodeList(w io.Writer, nodes []nodeRow, rows int, now time.Time) error {
	shown := limitRows(nodes, rows)
	if err := writeNodes(w, shown, now); err != nil {
		return err
	}
	if len(shown) >= len(nodes) {
		return nil
	}
	_, err := fmt.Fprintf(w, "... %d more nodes not shown: zpctl node list --all (or --state, --zone)\n", len(nodes)-len(shown))
	return err
}

func writeNodes(w io.Writer, nodes []nodeRow, now time.Time) error {
	t := output.Table{Header: []string{"ADDR", "REDIS", "STATE", "ZONE", "RACK", "WEIGHT", "REPLICAS", "MASTERS", "LAST_HEARTBEAT", "VERSION"}}
	for _, n := range nodes {
		state := n.State
		switch {
		case n.Draining:
			state += "/draining"
		case n.Cordoned:
			state += "/cordoned"
		}
		if p := n.Starting; p != nil {
			state += " (starting " + output.Count(uint64(p.Opened)) + "/" + output.Count(uint64(p.Total)) + ")"
		}
		t.Rows = append(t.Rows, []string{n.Addr, output.Dash(n.RedisAddr), state, output.Dash(n.Zone), output.Dash(n.Rack), fmt.Sprint(n.Weight),
			fmt.Sprint(n.Replicas), fmt.Sprint(n.Masters), heartbeatAgo(n.Node, now), output.Dash(n.Version)})
	}
	return output.WriteTable(w, t)
}

func heartbeatAgo(n client.Node, now time.Time) string {
	at := n.LastHeartbeat()
	if at.IsZero() {
		return "-"
	}
	return now.Sub(at).Truncate(time.Millisecond).String() + " ago"
}

// nodeWaitJSON is `node wait --output json`.
type nodeWaitJSON struct {
	Up    int           `json:"up"`
	Nodes []client.Node `json:"nodes"`
}

func (a *app) nodeWaitCommand() *cobra.Command {
	var count int
	cmd := &cobra.Command{
		Use:   "wait",
		Short: "Wait until at least --count nodes are UP",
		Long: `Wait until the meta servers report at least --count data nodes UP, polling
until --timeout (exit 4 then). Meta servers that are still starting are
waited for too.`,
		Example: "  zpctl --timeout 60s node wait --count 3",
		Args:    cobra.NoArgs,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			if count < 1 {
				return usagef("--count must be at least 1")
			}
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			var last error
			for {
				nodes, _, err := c.ListNodes(ctx)
				if err == nil {
					up := 0
					for _, n := range nodes {
						if n.State == "UP" {
							up++
						}
					}
					if up >= count {
						return a.printer.Print(nodeWaitJSON{Up: up, Nodes: nodes}, func(w io.Writer) error {
							t := output.Table{Header: []string{"ADDR", "REDIS", "STATE", "ZONE", "RACK", "WEIGHT", "LAST_HEARTBEAT", "VERSION"}}
							for _, n := range nodes {
								t.Rows = append(t.Rows, []string{n.Addr, output.Dash(n.RedisAddr), n.State, output.Dash(n.Zone), output.Dash(n.Rack), fmt.Sprint(n.Weight),
									heartbeatAgo(n, time.Now()), output.Dash(n.Version)})
							}
							return output.WriteTable(w, t)
						})
					}
					last = fmt.Errorf("%d of %d nodes up", up, count)
				} else {
					last = err
				}
				select {
				case <-tick.C:
				case <-ctx.Done():
					return fmt.Errorf("waiting for %d nodes: %w (last: %w)", count, ctx.Err(), last)
				}
			}
		}),
	}
	cmd.Flags().IntVar(&count, "count", 1, "how many nodes must be UP")
	return cmd
}
