package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// getJSON is `get --output json`.
type getJSON struct {
	Table string `json:"table"`
	output.Key
	Found bool `json:"found"`
	output.Bytes
}

// setJSON is `set --output json`.
type setJSON struct {
	Table string `json:"table"`
	output.Key
	OK bool `json:"ok"`
}

// delJSON is `del --output json`.
type delJSON struct {
	Table string `json:"table"`
	output.Key
	Deleted bool `json:"deleted"`
}

func (a *app) getCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get TABLE KEY",
		Short: "Print the value of a key",
		Long: `Print the value of a key: the raw bytes and a newline, or with --output json
{"table", "key", "key_encoding", "found", "value", "encoding"} (encoding
"utf-8", or "base64" for binary values; key_encoding likewise for the key).
A missing key exits 3.`,
		Example:           "  zpctl get default user:1000\n  zpctl get default avatar:7 > avatar.png",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeTableArg,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			v, err := c.Get(ctx, args[0], []byte(args[1]))
			if err != nil {
				return err
			}
			return a.printer.Print(getJSON{Table: args[0], Key: output.EncodeKey([]byte(args[1])), Found: true, Bytes: output.EncodeBytes(v)}, func(w io.Writer) error {
				// Raw, so that `zpctl get t k > file` round-trips binary.
				if _, err := w.Write(v); err != nil {
					return err
				}
				_, err := io.WriteString(w, "\n")
				return err
			})
		}),
	}
}

func (a *app) setCommand() *cobra.Command {
	var (
		ttl       time.Duration
		valueFile string
	)
	cmd := &cobra.Command{
		Use:   "set TABLE KEY VALUE | set TABLE KEY --value-file PATH|-",
		Short: "Set the value of a key",
		Long: `Set the value of a key, optionally expiring after --ttl. Prints OK.

With --value-file the value is the bytes of a file, or of stdin for -, as
they are (redis-cli -x): binary is kept and so is a final newline, so write
text with printf or echo -n. This is the way to set values too large for a
command line (the shell's limit is around 128 KB). A value over the node's
limit (16 MiB unless configured, never over 48 MiB) exits 5,
VALUE_TOO_LARGE.`,
		Example: `  zpctl set default session:42 alive --ttl 30m
  zpctl set default avatar:7 --value-file avatar.png
  generate-report | zpctl set default report:today --value-file -`,
		Args:              cobra.RangeArgs(2, 3),
		ValidArgsFunction: a.completeTableArg,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			args, err := a.valueArg(args, valueFile)
			if err != nil {
				return err
			}
			if err := c.Set(ctx, args[0], []byte(args[1]), []byte(args[2]), ttl); err != nil {
				return err
			}
			return a.printer.Line(setJSON{Table: args[0], Key: output.EncodeKey([]byte(args[1])), OK: true}, "OK")
		}),
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "time to live (e.g. 10s, 1h); 0 means never expire")
	a.valueFileFlag(cmd, &valueFile)
	return cmd
}

// valueFileFlag adds --value-file, which set and mset share.
func (a *app) valueFileFlag(cmd *cobra.Command, name *string) {
	cmd.Flags().StringVar(name, "value-file", "", "read the last VALUE from this file, or stdin for - (as redis-cli -x)")
	cmd.MarkFlagFilename("value-file")
}

// valueArg returns args (TABLE KEY VALUE... KEY) with the last VALUE read
// from valueFile appended, or args as they are without --value-file.
func (a *app) valueArg(args []string, valueFile string) ([]string, error) {
	last := args[len(args)-1]
	if valueFile == "" {
		if len(args)%2 == 0 {
			return nil, usagef("key %q has no value (give one, or --value-file)", last)
		}
		return args, nil
	}
	if len(args)%2 != 0 {
		return nil, usagef("value %q and --value-file: --value-file gives the last key's value", last)
	}
	v, err := a.readValue(valueFile)
	if err != nil {
		return nil, err
	}
	return append(args, string(v)), nil
}

// readValue reads a value from name, or stdin for "-". It reads no more
// than one byte over the largest value a node accepts, so a huge file
// fails fast without filling memory.
func (a *app) readValue(name string) ([]byte, error) {
	r := a.env.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, usagef("--value-file: %w", err)
		}
		defer f.Close()
		r = f
	}
	v, err := io.ReadAll(io.LimitReader(r, keyspace.MaxValueSize+1))
	if err != nil {
		return nil, fmt.Errorf("--value-file %s: %w", name, err)
	}
	if len(v) > keyspace.MaxValueSize {
		return nil, status.New(zppb.Code_VALUE_TOO_LARGE, "--value-file %s: over %d MiB, the most any node accepts", name, keyspace.MaxValueSize>>20)
	}
	return v, nil
}

func (a *app) delCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "del TABLE KEY",
		Short: "Delete a key",
		Long: `Delete a key. Prints 1 when it existed and 0 when it did not (both exit 0),
or {"table", "key", "key_encoding", "deleted"} with --output json.`,
		Example:           "  zpctl del default session:42",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeTableArg,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			deleted, err := c.Del(ctx, args[0], []byte(args[1]))
			if err != nil {
				return err
			}
			n := "0"
			if deleted {
				n = "1"
			}
			return a.printer.Line(delJSON{Table: args[0], Key: output.EncodeKey([]byte(args[1])), Deleted: deleted}, n)
		}),
	}
}

