package target

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// ZeppelinOptions configures a Zeppelin target.
type ZeppelinOptions struct {
	// MetaAddrs are the cluster's meta servers. Required.
	MetaAddrs []string
	// Table is the table the benchmark reads and writes. Required.
	Table string
	// Conns is the number of connections to each node.
	Conns int
	// Raw bypasses lib/client: requests go as they are to the partition's
	// master over rpc connections, pipelined, with no retries (MOVE and
	// WAIT answers count as errors; a MOVE updates the route). Needed for
	// pipeline depths above 1, where the client's one-call-per-operation
	// API cannot keep several requests in flight per connection.
	Raw bool
	// TablePassword is Table's password, for a table with passwords
	// (client.Options.TablePasswords); nil for none.
	TablePassword []byte
	// Timeout bounds each operation, the client's retries included.
	Timeout time.Duration
	// Create, when not nil, describes the table to create when it does not
	// exist. The benchmark owns its table, so creating it is expected.
	Create *client.TableSpec
	// TLS, when set, is the config of every connection (meta servers and
	// nodes, raw or through lib/client).
	TLS *tls.Config
	// AdminToken is presented to meta servers that require it to create
	// the table.
	AdminToken []byte
	Logger     *slog.Logger
}

// NewZeppelin connects to a cluster and makes sure the table exists.
func NewZeppelin(ctx context.Context, o ZeppelinOptions) (Target, error) {
	if len(o.MetaAddrs) == 0 || o.Table == "" {
		return nil, errors.New("zeppelin target: meta addresses and table are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	var passwords map[string][]byte
	if len(o.TablePassword) > 0 {
		passwords = map[string][]byte{o.Table: o.TablePassword}
	}
	cl, err := client.New(ctx, client.Options{
		MetaAddrs:        o.MetaAddrs,
		TablePasswords:   passwords,
		PoolConnsPerAddr: max(o.Conns, 1),
		DefaultTimeout:   o.Timeout,
		TLS:              o.TLS,
		AdminToken:       o.AdminToken,
		Logger:           o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("zeppelin target: %w", err)
	}
	if _, err := EnsureTable(ctx, cl, o.Table, o.Create, o.Logger); err != nil {
		cl.Close()
		return nil, fmt.Errorf("zeppelin target: %w", err)
	}
	name := fmt.Sprintf("zeppelin meta=%s table=%s", strings.Join(o.MetaAddrs, ","), o.Table)
	if o.Raw {
		rt, err := newTableRouter(ctx, cl, o.Table, o.Logger)
		if err != nil {
			cl.Close()
			return nil, fmt.Errorf("zeppelin target: %w", err)
		}
		return &rawTarget{kind: "zeppelin", name: name + " (raw)", table: o.Table, password: o.TablePassword, router: rt, closer: cl.Close, tls: o.TLS}, nil
	}
	return &clientTarget{cl: cl, table: o.Table, name: name}, nil
}

// EnsureTable makes sure table exists: when it does not and spec is not
// nil, it creates it and returns the spec it created it with (nil when the
// table existed); either way it waits until every partition is writable. A
// spec with 0 replicas gets as many as there are nodes up, at most 3; with
// 0 partitions, 16. Callers tell the user about a table they created.
func EnsureTable(ctx context.Context, cl *client.Client, table string, spec *client.TableSpec, log *slog.Logger) (created *client.TableSpec, err error) {
	_, err = cl.Pull(ctx, table)
	if err == nil {
		return nil, cl.WaitTableWritable(ctx, table)
	}
	if !errors.Is(err, status.ErrTableNotFound) || spec == nil {
		return nil, fmt.Errorf("table %s: %w", table, err)
	}
	s := *spec
	s.Name = table
	if s.Replicas == 0 {
		// As many replicas as there are nodes up, at most 3: a benchmark
		// table works on a one-node test cluster as on a real one.
		nodes, _, err := cl.ListNodes(ctx)
		if err != nil {
			return nil, fmt.Errorf("create table %s: %w", table, err)
		}
		up := uint32(0)
		for _, n := range nodes {
			if n.State == "UP" {
				up++
			}
		}
		s.Replicas = max(min(up, 3), 1)
	}
	if s.Partitions == 0 {
		s.Partitions = 16
	}
	if _, err := cl.CreateTable(ctx, s); err != nil && !errors.Is(err, status.ErrTableExists) {
		return nil, fmt.Errorf("create table %s: %w", table, err)
	}
	log.Debug("created table", "table", table, "partitions", s.Partitions, "replicas", s.Replicas, "min_sync_replicas", s.MinSyncReplicas)
	if err := cl.WaitTableWritable(ctx, table); err != nil {
		return &s, fmt.Errorf("table %s: %w", table, err)
	}
	return &s, nil
}

// clientTarget sends every operation through lib/client, as an application
// would: routing, MOVE/WAIT retries, pooled connections.
type clientTarget struct {
	cl    *client.Client
	table string
	name  string
}

func (t *clientTarget) Kind() string           { return "zeppelin" }
func (t *clientTarget) Name() string           { return t.name }
func (t *clientTarget) Pipelining() Pipelining { return Window }
func (t *clientTarget) Close() error           { return t.cl.Close() }
func (t *clientTarget) NewSession(context.Context) (Session, error) {
	// The client pools connections itself (Conns per node); sessions
	// share it.
	return clientSession{t}, nil
}

type clientSession struct{ t *clientTarget }

func (s clientSession) Close() error { return nil }

func (s clientSession) Do(ctx context.Context, ops []*workload.Op, out []Outcome) {
	for i, op := range ops {
		out[i] = s.do(ctx, op)
	}
}

func (s clientSession) do(ctx context.Context, op *workload.Op) Outcome {
	cl, table := s.t.cl, s.t.table
	switch op.Kind {
	case workload.Get:
		return readOutcome(cl.Get(ctx, table, op.Key))
	case workload.Set, workload.Insert:
		return Outcome{Err: cl.Set(ctx, table, op.Key, op.Value, 0)}
	case workload.ReadModifyWrite:
		o := readOutcome(cl.Get(ctx, table, op.Key))
		if o.Err != nil {
			return o
		}
		return Outcome{Err: cl.Set(ctx, table, op.Key, op.Value, 0), Miss: o.Miss}
	case workload.Incr:
		_, err := cl.IncrBy(ctx, table, op.Key, op.Delta)
		return Outcome{Err: err}
	case workload.Scan:
		kvs, _, err := cl.Scan(ctx, table, op.Hashtag, op.Cursor, op.Count)
		return Outcome{Err: err, Miss: err == nil && len(kvs) < op.Count}
	case workload.MGet:
		res, err := cl.MGet(ctx, table, op.Keys)
		miss := false
		for _, r := range res {
			miss = miss || (r.Err == nil && !r.Found)
		}
		return Outcome{Err: err, Miss: miss}
	case workload.MSet:
		kvs := make([]client.KeyValue, len(op.Keys))
		for i, k := range op.Keys {
			kvs[i] = client.KeyValue{Key: k, Value: op.Value}
		}
		return Outcome{Err: cl.MSet(ctx, table, kvs, 0)}
	}
	return Outcome{Err: fmt.Errorf("zeppelin target: unsupported operation %v", op.Kind)}
}

func readOutcome(_ []byte, err error) Outcome {
	if errors.Is(err, status.ErrNotFound) {
		return Outcome{Miss: true}
	}
	return Outcome{Err: err}
}
