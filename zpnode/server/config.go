// Package server is the zpnode data server: it registers with the meta
// servers, opens the partition replicas the topology gives it, and serves
// data commands for the partitions it masters.
package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/protect"

	"github.com/zeppelin-kv/zeppelin/lib/tlsconf"

	"github.com/zeppelin-kv/zeppelin/lib/binlog"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// DefaultMaxValueSize is the largest value accepted unless configured.
const DefaultMaxValueSize = 16 << 20

// Config configures a Server.
type Config struct {
	// Addr is the address to listen on and the node's identity in the
	// cluster: other nodes and clients reach it there.
	Addr string
	// ListenAddr is where to listen when it differs from Addr (behind NAT
	// or a proxy); default Addr.
	ListenAddr string
	// Listener, when set, is served instead of listening on ListenAddr:
	// an embedding program or a test binds it in advance, so that no other
	// socket can take the port in between. Close closes it.
	Listener net.Listener
	// MetaAddrs are the meta servers; any member will do.
	MetaAddrs []string
	// DataDir holds one directory per table, one per partition below it.
	DataDir string
	// MaxValueSize bounds values; default DefaultMaxValueSize.
	MaxValueSize int
	// Binlog configures every replica's binlog (sync policy, segment size).
	Binlog binlog.Options
	// BlockCacheSize is the RocksDB block cache shared by all replicas.
	BlockCacheSize int64
	// MallocTrimInterval is how often the node hands the C allocator's
	// free memory back to the OS (engine.SharedOptions); default
	// engine.DefaultMallocTrimInterval, negative never.
	MallocTrimInterval time.Duration
	// PingInterval is how often the node heartbeats to meta. Default 1s.
	PingInterval time.Duration
	// SweepInterval is how often masters delete expired keys through the
	// binlog. Default 1m.
	SweepInterval time.Duration
	// IdleClose parks the RocksDB of a replica nothing has read or written
	// for that long: flushes and closes it, to reopen on the next request
	// (replica.Replica.ParkIfIdle). Default DefaultIdleClose; negative
	// keeps every DB open.
	IdleClose time.Duration
	// MaxOpenDBs caps the replicas whose DB is open: past it, the least
	// recently used are parked at the next pass, idle or not. 0 means no
	// cap.
	MaxOpenDBs int
	// ParkInterval is how often idle and surplus DBs are parked; default
	// a quarter of IdleClose, at most 30 s.
	ParkInterval time.Duration
	// PullWait is how long a slave's BINLOG_PULL, and the node's
	// BINLOG_WATCH for its idle slaves, wait for records; default 30 s.
	// Tests shorten it to see replicas go idle.
	PullWait time.Duration
	// Purge is the binlog retention policy; PurgeInterval how often it runs
	// (default 10s).
	Purge         replica.PurgePolicy
	PurgeInterval time.Duration
	// MetricsAddr serves Prometheus metrics at /metrics when set; with
	// MetricsToken, only to scrapes presenting it as a bearer token.
	MetricsAddr  string
	MetricsToken []byte
	// SlowlogThreshold: requests at least this long go to the slow log
	// (default 10ms); SlowlogSize entries are kept (default 128).
	SlowlogThreshold time.Duration
	SlowlogSize      int
	// RedisAddr, when set, is where the node serves the Redis protocol
	// (zpnode/redisfront) and the RESP address it reports to meta, which
	// MOVED redirections and CLUSTER SLOTS name; RedisListenAddr is where
	// to listen when it differs (default RedisAddr).
	RedisAddr, RedisListenAddr string
	// RedisTable is the table of a RESP connection until AUTH selects
	// another; default "default".
	RedisTable string
	// RedisIdleTimeout closes RESP connections idle that long; 0 never.
	RedisIdleTimeout time.Duration
	// ClusterSecret, when set, is presented with every request to meta
	// servers and other nodes, and required of the requests only they
	// send (replication, NOTIFY: auth.go) unless ClusterSecretSendOnly,
	// which a rolling change to a secret uses until every server sends
	// it. zpnode reads it from --cluster-secret-file; never logged.
	ClusterSecret         []byte
	ClusterSecretSendOnly bool
	// TLS, when it names a certificate, serves every port (native, RESP,
	// metrics) over TLS and dials other servers over TLS with the same
	// certificate and CA; the files are reloaded when they change
	// (ReloadTLS on SIGHUP).
	TLS tlsconf.Files
	// Insecure lets the node listen beyond loopback with neither a
	// cluster secret nor TLS (protected mode refuses it otherwise).
	Insecure bool
	// Limits bound the connections both protocols hold together, and the
	// native protocol's frame and write timeouts (RESP has its own write
	// timeout, the same default); zero fields are the defaults of
	// rpc.Limits.
	Limits rpc.Limits
	// RedisAllowFlush lets FLUSHDB and FLUSHALL empty a table.
	RedisAllowFlush bool
	// Zone, Rack and Weight describe the node to placement.
	Zone, Rack string
	Weight     uint32
	Logger     *slog.Logger
}

