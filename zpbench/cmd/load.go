package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/zpbench/report"
	"github.com/zeppelin-kv/zeppelin/zpbench/runner"
)

type loadFlags struct {
	targetFlags
	keyspace  uint64
	valueSize int
	batch     int
	conns     int
	seed      uint64
	output    string
}

// loadReport is what `zpbench load --output json` writes.
type loadReport struct {
	Target     string  `json:"target"`
	Records    uint64  `json:"records"`
	ElapsedSec float64 `json:"elapsed_s"`
	PerSec     float64 `json:"records_per_sec"`
}

func (a *app) loadCommand() *cobra.Command {
	f := &loadFlags{}
	cmd := &cobra.Command{
		Use:   "load --meta ADDRS | --redis ADDR | --noop ADDR [flags]",
		Short: "Write every record of the keyspace, for read benchmarks",
		Long: `load writes records 0 .. --keyspace-1, with the benchmark's key scheme and
--value-size values, as MSETs of --batch consecutive records from --conns
connections in parallel. Run it before the workloads that read: get, mget,
mixed and YCSB A to F. A Zeppelin table is created when missing (zpbench
says so) and kept, for the runs that read it; drop it with
'zpctl table drop TABLE' when done.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n := len(f.specs())
			switch {
			case n != 1:
				return usagef("need exactly one target, got %d", n)
			case f.keyspace == 0 || f.batch < 1 || f.conns < 1 || f.valueSize < 0:
				return usagef("--keyspace, --batch and --conns must be at least 1, --value-size not negative")
			case f.output != "text" && f.output != "json":
				return usagef("--output must be text or json")
			}
			return wrap(func(cmd *cobra.Command, _ []string) error { return a.load(cmd.Context(), f) })(cmd, args)
		},
	}
	f.targetFlags.register(cmd)
	fs := cmd.Flags()
	fs.Uint64VarP(&f.keyspace, "keyspace", "r", 100_000, "records to write")
	fs.IntVarP(&f.valueSize, "value-size", "d", 100, "value size in bytes")
	fs.IntVar(&f.batch, "batch", 100, "records per MSET")
	fs.IntVar(&f.conns, "conns", 16, "connections (Zeppelin: per node), one loader each")
	fs.Uint64Var(&f.seed, "seed", 0, "seed of the value's bytes")
	fs.StringVarP(&f.output, "output", "o", "text", "report format: text or json")
	return cmd
}

func (a *app) load(ctx context.Context, f *loadFlags) error {
	s := f.specs()[0]
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	// Loading is for the runs that read afterwards: the table stays.
	bt, err := a.ensureTable(sctx, &f.targetFlags, s, "load keeps it for the runs that read it")
	if err != nil {
		return err
	}
	if bt != nil {
		defer bt.cl.Close()
	}
	t, err := a.open(sctx, &f.targetFlags, s, f.conns, 1)
	cancel()
	if err != nil {
		return err
	}
	defer t.Close()
	start := time.Now()
	res, err := runner.Load(ctx, t, runner.LoadConfig{
		Records: f.keyspace, Batch: f.batch, Conns: f.conns, ValueSize: f.valueSize, Seed: f.seed, Timeout: f.timeout,
		ProgressInterval: 5 * time.Second,
		Progress: func(n uint64) {
			a.log.Info("loading", "records", n, "of", f.keyspace, "elapsed", time.Since(start).Round(time.Second))
		},
	})
	if err != nil {
		return fmt.Errorf("load %s: %d records written: %w", t.Name(), res.Records, err)
	}
	rep := loadReport{Target: t.Name(), Records: res.Records, ElapsedSec: res.Elapsed.Seconds(), PerSec: res.Rate()}
	if f.output == "json" {
		return write(a.env.Stdout, "json", rep)
	}
	fmt.Fprintf(a.env.Stdout, "loaded %s records into %s in %.2fs (%s records/s)\n",
		report.Count(float64(res.Records)), t.Name(), res.Elapsed.Seconds(), report.Count(res.Rate()))
	return nil
}
