// Package cmd holds zpctl's commands: one file per command group, the exit
// codes in exitcode.go, global settings in config.go, rendering in
// zpctl/output.
package cmd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/tlsconf"

	"github.com/charmbracelet/x/term"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/secret"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

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
	// StderrIsTerminal reports whether Stderr is a terminal, where
	// progress is drawn as a bar rather than printed as lines.
	StderrIsTerminal func() bool
	// StdoutIsTerminal reports whether Stdout is a terminal, where
	// `migrate status --watch` redraws the screen.
	StdoutIsTerminal func() bool
}

// OSEnv is the process's own environment.
func OSEnv() Env {
	return Env{
		Args:             os.Args[1:],
		Stdin:            os.Stdin,
		Stdout:           os.Stdout,
		Stderr:           os.Stderr,
		Getenv:           os.Getenv,
		IsTerminal:       isTerminal(os.Stdin),
		StderrIsTerminal: isTerminal(os.Stderr),
		StdoutIsTerminal: isTerminal(os.Stdout),
	}
}

// isTerminal reports whether f is a terminal. A character device is not
// enough: /dev/null is one, and a script that redirects stdin from it must
// not be asked anything.
func isTerminal(f *os.File) func() bool {
	return func() bool { return term.IsTerminal(f.Fd()) }
}

// app is one run of zpctl: the global flags and what they set up.
type app struct {
	env Env

	// The flags as given; resolve turns them, the environment and the
	// config file into the settings below.
	metaFlag          string
	outputFlag        string
	timeoutFlag       time.Duration
	configFlag        string
	adminTokenFlag    string
	tablePasswordFlag string
	tlsFlags          tlsconf.Files // CA, Cert and Key as given
	debug             bool
	verbose           bool

	settings settings
	meta     string
	format   string
	timeout  time.Duration
	// adminTokenFile is the resolved file of the admin token, "" none.
	adminTokenFile string
	// tablePasswordFile is the resolved file of the table password, ""
	// none.
	tablePasswordFile string
	printer           *output.Printer
}

// Command groups, for `zpctl --help`.
const (
	groupCluster  = "cluster"
	groupTables   = "tables"
	groupData     = "data"
	groupTopology = "topology"
	groupStats    = "stats"
)

