package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/protect"

	"github.com/zeppelin-kv/zeppelin/lib/tlsconf"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
)

// Defaults of Config.
const (
	DefaultDownTimeout    = 3 * time.Second
	DefaultLease          = 2 * time.Second
	DefaultRequestTimeout = 10 * time.Second

	// Raft timings for a LAN: a follower notices a dead leader within one
	// to two heartbeat timeouts and a new leader is usually elected within
	// a second or two after that. A leader steps down when it has not heard
	// from a quorum for the lease timeout: at 500 ms, a leader busy placing
	// a table for a thousand nodes on two shared cores stepped down
	// (docs/benchmarks.md, the meta service).
	DefaultHeartbeatTimeout   = 1000 * time.Millisecond
	DefaultElectionTimeout    = 1000 * time.Millisecond
	DefaultLeaderLeaseTimeout = 1000 * time.Millisecond

	DefaultSnapshotThreshold = 8192
	DefaultSnapshotInterval  = 2 * time.Minute
	DefaultTrailingLogs      = 10240
	DefaultSnapshotRetain    = 2
)

// Config configures a meta server.
type Config struct {
	// Addr is the address to listen on and the address the other members
	// and clients reach this one at. Required unless Listener is set.
	Addr string
	// ID is the Raft server ID; default Addr.
	ID string
	// Peers are the addresses of every member including this one; the
	// Raft server ID of each other member is its address. Default [Addr],
	// a group of one.
	Peers []string
	// DataDir holds the Raft log, stable store and snapshots. Required.
	DataDir string
	// NoBootstrap skips bootstrapping the group with Peers when there is no
	// Raft state. Bootstrapping every member with the same Peers is safe;
	// skip it for a member that will be added to a running group.
	NoBootstrap bool

	// DownTimeout is how long a node may go without a PING before the
	// leader marks it DOWN. Default DefaultDownTimeout.
	DownTimeout time.Duration
	// Lease is how long a master may serve writes after its last
	// successful PING; it must be shorter than DownTimeout so that an
	// isolated master stops before a new one is promoted. Default the
	// smaller of DefaultLease and two thirds of DownTimeout.
	Lease time.Duration
	// RequestTimeout bounds a request that came without a deadline.
	// Default DefaultRequestTimeout.
	RequestTimeout time.Duration

	// Raft timings and log compaction; defaults as the constants above.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
	TrailingLogs       uint64
	SnapshotRetain     int

	// Moves: at most MaxMovesPerNode moves at a time involve one node
	// (default 2). A move's target that is SlowdownLag records and
	// SlowdownBytes behind or less (defaults 10000 and 64 MiB) gets the
	// partition SLOWDOWN, StuckLag and StuckBytes or less (200, 4 MiB)
	// STUCK; STUCK longer than StuckTimeout (default 3s), or SLOWDOWN
	// longer than SlowdownTimeout (default 1m), aborts the move.
	MaxMovesPerNode int
	// AdminToken, when set, is required (Request.admin_token) of every
	// request that changes the cluster (auth.go). zpmeta reads it from
	// --admin-token-file; it is never logged.
	AdminToken []byte
	// ClusterSecret, when set, is presented with every request to nodes
	// and other members (NOTIFY among them), and required of the nodes'
	// PINGs (auth.go) unless ClusterSecretSendOnly (while a secret is
	// rolled out). zpmeta reads it from --cluster-secret-file.
	ClusterSecret         []byte
	ClusterSecretSendOnly bool
	// TLS, when it names a certificate, serves the port (protocol and
	// Raft) and metrics over TLS and dials members and nodes over TLS with
	// the same certificate and CA; the files are reloaded when they change
	// (ReloadTLS on SIGHUP).
	TLS tlsconf.Files
	// Insecure lets the server listen beyond loopback with neither an
	// admin token nor TLS (protected mode refuses it otherwise).
	Insecure bool
	// TablePasswordCost is the argon2id cost of the table passwords the
	// leader hashes; zero, the default, is tableauth's. Tests lower it
	// (tableauth.Cheap).
	TablePasswordCost tableauth.Params
	// Limits bound the connections the meta server holds and its frame
	// and write timeouts; zero fields are the defaults of rpc.Limits.
	Limits rpc.Limits
	// Scheduler runs the scheduler on the leader (re-replication and
	// master balance, scheduler.go). zpmeta turns it on (--scheduler);
	// the zero Config leaves it off, for tests of other things that would
	// not want moves of their own.
	Scheduler       bool
	SlowdownLag     uint64
	SlowdownBytes   uint64
	StuckLag        uint64
	StuckBytes      uint64
	StuckTimeout    time.Duration
	SlowdownTimeout time.Duration
	// SplitTimeout bounds a split's PREPARE (default 30s): the replicas
	// not holding the child by then roll it back (split.go).
	SplitTimeout time.Duration

	// MetricsAddr serves Prometheus metrics at /metrics when set; with
	// MetricsToken, only to scrapes presenting it as a bearer token.
	MetricsAddr  string
	MetricsToken []byte

	// MaxFrameSize bounds protocol frames; default rpc.DefaultMaxFrameSize.
	MaxFrameSize int
	// Listener, when set, is served instead of listening on Addr; the
	// server closes it. Tests use it to hold their ports.
	Listener net.Listener
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// setDefaults fills in the fields left zero. It runs before validate, which
// checks the result.
func (c *Config) setDefaults() {
	if c.Addr == "" && c.Listener != nil {
		c.Addr = c.Listener.Addr().String()
	}
	if c.ID == "" {
		c.ID = c.Addr
	}
	if len(c.Peers) == 0 {
		c.Peers = []string{c.Addr}
	}
	// The caller's slice is not ours to keep.
	c.Peers = slices.Clone(c.Peers)

	if c.DownTimeout == 0 {
		c.DownTimeout = DefaultDownTimeout
	}
	if c.Lease == 0 {
		c.Lease = min(DefaultLease, c.DownTimeout*2/3)
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxMovesPerNode <= 0 {
		c.MaxMovesPerNode = 2
	}
	if c.SlowdownLag == 0 {
		c.SlowdownLag = 10000
	}
	if c.StuckLag == 0 {
		c.StuckLag = 200
	}
	if c.SlowdownBytes == 0 {
		c.SlowdownBytes = 64 << 20
	}
	if c.StuckBytes == 0 {
		c.StuckBytes = 4 << 20
	}
	if c.StuckTimeout <= 0 {
		c.StuckTimeout = 3 * time.Second
	}
	if c.SlowdownTimeout <= 0 {
		c.SlowdownTimeout = time.Minute
	}
	if c.SplitTimeout <= 0 {
		c.SplitTimeout = 30 * time.Second
	}

	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.ElectionTimeout <= 0 {
		c.ElectionTimeout = DefaultElectionTimeout
	}
	if c.LeaderLeaseTimeout <= 0 {
		c.LeaderLeaseTimeout = min(DefaultLeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.SnapshotInterval <= 0 {
		c.SnapshotInterval = DefaultSnapshotInterval
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	if c.SnapshotRetain <= 0 {
		c.SnapshotRetain = DefaultSnapshotRetain
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// validate reports every problem of a Config that setDefaults has filled.
func (c *Config) validate() error {
	var errs []error
	if err := c.validateAddrs(); err != nil {
		errs = append(errs, err)
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("DataDir is required"))
	}
	if c.DownTimeout < 0 || c.Lease <= 0 {
		errs = append(errs, fmt.Errorf("DownTimeout %v and Lease %v must be positive", c.DownTimeout, c.Lease))
	} else if c.Lease >= c.DownTimeout {
		errs = append(errs, fmt.Errorf("Lease %v must be shorter than DownTimeout %v", c.Lease, c.DownTimeout))
	}
	listen := c.Addr
	if c.Listener != nil {
		listen = c.Listener.Addr().String()
	}
	if err := protect.Check([]string{listen, c.MetricsAddr},
		[]protect.Guard{{Flag: "--admin-token-file", On: len(c.AdminToken) > 0}, {Flag: "--tls-cert", On: c.TLS.Enabled()}},
		c.Insecure); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("zpmeta: config: %w", err)
	}
	return nil
}

// validateAddrs checks Addr and Peers; the peers are not checked when Addr
// is wrong, since they default to it.
func (c *Config) validateAddrs() error {
	if c.Addr == "" {
		return errors.New("Addr is required")
	}
	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("Addr %q: %w", c.Addr, err)
	} else if port == "0" {
		// The address is advertised to the other members: it must be
		// the real one. Pass a Listener to use a port picked by the OS.
		return fmt.Errorf("Addr %q: port 0 cannot be advertised; listen first and pass Config.Listener", c.Addr)
	}
	var errs []error
	seen := make(map[string]bool, len(c.Peers))
	for _, p := range c.Peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			errs = append(errs, fmt.Errorf("peer %q: %w", p, err))
		} else if seen[p] {
			errs = append(errs, fmt.Errorf("peer %q listed twice", p))
		}
		seen[p] = true
	}
	if !seen[c.Addr] {
		errs = append(errs, fmt.Errorf("Peers %v do not include Addr %s", c.Peers, c.Addr))
	}
	return errors.Join(errs...)
}
