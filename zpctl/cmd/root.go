// Package cmd holds zpctl's commands: one file per command group, the exit
// codes in exitcode.go, rendering in zpctl/output.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// DefaultMeta is the meta servers zpctl talks to unless --meta or ZP_META
// says otherwise: the local cluster `make run` starts.
const DefaultMeta = "127.0.0.1:9221,127.0.0.1:9222,127.0.0.1:9223"

// Env is everything zpctl reads and writes outside the cluster; tests
// replace it.
type Env struct {
	Args   []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// IsTerminal reports whether Stdin is an interactive terminal, where a
	// destructive command may ask for confirmation.
	IsTerminal func() bool
}

// OSEnv is the process's own environment.
func OSEnv() Env {
	return Env{
		Args:   os.Args[1:],
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Getenv: os.Getenv,
		IsTerminal: func() bool {
			fi, err := os.Stdin.Stat()
			return err == nil && fi.Mode()&os.ModeCharDevice != 0
		},
	}
}

// app is one run of zpctl: the global flags and what they set up.
type app struct {
	env     Env
	meta    string
	format  string
	timeout time.Duration
	debug   bool
	printer *output.Printer
}

// Main runs zpctl with env and returns the exit code (see ExitCode). ctx
// ends the command early, e.g. on SIGINT.
func Main(ctx context.Context, env Env) int {
	a := &app{env: env}
	root := a.rootCommand()
	root.SetArgs(env.Args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	var failed *cmdFailed
	if errors.As(err, &failed) {
		err = failed.err
	} else if err != nil {
		// Cobra itself refused the command line: flags, arguments, unknown
		// commands.
		err = &usageError{err}
	}
	code := ExitCode(err)
	if err != nil {
		a.printError(err, code)
	}
	return code
}

func (a *app) rootCommand() *cobra.Command {
	metaDefault := DefaultMeta
	if v := a.env.Getenv("ZP_META"); v != "" {
		metaDefault = v
	}
	root := &cobra.Command{
		Use:   "zpctl",
		Short: "Operate a Zeppelin-Go cluster",
		Long: `zpctl operates a Zeppelin-Go cluster: tables, nodes, meta servers, and
reads and writes of single keys. It is built for scripts: results go to
stdout (--output json for programs), errors to stderr, and the exit code
says what went wrong.

` + exitCodeHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			f, err := output.ParseFormat(a.format)
			if err != nil {
				return usagef("--output: %w", err)
			}
			if a.timeout <= 0 {
				return usagef("--timeout must be positive, not %v", a.timeout)
			}
			a.printer = &output.Printer{W: a.env.Stdout, Format: f}
			return nil
		},
		RunE: groupRunE,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.meta, "meta", metaDefault, "meta servers, comma-separated host:port (env ZP_META)")
	pf.StringVarP(&a.format, "output", "o", "table", "output format: table or json")
	pf.DurationVar(&a.timeout, "timeout", 5*time.Second, "how long a command may take, retries included")
	pf.BoolVar(&a.debug, "debug", false, "log the client's retries and topology changes to stderr")
	root.AddCommand(
		a.tableCommand(),
		a.nodeCommand(),
		a.metaCommand(),
		a.getCommand(),
		a.setCommand(),
		a.delCommand(),
		a.mgetCommand(),
		a.locateCommand(),
	)
	return root
}

// groupRunE is the RunE of commands that only group others, so that a
// missing or mistyped subcommand is a usage error rather than help on
// stdout and exit 0.
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usagef("missing command for %q (see '%s --help')", cmd.CommandPath(), cmd.CommandPath())
	}
	return usagef("unknown command %q for %q (see '%s --help')", args[0], cmd.CommandPath(), cmd.CommandPath())
}

// cmdFailed marks an error returned by a command's own work, to tell it
// from cobra's command-line errors.
type cmdFailed struct{ err error }

func (e *cmdFailed) Error() string { return e.err.Error() }
func (e *cmdFailed) Unwrap() error { return e.err }

// withClient wraps a command's work: it gets a context bounded by
// --timeout and a client, closed afterwards.
func (a *app) withClient(fn func(ctx context.Context, c *client.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
		defer cancel()
		c, err := a.newClient(ctx)
		if err != nil {
			return &cmdFailed{err}
		}
		defer c.Close()
		if err := fn(ctx, c, args); err != nil {
			return &cmdFailed{err}
		}
		return nil
	}
}

func (a *app) newClient(ctx context.Context) (*client.Client, error) {
	var addrs []string
	for _, s := range strings.Split(a.meta, ",") {
		if s = strings.TrimSpace(s); s != "" {
			addrs = append(addrs, s)
		}
	}
	logger := slog.New(slog.DiscardHandler)
	if a.debug {
		logger = slog.New(slog.NewTextHandler(a.env.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return client.New(ctx, client.Options{
		MetaAddrs:      addrs,
		DefaultTimeout: a.timeout,
		// Admin commands work without the topology, and `meta list` must
		// work with every meta server down.
		LazyPull: true,
		Logger:   logger,
	})
}

// errorJSON is what --output json writes to stderr on failure.
type errorJSON struct {
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
	// Status is the cluster's status code (e.g. "NOT_FOUND") when the
	// error came with one, else "".
	Status string `json:"status"`
}

func (a *app) printError(err error, code int) {
	// Cobra may have refused the command line before --output was looked
	// at; honour it anyway.
	if f, ferr := output.ParseFormat(a.format); ferr == nil && f == output.JSON {
		e := errorJSON{Error: err.Error(), ExitCode: code}
		var se *status.Error
		if errors.As(err, &se) {
			e.Status = se.Code.String()
		}
		output.WriteJSON(a.env.Stderr, e)
		return
	}
	fmt.Fprintf(a.env.Stderr, "zpctl: %v\n", err)
	if code == ExitUsage {
		fmt.Fprintln(a.env.Stderr, "Run 'zpctl --help' for usage.")
	}
}