// ttlJSON is `ttl --output json`.
type ttlJSON struct {
	Table string `json:"table"`
	output.Key
	// TTLMs is the time left in milliseconds, -1 for a key that never
	// expires.
	TTLMs int64 `json:"ttl_ms"`
}

func (a *app) ttlCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ttl TABLE KEY",
		Short: "Print the time a key has left to live",
		Long: `Print the time a key has left to live, as a duration (1h59m58.25s, to the
millisecond), or "none" for a key that never expires; with --output json
{"table", "key", "key_encoding", "ttl_ms"}, ttl_ms -1 for none. A missing
key exits 3, as with get.`,
		Example:           "  zpctl ttl default session:42",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeTableArg,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			ttl, err := c.TTL(ctx, args[0], []byte(args[1]))
			if err != nil {
				return err
			}
			out := ttlJSON{Table: args[0], Key: output.EncodeKey([]byte(args[1])), TTLMs: -1}
			text := "none"
			if ttl != client.NoExpiry {
				out.TTLMs, text = ttl.Milliseconds(), ttl.String()
			}
			return a.printer.Line(out, text)
		}),
	}
}

// existsJSON is `exists --output json`.
type existsJSON struct {
	Table string `json:"table"`
	output.Key
	Exists bool `json:"exists"`
}

func (a *app) existsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "exists TABLE KEY",
		Short: "Tell whether a key exists",
		Long: `Print 1 when the key exists (and has not expired), 0 when it does not, or
{"table", "key", "key_encoding", "exists"} with --output json. The exit code
says it too: 0 when it exists, 3 when it does not (as get, but with nothing
on stderr), so that a script can write 'if zpctl exists t k; then'.`,
		Example:           "  zpctl exists default user:1000 && echo taken",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeTableArg,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			ok, err := c.Exists(ctx, args[0], []byte(args[1]))
			if err != nil {
				return err
			}
			n := "0"
			if ok {
				n = "1"
			}
			if err := a.printer.Line(existsJSON{Table: args[0], Key: output.EncodeKey([]byte(args[1])), Exists: ok}, n); err != nil || ok {
				return err
			}
			return &quietError{status.ErrNotFound}
		}),
	}
}

// mgetJSON is `mget --output json`.
type mgetJSON struct {
	Table   string         `json:"table"`
	Results []mgetItemJSON `json:"results"`
}

type mgetItemJSON struct {
	output.Key
	Found bool `json:"found"`
	// Value and Encoding are empty when the key was not found.
	output.Bytes
	// Error is set when the key could not be read.
	Error string `json:"error"`
}

func (a *app) mgetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "mget TABLE KEY...",
		Short: "Print the values of several keys",
		Long: `Print the values of several keys, read in parallel from their masters: one
row per key, in order, "(nil)" for a missing key. Missing keys are not an
error; keys that could not be read are reported on stderr and set the exit
code (the others are still printed).`,
		Example:           "  zpctl mget default user:1 user:2 user:3",
		Args:              cobra.MinimumNArgs(2),
		ValidArgsFunction: a.completeTableArg,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			keys := make([][]byte, len(args)-1)
			for i, k := range args[1:] {
				keys[i] = []byte(k)
			}
			res, err := c.MGet(ctx, args[0], keys)
			if res == nil {
				return err
			}
			out := mgetJSON{Table: args[0], Results: make([]mgetItemJSON, len(res))}
			for i, r := range res {
				item := mgetItemJSON{Key: output.EncodeKey(r.Key), Found: r.Found}
				if r.Found {
					item.Bytes = output.EncodeBytes(r.Value)
				}
				if r.Err != nil {
					item.Error = r.Err.Error()
				}
				out.Results[i] = item
			}
			perr := a.printer.Print(out, func(w io.Writer) error {
				t := output.Table{Header: []string{"KEY", "VALUE"}}
				for _, r := range res {
					v := "(nil)"
					switch {
					case r.Err != nil:
						v = "(error)"
					case r.Found:
						v = output.Cell(r.Value)
					}
					t.Rows = append(t.Rows, []string{output.Cell(r.Key), v})
				}
				return output.WriteTable(w, t)
			})
			if err != nil {
				return err
			}
			return perr
		}),
	}
}

// locateJSON is `locate --output json`.
type locateJSON struct {
	output.Key
	client.Location
}

func (a *app) locateCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "locate TABLE KEY",
		Short:             "Show where a key lives: slot, partition, master, slaves",
		Example:           "  zpctl locate default user:1000",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeTableArg,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			loc, err := c.Locate(ctx, args[0], []byte(args[1]))
			if err != nil {
				return err
			}
			return a.printer.Print(locateJSON{Key: output.EncodeKey([]byte(args[1])), Location: loc}, func(w io.Writer) error {
				return output.WriteTable(w, output.Table{Rows: [][]string{
					{"table:", loc.Table},
					{"key:", output.Cell([]byte(args[1]))},
					{"slot:", fmt.Sprint(loc.Slot)},
					{"partition:", fmt.Sprint(loc.Partition)},
					{"master:", output.Dash(loc.Master)},
					{"slaves:", output.Join(loc.Slaves)},
					{"state:", loc.State},
					{"term:", fmt.Sprint(loc.Term)},
					{"epoch:", fmt.Sprint(loc.Epoch)},
				}})
			})
		}),
	}
}
