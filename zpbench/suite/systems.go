package suite

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/freeport"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpbench/target"
)

// pollInterval is how often a starting system is asked whether it is
// ready.
const pollInterval = 100 * time.Millisecond

// system is one target of the suite while it runs.
type system struct {
	def  SystemDef
	kind string // "zeppelin", "redis", "redis-cluster", "noop"
	addr string // meta address, or the server's
	// respAddrs are the RESP (Redis protocol) addresses: each zpnode's
	// front, or the Redis Cluster node's; empty for the others.
	respAddrs []string
	procs     *procs
	nodes     []*proc
	// nodeAddrs[i] is the address of nodes[i]; metricsAddrs[i] where it
	// serves Prometheus metrics.
	nodeAddrs    []string
	metricsAddrs []string
	meta         *proc
	server       *proc
	// commands are the command lines that started it, for the docs.
	commands []string
}

// poll calls ready every pollInterval until it returns nil or ctx ends.
func poll(ctx context.Context, what string, ready func(context.Context) error) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = ready(cctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), last)
		case <-t.C:
		}
	}
}

// startNoop starts the no-op server with cfg.NoopCommand.
func startNoop(ctx context.Context, cfg *Config, g *procs, dir string, def SystemDef) (*system, error) {
	addrs, err := freeport.Addrs(1)
	if err != nil {
		return nil, err
	}
	argv := append(append([]string{}, cfg.NoopCommand...), "--addr", addrs[0], "--value-size", strconv.Itoa(cfg.ValueSize), "--log-level", "warn")
	p, err := g.start("noop-server", filepath.Join(dir, "noop.log"), argv...)
	if err != nil {
		return nil, err
	}
	s := &system{def: def, kind: "noop", addr: addrs[0], procs: g, server: p, commands: []string{commandLine(argv)}}
	err = poll(ctx, "noop-server", func(ctx context.Context) error {
		if !p.running() {
			return fmt.Errorf("noop-server exited: %v\n%s", p.err, p.logTail(20))
		}
		c, err := rpc.Dial(ctx, addrs[0], 0)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return s, err
}

// startZeppelin starts one zpmeta and def.Nodes zpnodes, and creates the
// benchmark table with def's replicas and min_sync_replicas.
func startZeppelin(ctx context.Context, cfg *Config, g *procs, dir string, def SystemDef, log *slog.Logger) (*system, error) {
	// One meta address, then each node's native, RESP and metrics
	// addresses.
	addrs, err := freeport.Addrs(1 + 3*def.Nodes)
	if err != nil {
		return nil, err
	}
	meta := addrs[0]
	s := &system{def: def, kind: "zeppelin", addr: meta, procs: g}
	metaArgv := []string{filepath.Join(cfg.BinDir, "zpmeta"), "--addr", meta, "--peers", meta,
		"--data", filepath.Join(dir, "zpmeta"), "--log-level", "warn"}
	if s.meta, err = g.start("zpmeta", filepath.Join(dir, "zpmeta.log"), metaArgv...); err != nil {
		return s, err
	}
	s.commands = append(s.commands, commandLine(metaArgv))
	for i := range def.Nodes {
		addr, resp, metrics := addrs[1+3*i], addrs[2+3*i], addrs[3+3*i]
		name := fmt.Sprintf("zpnode-%d", i+1)
		// Every node serves RESP on the benchmark table, so that the RESP
		// cells read the records the native load wrote; and metrics, which
		// the suite reads the node's CPU and memory from.
		argv := []string{filepath.Join(cfg.BinDir, "zpnode"), "--addr", addr, "--meta", meta,
			"--data", filepath.Join(dir, name), "--log-level", "warn", "--redis-addr", resp, "--redis-table", cfg.Table,
			"--metrics-addr", metrics}
		p, err := g.start(name, filepath.Join(dir, name+".log"), argv...)
		if err != nil {
			return s, err
		}
		s.nodes = append(s.nodes, p)
		s.nodeAddrs = append(s.nodeAddrs, addr)
		s.metricsAddrs = append(s.metricsAddrs, metrics)
		s.respAddrs = append(s.respAddrs, resp)
		s.commands = append(s.commands, commandLine(argv))
	}

	cl, err := client.New(ctx, client.Options{MetaAddrs: []string{meta}, LazyPull: true, Logger: log})
	if err != nil {
		return s, err
	}
	defer cl.Close()
	err = poll(ctx, fmt.Sprintf("%d nodes up", def.Nodes), func(ctx context.Context) error {
		if err := s.crashed(); err != nil {
			return err
		}
		nodes, _, err := cl.ListNodes(ctx)
		if err != nil {
			return err
		}
		up := 0
		for _, n := range nodes {
			if n.State == zppb.NodeState_UP.String() {
				up++
			}
		}
		if up < def.Nodes {
			return fmt.Errorf("%d of %d nodes up", up, def.Nodes)
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	spec := client.TableSpec{Name: cfg.Table, Partitions: cfg.Partitions, Replicas: uint32(def.Replicas), MinSyncReplicas: uint32(def.MinSync)}
	if _, err := target.EnsureTable(ctx, cl, cfg.Table, &spec, log); err != nil {
		return s, fmt.Errorf("%w%s", err, s.crashedLogs())
	}
	s.commands = append(s.commands, fmt.Sprintf("zpctl --meta %s table create %s --partitions %d --replicas %d --min-sync %d --wait",
		meta, cfg.Table, cfg.Partitions, def.Replicas, def.MinSync))
	// A node learns the others' RESP addresses from meta with the
	// topology; until then MOVED and CLUSTER SLOTS lack them.
	for _, addr := range s.respAddrs {
		if err := waitSlotsServed(ctx, s, addr); err != nil {
			return s, err
		}
	}
	return s, nil
}

// waitSlotsServed polls the RESP server at addr until its CLUSTER SLOTS
// names a master with an address for every one of the 16384 slots, as a
// cluster client needs before it can route every key.
func waitSlotsServed(ctx context.Context, s *system, addr string) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, MaxRetries: -1})
	defer rdb.Close()
	return poll(ctx, "every slot served at "+addr, func(ctx context.Context) error {
		if err := s.crashed(); err != nil {
			return err
		}
		slots, err := rdb.ClusterSlots(ctx).Result()
		if err != nil {
			return err
		}
		served := 0
		for _, r := range slots {
			if len(r.Nodes) > 0 && r.Nodes[0].Addr != "" && !strings.HasSuffix(r.Nodes[0].Addr, ":0") {
				served += r.End - r.Start + 1
			}
		}
		if served != clusterSlots {
			return fmt.Errorf("%d of %d slots served", served, clusterSlots)
		}
		return nil
	})
}

// clusterSlots is the number of hash slots of Redis Cluster.
const clusterSlots = 16384

// crashed returns an error with its log when a process of s has exited.
func (s *system) crashed() error {
	for _, p := range append([]*proc{s.meta, s.server}, s.nodes...) {
		if p != nil && !p.running() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.logTail(20))
		}
	}
	return nil
}

