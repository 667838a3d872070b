// Command zpnode is a Zeppelin data server: it holds partition replicas in
// RocksDB and serves the data commands of the partitions it masters.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/binlog"
	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/promexport"
	"github.com/zeppelin-kv/zeppelin/lib/secret"
	"github.com/zeppelin-kv/zeppelin/zpnode/server"
)

func main() {
	var (
		cfg       server.Config
		meta      string
		fsync     string
		logLevel  string
		weight    uint
		cacheSize int64
		debugAddr string
		version   bool
	)
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:9231", "the node's address: its identity in the cluster, where clients and other nodes reach it (listened on unless -listen is set)")
	flag.StringVar(&cfg.ListenAddr, "listen", "", "address to listen on when it differs from -addr (behind a proxy or NAT)")
	flag.StringVar(&meta, "meta", "127.0.0.1:9221,127.0.0.1:9222,127.0.0.1:9223", "comma-separated meta server addresses")
	flag.StringVar(&cfg.DataDir, "data", "./data", "data directory")
	flag.IntVar(&cfg.MaxValueSize, "max-value-size", server.DefaultMaxValueSize, "largest value accepted, in bytes")
	cfg.Limits.RegisterFlags(flag.CommandLine)
	cfg.TLS.RegisterServerFlags(flag.CommandLine)
	flag.BoolVar(&cfg.Insecure, "insecure", false, "listen beyond loopback with neither --cluster-secret-file nor --tls-cert (protected mode refuses to start otherwise)")
	flag.StringVar(&fsync, "binlog-fsync", "interval", "binlog fsync policy: always, interval or none")
	flag.DurationVar(&cfg.Binlog.SyncInterval, "binlog-fsync-interval", 10*time.Millisecond, "fsync period with -binlog-fsync=interval")
	flag.Int64Var(&cfg.Binlog.SegmentSize, "binlog-segment-size", 64<<20, "binlog segment file size in bytes")
	flag.IntVar(&cfg.Purge.MaxSegments, "binlog-max-segments", 16, "purge binlog segments beyond this many (never what a connected slave still needs)")
	flag.DurationVar(&cfg.Purge.MaxAge, "binlog-max-age", 0, "purge binlog segments older than this (0: no age limit)")
	flag.IntVar(&cfg.Purge.MinSegments, "binlog-min-segments", 2, "binlog segments always kept")
	flag.DurationVar(&cfg.PurgeInterval, "binlog-purge-interval", 10*time.Second, "how often the binlog purge runs")
	flag.Int64Var(&cacheSize, "block-cache", 256<<20, "RocksDB block cache shared by all replicas, in bytes")
	flag.DurationVar(&cfg.PingInterval, "ping-interval", time.Second, "heartbeat period to meta")
	flag.DurationVar(&cfg.SweepInterval, "sweep-interval", time.Minute, "period of the expired-key sweep")
	flag.DurationVar(&cfg.MallocTrimInterval, "malloc-trim-interval", engine.DefaultMallocTrimInterval, "how often to hand the C allocator's free memory back to the OS (negative: never)")
	flag.IntVar(&cfg.MaxOpenDBs, "max-open-dbs", 0, "most replica RocksDBs open at once; past it the least recently used close, reopening on their next request (0: no cap)")
	flag.DurationVar(&cfg.IdleClose, "idle-close", server.DefaultIdleClose, "close the RocksDB of a replica idle this long, reopening it on the next request (negative: never)")
	flag.StringVar(&cfg.Zone, "zone", "", "zone of this node, for placement")
	flag.StringVar(&cfg.Rack, "rack", "", "rack of this node, for placement")
	flag.UintVar(&weight, "weight", 1, "relative capacity of this node, for placement (same scale on every node)")
	flag.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	flag.StringVar(&debugAddr, "debug-addr", "", "serve /debug/pprof on this loopback address (empty: off)")
	flag.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address (empty: off)")
	flag.DurationVar(&cfg.SlowlogThreshold, "slowlog-threshold", 10*time.Millisecond, "requests at least this long go to the slow log")
	flag.IntVar(&cfg.SlowlogSize, "slowlog-size", 128, "slow log entries kept")
	flag.StringVar(&cfg.RedisAddr, "redis-addr", "", "serve the Redis protocol (RESP2/RESP3, Redis Cluster semantics) on this address, which the node reports to meta for MOVED and CLUSTER SLOTS (empty: off)")
	flag.StringVar(&cfg.RedisListenAddr, "redis-listen", "", "address to listen on for RESP when it differs from -redis-addr")
	flag.StringVar(&cfg.RedisTable, "redis-table", "default", "table of a RESP connection until AUTH <table> <password> selects another")
	flag.DurationVar(&cfg.RedisIdleTimeout, "redis-idle-timeout", 0, "close RESP connections idle this long (0: never, as Redis's timeout 0)")
	flag.BoolVar(&cfg.RedisAllowFlush, "redis-allow-flush", false, "let FLUSHDB and FLUSHALL empty the partitions of the connection's table that the node masters")
	var clusterSecretFile, metricsTokenFile string
	flag.StringVar(&metricsTokenFile, "metrics-token-file", "", "scrapes of /metrics must present this file's token as a bearer token (empty: none needed)")
	flag.StringVar(&clusterSecretFile, "cluster-secret-file", "", "file holding the secret nodes and meta servers present to one another; replication and NOTIFY must carry it (empty: none)")
	flag.BoolVar(&cfg.ClusterSecretSendOnly, "cluster-secret-send-only", false, "present the cluster secret but do not require it yet (while a secret is rolled out)")
	flag.BoolVar(&version, "version", false, "print the version and exit")
	flag.Parse()
	if version {
		fmt.Println(buildinfo.Line("zpnode"))
		return
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		fatal(fmt.Errorf("-log-level: %w", err))
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(logger)
	cfg.Logger = logger
	clusterSecret, err := secret.Load(clusterSecretFile, "cluster-secret-file", logger)
	if err != nil {
		fatal(err)
	}
	cfg.ClusterSecret = clusterSecret
	cfg.MetaAddrs = strings.Split(meta, ",")
	cfg.Weight = uint32(weight)
	cfg.BlockCacheSize = cacheSize
	policy, err := binlog.ParseSyncPolicy(fsync)
	if err != nil {
		fatal(err)
	}
	cfg.Binlog.Sync = policy

	if debugAddr != "" {
		if _, err := promexport.ListenPprof(debugAddr, logger); err != nil {
			fatal(fmt.Errorf("-debug-addr: %w", err))
		}
	}
	metricsToken, err := secret.Load(metricsTokenFile, "metrics-token-file", logger)
	if err != nil {
		fatal(err)
	}
	cfg.MetricsToken = metricsToken
	srv, err := server.New(cfg)
	if err != nil {
		fatal(err)
	}
	if err := srv.Start(); err != nil {
		fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	s := <-sig
	for s == syscall.SIGHUP {
		// The TLS files are read again (they are also watched); a
		// failure is logged and the certificate in use stays.
		srv.ReloadTLS()
		s = <-sig
	}
	logger.Info("shutting down", "signal", s.String())
	if err := srv.Close(); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	// The server's own errors already say where they come from.
	msg := err.Error()
	if !strings.HasPrefix(msg, "zpnode:") {
		msg = "zpnode: " + msg
	}
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(1)
}
