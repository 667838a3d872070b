package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/tlsconf"

	"github.com/zeppelin-kv/zeppelin/lib/accept"
	"github.com/zeppelin-kv/zeppelin/lib/dirlock"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/promexport"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/secret"
	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
	"github.com/zeppelin-kv/zeppelin/zpnode/dbsync"
	"github.com/zeppelin-kv/zeppelin/zpnode/redisfront"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// Server is a zpnode.
type Server struct {
	dirLock *dirlock.Lock // on cfg.DataDir while started
	cfg     Config
	shared  *engine.Shared
	rpc     *rpc.Server
	// exports are zpctl export's snapshots (export.go).
	exports *exports
	// gate bounds the connections of both protocols together.
	gate *accept.Gate
	// clusterToken checks the cluster secret peers present (auth.go),
	// authFailures slows down guessing it.
	clusterToken secret.Token
	authFailures *secret.FailureLimiter
	// tablePasswords remembers the table passwords verified (auth.go).
	tablePasswords tableauth.Cache
	meta           *rpc.Pool
	ln             net.Listener
	startedAt      time.Time

	topo     atomic.Pointer[topology]
	replicas *replicaSet
	stats    *statsRegistry
	quota    *quotas
	metrics  *metrics
	slow     *slowlog
	logs     *logRing // the last records cfg.Logger took, for INFO log

	redis   *redisfront.Server // nil without RedisAddr
	redisLn net.Listener

	metricsSrv *promexport.Server
	tls        *tlsconf.Reloader // nil: plain TCP
	fullsync   *dbsync.Source
	// watch waits for the node's idle slave replicas, one BINLOG_WATCH
	// per master node; watchServer answers other nodes' watches.
	watch       *replica.WatchHub
	watchServer *replica.WatchServer

	lastPingMs atomic.Int64
	// newestEpoch is the newest epoch a meta server has named to this node
	// (a PING's answer, a NOTIFY), which its topology may not reach yet.
	newestEpoch atomic.Uint64
	metaLeader  atomic.Pointer[string] // the leader that answered the last PING
	lease       masterLease
	wake        chan struct{} // NOTIFY: heartbeat now
	// firstMeta is the index in MetaAddrs of the member to PING first:
	// the one that answered the start-up's STARTINGs (openSaved).
	firstMeta int

	// assigned is how many replicas the topology the node runs gives it;
	// opening how many openReplicas has still to open.
	assigned, opening atomic.Int64
	// applyMu is held while a topology is applied, its new replicas
	// opened included unless they open in the background: one at a time.
	applyMu sync.Mutex
	// inflight are the replicas being opened (with their table's
	// created_epoch), which a newer topology neither opens again nor
	// removes; openMu makes a replica's role on opening and the roles a
	// topology sets one order.
	openMu   sync.Mutex
	inflight map[replicaKey]uint64

	started atomic.Bool
	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup // background goroutines
	peers   *peerGate      // the dials of slave replicas and the watch hub
	report  positionReport // what positions the next PING carries
	splits  splits         // the splits the node takes part in (split.go)
	// syncAfter is closed once the replicas of the saved topology are
	// open (replica.Options.SyncAfter).
	syncAfter chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg and returns a Server ready to Start.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("zpnode: %w", err)
	}
	// Every component logs through cfg.Logger: wrapping it here keeps
	// all of the node's records for INFO log.
	logs := newLogRing(logRingSize)
	cfg.Logger = slog.New(logs.handler(cfg.Logger.Handler()))
	s := &Server{cfg: cfg, startedAt: time.Now(), stats: newStatsRegistry(), quota: newQuotas(), logs: logs,
		inflight: make(map[replicaKey]uint64),
		splits:   splits{fencing: make(map[replicaKey]uint64), tables: make(map[string]bool)}}
	s.lease.logger = cfg.Logger
	s.metrics = newMetrics(s)
	s.slow = newSlowlog(cfg.SlowlogSize)
	s.wake = make(chan struct{}, 1)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.peers = newPeerGate(s.ctx, s.dialPeer)
	s.topo.Store(emptyTopology)
	if cfg.TLS.Enabled() {
		r, err := tlsconf.NewReloader(cfg.TLS, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("zpnode: %w", err)
		}
		s.tls = r
	}
	return s, nil
}