// DefaultIdleClose is how long a replica's DB stays open without requests.
// An open DB costs about 1 MB and 8 descriptors (docs/architecture.md,
// Scale) and a reopen 20-40 ms, so a DB parks only once it has been idle
// for long enough that the reopen is rare next to the requests it serves.
const DefaultIdleClose = 5 * time.Minute

// setDefaults fills in the fields left zero. It runs before validate, which
// checks the result.
func (c *Config) setDefaults() {
	if c.ListenAddr == "" {
		c.ListenAddr = c.Addr
	}
	if c.MaxValueSize <= 0 {
		c.MaxValueSize = DefaultMaxValueSize
	}
	if c.BlockCacheSize <= 0 {
		c.BlockCacheSize = 256 << 20
	}
	if c.PingInterval <= 0 {
		c.PingInterval = time.Second
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = time.Minute
	}
	if c.IdleClose == 0 {
		c.IdleClose = DefaultIdleClose
	}
	if c.ParkInterval <= 0 {
		// ParkIfIdle needs a few looks within the idle period.
		c.ParkInterval = 30 * time.Second
		if c.IdleClose > 0 {
			c.ParkInterval = min(c.IdleClose/4, c.ParkInterval)
		}
	}
	if c.Purge.MaxSegments == 0 && c.Purge.MaxAge == 0 {
		c.Purge.MaxSegments = 16
	}
	if c.Purge.MinSegments <= 0 {
		c.Purge.MinSegments = 2
	}
	if c.PurgeInterval <= 0 {
		c.PurgeInterval = 10 * time.Second
	}
	if c.SlowlogThreshold <= 0 {
		c.SlowlogThreshold = 10 * time.Millisecond
	}
	if c.SlowlogSize <= 0 {
		c.SlowlogSize = 128
	}
	if c.RedisListenAddr == "" {
		c.RedisListenAddr = c.RedisAddr
	}
	if c.RedisTable == "" {
		c.RedisTable = "default"
	}
	if c.Weight == 0 {
		c.Weight = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// validate reports every problem of a Config that setDefaults has filled.
func (c *Config) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr %q: %w", c.Addr, err))
	}
	if len(c.MetaAddrs) == 0 {
		errs = append(errs, errors.New("no meta addresses"))
	}
	if c.RedisAddr != "" {
		if _, _, err := net.SplitHostPort(c.RedisAddr); err != nil {
			errs = append(errs, fmt.Errorf("redis addr %q: %w", c.RedisAddr, err))
		}
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("no data directory"))
	}
	if c.MaxValueSize > keyspace.MaxValueSize {
		errs = append(errs, fmt.Errorf("max value size %d over %d MiB", c.MaxValueSize, keyspace.MaxValueSize>>20))
	}
	if c.MaxOpenDBs < 0 {
		errs = append(errs, fmt.Errorf("negative max open DBs %d", c.MaxOpenDBs))
	}
	listen := c.ListenAddr
	if c.Listener != nil {
		listen = c.Listener.Addr().String()
	}
	if err := protect.Check([]string{listen, c.RedisListenAddr, c.MetricsAddr},
		[]protect.Guard{{Flag: "--cluster-secret-file", On: len(c.ClusterSecret) > 0}, {Flag: "--tls-cert", On: c.TLS.Enabled()}},
		c.Insecure); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("zpnode: config: %w", err)
	}
	return nil
}
