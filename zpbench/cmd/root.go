// Package cmd holds zpbench's commands: the benchmark itself (the root
// command), load, noop-server and suite. Exit codes are in exitcode.go.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
)

// Env is everything zpbench reads and writes outside its targets; tests
// replace it.
type Env struct {
	Args   []string
	Stdout io.Writer
	Stderr io.Writer
	// StderrIsTerminal selects live progress (one line rewritten in place)
	// over plain progress lines.
	StderrIsTerminal bool
}

// OSEnv is the process's own environment.
func OSEnv() Env {
	fi, err := os.Stderr.Stat()
	return Env{
		Args:             os.Args[1:],
		Stdout:           os.Stdout,
		Stderr:           os.Stderr,
		StderrIsTerminal: err == nil && fi.Mode()&os.ModeCharDevice != 0,
	}
}

// app is one invocation of zpbench.
type app struct {
	env        Env
	logLevel   string
	log        *slog.Logger
	cpuProfile string
	stopProf   func()
}

// Main runs zpbench with env and returns the exit code. ctx ends the run
// early (SIGINT): what was measured until then is not reported.
func Main(ctx context.Context, env Env) int {
	a := &app{env: env}
	root := a.rootCommand()
	root.SetArgs(env.Args)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	a.stopProfile() // PersistentPostRun does not run after a failure
	var failed *cmdFailed
	if errors.As(err, &failed) {
		err = failed.err
	} else if err != nil {
		err = &usageError{err} // cobra refused the command line
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, "zpbench:", err)
	}
	return ExitCode(err)
}

// cmdFailed marks an error returned by a command's own work, to tell it
// from cobra's command-line errors.
type cmdFailed struct{ err error }

func (e *cmdFailed) Error() string { return e.err.Error() }
func (e *cmdFailed) Unwrap() error { return e.err }

// wrap marks the errors of a command's work.
func wrap(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd, args); err != nil {
			return &cmdFailed{err}
		}
		return nil
	}
}

func (a *app) rootCommand() *cobra.Command {
	r := &runFlags{}
	root := &cobra.Command{
		Use:   "zpbench --meta ADDRS | --redis ADDR | --noop ADDR [flags]",
		Short: "Benchmark a Zeppelin cluster, Redis, or the loopback ceiling",
		Long: `zpbench sends a workload to a target and reports throughput, latency
percentiles (HDR histogram: p50/p95/p99/p99.9/max) and errors by code.

Targets (one, or two with --compare):
  --meta ADDRS   a Zeppelin cluster (meta servers, comma-separated); pipeline 1
                 goes through lib/client, deeper pipelines (or --raw) send raw
                 requests to partition masters over pipelined connections
  --redis ADDR   a Redis server, through go-redis (pipelines are batches)
  --noop ADDR    zpbench noop-server: the same requests as --meta's raw path,
                 answered at once: the ceiling of the client path and loopback

Workloads (--workload):
` + workloadHelp() + `
A Zeppelin table (--table, default bench) is created when missing, which
zpbench says on stderr. A run drops a table it created when it ends
(--keep-table keeps it; --drop-table drops one that existed as well);
zpbench load keeps the table it fills, for the runs that read it. When
reads find no value, zpbench prints the zpbench load command that fills the
keyspace.

YCSB E's scans are hashtag SCANs: record i is "{zb:<i/100>}<i>", so 100
consecutive records share a hashtag and a partition; a scan of L records
from record s reads s.. up to the end of its group (Redis: an MGET of them).

Examples:
  zpbench --meta 127.0.0.1:9221 --workload set -d 100 --conns 50 --duration 10s
  zpbench load --meta 127.0.0.1:9221 --keyspace 1000000
  zpbench --meta 127.0.0.1:9221 --workload ycsb-b --pipeline 16 --output json
  zpbench --meta 127.0.0.1:9221 --redis 127.0.0.1:6379 --compare --workload get

` + exitCodeHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(a.logLevel)); err != nil {
				return usagef("--log-level: %w", err)
			}
			a.log = slog.New(slog.NewTextHandler(a.env.Stderr, &slog.HandlerOptions{Level: level}))
			return a.startProfile()
		},
		PersistentPostRun: func(*cobra.Command, []string) { a.stopProfile() },
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := r.validate(cmd); err != nil {
				return err
			}
			return wrap(func(cmd *cobra.Command, _ []string) error { return a.run(cmd.Context(), r) })(cmd, args)
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.Version = buildinfo.Version
	root.SetVersionTemplate(buildinfo.Line("zpbench") + "\n")
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "info", "log level on stderr: debug, info, warn, error")
	root.PersistentFlags().StringVar(&a.cpuProfile, "cpuprofile", "", "write a CPU profile of zpbench itself to this file (go tool pprof)")
	r.register(root)
	root.AddCommand(a.loadCommand(), a.noopCommand(), a.suiteCommand())
	return root
}

func (a *app) startProfile() error {
	if a.cpuProfile == "" {
		return nil
	}
	f, err := os.Create(a.cpuProfile)
	if err != nil {
		return usagef("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return usagef("--cpuprofile: %w", err)
	}
	a.stopProf = func() {
		pprof.StopCPUProfile()
		f.Close()
	}
	return nil
}

func (a *app) stopProfile() {
	if a.stopProf != nil {
		a.stopProf()
		a.stopProf = nil
	}
}
