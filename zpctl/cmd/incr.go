package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// incrJSON is `incr --output json`.
type incrJSON struct {
	Table string `json:"table"`
	output.Key
	Value int64 `json:"value"`
}

func (a *app) incrCommand() *cobra.Command {
	var by int64
	cmd := &cobra.Command{
		Use:   "incr TABLE KEY",
		Short: "Add to the integer value of a key and print the result",
		Long: `Add --by (default 1, may be negative) to the 64-bit decimal integer stored
at KEY (a missing key counts as 0) and print the new value. A value that is
not an integer, or a result that would overflow, exits 5. If the connection
breaks after the request was sent the increment may or may not have been
applied: that exits 7 rather than risk counting twice.`,
		Example:           "  zpctl incr default visits\n  zpctl incr default stock:42 --by -3",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeTableArg,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			v, err := c.IncrBy(ctx, args[0], []byte(args[1]), by)
			if err != nil {
				return err
			}
			return a.printer.Line(incrJSON{Table: args[0], Key: output.EncodeKey([]byte(args[1])), Value: v}, fmt.Sprint(v))
		}),
	}
	cmd.Flags().Int64Var(&by, "by", 1, "amount to add")
	return cmd
}
