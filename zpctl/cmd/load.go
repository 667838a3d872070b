package cmd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/progress"
)

// loadJSON is `load --output json`.
type loadJSON struct {
	Table string `json:"table"`
	Keys  int64  `json:"keys"`
}

// loadBatch is a batch of pairs and the line the first came from (each
// line is one pair, so pair i is on line first+i).
type loadBatch struct {
	kvs   []client.KeyValue
	first int
}

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
line; what was read before it has been written. So does a key over 64 KiB
(KEY_TOO_LARGE) or a value over 48 MiB, the most any node accepts
(VALUE_TOO_LARGE): lines of any length are read, in bounded memory. A value
over the node's own limit (16 MiB by default) is refused by the node,
VALUE_TOO_LARGE with its line, exit 5; the batch's other keys are written.`,
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
			c, err := a.newClientFor(ctx, args[0])
			if err != nil {
				return &cmdFailed{err}
			}
			defer c.Close()
			prog := a.newProgress("load", "keys", total)
			n, err := a.load(ctx, c, args[0], in, loadOptions{ttl: ttl, batch: batch, parallel: parallel, sep: []byte(sep)}, prog)
			if err != nil {
				// In as few words as the error line after it.
				prog.Done(errors.New(briefError(err)))
			} else {
				prog.Done(nil)
			}
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
	batches := make(chan loadBatch)
	var wg sync.WaitGroup
	for range opts.parallel {
		wg.Go(func() {
			for b := range batches {
				bctx, bcancel := context.WithTimeout(ctx, a.timeout)
				err := c.MSet(bctx, table, b.kvs, opts.ttl)
				bcancel()
				if err != nil {
					fail(lineError(b, err))
					continue
				}
				mu.Lock()
				written += int64(len(b.kvs))
				mu.Unlock()
				prog.Add(int64(len(b.kvs)))
			}
		})
	}

	lr := lineReader{r: bufio.NewReaderSize(in, 64<<10), max: keyspace.MaxKeySize + len(opts.sep) + keyspace.MaxValueSize}
	var (
		cur     loadBatch
		line    int
		readErr error
	)
	send := func() bool {
		select {
		case batches <- cur:
			cur = loadBatch{}
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		raw, n, err := lr.next()
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			readErr = fmt.Errorf("load: line %d: %w", line, err)
			break
		}
		k, v, ok := bytes.Cut(raw, opts.sep)
		if n > len(raw) {
			// Too long to keep: what was kept says whether the key or
			// the value is too large.
			readErr = tooLongLine(line, n, k, opts.sep, ok)
			break
		}
		if !ok || len(k) == 0 {
			readErr = status.New(zppb.Code_INVALID_ARGUMENT, "line %d: want KEY%sVALUE with a non-empty key", line, printableSep(opts.sep))
			break
		}
		if len(k) > keyspace.MaxKeySize || len(v) > keyspace.MaxValueSize {
			readErr = tooLongLine(line, n, k, opts.sep, true)
			break
		}
		if len(cur.kvs) == 0 {
			cur.first = line
		}
		cur.kvs = append(cur.kvs, client.KeyValue{Key: bytes.Clone(k), Value: bytes.Clone(v)})
		if len(cur.kvs) == opts.batch && !send() {
			break
		}
	}
	// What was read before a malformed line is written all the same, as
	// the help promises.
	if len(cur.kvs) > 0 && ctx.Err() == nil {
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

// lineError names the line of the first key of b that failed.
func lineError(b loadBatch, err error) error {
	if me, ok := errors.AsType[*client.MultiError](err); ok && len(me.Errs) > 0 {
		return fmt.Errorf("line %d: %w", b.first+me.Errs[0].Index, err)
	}
	if len(b.kvs) == 1 {
		return fmt.Errorf("line %d: %w", b.first, err)
	}
	return fmt.Errorf("lines %d-%d: %w", b.first, b.first+len(b.kvs)-1, err)
}

// tooLongLine is the error of line number line, n bytes long, whose key
// or value is over what any node accepts: k is the key of what was kept
// of it, cut whether that held the separator.
func tooLongLine(line, n int, k, sep []byte, cut bool) error {
	switch {
	case !cut:
		return status.New(zppb.Code_KEY_TOO_LARGE, "line %d: %d bytes without a key of at most %d bytes and a separator", line, n, keyspace.MaxKeySize)
	case len(k) > keyspace.MaxKeySize:
		return status.New(zppb.Code_KEY_TOO_LARGE, "line %d: key of %d bytes, limit %d", line, len(k), keyspace.MaxKeySize)
	}
	return status.New(zppb.Code_VALUE_TOO_LARGE, "line %d: value of %d bytes, over %d MiB, the most any node accepts", line, n-len(k)-len(sep), keyspace.MaxValueSize>>20)
}

// lineReader reads lines of any length in bounded memory: a line is kept
// up to max bytes; the rest of a longer one is read and dropped.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// next returns the next line without its line end (a newline, or a
// carriage return and a newline, as bufio.ScanLines has it) and the
// line's length; the line is only its first max bytes when n is larger.
// The line aliases the reader's buffer until the next call. A last line
// without a newline counts; io.EOF comes after it.
func (lr *lineReader) next() (line []byte, n int, err error) {
	lr.buf = lr.buf[:0]
	for {
		frag, err := lr.r.ReadSlice('\n')
		n += len(frag)
		if room := lr.max + 2 - len(lr.buf); room > 0 {
			// Two bytes over max: a line end may follow.
			lr.buf = append(lr.buf, frag[:min(len(frag), room)]...)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && n == 0:
			return nil, 0, io.EOF
		case err != nil && err != io.EOF:
			return nil, n, err
		}
		line = lr.buf
		if len(frag) > 0 && frag[len(frag)-1] == '\n' {
			n--
			line = line[:min(len(line), n)]
		}
		if n > 0 && len(line) == n && line[n-1] == '\r' {
			n--
			line = line[:n]
		}
		if len(line) > lr.max {
			line = line[:lr.max]
		}
		return line, n, nil
	}
}

func printableSep(sep []byte) string {
	if string(sep) == "\t" {
		return "<TAB>"
	}
	return string(sep)
}