// Start opens the replicas of the last topology the node saved, listens,
// and starts the heartbeat and background work. It returns once the node
// serves requests.
func (s *Server) Start() error {
	if !s.started.CompareAndSwap(false, true) || s.ctx.Err() != nil {
		return errors.New("zpnode: already started or closed")
	}
	// One lock for the whole data directory, rather than one per binlog:
	// a descriptor per replica is what a node with thousands of them
	// cannot afford.
	lock, err := dirlock.Acquire(s.cfg.DataDir)
	if err != nil {
		s.Close()
		return fmt.Errorf("zpnode: data directory: %w", err)
	}
	s.dirLock = lock
	shared, err := engine.NewShared(engine.SharedOptions{BlockCacheSize: uint64(s.cfg.BlockCacheSize), MallocTrimInterval: s.cfg.MallocTrimInterval})
	if err != nil {
		return fmt.Errorf("zpnode: %w", err)
	}
	s.shared = shared
	s.replicas = newReplicaSet(s)
	s.watch = replica.NewWatchHub(replica.WatchHubOptions{Self: s.cfg.Addr, Dial: s.peers.Dial, Logger: s.cfg.Logger, Wait: s.cfg.PullWait})
	s.watchServer = replica.NewWatchServer(s.masterReplica)
	s.exports = newExports(filepath.Join(s.cfg.DataDir, ".export"), s.shared, s.cfg.Logger)
	s.fullsync, err = dbsync.NewSource(dbsync.SourceOptions{Dir: filepath.Join(s.cfg.DataDir, ".fullsync"), Logger: s.cfg.Logger})
	if err != nil {
		s.Close()
		return fmt.Errorf("zpnode: %w", err)
	}
	s.meta = rpc.NewPool(rpc.PoolOptions{ConnsPerAddr: 1, DialTimeout: time.Second, ClusterToken: s.cfg.ClusterSecret, AbandonGrace: metaAbandonGrace, TLS: s.tls.DialConfig})
	s.clusterToken = secret.NewToken(s.cfg.ClusterSecret)
	s.authFailures = secret.NewFailureLimiter()

	// Serve the partitions we had before a restart even when no meta server
	// answers: the topology we saved is the best knowledge there is. The
	// node listens only once they are open: listening earlier, to answer
	// INFO, let every slave of its partitions on other nodes retry
	// TRYSYNC on a new connection up to every second, which slowed the
	// opening of 1,500 replicas from 7.5 to 27 s (docs/benchmarks.md,
	// Scale); the log has the progress, and the meta leader has it for
	// zpctl node list/info (openSaved).
	s.syncAfter = make(chan struct{})
	if t, err := loadTopology(s.cfg.DataDir); err != nil {
		s.cfg.Logger.Warn("ignoring saved topology", "err", err)
	} else if t != nil {
		s.openSaved(t)
	}

	lim := s.cfg.Limits.Resolved()
	s.gate = lim.Gate()
	s.rpc, err = rpc.NewServer(rpc.ServerConfig{Handler: s.handleRequest, Prepare: s.prepare, Logger: s.cfg.Logger, OnBytes: s.metrics.onBytes,
		Gate: s.gate, FrameTimeout: lim.FrameTimeout, WriteTimeout: lim.WriteTimeout})
	if err != nil {
		s.Close()
		return fmt.Errorf("zpnode: %w", err)
	}
	if s.ln = s.cfg.Listener; s.ln == nil {
		if s.ln, err = net.Listen("tcp", s.cfg.ListenAddr); err != nil {
			s.Close()
			return fmt.Errorf("zpnode: listen: %w", err)
		}
	}
	if s.tls != nil {
		s.tls.Watch(tlsconf.WatchInterval)
	}
	s.goRun(func() {
		if err := s.rpc.Serve(s.tls.Listener(s.ln)); err != nil {
			s.cfg.Logger.Error("serve failed", "err", err)
		}
	})
	// The saved topology's replicas are open: their slaves may start
	// catching up.
	close(s.syncAfter)
	if s.cfg.RedisAddr != "" {
		if err := s.serveRedis(); err != nil {
			s.Close()
			return err
		}
	}
	if s.cfg.MetricsAddr != "" {
		if s.metricsSrv, err = promexport.Listen(s.cfg.MetricsAddr, s.metrics.reg, secret.NewToken(s.cfg.MetricsToken), s.tls.AcceptConfig(), s.cfg.Logger); err != nil {
			s.Close()
			return fmt.Errorf("zpnode: %w", err)
		}
	}
	s.goRun(s.heartbeatLoop)
	s.goRun(func() { s.everyReplica(s.cfg.SweepInterval, s.sweep) })
	s.goRun(func() { s.everyReplica(s.cfg.PurgeInterval, s.purge) })
	if s.cfg.IdleClose > 0 || s.cfg.MaxOpenDBs > 0 {
		s.goRun(func() { s.every(s.cfg.ParkInterval, s.parkPass) })
	}
	s.goRun(s.stats.run(s.ctx))
	s.cfg.Logger.Info("zpnode started", "addr", s.cfg.Addr, "data", s.cfg.DataDir, "meta", s.cfg.MetaAddrs)
	return nil
}

func (s *Server) goRun(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// MetricsAddr is where /metrics is served, empty when it is not.
func (s *Server) MetricsAddr() string {
	if s.metricsSrv == nil {
		return ""
	}
	return s.metricsSrv.Addr().String()
}

// ReloadTLS reads the TLS files again (SIGHUP); the node keeps the
// certificate in use when they do not load.
func (s *Server) ReloadTLS() error {
	if s.tls == nil {
		return nil
	}
	return s.tls.Reload()
}

// Addr is the node's address in the cluster.
func (s *Server) Addr() string { return s.cfg.Addr }

// Close stops serving, stops background work and closes every replica.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		var errs []error
		if s.rpc != nil {
			errs = append(errs, s.rpc.Close())
		}
		if s.redis != nil {
			errs = append(errs, s.redis.Close())
		}
		if s.metricsSrv != nil {
			s.metricsSrv.Close()
		}
		s.wg.Wait()
		if s.peers != nil {
			s.peers.wait()
		}
		if s.meta != nil {
			s.meta.Close()
		}
		if s.replicas != nil {
			errs = append(errs, s.replicas.closeAll())
		}
		if s.watch != nil {
			s.watch.Close()
		}
		if s.watchServer != nil {
			s.watchServer.Close()
		}
		if s.fullsync != nil {
			s.fullsync.Close()
		}
		if s.exports != nil {
			s.exports.close()
		}
		if s.tls != nil {
			s.tls.Close()
		}
		if s.shared != nil {
			s.shared.Close()
		}
		errs = append(errs, s.dirLock.Release())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
