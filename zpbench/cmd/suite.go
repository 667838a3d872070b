package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/zpbench/suite"
)

type suiteFlags struct {
	binDir, out, jsonOut string
	duration, warmup     time.Duration
	rounds               int
	conns                int
	pipelines            []int
	ops, systems         []string
	clients              []string
	redisBenchmark       string
	valueSize            int
	keyspace             uint64
	redisServer          string
	goCmd, moduleDir     string
	benchtime            string
	skipMicro, keep      bool
	maxErrorRate         float64
	memoryKeys           uint64
	memoryReads          time.Duration
	soak, soakSample     time.Duration
	soakReadRatio        float64
}

// keptMarker starts the part of docs/benchmarks.md that the suite keeps
// when it rewrites the page.
const keptMarker = "<!-- kept by zpbench suite: hand-written sections follow -->"

func (a *app) suiteCommand() *cobra.Command {
	f := &suiteFlags{}
	cmd := &cobra.Command{
		Use:   "suite",
		Short: "Run the benchmark suite of `make bench` and write docs/benchmarks.md",
		Long: `suite runs, on this machine and in one go: the Go micro-benchmarks, then
each system in turn — the no-op server, zpnode with 1 node / 1 replica, 3 nodes /
3 replicas async, 3 nodes / 3 replicas min_sync_replicas=1, Redis (AOF,
appendfsync everysec), and Redis Cluster (one node with every slot, same AOF
settings) — all started on free loopback ports under a temporary directory,
measured for SET and GET at each pipeline depth in alternating rounds (so that
outside load weighs on all alike), and stopped at the end (on failure and
interrupt too). Every zpnode serves RESP too: besides zpbench's own protocol for
each system, the RESP clients (redis-benchmark, and zpbench's go-redis
ClusterClient) measure zpnode's front on 1 and 3 nodes and Redis Cluster, in the
same rounds. It writes the figures, ratios, the machine and the exact commands
(paths relative to the repository) as Markdown to --out. Zeppelin systems need
zpmeta and zpnode in --bin-dir; the no-op server is this binary's noop-server
command.

Clients: ` + strings.Join(suite.ClientNames(), ", ") + `
Systems: ` + strings.Join(suite.SystemNames(), ", "),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.maxErrorRate < 0 || f.maxErrorRate > 1 {
				return usagef("--max-error-rate must be in [0, 1]")
			}
			if f.soakReadRatio <= 0 || f.soakReadRatio > 1 || f.soakSample <= 0 || f.soak < 0 || f.memoryReads < 0 {
				return usagef("--soak-read-ratio must be in (0, 1], --soak-sample positive, --soak and --memory-reads not negative")
			}
			if f.soak > 0 && f.memoryKeys == 0 {
				return usagef("--soak runs on the memory section's node: it needs --memory-keys")
			}
			if f.conns < 1 || f.valueSize < 1 || f.keyspace < 1 || f.duration <= 0 || f.rounds < 1 || f.warmup < 0 {
				return usagef("--conns, --value-size, --keyspace, --duration and --rounds must be positive, --warmup not negative")
			}
			return wrap(func(cmd *cobra.Command, _ []string) error { return a.suite(cmd.Context(), f) })(cmd, args)
		},
	}
	self, _ := os.Executable()
	fs := cmd.Flags()
	fs.StringVar(&f.binDir, "bin-dir", filepath.Dir(self), "directory holding zpmeta and zpnode")
	fs.StringVar(&f.out, "out", "docs/benchmarks.md", "Markdown report to write")
	fs.StringVar(&f.jsonOut, "json", "", "also write every result as JSON to this file")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "measured time per system and cell")
	fs.DurationVar(&f.warmup, "warmup", 2*time.Second, "warm-up per system and cell")
	fs.IntVar(&f.rounds, "rounds", 4, "rounds each cell's measured time is split into; systems alternate within a round")
	fs.IntVar(&f.conns, "conns", 50, "connections and workers")
	fs.IntSliceVar(&f.pipelines, "pipelines", []int{1, 16}, "pipeline depths")
	fs.StringSliceVar(&f.ops, "ops", []string{"set", "get"}, "workloads measured")
	fs.StringSliceVar(&f.systems, "systems", suite.SystemNames(), "systems measured")
	fs.StringSliceVar(&f.clients, "clients", suite.ClientNames(), "load generators, each on the systems it applies to: zpbench (native protocol, go-redis Client for redis, noop), redis-benchmark (the C binary, on RESP fronts and redis-cluster), zpbench-cluster (go-redis ClusterClient on the same)")
	fs.StringVar(&f.redisBenchmark, "redis-benchmark", "", "redis-benchmark binary (default: from PATH)")
	fs.IntVarP(&f.valueSize, "value-size", "d", 100, "value size in bytes")
	fs.Uint64VarP(&f.keyspace, "keyspace", "r", 100_000, "records")
	fs.StringVar(&f.redisServer, "redis-server", "", "redis-server binary (default: from PATH)")
	fs.StringVar(&f.goCmd, "go", "go", "go command for the micro-benchmarks")
	fs.StringVar(&f.moduleDir, "module-dir", ".", "module root, for the micro-benchmarks and the commit")
	fs.StringVar(&f.benchtime, "micro-benchtime", "1s", "-benchtime of the micro-benchmarks")
	fs.BoolVar(&f.skipMicro, "skip-micro", false, "leave out the micro-benchmarks")
	fs.BoolVar(&f.keep, "keep", false, "keep the temporary directory (data and logs)")
	fs.Uint64Var(&f.memoryKeys, "memory-keys", 1_000_000, "records (of --value-size bytes) loaded into a fresh 1-node zpnode for the memory section (0: leave it out)")
	fs.DurationVar(&f.memoryReads, "memory-reads", 5*time.Second, "GETs on the memory node after its load, before the second snapshot (0: none)")
	fs.DurationVar(&f.soak, "soak", 0, "after the memory snapshots, run a mixed workload on that node this long, sampling its RSS (0: no soak; make bench-soak: 10m)")
	fs.DurationVar(&f.soakSample, "soak-sample", 5*time.Second, "how often the soak samples the node's memory")
	fs.Float64Var(&f.soakReadRatio, "soak-read-ratio", 0.8, "fraction of GETs in the soak's mix (the rest are SETs)")
	fs.Float64Var(&f.maxErrorRate, "max-error-rate", 0.01, "exit 3 when a cell's operations failed more often than this (the report is written anyway)")
	return cmd
}