func (s *system) crashedLogs() string {
	if err := s.crashed(); err != nil {
		return "\n" + err.Error()
	}
	return ""
}

// startRedis starts redis-server with AOF on and fsync every second, the
// durability closest to zpnode's default (acknowledged after write(2),
// fsync in the background).
func startRedis(ctx context.Context, cfg *Config, g *procs, dir string, def SystemDef) (*system, error) {
	addrs, err := freeport.Addrs(1)
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addrs[0])
	rdir := filepath.Join(dir, "redis")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return nil, err
	}
	argv := []string{cfg.RedisServer, "--port", port, "--bind", "127.0.0.1", "--dir", rdir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no", "--protected-mode", "no"}
	p, err := g.start("redis-server", filepath.Join(dir, "redis.log"), argv...)
	if err != nil {
		return nil, err
	}
	// respAddrs: redis-benchmark reaches it there, as a one-node system.
	s := &system{def: def, kind: "redis", addr: addrs[0], respAddrs: addrs, procs: g, server: p, commands: []string{commandLine(argv)}}
	rdb := redis.NewClient(&redis.Options{Addr: addrs[0], DisableIdentity: true, MaxRetries: -1})
	defer rdb.Close()
	err = poll(ctx, "redis-server", func(ctx context.Context) error {
		if err := s.crashed(); err != nil {
			return err
		}
		return rdb.Ping(ctx).Err()
	})
	return s, err
}

