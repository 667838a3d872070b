package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"
)

// Defaults of Config.
const (
	DefaultDownTimeout    = 3 * time.Second
	DefaultLease          = 2 * time.Second
	DefaultRequestTimeout = 10 * time.Second

	// Raft timings for a LAN: a follower notices a dead leader within one
	// to two heartbeat timeouts and a new leader is usually elected within
	// a second or two after that.
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 1000 * time.Millisecond
	DefaultLeaderLeaseTimeout = 500 * time.Millisecond

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
	SlowdownLag     uint64
	SlowdownBytes   uint64
	StuckLag        uint64
	StuckBytes      uint64
	StuckTimeout    time.Duration
	SlowdownTimeout time.Duration

	// MetricsAddr serves Prometheus metrics at /metrics when set.
	MetricsAddr string

	// MaxFrameSize bounds protocol frames; default rpc.DefaultMaxFrameSize.
	MaxFrameSize int
	// Listener, when set, is served instead of listening on Addr; the
	// server closes it. Tests use it to hold their ports.
	Listener net.Listener
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// withDefaults returns cfg with defaults filled in, or why it is invalid.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Addr == "" && cfg.Listener != nil {
		cfg.Addr = cfg.Listener.Addr().String()
	}
	if cfg.Addr == "" {
		return cfg, errors.New("server: Addr is required")
	}
	if _, port, err := net.SplitHostPort(cfg.Addr); err != nil {
		return cfg, fmt.Errorf("server: Addr %q: %w", cfg.Addr, err)
	} else if port == "0" {
		// The address is advertised to the other members: it must be
		// the real one. Pass a Listener to use a port picked by the OS.
		return cfg, fmt.Errorf("server: Addr %q: port 0 cannot be advertised; listen first and pass Config.Listener", cfg.Addr)
	}
	if cfg.ID == "" {
		cfg.ID = cfg.Addr
	}
	if len(cfg.Peers) == 0 {
		cfg.Peers = []string{cfg.Addr}
	}
	cfg.Peers = slices.Clone(cfg.Peers)
	seen := make(map[string]bool, len(cfg.Peers))
	for _, p := range cfg.Peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			return cfg, fmt.Errorf("server: peer %q: %w", p, err)
		}
		if seen[p] {
			return cfg, fmt.Errorf("server: peer %q listed twice", p)
		}
		seen[p] = true
	}
	if !seen[cfg.Addr] {
		return cfg, fmt.Errorf("server: Peers %v do not include Addr %s", cfg.Peers, cfg.Addr)
	}
	if cfg.DataDir == "" {
		return cfg, errors.New("server: DataDir is required")
	}

	if cfg.DownTimeout == 0 {
		cfg.DownTimeout = DefaultDownTimeout
	}
	if cfg.Lease == 0 {
		cfg.Lease = min(DefaultLease, cfg.DownTimeout*2/3)
	}
	if cfg.DownTimeout < 0 || cfg.Lease <= 0 {
		return cfg, fmt.Errorf("server: DownTimeout %v and Lease %v must be positive", cfg.DownTimeout, cfg.Lease)
	}
	if cfg.Lease >= cfg.DownTimeout {
		return cfg, fmt.Errorf("server: Lease %v must be shorter than DownTimeout %v", cfg.Lease, cfg.DownTimeout)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxMovesPerNode <= 0 {
		cfg.MaxMovesPerNode = 2
	}
	if cfg.SlowdownLag == 0 {
		cfg.SlowdownLag = 10000
	}
	if cfg.StuckLag == 0 {
		cfg.StuckLag = 200
	}
	if cfg.SlowdownBytes == 0 {
		cfg.SlowdownBytes = 64 << 20
	}
	if cfg.StuckBytes == 0 {
		cfg.StuckBytes = 4 << 20
	}
	if cfg.StuckTimeout <= 0 {
		cfg.StuckTimeout = 3 * time.Second
	}
	if cfg.SlowdownTimeout <= 0 {
		cfg.SlowdownTimeout = time.Minute
	}

	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if cfg.ElectionTimeout <= 0 {
		cfg.ElectionTimeout = DefaultElectionTimeout
	}
	if cfg.LeaderLeaseTimeout <= 0 {
		cfg.LeaderLeaseTimeout = min(DefaultLeaderLeaseTimeout, cfg.HeartbeatTimeout)
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if cfg.SnapshotInterval <= 0 {
		cfg.SnapshotInterval = DefaultSnapshotInterval
	}
	if cfg.TrailingLogs == 0 {
		cfg.TrailingLogs = DefaultTrailingLogs
	}
	if cfg.SnapshotRetain <= 0 {
		cfg.SnapshotRetain = DefaultSnapshotRetain
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}
