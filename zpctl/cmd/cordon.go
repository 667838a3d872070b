package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
)

// nodeCordonJSON is `node cordon|uncordon --output json`.
type nodeCordonJSON struct {
	Nodes    []string `json:"nodes"`
	Cordoned bool     `json:"cordoned"`
	// Epoch is the topology epoch after the change.
	Epoch uint64 `json:"epoch"`
}

// nodeCordonCommand is node cordon (cordoned) or node uncordon.
func (a *app) nodeCordonCommand(cordoned bool) *cobra.Command {
	name, short := "cordon", "Keep new replicas and masters off nodes; what they hold stays"
	long := `Cordon nodes: table creation, expand, moves and switchovers place no
new replica or master on them, and failover promotes one only when no other
slave is as far along. What they hold stays where it is: 'zpctl node drain'
also moves it away. 'zpctl node list' shows them as UP/cordoned.`
	if !cordoned {
		name, short = "uncordon", "Let cordoned nodes receive replicas and masters again"
		long = short + ` (undoes 'node cordon', and the cordon of
'node drain' or 'shrink').`
	}
	return &cobra.Command{
		Use:               name + " ADDR...",
		Short:             short,
		Long:              long,
		Example:           fmt.Sprintf("  zpctl node %s 10.0.0.5:9231", name),
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: a.completeNodes,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.newClient(ctx)
			if err != nil {
				return &cmdFailed{err}
			}
			defer c.Close()
			cctx, cancel := context.WithTimeout(ctx, a.timeout)
			epoch, err := c.CordonNodes(cctx, args, cordoned)
			cancel()
			if err != nil {
				return &cmdFailed{fmt.Errorf("node %s: %w", name, err)}
			}
			out := nodeCordonJSON{Nodes: args, Cordoned: cordoned, Epoch: epoch}
			return a.printer.Print(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%sed %s (epoch %d)\n", name, strings.Join(args, " "), epoch)
				return err
			})
		},
	}
}

// nodeDrainCommand is shrink under the name operators look for next to
// cordon: cordon the nodes, then move everything off them.
func (a *app) nodeDrainCommand() *cobra.Command {
	cmd := a.rebalanceCommand("drain", "Cordon nodes and move every replica off them", client.RebalanceShrink)
	cmd.Example = "  zpctl node drain 10.0.0.5:9231 --yes"
	return cmd
}
