package cmd

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
)

// msetJSON is `mset --output json`.
type msetJSON struct {
	Table string `json:"table"`
	Keys  int    `json:"keys"`
	OK    bool   `json:"ok"`
}

func (a *app) msetCommand() *cobra.Command {
	var (
		ttl       time.Duration
		valueFile string
	)
	cmd := &cobra.Command{
		Use:   "mset TABLE KEY VALUE [KEY VALUE]... [KEY --value-file PATH|-]",
		Short: "Set several keys",
		Long: `Set several keys, written in parallel to their masters, all with the same
--ttl. It is not atomic across partitions: when some keys fail the others
are written, the failed ones are named on stderr and set the exit code.

--value-file gives the value of the last KEY from a file, or from stdin for
-, as its bytes are (redis-cli -x): see 'zpctl set --help'.
For many keys from a file, see 'zpctl load'.`,
		Example: `  zpctl mset default user:1 alice user:2 bob --ttl 24h
  zpctl mset default user:1:name alice user:1:avatar --value-file avatar.png`,
		Args:              cobra.MinimumNArgs(2),
		ValidArgsFunction: a.completeTableArg,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			args, err := a.valueArg(args, valueFile)
			if err != nil {
				return err
			}
			pairs := args[1:]
			kvs := make([]client.KeyValue, 0, len(pairs)/2)
			for i := 0; i < len(pairs); i += 2 {
				kvs = append(kvs, client.KeyValue{Key: []byte(pairs[i]), Value: []byte(pairs[i+1])})
			}
			if err := c.MSet(ctx, args[0], kvs, ttl); err != nil {
				return err
			}
			return a.printer.Line(msetJSON{Table: args[0], Keys: len(kvs), OK: true}, "OK")
		}),
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "time to live of every key; 0 means never expire")
	a.valueFileFlag(cmd, &valueFile)
	return cmd
}
