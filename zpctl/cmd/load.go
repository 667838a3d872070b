package cmd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/progress"
)

// loadJSON is `load --output json`.
type loadJSON struct {
	Table string `json:"table"`
	Keys  int64  `json:"keys"`
}

// maxLoadLine bounds one line of a load file: a 64 KiB key, a tab and a
// value up to the largest a node accepts (48 MiB).
const maxLoadLine = 64<<10 + 1 + 48<<20

func (a *app) loadCommand() *cobra.Command {
	var (
		ttl      time.Duration
		batch    int
		parallel int
		sep      string
	)
	cmd := &cobra.Command{
		Use:   "load TABLE FILE",
		Short: "Write the key-value pairs of a file (or - for stdin), with progress",
		Long: `Write every line of FILE (- for stdin) as a key and a value: KEY<TAB>VALUE,
or another --sep; the value is the rest of the line, the key must not be
empty. Lines are written in batches of --batch keys, --parallel batches at
a time; each batch gets --timeout, the whole load has no deadline (stop it
with Ctrl-C, exit 8). Progress goes to stderr: a bar on a terminal, a line
per tenth otherwise. A malformed line stops the load (exit 5), naming the
line; what was read before it has been written.`,
		Example:           "  zpctl load default users.tsv\n  generate-pairs | zpctl load default - --ttl 1h",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeTableArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if batch < 1 || parallel < 1 {
				return usagef("--batch and --parallel must be at least 1")
			}
			if sep == "" {
				return usagef("--sep must not be empty")
			}
			in, total, closeIn, err := a.openLoadInput(args[1])
			if err != nil {
				return err
			}
			defer closeIn()
			ctx := cmd.Context()
			c, err := a.newClient(ctx)
			if err != nil {
				return &cmdFailed{err}
			}
			defer c.Close()
			prog := a.newProgress("load", "keys", total)
			n, err := a.load(ctx, c, args[0], in, loadOptions{ttl: ttl, batch: batch, parallel: parallel, sep: []byte(sep)}, prog)
			prog.Done(err)
			if err != nil {
				return &cmdFailed{err}
			}
			return a.printer.Line(loadJSON{Table: args[0], Keys: n}, fmt.Sprintf("loaded %d keys into %s", n, args[0]))
		},
	}
	f := cmd.Flags()
	f.DurationVar(&ttl, "ttl", 0, "time to live of every key; 0 means never expire")
	f.IntVar(&batch, "batch", 500, "keys per MSET")
	f.IntVar(&parallel, "parallel", 4, "batches in flight")
	f.StringVar(&sep, "sep", "\t", "separator between key and value")
	return cmd
}

// openLoadInput opens FILE, or stdin for "-". For a regular file it counts
// the lines first, so that progress has a total; stdin is read once.
func (a *app) openLoadInput(name string) (io.Reader, int64, func(), error) {
	if name == "-" {
		return a.env.Stdin, 0, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, nil, usagef("load: %w", err)
	}
	var total int64
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		total, err = countLines(f)
		if err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
		if err != nil {
			f.Close()
			return nil, 0, nil, fmt.Errorf("load: %s: %w", name, err)
		}
	}
	return f, total, func() { f.Close() }, nil
}

// countLines counts the lines of r, a last line without newline included.
func countLines(r io.Reader) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	last := byte('\n')
	for {
		k, err := r.Read(buf)
		if k > 0 {
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			last = buf[k-1]
		}
		if err == io.EOF {
			if last != '\n' {
				n++
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

type loadOptions struct {
	ttl             time.Duration
	batch, parallel int
	sep             []byte
}

// load reads pairs from in and writes them in batches; it returns how many
// keys were written. The first failure stops reading and is returned once
// the batches in flight are done.
func (a *app) load(ctx context.Context, c *client.Client, table string, in io.Reader, opts loadOptions, prog progress.Reporter) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		written  int64
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	batches := make(chan []client.KeyValue)
	var wg sync.WaitGroup
	for range opts.parallel {
		wg.Go(func() {
			for kvs := range batches {
				bctx, bcancel := context.WithTimeout(ctx, a.timeout)
				err := c.MSet(bctx, table, kvs, opts.ttl)
				bcancel()
				if err != nil {
					fail(err)
					continue
				}
				mu.Lock()
				written += int64(len(kvs))
				mu.Unlock()
				prog.Add(int64(len(kvs)))
			}
		})
	}

	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), maxLoadLine)
	var (
		cur     []client.KeyValue
		line    int
		readErr error
	)
	send := func() bool {
		select {
		case batches <- cur:
			cur = nil
			return true
		case <-ctx.Done():
			return false
		}
	}
	for sc.Scan() {
		line++
		raw := sc.Bytes()
		k, v, ok := bytes.Cut(raw, opts.sep)
		if !ok || len(k) == 0 {
			readErr = status.New(zppb.Code_INVALID_ARGUMENT, "line %d: want KEY%sVALUE with a non-empty key", line, printableSep(opts.sep))
			break
		}
		cur = append(cur, client.KeyValue{Key: bytes.Clone(k), Value: bytes.Clone(v)})
		if len(cur) == opts.batch && !send() {
			break
		}
	}
	if readErr == nil {
		readErr = sc.Err()
		if readErr != nil {
			readErr = fmt.Errorf("load: line %d: %w", line+1, readErr)
		}
	}
	// What was read before a malformed line is written all the same, as
	// the help promises.
	if len(cur) > 0 && ctx.Err() == nil {
		send()
	}
	close(batches)
	wg.Wait()
	if readErr != nil {
		fail(readErr)
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return written, firstErr
}

func printableSep(sep []byte) string {
	if string(sep) == "\t" {
		return "<TAB>"
	}
	return string(sep)
}