func (a *app) suite(ctx context.Context, f *suiteFlags) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	res, runErr := suite.Run(ctx, suite.Config{
		BinDir:         f.binDir,
		NoopCommand:    []string{self, "noop-server"},
		RedisServer:    f.redisServer,
		RedisBenchmark: f.redisBenchmark,
		Clients:        f.clients,
		RepoDir:        f.moduleDir,
		KeepWorkDir:    f.keep,
		Systems:        f.systems,
		Ops:            f.ops,
		Pipelines:      f.pipelines,
		Duration:       f.duration,
		Warmup:         f.warmup,
		Rounds:         f.rounds,
		Conns:          f.conns,
		ValueSize:      f.valueSize,
		Keyspace:       f.keyspace,
		MemoryKeys:     f.memoryKeys,
		MemoryReads:    f.memoryReads,
		Soak:           f.soak,
		SoakSample:     f.soakSample,
		SoakReadRatio:  f.soakReadRatio,
		Micro:          suite.MicroConfig{Skip: f.skipMicro, Go: f.goCmd, Dir: f.moduleDir, Benchtime: f.benchtime},
		Command:        "zpbench " + strings.Join(a.env.Args, " "),
		Log:            a.log,
	})
	if res == nil {
		return runErr
	}
	if ctx.Err() != nil {
		// Interrupted: keep the last complete report rather than
		// replace it with a partial one.
		return runErr
	}
	var md bytes.Buffer
	if err := suite.WriteMarkdown(&md, res); err != nil {
		return errors.Join(runErr, err)
	}
	// Sections written by hand (cluster benchmarks run with go test) follow
	// a marker in the old page; keep them.
	if old, err := os.ReadFile(f.out); err == nil {
		if i := bytes.Index(old, []byte(keptMarker)); i >= 0 {
			md.WriteString("\n")
			md.Write(old[i:])
		}
	}
	if err := os.WriteFile(f.out, md.Bytes(), 0o644); err != nil {
		return errors.Join(runErr, fmt.Errorf("write %s: %w", f.out, err))
	}
	a.log.Info("wrote report", "file", f.out)
	if f.jsonOut != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err == nil {
			err = os.WriteFile(f.jsonOut, b, 0o644)
		}
		if err != nil {
			return errors.Join(runErr, fmt.Errorf("write %s: %w", f.jsonOut, err))
		}
	}
	if runErr != nil {
		return runErr
	}
	if rate, where := res.MaxErrorRate(); rate > f.maxErrorRate {
		return fmt.Errorf("%s: %w", where, &errorRateError{rate: rate, limit: f.maxErrorRate})
	}
	return nil
}
