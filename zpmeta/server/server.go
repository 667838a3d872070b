// Package server is the meta server: one member of the Raft group that holds
// the cluster topology, serving the meta commands of the protocol on the same
// TCP port as its Raft traffic.
//
// Any member answers PULL and the LIST commands from its own copy of the
// topology. PING, CREATE_TABLE and DROP_TABLE need the leader; a follower
// forwards them to it and relays the answer. The leader also keeps the nodes'
// liveness in memory and marks silent nodes DOWN through Raft.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/tlsconf"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/zeppelin-kv/zeppelin/lib/promexport"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/secret"
	"github.com/zeppelin-kv/zeppelin/zpmeta/fsm"
)

// forwardConns is how many connections a follower keeps to the leader. The
// leader serves each connection's requests one at a time, so a slow write
// delays the PINGs behind it on the same connection; a few connections keep
// that rare. A forwarded request that outlives its deadline leaves its
// connection open while the leader still answers (rpc.DefaultAbandonGrace):
// closing it failed every request pipelined on it.
const forwardConns = 4

// Server is one meta server. Build it with New, then Start; Close stops it.
type Server struct {
	cfg    Config
	logger *slog.Logger
	fsm    *fsm.FSM
	live   *liveness
	pool   *rpc.Pool         // to the leader, for forwarding
	tls    *tlsconf.Reloader // nil: plain TCP
	rpcSrv *rpc.Server

	mux       *portMux
	transport *raft.NetworkTransport
	stream    *raftStream
	store     *raftboltdb.BoltStore
	raft      *raft.Raft
	leaderCh  chan bool

	// ready is set while this member leads and has applied every entry of
	// earlier terms, so its state is current enough to check writes.
	ready atomic.Bool
	// proposing serialises the leader's check-then-propose sequences, so
	// that each is checked against the state the previous one left.
	proposing chan struct{}
	// failoverAwaited holds the UP slaves whose positions partitions with
	// a DOWN master wait for; a PING of one of them triggers the failover
	// at once. Empty (or nil) when none waits.
	failoverAwaited atomic.Pointer[map[string]bool]
	// nodeWork admits PULLs to the CPU a few at a time (see
	// admitNodeWork).
	nodeWork chan struct{}
	// notifySlots bounds the paced NOTIFYs in flight (notifyPaced).
	notifySlots chan struct{}

	// stuckEpochs remembers, per move, the epoch at which this leader first
	// saw it STUCK (see stuckEpoch).
	stuckMu     sync.Mutex
	stuckEpochs map[uint64]uint64

	// adminToken checks Config.AdminToken, clusterToken the nodes'
	// Config.ClusterSecret (auth.go).
	adminToken, clusterToken secret.Token
	authFailures             *secret.FailureLimiter

	metrics    *metrics
	metricsSrv *promexport.Server

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // background goroutines
	// futures counts goroutines waiting on Raft futures for callers that
	// gave up; Raft's shutdown releases them.
	futures sync.WaitGroup

	mu      sync.Mutex
	started bool
	closed  bool
}

