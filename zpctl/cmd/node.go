package cmd

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

func (a *app) nodeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "List data nodes, wait for them",
		RunE:  groupRunE,
	}
	cmd.AddCommand(a.nodeListCommand(), a.nodeWaitCommand())
	return cmd
}

// nodeListJSON is `node list --output json`.
type nodeListJSON struct {
	Epoch uint64        `json:"epoch"`
	Nodes []client.Node `json:"nodes"`
}

func (a *app) nodeListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the data nodes the meta servers know",
		Args:  cobra.NoArgs,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			nodes, epoch, err := c.ListNodes(ctx)
			if err != nil {
				return err
			}
			return a.printer.Print(nodeListJSON{Epoch: epoch, Nodes: nodes}, func(w io.Writer) error {
				return writeNodes(w, nodes, time.Now())
			})
		}),
	}
}

func writeNodes(w io.Writer, nodes []client.Node, now time.Time) error {
	t := output.Table{Header: []string{"ADDR", "STATE", "ZONE", "RACK", "WEIGHT", "LAST_HEARTBEAT"}}
	for _, n := range nodes {
		hb := "-"
		if at := n.LastHeartbeat(); !at.IsZero() {
			hb = now.Sub(at).Truncate(time.Millisecond).String() + " ago"
		}
		t.Rows = append(t.Rows, []string{n.Addr, n.State, output.Dash(n.Zone), output.Dash(n.Rack), fmt.Sprint(n.Weight), hb})
	}
	return output.WriteTable(w, t)
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
		Args: cobra.NoArgs,
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
							return writeNodes(w, nodes, time.Now())
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
