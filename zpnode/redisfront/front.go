// Package redisfront serves the Redis protocol (RESP2 and RESP3) on a node,
// with Redis Cluster semantics: the slots of a table's partitions are the
// node's hash slots, keys of partitions it does not master answer MOVED to
// their master's RESP address, and CLUSTER SLOTS, SHARDS and NODES
// describe the table's partitions.
//
// It holds no command logic of its own: it translates each Redis command
// to the node's protocol-neutral requests (zppb.Request), runs them through
// the node's one command entry (Backend.Start) under the same pipeline
// contract as the native front, and maps each response to its Redis reply.
// What it does answer itself is the connection's state (HELLO, AUTH,
// SELECT, CLIENT, READONLY) and the cluster's shape, read from the node's
// topology.
package redisfront

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/accept"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/resp"
)

// Version is what INFO and HELLO report as redis_version: the Redis release
// whose commands and replies this front follows.
const Version = "7.0.15"

// Pending is a request begun by Backend.Start.
type Pending interface {
	// Queued reports whether the request was queued at Start (a write
	// that joins its replica's group commit); if not, it runs at Finish
	// and nothing after it may be started before it has finished.
	Queued() bool
	// Flush pushes on the group commit of a queued write.
	Flush()
	// Finish waits for the outcome and returns the response.
	Finish() *zppb.Response
}

// Backend is the node as the RESP front sees it.
type Backend interface {
	// Start begins req, the node's one command entry. Requests of a
	// connection are started in order; every started one is flushed
	// before any is finished, and finished in order; a request that is
	// not Queued is a barrier (see Pending).
	Start(ctx context.Context, req *zppb.Request) Pending
	// Topology is the node's current topology, not to be modified.
	Topology() *zppb.Topology
	// SlotOwner returns the partition of table that owns slot in the
	// current topology, nil when the table is unknown or cannot be
	// routed.
	SlotOwner(table string, slot uint16) *zppb.Partition
	// Addr is the node's cluster address, its identity.
	Addr() string
	// DBSize estimates the live keys of table in the partitions this node
	// masters.
	DBSize(table string) (int64, error)
	// WaitReplicas waits until n slaves of key's partition have
	// acknowledged everything its master logged when WaitReplicas was
	// called, or until ctx ends, and returns how many have.
	WaitReplicas(ctx context.Context, table string, key []byte, n int) (int, error)
	// KeysInSlot returns up to limit keys of table in slot (limit < 0:
	// all) and how many there are, from the partition this node masters.
	KeysInSlot(table string, slot uint16, limit int) (keys [][]byte, count int, err error)
}

// Authenticator checks a table's password: on AUTH and HELLO AUTH, and
// before every other command of a connection (a password removed since
// its AUTH stops opening the table).
type Authenticator interface {
	// Authenticate returns nil when password opens table: one of its
	// passwords, or any for a table without (nil password: none given).
	// ctx names the client (lib/rpc.PeerAddr), whose wrong passwords
	// are rate-limited.
	Authenticate(ctx context.Context, table string, password []byte) error
}

// OpenAuth accepts every password, as for tables without passwords.
type OpenAuth struct{}

// Authenticate accepts everything.
func (OpenAuth) Authenticate(context.Context, string, []byte) error { return nil }

// Config configures a Server.
type Config struct {
	// Table is the table a connection works on until AUTH or HELLO AUTH
	// selects another; default "default".
	Table string
	// IdleTimeout closes a connection that sent nothing for this long; 0
	// never does (Redis's default, timeout 0).
	IdleTimeout time.Duration
	// FrameTimeout closes a connection whose command, once begun, has not
	// arrived whole within it (slowloris); 0 never does.
	FrameTimeout time.Duration
	// WriteTimeout closes a connection that does not take its replies:
	// a write of pending replies making no progress for this long.
	// Default 30s.
	WriteTimeout time.Duration
	// CommandTimeout bounds each command's wait (for slaves' acks with
	// min_sync_replicas, say); default 5s.
	CommandTimeout time.Duration
	// AllowFlush lets FLUSHDB and FLUSHALL empty the table.
	AllowFlush bool
	// MaxValueSize is the node's value limit; the reader refuses bulks
	// over it plus slack. Default 16 MiB.
	MaxValueSize int
	// Auth checks passwords; default OpenAuth.
	Auth Authenticator
	// Gate, when set, bounds the connections held (shared with the node's
	// native protocol): one over a bound is answered "-ERR max number of
	// clients reached", as Redis does past maxclients, and closed.
	Gate   *accept.Gate
	Logger *slog.Logger
}

