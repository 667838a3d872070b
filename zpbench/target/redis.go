package target

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// RedisOptions configures a Redis target.
type RedisOptions struct {
	// Addr is the server, host:port. Required.
	Addr string
	// Conns is the number of connections: go-redis's pool size, all of
	// them dialled up front.
	Conns int
	// Timeout bounds each socket read and write.
	Timeout time.Duration
	// Username and Password, when set, authenticate every connection
	// (AUTH; on zpnode's RESP front the user is the table).
	Username, Password string
	// TLS, when set, is the config of every connection.
	TLS *tls.Config
}

// NewRedis connects to a Redis server and checks that it answers PING.
//
// Mapping of operations: GET, SET, INCRBY, MGET and MSET are themselves; a
// read-modify-write is GET then SET of the key; a YCSB scan is an MGET of
// the keys of the range, because Redis has no ordered range over string
// keys.
func NewRedis(ctx context.Context, o RedisOptions) (Target, error) {
	conns := max(o.Conns, 1)
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	rdb := redis.NewClient(&redis.Options{
		Addr:                  o.Addr,
		Username:              o.Username,
		Password:              o.Password,
		PoolSize:              conns,
		MinIdleConns:          conns,
		MaxActiveConns:        conns,
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		ContextTimeoutEnabled: true,
		// Pipelines on the main pool: exactly --conns connections, like
		// the other targets, instead of a second pool of 10.
		PipelinePoolSize: -1,
		DisableIdentity:  true,
		TLSConfig:        o.TLS,
	})
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis target %s: %w", o.Addr, err)
	}
	return &redisTarget{rdb: rdb, kind: "redis", addr: o.Addr}, nil
}

// NewRedisCluster connects go-redis's ClusterClient to a Redis Cluster
// (a real one, or zpnode's RESP front) through seeds, host:port of any of
// its nodes, and checks that every master answers PING. Operations map as
// in NewRedis; the client routes each key to its slot's master and follows
// MOVED, so MGET and MSET need keys of one slot (a {hashtag}).
func NewRedisCluster(ctx context.Context, seeds []string, o RedisOptions) (Target, error) {
	conns := max(o.Conns, 1)
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:    seeds,
		Username: o.Username,
		Password: o.Password,
		// Per node, like NewRedis's pool for its one server.
		PoolSize:              conns,
		MaxActiveConns:        conns,
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
		TLSConfig:             o.TLS,
	})
	err := rdb.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() })
	if err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis cluster target %v: %w", seeds, err)
	}
	return &redisTarget{rdb: rdb, kind: "redis-cluster", addr: strings.Join(seeds, ",")}, nil
}

// redisTarget is a go-redis client, of one server or of a cluster.
type redisTarget struct {
	rdb  redis.UniversalClient
	kind string
	addr string
}

func (t *redisTarget) Kind() string           { return t.kind }
func (t *redisTarget) Name() string           { return t.kind + " " + t.addr }
func (t *redisTarget) Pipelining() Pipelining { return Batch }
func (t *redisTarget) Close() error           { return t.rdb.Close() }

func (t *redisTarget) NewSession(context.Context) (Session, error) {
	// go-redis pools connections itself; sessions share the client.
	return redisSession{t.rdb}, nil
}

type redisSession struct{ rdb redis.UniversalClient }

func (s redisSession) Close() error { return nil }

func (s redisSession) Do(ctx context.Context, ops []*workload.Op, out []Outcome) {
	if len(ops) == 1 {
		out[0] = collect(ops[0], queue(ctx, s.rdb, ops[0]))
		return
	}
	pipe := s.rdb.Pipeline()
	cmds := make([][]redis.Cmder, len(ops))
	for i, op := range ops {
		cmds[i] = queue(ctx, pipe, op)
	}
	// Exec's error is the first command's; each command has its own.
	pipe.Exec(ctx)
	for i, op := range ops {
		out[i] = collect(op, cmds[i])
	}
}

// queue issues op's commands on c: a client runs them at once, a pipeline
// queues them until Exec.
func queue(ctx context.Context, c redis.Cmdable, op *workload.Op) []redis.Cmder {
	switch op.Kind {
	case workload.Get:
		return []redis.Cmder{c.Get(ctx, string(op.Key))}
	case workload.Set, workload.Insert:
		return []redis.Cmder{c.Set(ctx, string(op.Key), op.Value, 0)}
	case workload.ReadModifyWrite:
		return []redis.Cmder{c.Get(ctx, string(op.Key)), c.Set(ctx, string(op.Key), op.Value, 0)}
	case workload.Incr:
		return []redis.Cmder{c.IncrBy(ctx, string(op.Key), op.Delta)}
	case workload.MGet, workload.Scan:
		keys := make([]string, len(op.Keys))
		for i, k := range op.Keys {
			keys[i] = string(k)
		}
		return []redis.Cmder{c.MGet(ctx, keys...)}
	case workload.MSet:
		args := make([]any, 0, 2*len(op.Keys))
		for _, k := range op.Keys {
			args = append(args, string(k), op.Value)
		}
		return []redis.Cmder{c.MSet(ctx, args...)}
	}
	return nil
}

// collect turns op's finished commands into its outcome.
func collect(op *workload.Op, cmds []redis.Cmder) Outcome {
	if cmds == nil {
		return Outcome{Err: fmt.Errorf("redis target: unsupported operation %v", op.Kind)}
	}
	var o Outcome
	for _, c := range cmds {
		err := c.Err()
		if errors.Is(err, redis.Nil) {
			o.Miss = true
			continue
		}
		if err != nil {
			return Outcome{Err: err}
		}
		if mg, ok := c.(*redis.SliceCmd); ok {
			for _, v := range mg.Val() {
				o.Miss = o.Miss || v == nil
			}
		}
	}
	return o
}
