package cmd

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// scanJSON is `scan --output json`.
type scanJSON struct {
	Table string `json:"table"`
	Tag   string `json:"tag"`
	Count int    `json:"count"`
	// Truncated is true when --limit stopped the scan before its end.
	Truncated bool           `json:"truncated"`
	Results   []scanItemJSON `json:"results"`
}

type scanItemJSON struct {
	output.Key
	// Value and Encoding are empty with --keys-only.
	output.Bytes
}

func (a *app) scanCommand() *cobra.Command {
	var (
		tag      string
		count    int
		limit    int
		keysOnly bool
	)
	cmd := &cobra.Command{
		Use:   "scan TABLE --tag TAG",
		Short: "List the keys with a hashtag, in key order",
		Long: `List the keys whose hashtag is TAG (keys of the form ...{TAG}...), in key
order, with their values. All of them live in one partition, so the listing
is a consistent ordered walk. Every page is fetched (--count keys each)
until the end or until --limit keys; --timeout bounds the whole walk.`,
		Example:           "  zpctl scan default --tag user1000\n  zpctl scan default --tag user1000 --keys-only --limit 10",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTableArg,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			if tag == "" {
				return usagef("scan needs --tag")
			}
			if count < 0 || count > client.MaxScanCount {
				return usagef("--count must be in [0, %d]", client.MaxScanCount)
			}
			if limit < 0 {
				return usagef("--limit must not be negative")
			}
			out := scanJSON{Table: args[0], Tag: tag, Results: []scanItemJSON{}}
			for kv, err := range c.ScanAll(ctx, args[0], []byte(tag), count) {
				if err != nil {
					return err
				}
				if limit > 0 && out.Count == limit {
					out.Truncated = true
					break
				}
				item := scanItemJSON{Key: output.EncodeKey(kv.Key)}
				if !keysOnly {
					item.Bytes = output.EncodeBytes(kv.Value)
				}
				out.Results = append(out.Results, item)
				out.Count++
			}
			return a.printer.Print(out, func(w io.Writer) error {
				if keysOnly {
					for _, r := range out.Results {
						k, _ := r.Key.Decode()
						if _, err := fmt.Fprintln(w, output.Cell(k)); err != nil {
							return err
						}
					}
					return nil
				}
				t := output.Table{Header: []string{"KEY", "VALUE"}}
				for _, r := range out.Results {
					k, _ := r.Key.Decode()
					v, _ := r.Bytes.Decode()
					t.Rows = append(t.Rows, []string{output.Cell(k), output.Cell(v)})
				}
				return output.WriteTable(w, t)
			})
		}),
	}
	cmd.Flags().StringVar(&tag, "tag", "", "the hashtag: the part of the key between { and }")
	cmd.Flags().IntVar(&count, "count", 0, "keys per page (0 = the server's default, 100; at most 1000)")
	cmd.Flags().IntVar(&limit, "limit", 0, "stop after this many keys (0 = all)")
	cmd.Flags().BoolVar(&keysOnly, "keys-only", false, "print only the keys, one per line")
	return cmd
}