// New checks cfg and returns a server that is not started.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger.With("meta", cfg.Addr)
	cfg.Logger = logger
	var tlsFiles *tlsconf.Reloader
	if cfg.TLS.Enabled() {
		var err error
		if tlsFiles, err = tlsconf.NewReloader(cfg.TLS, logger); err != nil {
			return nil, fmt.Errorf("zpmeta: %w", err)
		}
	}
	s := &Server{
		tls:         tlsFiles,
		cfg:         cfg,
		logger:      logger,
		fsm:         fsm.New(logger.With("component", "fsm")),
		live:        newLiveness(),
		pool:        rpc.NewPool(rpc.PoolOptions{ConnsPerAddr: forwardConns, MaxFrameSize: cfg.MaxFrameSize, ClusterToken: cfg.ClusterSecret, AbandonGrace: rpc.DefaultAbandonGrace, TLS: tlsFiles.DialConfig}),
		leaderCh:    make(chan bool, 16),
		proposing:   make(chan struct{}, 1),
		stuckEpochs: make(map[uint64]uint64),
		nodeWork:    make(chan struct{}, runtime.GOMAXPROCS(0)),
		notifySlots: make(chan struct{}, notifyInFlight),
	}
	// Only the admin token's hash is kept; the cluster secret is sent.
	s.adminToken, s.cfg.AdminToken = secret.NewToken(cfg.AdminToken), nil
	s.clusterToken = secret.NewToken(cfg.ClusterSecret)
	s.authFailures = secret.NewFailureLimiter()
	s.metrics = newMetrics(s)
	lim := cfg.Limits.Resolved()
	rpcSrv, err := rpc.NewServer(rpc.ServerConfig{Handler: s.handle, MaxFrameSize: cfg.MaxFrameSize, Logger: logger,
		Gate: lim.Gate(), FrameTimeout: lim.FrameTimeout, WriteTimeout: lim.WriteTimeout})
	if err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("zpmeta: %w", err)
	}
	s.rpcSrv = rpcSrv
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Start listens (unless Config.Listener was given), opens the Raft state in
// the data directory, bootstraps the group if needed and serves.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("zpmeta: already started or closed")
	}
	s.started = true
	ln := s.cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Addr); err != nil {
			return fmt.Errorf("zpmeta: listen: %w", err)
		}
	}
	ln = s.tls.Listener(ln)
	if s.tls != nil {
		s.tls.Watch(tlsconf.WatchInterval)
	}
	s.mux = newPortMux(ln, advertiseAddr(s.cfg.Addr), s.logger)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.mux.serve()
	}()
	if err := s.openRaft(); err != nil {
		s.closed = true
		s.shutdown()
		return err
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.rpcSrv.Serve(s.mux.rpc); err != nil {
			s.logger.Error("protocol listener stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.watchLeadership()
	}()
	if s.cfg.MetricsAddr != "" {
		var err error
		if s.metricsSrv, err = promexport.Listen(s.cfg.MetricsAddr, s.metrics.reg, secret.NewToken(s.cfg.MetricsToken), s.tls.AcceptConfig(), s.logger); err != nil {
			s.closed = true
			s.shutdown()
			return fmt.Errorf("zpmeta: %w", err)
		}
	}
	s.logger.Info("meta server started", "id", s.cfg.ID, "peers", s.cfg.Peers, "data", s.cfg.DataDir)
	return nil
}

// Close stops serving, shuts Raft down and waits for every goroutine the
// server started. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	return s.shutdown()
}

func (s *Server) shutdown() error {
	s.cancel()
	// Requests first: their waits end with the server's context, and no
	// new ones can start a proposal on a Raft that is going away.
	s.rpcSrv.Close()
	if s.metricsSrv != nil {
		s.metricsSrv.Close()
	}
	var errs []error
	if s.raft != nil {
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("zpmeta: raft shutdown: %w", err))
		}
	}
	if s.transport != nil {
		s.transport.Close()
	}
	// A heartbeat the transport was handling as Raft shut down saves the
	// term in the store: closed under it, Raft panics ("failed to save
	// current term: database not open", seen in the race run).
	if s.stream != nil && !s.stream.drain(5*time.Second) {
		s.logger.Warn("raft connections still handled after 5s; closing the store anyway")
	}
	if s.mux != nil {
		s.mux.Close()
	}
	s.wg.Wait()
	s.futures.Wait()
	s.pool.Close()
	if s.tls != nil {
		s.tls.Close()
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("zpmeta: close raft store: %w", err))
		}
	}
	if s.started {
		s.logger.Info("meta server stopped")
	}
	return errors.Join(errs...)
}

// ReloadTLS reads the TLS files again (SIGHUP); the server keeps the
// certificate in use when they do not load.
func (s *Server) ReloadTLS() error {
	if s.tls == nil {
		return nil
	}
	return s.tls.Reload()
}

// Addr returns the address the server serves and advertises.
func (s *Server) Addr() string { return s.cfg.Addr }

// ID returns the server's Raft ID.
func (s *Server) ID() string { return s.cfg.ID }

// IsLeader reports whether this member leads the group and is ready to
// serve the commands that need the leader.
func (s *Server) IsLeader() bool {
	return s.ready.Load() && s.raft != nil && s.raft.State() == raft.Leader
}

// Leader returns the address of the leader this member knows, or "".
func (s *Server) Leader() string {
	if s.raft == nil {
		return ""
	}
	addr, _ := s.raft.LeaderWithID()
	return string(addr)
}

// Epoch returns the epoch of this member's copy of the topology.
func (s *Server) Epoch() uint64 { return s.fsm.Epoch() }

// Snapshot makes Raft take a snapshot now and compact its log.
func (s *Server) Snapshot(ctx context.Context) error {
	if s.raft == nil {
		return errors.New("zpmeta: not started")
	}
	if err := s.await(ctx, s.raft.Snapshot()); err != nil {
		return fmt.Errorf("zpmeta: snapshot: %w", err)
	}
	return nil
}

// await waits for f or ctx. When ctx ends first the wait goes on in a
// goroutine that Raft's shutdown ends, and Close waits for it.
func (s *Server) await(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	s.futures.Add(1)
	go func() {
		defer s.futures.Done()
		done <- f.Error()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
