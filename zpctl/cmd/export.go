package cmd

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/backup"
	"github.com/zeppelin-kv/zeppelin/zpctl/bulkload"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
	"github.com/zeppelin-kv/zeppelin/zpctl/progress"
)

// exportJSON is `export --output json`, the summary (the keys go to
// --out or stdout).
type exportJSON struct {
	Table      string  `json:"table"`
	Keys       int64   `json:"keys"`
	Partitions int64   `json:"partitions"`
	Format     string  `json:"format"`
	Out        string  `json:"out"`
	Seconds    float64 `json:"seconds"`
}

// exportLine is one key of `export --format jsonl`, the format bulkload
// reads back.
type exportLine = bulkload.JSONLine

// tsvBase64 starts a TSV field written in base64.
const tsvBase64 = bulkload.TSVBase64

func (a *app) exportCommand() *cobra.Command {
	var format, out, secretFile string
	var page int
	cmd := &cobra.Command{
		Use:   "export TABLE [--format jsonl|tsv] [--out FILE]",
		Short: "Write every key of a table, from a consistent snapshot of each partition",
		Long: `Write every live key of TABLE with its value and expiry to FILE (default
stdout), partition after partition, each from a consistent snapshot: a
RocksDB checkpoint of one replica (an in-sync slave when there is one that
has every write its master had applied when the partition's export began)
read page by page. Partitions are snapshotted one after the other, not at
one instant.

--format jsonl (default): one JSON object per line, {"key": ..., "value":
..., "expire_at_ms": ...}; a key or value that is not printable UTF-8 is
written base64 as "key_base64" or "value_base64" instead; expire_at_ms
(Unix milliseconds) only for keys that expire.

--format tsv: KEY<TAB>VALUE<TAB>EXPIRE_AT_MS (0: none) per line; a field
that is not printable UTF-8, holds a tab, a newline or a backslash, or
starts with "base64:" is written as "base64:" and its base64.

The export calls are for the cluster's own servers, as full sync is: on a
cluster with a secret give it with --cluster-secret-file (env
ZP_CLUSTER_SECRET_FILE). Progress (keys) goes to stderr; --output json
prints a summary there too. No deadline (Ctrl-C, exit 8).`,
		Example:           "  zpctl export orders --out orders.jsonl\n  zpctl export orders --format tsv | gzip > orders.tsv.gz",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTableArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "jsonl" && format != "tsv" {
				return usagef("--format must be jsonl or tsv")
			}
			token, err := a.clusterSecret(secretFile)
			if err != nil {
				return err
			}
			dial, err := a.peerDialer(token)
			if err != nil {
				return err
			}
			var w io.Writer = a.env.Stdout
			var f *os.File
			if out != "" && out != "-" {
				if f, err = os.Create(out); err != nil {
					return usagef("--out: %w", err)
				}
				defer f.Close()
				w = f
			}
			bw := bufio.NewWriterSize(w, 1<<20)
			ctx := cmd.Context()
			c, err := a.newClientFor(ctx, args[0])
			if err != nil {
				return &cmdFailed{err}
			}
			defer c.Close()
			var keys, parts atomic.Int64
			prog := a.newProgress("export", "keys", 0)
			stop := watchExport(&keys, &parts, prog)
			t0 := time.Now()
			emit := exportTSV(bw)
			if format == "jsonl" {
				emit = exportJSONL(bw)
			}
			n, err := backup.Export(ctx, backup.ExportOptions{Cluster: c, Dial: dial, Table: args[0], PageSize: page,
				Emit: emit, Log: prog.Log, Keys: &keys, Partitions: &parts})
			stop()
			if err == nil {
				err = bw.Flush()
			}
			if err == nil && f != nil {
				err = f.Sync()
			}
			if err != nil {
				prog.Done(errors.New(briefError(err)))
				return &cmdFailed{err}
			}
			prog.Done(nil)
			if out == "" || out == "-" {
				// stdout holds the keys: the summary goes to stderr.
				if a.printer.Format.Structured() {
					p := output.Printer{W: a.env.Stderr, Format: a.printer.Format}
					return p.Print(exportJSON{Table: args[0], Keys: n, Partitions: parts.Load(), Format: format, Out: "-", Seconds: time.Since(t0).Seconds()}, nil)
				}
				return nil
			}
			return a.printer.Line(exportJSON{Table: args[0], Keys: n, Partitions: parts.Load(), Format: format, Out: out, Seconds: time.Since(t0).Seconds()},
				fmt.Sprintf("exported %d keys of %s to %s in %v", n, args[0], out, time.Since(t0).Round(time.Millisecond)))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&format, "format", "jsonl", "jsonl or tsv")
	fl.StringVar(&out, "out", "", "file to write (default stdout)")
	fl.IntVar(&page, "page", backup.DefaultExportPage, "keys per request")
	fl.StringVar(&secretFile, "cluster-secret-file", "", "file holding the cluster secret, for clusters that have one (env "+clusterSecretEnv+")")
	return cmd
}

// watchExport shows the keys exported on prog until stop is called.
func watchExport(keys, parts *atomic.Int64, prog progress.Reporter) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		shown := int64(0)
		update := func() {
			if n := keys.Load(); n > shown {
				prog.Add(n - shown)
				shown = n
			}
			prog.SetDetail(fmt.Sprintf("%d partitions done", parts.Load()))
		}
		for {
			update()
			select {
			case <-done:
				update()
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// printable reports whether b is UTF-8 text without control characters.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != ' ' {
			return false
		}
	}
	return true
}

func exportJSONL(w io.Writer) func(*zppb.ExportEntry) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	field := func(b []byte) (text, b64 *string) {
		s := string(b)
		if printable(b) {
			return &s, nil
		}
		s = base64.StdEncoding.EncodeToString(b)
		return nil, &s
	}
	return func(e *zppb.ExportEntry) error {
		var l exportLine
		l.Key, l.KeyBase64 = field(e.Key)
		l.Value, l.ValueBase64 = field(e.Value)
		l.ExpireAtMs = e.ExpireAtMs
		return enc.Encode(l)
	}
}

func exportTSV(w io.Writer) func(*zppb.ExportEntry) error {
	field := func(b []byte) string {
		s := string(b)
		if printable(b) && !strings.ContainsAny(s, "\t\\") && !strings.HasPrefix(s, tsvBase64) {
			return s
		}
		return tsvBase64 + base64.StdEncoding.EncodeToString(b)
	}
	return func(e *zppb.ExportEntry) error {
		_, err := io.WriteString(w, field(e.Key)+"\t"+field(e.Value)+"\t"+strconv.FormatInt(e.ExpireAtMs, 10)+"\n")
		return err
	}
}