// startRedisCluster starts redis-server as a Redis Cluster of one node
// that owns every slot, with the durability settings of startRedis. It is
// the Redis that cluster clients (go-redis's ClusterClient) can be pointed
// at, like zpnode's RESP front: a plain redis-server refuses CLUSTER
// SLOTS. One node, because that is a single redis-server's work (the
// cluster bus has no peer to talk to).
func startRedisCluster(ctx context.Context, cfg *Config, g *procs, dir string, def SystemDef) (*system, error) {
	// The cluster bus port is named too: by default it is the port plus
	// 10000, which may be taken.
	addrs, err := freeport.Addrs(2)
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addrs[0])
	_, busPort, _ := net.SplitHostPort(addrs[1])
	addrs = addrs[:1]
	rdir := filepath.Join(dir, "redis")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return nil, err
	}
	argv := []string{cfg.RedisServer, "--port", port, "--bind", "127.0.0.1", "--dir", rdir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no", "--protected-mode", "no",
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", busPort}
	p, err := g.start("redis-server", filepath.Join(dir, "redis.log"), argv...)
	if err != nil {
		return nil, err
	}
	s := &system{def: def, kind: "redis-cluster", addr: addrs[0], respAddrs: addrs, procs: g, server: p,
		commands: []string{commandLine(argv), fmt.Sprintf("redis-cli -p %s cluster addslotsrange 0 %d", port, clusterSlots-1)}}
	rdb := redis.NewClient(&redis.Options{Addr: addrs[0], DisableIdentity: true, MaxRetries: -1})
	defer rdb.Close()
	err = poll(ctx, "redis-server", func(ctx context.Context) error {
		if err := s.crashed(); err != nil {
			return err
		}
		return rdb.Ping(ctx).Err()
	})
	if err != nil {
		return s, err
	}
	if err := rdb.Do(ctx, "cluster", "addslotsrange", 0, clusterSlots-1).Err(); err != nil {
		return s, fmt.Errorf("cluster addslotsrange: %w", err)
	}
	return s, waitSlotsServed(ctx, s, addrs[0])
}

// redisVersion returns what `redis-server --version` says, trimmed.
func redisVersion(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "unknown"
	}
	v := strings.TrimSpace(string(out))
	if i := strings.Index(v, "v="); i >= 0 {
		v = v[i+2:]
		if j := strings.IndexByte(v, ' '); j > 0 {
			v = v[:j]
		}
	}
	return v
}

// commandLine renders argv for the docs, quoting empty arguments.
func commandLine(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t'\"") {
			a = strconv.Quote(a)
		}
		parts[i] = a
	}
	return strings.Join(parts, " ")
}

// pids returns the process ids of the system's processes.
func (s *system) pids() []int {
	var out []int
	for _, p := range append([]*proc{s.meta, s.server}, s.nodes...) {
		if p != nil && p.running() {
			out = append(out, p.cmd.Process.Pid)
		}
	}
	return out
}

// idleWindow is how long the suite watches the systems sit idle.
const idleWindow = 3 * time.Second

// measureIdle returns the CPUs each system uses while nothing is sent to
// it: heartbeats, tickers, polls. Every system runs during every other's
// rounds, so this is a tax on all of them.
func measureIdle(ctx context.Context, systems []*system) []float64 {
	type reading struct {
		at    time.Time
		ticks uint64
	}
	read := func(s *system) reading {
		r := reading{at: time.Now()}
		for _, pid := range s.pids() {
			if t, _, ok := procTicks(strconv.Itoa(pid)); ok {
				r.ticks += t
			}
		}
		return r
	}
	before := make([]reading, len(systems))
	for i, s := range systems {
		before[i] = read(s)
	}
	t := time.NewTimer(idleWindow)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return make([]float64, len(systems))
	case <-t.C:
	}
	out := make([]float64, len(systems))
	for i, s := range systems {
		after := read(s)
		if secs := after.at.Sub(before[i].at).Seconds(); secs > 0 {
			out[i] = float64(after.ticks-before[i].ticks) / clockTicks / secs
		}
	}
	return out
}