// Output buffering: replies are written out once flushAt bytes are
// pending, so a connection holds at most that plus one reply however long
// its pipeline; a client that does not read blocks its own connection
// (the node stops reading its commands) until WriteTimeout closes it.
const flushAt = 64 << 10

// maxBatch bounds the commands of one pipeline started before they are
// answered, as lib/rpc's maxPrepared.
const maxBatch = 128

// bulkSlack is what a bulk may exceed the value limit by: Redis's
// string-size error is better than a protocol error for a value a little
// too large, and keys are far below it.
const bulkSlack = 1 << 20

func (c *Config) setDefaults() {
	if c.Table == "" {
		c.Table = "default"
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 5 * time.Second
	}
	if c.MaxValueSize <= 0 {
		c.MaxValueSize = 16 << 20
	}
	if c.Auth == nil {
		c.Auth = OpenAuth{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server accepts RESP connections and serves each until it ends or Close.
type Server struct {
	cfg Config
	b   Backend
	ctx context.Context
	end context.CancelFunc

	mu     sync.Mutex
	ln     net.Listener
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup

	nextID   atomic.Int64
	idPrefix [8]byte       // random per server: request ids of RESP writes
	reqSeq   atomic.Uint64 // and a counter (newRequestID)
	scans    scanCursors
	accepted atomic.Int64
	commands atomic.Int64
	started  time.Time
}

// New returns a Server of b.
func New(cfg Config, b Backend) *Server {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, b: b, ctx: ctx, end: cancel, conns: make(map[*conn]struct{}), started: time.Now()}
	rand.Read(s.idPrefix[:])
	s.scans.init()
	return s
}

// newRequestID is the request id of one RESP write: 8 random bytes of this
// server and a counter, so ids never repeat across connections or restarts
// (the random part changes) and cost no entropy per command.
func (s *Server) newRequestID() []byte {
	id := make([]byte, 16)
	copy(id, s.idPrefix[:])
	binary.BigEndian.PutUint64(id[8:], s.reqSeq.Add(1))
	return id
}

// Serve accepts connections on ln until Close; it returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()
	err := accept.Loop(s.ctx, ln, s.cfg.Logger, func(nc net.Conn) bool {
		leave, err := s.cfg.Gate.Enter(nc.RemoteAddr())
		if err != nil {
			s.cfg.Logger.Debug("redis connection refused", "remote", nc.RemoteAddr().String(), "err", err)
			nc.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(nc, "-ERR max number of clients reached\r\n")
			nc.Close()
			return true
		}
		c := s.newConn(nc)
		if !s.track(c) {
			leave()
			return false
		}
		s.accepted.Add(1)
		go func() {
			defer leave()
			defer s.untrack(c)
			c.serve()
		}()
		return true
	})
	if err != nil {
		return fmt.Errorf("redisfront: %w", err)
	}
	return nil
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Close stops accepting, closes every connection and waits for their
// goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.end()
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Stats is what the front has served so far.
type Stats struct {
	// Connections are open now; Accepted since the front started.
	Connections int
	Accepted    int64
	// Commands counts every command the front processed (connection and
	// cluster commands included), as Redis's total_commands_processed.
	Commands int64
}

// Stats returns the front's counters, for metrics.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := len(s.conns)
	s.mu.Unlock()
	return Stats{Connections: n, Accepted: s.accepted.Load(), Commands: s.commands.Load()}
}

// clients returns the open connections.
func (s *Server) clients() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

func (s *Server) limits() resp.Limits {
	// A command may carry several values (MSET): as a native request
	// frame, it may buffer up to 64 MiB.
	bulk := s.cfg.MaxValueSize + bulkSlack
	return resp.Limits{MaxBulk: bulk, MaxQueryBuffer: max(64<<20, 2*bulk)}
}
