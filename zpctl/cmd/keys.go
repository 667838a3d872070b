package cmd

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/glob"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// keysJSON is `keys --output json`.
type keysJSON struct {
	Table string `json:"table"`
	// Tag is --tag, "" for the whole table; Pattern the PATTERN, "" for
	// every key.
	Tag     string `json:"tag"`
	Pattern string `json:"pattern"`
	Count   int    `json:"count"`
	// Cursor continues the walk (--cursor); "0" when it is done.
	Cursor string       `json:"cursor"`
	Keys   []output.Key `json:"keys"`
}

// keysCursor is where a `keys` walk stands: the partition and the last key
// returned in it (nil at its start). With --tag the partition is always 0.
// Its text is "P" or "P:" and the key in unpadded URL base64; "0", the
// start, is also what a finished walk hands back, as Redis SCAN's 0.
type keysCursor struct {
	partition uint32
	last      []byte
}

func (c keysCursor) String() string {
	s := strconv.FormatUint(uint64(c.partition), 10)
	if c.last != nil {
		s += ":" + base64.RawURLEncoding.EncodeToString(c.last)
	}
	return s
}

func parseKeysCursor(s string) (keysCursor, error) {
	if s == "" {
		return keysCursor{}, nil
	}
	p, k, hasKey := strings.Cut(s, ":")
	n, err := strconv.ParseUint(p, 10, 32)
	if err != nil {
		return keysCursor{}, usagef("--cursor %q: not a cursor 'zpctl keys' printed", s)
	}
	c := keysCursor{partition: uint32(n)}
	if hasKey {
		if c.last, err = base64.RawURLEncoding.DecodeString(k); err != nil || len(c.last) == 0 {
			return keysCursor{}, usagef("--cursor %q: not a cursor 'zpctl keys' printed", s)
		}
	}
	return c, nil
}

func (a *app) keysCommand() *cobra.Command {
	var (
		tag    string
		count  int
		limit  int
		cursor string
	)
	cmd := &cobra.Command{
		Use:   "keys TABLE [PATTERN]",
		Short: "List the keys of a table, or of one hashtag, matching a pattern",
		Long: `List keys, one per line: every key of the table, partition by partition
(each partition read from its master, in its order: by hashtag, then key),
or with --tag only the keys of that hashtag, in key order (one partition).
PATTERN filters them with Redis's glob syntax (*, ?, [abc], [^a], [a-z],
\ escapes), on this side: every key is still read.

Pages of --count keys are read until the end, or until --limit keys have
matched; then the cursor to continue from is printed (on stderr as text,
"cursor" with --output json), to pass to --cursor. A walk that is done
gives cursor "0". --timeout bounds one run, so walk a large table in steps
of --limit. Keys written or deleted during a walk may or may not be
listed; one that exists throughout is listed once.

With --output json: {"table", "tag", "pattern", "count", "cursor", "keys":
[{"key", "key_encoding"}]}. An unknown table exits 3; no key matching
exits 0 with nothing listed.`,
		Example: `  zpctl keys default
  zpctl keys default 'user:*'
  zpctl keys default --tag user1000
  zpctl keys default --limit 1000 -o json | jq -r .cursor`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: a.completeTableArg,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			if count < 0 || count > client.MaxScanCount {
				return usagef("--count must be in [0, %d]", client.MaxScanCount)
			}
			if limit < 0 {
				return usagef("--limit must not be negative")
			}
			cur, err := parseKeysCursor(cursor)
			if err != nil {
				return err
			}
			if tag != "" && cur.partition != 0 {
				return usagef("--cursor %q is a whole-table walk's, not a --tag one's", cursor)
			}
			out := keysJSON{Table: args[0], Tag: tag, Keys: []output.Key{}}
			var pattern []byte
			if len(args) == 2 {
				out.Pattern, pattern = args[1], []byte(args[1])
			}
			next, err := a.walkKeys(ctx, c, args[0], []byte(tag), cur, count, func(k []byte) bool {
				if pattern == nil || glob.Match(pattern, k) {
					out.Keys = append(out.Keys, output.EncodeKey(k))
				}
				return limit == 0 || len(out.Keys) < limit
			})
			if err != nil {
				return err
			}
			out.Count, out.Cursor = len(out.Keys), next.String()
			return a.printer.Print(out, func(w io.Writer) error {
				for _, k := range out.Keys {
					b, _ := k.Decode()
					if _, err := fmt.Fprintln(w, output.Cell(b)); err != nil {
						return err
					}
				}
				if out.Cursor != "0" {
					fmt.Fprintf(a.env.Stderr, "more keys: continue with --cursor %s\n", out.Cursor)
				}
				return nil
			})
		}),
	}
	cmd.Flags().StringVar(&tag, "tag", "", "only the keys of this hashtag (the part of the key between { and })")
	cmd.Flags().IntVar(&count, "count", client.MaxScanCount, fmt.Sprintf("keys per page read (at most %d)", client.MaxScanCount))
	cmd.Flags().IntVar(&limit, "limit", 0, "stop after this many keys matched and print the cursor (0 = all)")
	cmd.Flags().StringVar(&cursor, "cursor", "0", "continue a walk from the cursor an earlier run printed")
	return cmd
}

// walkKeys reads keys from cur on, of table or of one hashtag, and hands
// each to more until it says stop; it returns the cursor after the last key
// handed over, the start one ("0") when the walk is done.
func (a *app) walkKeys(ctx context.Context, c *client.Client, table string, tag []byte, cur keysCursor, count int, more func([]byte) bool) (keysCursor, error) {
	page := func(cur keysCursor) ([]client.KeyValue, []byte, error) {
		if len(tag) > 0 {
			return c.Scan(ctx, table, tag, cur.last, count)
		}
		return c.ScanPartition(ctx, table, cur.partition, cur.last, count, true)
	}
	partitions := func() (uint32, error) {
		if len(tag) > 0 {
			return 1, nil
		}
		topo, err := c.Pull(ctx, table)
		if err != nil {
			return 0, err
		}
		if tb := topo.Table(table); tb != nil {
			return tb.PartitionCount, nil
		}
		return 0, nil
	}
	parts, err := partitions()
	if err != nil {
		return cur, err
	}
	for {
		for cur.partition < parts {
			kvs, next, err := page(cur)
			if err != nil {
				return cur, err
			}
			for _, kv := range kvs {
				cur.last = kv.Key
				if !more(kv.Key) {
					return cur, nil
				}
			}
			if next != nil {
				// Past expired keys, a page may end after the last key it
				// returned.
				cur.last = next
				continue
			}
			cur = keysCursor{partition: cur.partition + 1}
		}
		// A split during the walk adds a partition, numbered from the
		// count on, holding keys its parent no longer has: the walk ends
		// only when the count read after the last partition is the one
		// it walked to.
		n, err := partitions()
		if err != nil {
			return cur, err
		}
		if n <= parts {
			return keysCursor{}, nil
		}
		parts = n
	}
}