// Main runs zpctl with env and returns the exit code (see ExitCode). ctx
// ends the command early, e.g. on SIGINT.
func Main(ctx context.Context, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	a := &app{env: env, format: defaultOutput}
	root := a.rootCommand()
	root.SetArgs(env.Args)
	cmd, err := root.ExecuteContextC(ctx)
	var failed *cmdFailed
	if errors.As(err, &failed) {
		err = failed.err
	} else if err != nil {
		// Cobra itself refused the command line: flags, arguments, unknown
		// commands.
		err = &usageError{err}
	}
	code := ExitCode(err)
	var quiet *quietError
	if err != nil && !errors.As(err, &quiet) {
		a.printError(err, code, cmd)
	}
	return code
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "zpctl",
		Short: "Operate a Zeppelin-Go cluster",
		Long: `zpctl operates a Zeppelin-Go cluster: meta servers, nodes, tables and keys,
health checks, statistics, and a live view (zpctl top). It is built for
scripts as much as for people: results go to stdout (--output json or yaml
for programs), errors to stderr, and the exit code says what went wrong.

Global settings come from the flag, else the environment (ZP_META,
ZP_OUTPUT, ZP_TIMEOUT), else the config file (--config, ZP_CONFIG, or
~/.config/zpctl/config.yaml with keys meta, output, timeout), else the
default. 'zpctl config' shows what is in effect and why.

` + exitCodeHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.resolve(cmd); err != nil {
				return err
			}
			f, _ := output.ParseFormat(a.format)
			a.printer = &output.Printer{W: a.env.Stdout, Format: f}
			return nil
		},
		RunE:    groupRunE,
		Version: buildinfo.Version,
	}
	root.SetVersionTemplate(buildinfo.Line("zpctl") + "\n")
	pf := root.PersistentFlags()
	pf.StringVar(&a.metaFlag, "meta", DefaultMeta, "meta servers, comma-separated host:port (env ZP_META)")
	pf.StringVarP(&a.outputFlag, "output", "o", defaultOutput, "output format: table, json or yaml (env ZP_OUTPUT)")
	pf.DurationVar(&a.timeoutFlag, "timeout", defaultTimeout, "how long a command may take, retries included (env ZP_TIMEOUT)")
	pf.StringVar(&a.configFlag, "config", "", "config file (env ZP_CONFIG; default ~/.config/zpctl/config.yaml)")
	pf.StringVar(&a.adminTokenFlag, "admin-token-file", "", "file holding the meta servers' admin token, for commands that change the cluster (env ZP_ADMIN_TOKEN_FILE)")
	pf.StringVar(&a.tlsFlags.CA, "tls-ca", "", "PEM CA the servers' certificates chain to: connect over TLS (env ZP_TLS_CA)")
	pf.StringVar(&a.tlsFlags.Cert, "tls-cert", "", "PEM client certificate, for servers that verify clients (env ZP_TLS_CERT)")
	pf.StringVar(&a.tlsFlags.Key, "tls-key", "", "PEM private key of --tls-cert (env ZP_TLS_KEY)")
	pf.StringVar(&a.tablePasswordFlag, "table-password-file", "", "file holding the password of the table a data command names, for tables with passwords (env ZP_TABLE_PASSWORD_FILE)")
	pf.BoolVar(&a.debug, "debug", false, "log the client's retries and topology changes to stderr")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "print the whole chain of an error, not just its one-line summary")
	root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))

	root.AddGroup(
		&cobra.Group{ID: groupCluster, Title: "Cluster:"},
		&cobra.Group{ID: groupTables, Title: "Tables:"},
		&cobra.Group{ID: groupData, Title: "Data:"},
		&cobra.Group{ID: groupStats, Title: "Statistics and monitoring:"},
		&cobra.Group{ID: groupTopology, Title: "Topology changes:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add(groupCluster, a.metaCommand(), a.nodeCommand(), a.checkupCommand(), a.configCommand(), a.versionCommand())
	add(groupTables, a.tableCommand(), a.locateCommand(), a.backupCommand())
	add(groupData, a.getCommand(), a.setCommand(), a.delCommand(), a.existsCommand(), a.ttlCommand(),
		a.mgetCommand(), a.msetCommand(), a.incrCommand(), a.scanCommand(), a.keysCommand(), a.loadCommand(), a.exportCommand(), a.bulkloadCommand())
	add(groupStats, a.statsCommand(), a.slowlogCommand(), a.topCommand())
	add(groupTopology, append(a.topologyCommands(), a.scheduleCommand())...)
	root.SetHelpCommandGroupID(groupCluster)
	root.SetCompletionCommandGroupID(groupCluster)
	root.SetIn(a.env.Stdin)
	root.SetOut(a.env.Stdout)
	root.SetErr(a.env.Stderr)
	// Cobra adds `completion` when it runs; added now (after SetOut, which
	// its scripts are written to), it can refuse an unknown shell like
	// every other group instead of printing help.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Args = cobra.ArbitraryArgs
			c.RunE = groupRunE
		}
	}
	return root
}

// groupRunE is the RunE of commands that only group others, so that a
// missing or mistyped subcommand is a usage error rather than help on
// stdout and exit 0.
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usagef("missing command for %q", cmd.CommandPath())
	}
	return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
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
		// The table a command names: its --table, else its first
		// argument (harmless when that is no table: a password is sent
		// only with requests on the table it is for).
		var table string
		if f := cmd.Flags().Lookup("table"); f != nil && f.Changed {
			table = f.Value.String()
		} else if len(args) > 0 {
			table = args[0]
		}
		c, err := a.newClientFor(ctx, table)
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

// newClient is newClientFor no table.
func (a *app) newClient(ctx context.Context) (*client.Client, error) { return a.newClientFor(ctx, "") }

