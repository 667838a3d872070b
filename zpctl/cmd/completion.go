package cmd

import (
	"context"
	"time"

	"github.com/spf13/cobra"
)

// Shell completion: cobra's `zpctl completion bash|zsh|fish|powershell`
// writes the script; the functions below complete table names and node
// addresses from the cluster. They ask one meta server with a short
// deadline, so a cluster that is down costs a keystroke a second, not a
// hang, and offer nothing on failure.

// completionTimeout bounds the cluster lookups of one completion.
const completionTimeout = time.Second

// clusterNames lists table names or node addresses for completion.
func (a *app) clusterNames(cmd *cobra.Command, tables bool) []string {
	if err := a.resolve(cmd); err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), min(completionTimeout, a.timeout))
	defer cancel()
	c, err := a.newClient(ctx)
	if err != nil {
		return nil
	}
	defer c.Close()
	var names []string
	if tables {
		ts, _, err := c.ListTables(ctx)
		if err != nil {
			return nil
		}
		for _, t := range ts {
			names = append(names, t.Name)
		}
		return names
	}
	ns, _, err := c.ListNodes(ctx)
	if err != nil {
		return nil
	}
	for _, n := range ns {
		names = append(names, n.Addr)
	}
	return names
}

// completeTables completes a table name (for flags).
func (a *app) completeTables(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	return a.clusterNames(cmd, true), cobra.ShellCompDirectiveNoFileComp
}

// completeTableArg completes the first argument as a table name.
func (a *app) completeTableArg(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		// A key or value: nothing to offer, and no file names either...
		// except for load's FILE.
		if cmd.Name() == "load" && len(args) == 1 {
			return nil, cobra.ShellCompDirectiveDefault
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return a.clusterNames(cmd, true), cobra.ShellCompDirectiveNoFileComp
}

// completeNodes completes node addresses.
func (a *app) completeNodes(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	return a.clusterNames(cmd, false), cobra.ShellCompDirectiveNoFileComp
}

// completeTableThenNodes completes a table first and node addresses from
// argument index nodeArg on.
func (a *app) completeTableThenNodes(nodeArg int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		switch {
		case len(args) == 0:
			return a.clusterNames(cmd, true), cobra.ShellCompDirectiveNoFileComp
		case len(args) >= nodeArg:
			return a.clusterNames(cmd, false), cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}
