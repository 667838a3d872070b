package cmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/zpctl/bulkload"
	"github.com/zeppelin-kv/zeppelin/zpctl/bytesize"
	"github.com/zeppelin-kv/zeppelin/zpctl/progress"
)

// bulkloadJSON is `bulkload --output json`.
type bulkloadJSON struct {
	Table string `json:"table"`
	bulkload.Result
	BadLineList []string `json:"bad_line_list"`
	Seconds     float64  `json:"seconds"`
}

// maxBadLinesShown bounds the bad lines kept for the report.
const maxBadLinesShown = 100

// defaultMaxValueSize is a node's value limit unless configured
// (zpnode --max-value-size).
const defaultMaxValueSize = 16 << 20

func (a *app) bulkloadCommand() *cobra.Command {
	var (
		format, memory, tempDir, secretFile string
		maxErrors                           int64
		parallel, maxValue                  int
		ttl                                 time.Duration
	)
	cmd := &cobra.Command{
		Use:   "bulkload TABLE FILE...",
		Short: "Load files of key-value records as table files ingested by each partition",
		Long: `Load every record of the FILEs into TABLE without writing key by key: the
records are routed to partitions, sorted (in --memory, spilling sorted runs
to --temp-dir beyond it), written into one RocksDB table file per
partition, staged on the partition's master and slaves and ingested by the
master at one binlog position, which slaves, replay and full sync follow.
Client writes logged before that position lose to the file, later ones
win. See docs/backup.md, Bulk load.

Formats (by name, .tsv .csv .jsonl, or --format; gzip by content):
TSV and CSV: KEY, VALUE and an optional EXPIRE_AT_MS (Unix ms, 0: none) per
line, a field starting "base64:" being base64 (zpctl export --format tsv
writes this); JSON lines: {"key" or "key_base64", "value" or
"value_base64", "expire_at_ms" or "ttl_ms"} (zpctl export --format jsonl
writes this). --ttl applies to records without an expiry; records already
expired are skipped.

A key appearing more than once: the last one wins, the others are counted
as duplicates. A line that does not parse, an empty key, a key over 64 KiB
or a value over --max-value-size is a bad line, reported with its file and
number; more than --max-errors (default 0) stop the load before anything
is ingested (exit 5). A partition is ingested whole or not at all.

The bulk load calls are for the cluster's own servers, as restore's: on a
cluster with a secret give it with --cluster-secret-file (env
ZP_CLUSTER_SECRET_FILE). Progress (bytes read, then bytes shipped) goes to
stderr. No deadline (Ctrl-C, exit 8).`,
		Example:           "  zpctl bulkload users users.tsv.gz\n  zpctl export orders --out o.jsonl && zpctl bulkload orders2 o.jsonl",
		Args:              cobra.MinimumNArgs(2),
		ValidArgsFunction: a.completeTableArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := bulkload.Format(format)
			if f != "" && f != bulkload.TSV && f != bulkload.CSV && f != bulkload.JSONL {
				return usagef("--format must be tsv, csv or jsonl")
			}
			mem, err := bytesize.Parse(memory)
			if err != nil || mem < 1<<20 {
				return usagef("--memory %q: want a size of at least 1MiB", memory)
			}
			if maxErrors < 0 || parallel < 1 || maxValue < 0 || maxValue > keyspace.MaxValueSize || ttl < 0 {
				return usagef("--max-errors, --max-value-size and --ttl must not be negative, --parallel at least 1, --max-value-size at most %d", keyspace.MaxValueSize)
			}
			var inputs []bulkload.Input
			for _, name := range args[1:] {
				fi, err := os.Stat(name)
				if err != nil {
					return usagef("bulkload: %w", err)
				}
				inputs = append(inputs, bulkload.Input{Name: name, Size: fi.Size(), Open: func() (io.ReadCloser, error) { return os.Open(name) }})
			}
			token, err := a.clusterSecret(secretFile)
			if err != nil {
				return err
			}
			dial, err := a.peerDialer(token)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := a.newClientFor(ctx, args[0])
			if err != nil {
				return &cmdFailed{err}
			}
			defer c.Close()

			var bad []string
			var read, shipped atomic.Int64
			var prog progress.Reporter
			stop := func() {}
			phase := func(name string, total int64) {
				stop()
				if prog != nil {
					prog.Done(nil)
				}
				counter := &read
				if name == "ship" {
					counter = &shipped
				}
				prog = a.newProgress("bulkload "+name, "bytes", total)
				stop = watchCounter(counter, prog)
			}
			t0 := time.Now()
			res, err := bulkload.Load(ctx, bulkload.Options{
				Cluster: c, Dial: dial, Table: args[0], Inputs: inputs, Format: f,
				Limits:    bulkload.Limits{MaxValueSize: maxValue, NowMs: time.Now().UnixMilli(), TTLMs: ttl.Milliseconds()},
				MaxErrors: maxErrors, Memory: int64(mem), TempDir: tempDir, Parallel: parallel,
				Bad: func(b bulkload.BadLine) {
					if len(bad) < maxBadLinesShown {
						bad = append(bad, b.Error())
					}
					if prog != nil {
						prog.Log("bad line: " + b.Error())
					}
				},
				Log: func(line string) {
					if prog != nil {
						prog.Log(line)
					}
				},
				ReadBytes: &read, ShipBytes: &shipped, Phase: phase,
			})
			stop()
			if prog != nil {
				if err != nil {
					prog.Done(errors.New(briefError(err)))
				} else {
					prog.Done(nil)
				}
			}
			out := bulkloadJSON{Table: args[0], Result: res, BadLineList: bad, Seconds: time.Since(t0).Seconds()}
			if out.BadLineList == nil {
				out.BadLineList = []string{}
			}
			if err != nil {
				if a.printer.Format.Structured() {
					a.printer.Print(out, nil)
				}
				return &cmdFailed{err}
			}
			return a.printer.Line(out, fmt.Sprintf("loaded %d keys into %s in %v (%d duplicates, %d bad lines, %s of table files)",
				res.Records, args[0], time.Since(t0).Round(time.Millisecond), res.Duplicates, res.BadLines, bytesize.Format(uint64(res.Bytes))))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&format, "format", "", "tsv, csv or jsonl (default: by each file's name, else tsv)")
	fl.Int64Var(&maxErrors, "max-errors", 0, "bad lines tolerated (skipped and reported); one more stops the load before anything is ingested")
	fl.StringVar(&memory, "memory", "256MiB", "records held in memory while sorting; beyond it sorted runs go to --temp-dir")
	fl.StringVar(&tempDir, "temp-dir", "", "directory for sorted runs and table files (default the system's)")
	fl.IntVar(&parallel, "parallel", bulkload.DefaultParallel, "partitions shipped at once")
	fl.IntVar(&maxValue, "max-value-size", defaultMaxValueSize, "the nodes' value limit (zpnode --max-value-size): a larger value is a bad line")
	fl.DurationVar(&ttl, "ttl", 0, "time to live of records without an expiry; 0: none")
	fl.StringVar(&secretFile, "cluster-secret-file", "", "file holding the cluster secret, for clusters that have one (env "+clusterSecretEnv+")")
	return cmd
}

// watchCounter shows n's growth on prog until stop is called.
func watchCounter(n *atomic.Int64, prog progress.Reporter) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var last int64
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				prog.Add(n.Load() - last)
				return
			case <-t.C:
				cur := n.Load()
				prog.Add(cur - last)
				last = cur
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
