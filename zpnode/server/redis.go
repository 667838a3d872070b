package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/redisfront"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// serveRedis starts the RESP front on RedisListenAddr.
func (s *Server) serveRedis() error {
	ln, err := net.Listen("tcp", s.cfg.RedisListenAddr)
	if err != nil {
		return fmt.Errorf("zpnode: redis listen: %w", err)
	}
	s.redisLn = ln
	s.redis = redisfront.New(redisfront.Config{
		Table:        s.cfg.RedisTable,
		IdleTimeout:  s.cfg.RedisIdleTimeout,
		AllowFlush:   s.cfg.RedisAllowFlush,
		MaxValueSize: s.cfg.MaxValueSize,
		WriteTimeout: s.cfg.Limits.Resolved().WriteTimeout,
		FrameTimeout: s.cfg.Limits.Resolved().FrameTimeout,
		Gate:         s.gate,
		Auth:         redisAuth{s},
		Logger:       s.cfg.Logger.With("front", "redis"),
	}, redisBackend{s})
	s.goRun(func() {
		if err := s.redis.Serve(s.tls.Listener(ln)); err != nil {
			s.cfg.Logger.Error("redis serve failed", "err", err)
		}
	})
	s.cfg.Logger.Info("serving the Redis protocol", "addr", s.cfg.RedisAddr, "listen", ln.Addr().String(), "table", s.cfg.RedisTable)
	return nil
}

// RedisListenAddr is where the RESP front listens, empty when it is off.
func (s *Server) RedisListenAddr() string {
	if s.redisLn == nil {
		return ""
	}
	return s.redisLn.Addr().String()
}

// redisAuth checks the RESP front's AUTH and connections with the native
// protocol's rule (checkTablePassword).
type redisAuth struct{ s *Server }

func (a redisAuth) Authenticate(ctx context.Context, table string, password []byte) error {
	return a.s.checkTablePassword(ctx, table, password)
}

// redisBackend is the node as the RESP front uses it: the same command
// entry as the native front, and views of the topology and replicas.
type redisBackend struct{ s *Server }

func (b redisBackend) Start(ctx context.Context, req *zppb.Request) redisfront.Pending {
	return b.s.start(ctx, req)
}

func (b redisBackend) Topology() *zppb.Topology { return b.s.topo.Load().pb }

func (b redisBackend) SlotOwner(table string, slot uint16) *zppb.Partition {
	_, p, _ := b.s.topo.Load().partitionOfSlot(table, slot)
	return p
}

func (b redisBackend) Addr() string { return b.s.cfg.Addr }

// masters returns the replicas of table that this node masters.
func (b redisBackend) masters(table string) []*replica.Replica {
	var out []*replica.Replica
	for k, r := range b.s.replicas.snapshot() {
		if role, _ := r.Role(); k.table == table && role == replica.Master {
			out = append(out, r)
		}
	}
	return out
}

// DBSize sums RocksDB's key estimates (which count expired keys not yet
// dropped) over the partitions of table this node masters.
func (b redisBackend) DBSize(table string) (int64, error) {
	var n int64
	for _, r := range b.masters(table) {
		st, err := r.EngineStats()
		if err != nil {
			return 0, err
		}
		n += int64(st.EstimatedKeys)
	}
	return n, nil
}

// waitPoll is how often WAIT looks at the slaves' acknowledgements.
const waitPoll = 5 * time.Millisecond

func (b redisBackend) WaitReplicas(ctx context.Context, table string, key []byte, n int) (int, error) {
	_, p, ok := b.s.topo.Load().partition(table, key)
	if !ok {
		return 0, nil
	}
	r := b.s.replicas.get(table, p.Id)
	if r == nil {
		return 0, nil
	}
	if role, _ := r.Role(); role != replica.Master {
		return 0, nil
	}
	_, lsn, _ := r.Position()
	t := time.NewTicker(waitPoll)
	defer t.Stop()
	for {
		acked := 0
		for _, peer := range r.Info().GetPeers() {
			if peer.Lsn >= lsn {
				acked++
			}
		}
		if acked >= n {
			return acked, nil
		}
		select {
		case <-ctx.Done():
			return acked, nil
		case <-t.C:
		}
	}
}

// errEnough ends a key scan early.
var errEnough = errors.New("enough keys")

// KeysInSlot scans the partition holding slot when this node masters it:
// a full scan of the partition, as the store does not index keys by slot.
func (b redisBackend) KeysInSlot(table string, slot uint16, limit int) ([][]byte, int, error) {
	_, p, ok := b.s.topo.Load().partitionOfSlot(table, slot)
	if !ok {
		return nil, 0, nil
	}
	r := b.s.replicas.get(table, p.Id)
	if r == nil {
		return nil, 0, nil
	}
	if role, _ := r.Role(); role != replica.Master {
		return nil, 0, nil
	}
	var keys [][]byte
	count := 0
	err := r.WithDB(func(db *engine.DB) error {
		return db.ForEach(r.NowMs(), func(key, _ []byte, _ int64) error {
			if keyspace.Slot(key) != slot {
				return nil
			}
			count++
			if limit >= 0 {
				if len(keys) >= limit {
					return errEnough
				}
				keys = append(keys, append([]byte(nil), key...))
			}
			return nil
		})
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, 0, err
	}
	return keys, count, nil
}