// newClientFor returns a client with the admin token, and the table
// password for table (the table the command names, "" none), when their
// files are set.
func (a *app) newClientFor(ctx context.Context, table string) (*client.Client, error) {
	var passwords map[string][]byte
	if table != "" {
		pw, err := a.readSecret("table-password-file", a.tablePasswordFile, a.settings.TablePasswordFile.Source)
		if err != nil {
			return nil, err
		}
		if pw != nil {
			passwords = map[string][]byte{table: pw}
		}
	}
	return a.newClientWith(ctx, passwords)
}

// newClientWith returns a client with the admin token and passwords.
func (a *app) newClientWith(ctx context.Context, passwords map[string][]byte) (*client.Client, error) {
	logger := slog.New(slog.DiscardHandler)
	if a.debug {
		logger = slog.New(slog.NewTextHandler(a.env.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	token, err := a.readSecret("admin-token-file", a.adminTokenFile, a.settings.AdminTokenFile.Source)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := a.clientTLS()
	if err != nil {
		return nil, err
	}
	return client.New(ctx, client.Options{
		MetaAddrs:      a.metaAddrs(),
		AdminToken:     token,
		TLS:            tlsCfg,
		TablePasswords: passwords,
		DefaultTimeout: a.timeout,
		// Admin commands work without the topology, and `meta list` must
		// work with every meta server down.
		LazyPull: true,
		Logger:   logger,
		// A value no node can take fails here, VALUE_TOO_LARGE, rather
		// than as a frame over the limit.
		MaxValueSize: keyspace.MaxValueSize,
	})
}

// clientTLS loads the resolved TLS settings; nil (plain TCP) when none
// is set.
func (a *app) clientTLS() (*tls.Config, error) {
	f := tlsconf.Files{CA: a.settings.TLSCA.Value, Cert: a.settings.TLSCert.Value, Key: a.settings.TLSKey.Value}
	if !f.Enabled() {
		return nil, nil
	}
	cfg, err := tlsconf.ClientConfig(f)
	if err != nil {
		return nil, usagef("--tls-ca/--tls-cert/--tls-key: %w", err)
	}
	return cfg, nil
}

// readSecret reads the secret file given by flag (from source), nil for
// "": a usage error when it cannot be read, a warning when others than
// its owner may read it. The secret is in no message.
func (a *app) readSecret(flag, path, source string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	s, open, err := secret.ReadFile(path)
	if err != nil {
		return nil, usagef("--%s (%s): %w", flag, source, err)
	}
	if open {
		fmt.Fprintf(a.env.Stderr, "zpctl: warning: %s can be read by others than its owner: chmod 600 it\n", path)
	}
	return s, nil
}

// errorJSON is what --output json (or yaml) writes to stderr on failure.
type errorJSON struct {
	// Error is the one-line summary zpctl prints as text.
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
	// Status is the cluster's status code (e.g. "NOT_FOUND") when the
	// error came with one, else "".
	Status string `json:"status"`
	// Detail is the whole chain of the error, as --verbose prints it.
	Detail string `json:"detail"`
}

// printError writes err to stderr: its one-line summary (and its whole
// chain with --verbose), or errorJSON with --output json or yaml. A usage
// error points at the help of cmd, the command that refused it.
func (a *app) printError(err error, code int, cmd *cobra.Command) {
	// The command line may have been refused before the settings were
	// resolved; a.format is then the flag as far as cobra parsed it, or
	// the default.
	format := a.format
	if a.printer == nil {
		format = a.outputFlag
	}
	if f, ferr := output.ParseFormat(format); ferr == nil && f.Structured() {
		e := errorJSON{Error: briefError(err), ExitCode: code, Detail: err.Error()}
		var se *status.Error
		if errors.As(err, &se) {
			e.Status = se.Code.String()
		}
		p := output.Printer{W: a.env.Stderr, Format: f}
		p.Print(e, nil)
		return
	}
	brief := briefError(err)
	fmt.Fprintf(a.env.Stderr, "zpctl: %s\n", brief)
	if a.verbose && brief != err.Error() {
		fmt.Fprintf(a.env.Stderr, "  detail: %v\n", err)
	}
	if code == ExitUsage {
		path := "zpctl"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(a.env.Stderr, "Run '%s --help' for usage.\n", path)
	}
}
