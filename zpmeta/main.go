// Command zpmeta is the Zeppelin meta server: one member of the Raft group
// that holds the cluster topology. Run three (or five), each with the same
// --peers:
//
//	zpmeta --addr 10.0.0.1:9221 --peers 10.0.0.1:9221,10.0.0.2:9221,10.0.0.3:9221 --data /var/lib/zpmeta
//
// A server that is to join a running group starts with --bootstrap=false and
// an empty --data, and is added with `zpctl meta add` (docs/meta.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/tlsconf"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
	"github.com/zeppelin-kv/zeppelin/lib/promexport"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/secret"
	"github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		// The server's own errors already say where they come from.
		msg := err.Error()
		if !strings.HasPrefix(msg, "zpmeta:") {
			msg = "zpmeta: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("zpmeta", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9221", "address to listen on and advertise, for clients, nodes and the other members")
	id := fs.String("id", "", "Raft server ID (default: --addr)")
	peers := fs.String("peers", "", "comma-separated addresses of all members, this one included (default: --addr alone)")
	data := fs.String("data", "", "data directory for the Raft log and snapshots (required)")
	bootstrap := fs.Bool("bootstrap", true, "bootstrap the group with --peers when there is no Raft state yet; false for a server that joins a running group (zpctl meta add)")
	downTimeout := fs.Duration("down-timeout", server.DefaultDownTimeout, "a node that has not pinged for this long is marked DOWN")
	lease := fs.Duration("lease", server.DefaultLease, "how long a master may serve writes after its last successful ping; must be < --down-timeout")
	maxMoves := fs.Int("max-moves-per-node", 2, "topology moves that may involve one node at a time")
	stuckTimeout := fs.Duration("stuck-timeout", 3*time.Second, "a move whose partition stays STUCK longer is aborted and rolled back")
	splitTimeout := fs.Duration("split-timeout", 30*time.Second, "a split whose replicas do not all hold the new partition this long after PREPARE is rolled back")
	slowdownLag := fs.Uint64("slowdown-lag", 10000, "a move's target this many records behind or less gets the partition SLOWDOWN")
	stuckLag := fs.Uint64("stuck-lag", 200, "a move's target this many records behind or less gets the partition STUCK")
	scheduler := fs.Bool("scheduler", true, "run the scheduler on the leader: re-replication after node loss and master balance (settings and pause at run time: zpctl schedule)")
	metricsTokenFile := fs.String("metrics-token-file", "", "scrapes of /metrics must present this file's token as a bearer token (empty: none needed)")
	clusterSecretFile := fs.String("cluster-secret-file", "", "file holding the secret nodes and meta servers present to one another; a node's PING must carry it (empty: none)")
	clusterSecretSendOnly := fs.Bool("cluster-secret-send-only", false, "present the cluster secret but do not require it yet (while a secret is rolled out)")
	adminTokenFile := fs.String("admin-token-file", "", "file holding the admin token every request that changes the cluster must carry (empty: none needed)")
	var limits rpc.Limits
	limits.RegisterFlags(fs)
	var tlsFiles tlsconf.Files
	tlsFiles.RegisterServerFlags(fs)
	insecure := fs.Bool("insecure", false, "listen beyond loopback with neither --admin-token-file nor --tls-cert (protected mode refuses to start otherwise)")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics at /metrics on this address (empty: off)")
	debugAddr := fs.String("debug-addr", "", "serve /debug/pprof on this loopback address (empty: off)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *version {
		fmt.Println(buildinfo.Line("zpmeta"))
		return nil
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *data == "" {
		return errors.New("--data is required")
	}

	adminToken, err := secret.Load(*adminTokenFile, "admin-token-file", logger)
	if err != nil {
		return err
	}
	clusterSecret, err := secret.Load(*clusterSecretFile, "cluster-secret-file", logger)
	if err != nil {
		return err
	}
	metricsToken, err := secret.Load(*metricsTokenFile, "metrics-token-file", logger)
	if err != nil {
		return err
	}

	cfg := server.Config{
		Addr:        *addr,
		ID:          *id,
		DataDir:     *data,
		NoBootstrap: !*bootstrap,
		DownTimeout: *downTimeout,
		Logger:      logger,

		MetricsAddr:  *metricsAddr,
		MetricsToken: metricsToken,

		MaxMovesPerNode: *maxMoves,
		Scheduler:       *scheduler,
		Limits:          limits,
		AdminToken:      adminToken,

		ClusterSecret:         clusterSecret,
		ClusterSecretSendOnly: *clusterSecretSendOnly,
		StuckTimeout:          *stuckTimeout,
		SplitTimeout:          *splitTimeout,
		SlowdownLag:           *slowdownLag,
		StuckLag:              *stuckLag,
		TLS:                   tlsFiles,
		Insecure:              *insecure,
	}
	if *peers != "" {
		for _, p := range strings.Split(*peers, ",") {
			if p = strings.TrimSpace(p); p != "" {
				cfg.Peers = append(cfg.Peers, p)
			}
		}
	}
	// An unset --lease follows a shorter --down-timeout down.
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "lease" {
			cfg.Lease = *lease
		}
	})

	if *debugAddr != "" {
		dbg, err := promexport.ListenPprof(*debugAddr, logger)
		if err != nil {
			return fmt.Errorf("--debug-addr: %w", err)
		}
		defer dbg.Close()
		logger.Info("serving /debug/pprof", "addr", dbg.Addr().String())
	}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := srv.Start(); err != nil {
		return err
	}
	reloadOnHUP(ctx, srv.ReloadTLS)
	<-ctx.Done()
	// A second signal kills the process the default way.
	stop()
	logger.Info("shutting down")
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("shutdown did not finish in 30s")
	}
}

// reloadOnHUP calls reload on every SIGHUP until ctx ends: the TLS files
// are read again (they are also watched for changes).
func reloadOnHUP(ctx context.Context, reload func() error) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload() // a failure is logged, and the old certificate stays
			}
		}
	}()
}
