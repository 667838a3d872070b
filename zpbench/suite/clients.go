package suite

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/zeppelin-kv/zeppelin/zpbench/target"
)

// The load generators of the suite. Each cell measures every system with
// every client that applies to it, all in the same alternating rounds.
const (
	// ClientZpbench is zpbench's own target for the system: the native
	// protocol for zpnode, go-redis's Client for Redis, the no-op protocol.
	ClientZpbench = "zpbench"
	// ClientRedisBenchmark is the redis-benchmark C binary against a RESP
	// server: zpnode's front, or Redis Cluster.
	ClientRedisBenchmark = "redis-benchmark"
	// ClientZpbenchCluster is zpbench --redis-cluster, go-redis's
	// ClusterClient through the RESP seeds.
	ClientZpbenchCluster = "zpbench-cluster"
)

// ClientNames are the clients, in the order a cell lists them.
func ClientNames() []string {
	return []string{ClientZpbench, ClientRedisBenchmark, ClientZpbenchCluster}
}

// redisBenchmarkTests are the operations redis-benchmark measures: its
// tests of the same names (-t set, -t get).
var redisBenchmarkTests = []string{"set", "get"}

// measures reports whether client measures op on def in a run of cfg.
func measures(cfg *Config, def SystemDef, client, op string) bool {
	if !slices.Contains(cfg.Clients, client) || !slices.Contains(def.Clients, client) {
		return false
	}
	return client != ClientRedisBenchmark || slices.Contains(redisBenchmarkTests, op)
}

// usesClient reports whether any selected system is measured by client.
func usesClient(cfg *Config, client string) bool {
	for _, name := range cfg.Systems {
		if def, ok := systemDef(name); ok && slices.Contains(def.Clients, client) && slices.Contains(cfg.Clients, client) {
			return true
		}
	}
	return false
}

// clusterMode reports whether redis-benchmark runs with --cluster against
// sys: against several nodes, so that it sends each key to its slot's
// master. redis-benchmark refuses --cluster with one node ("Invalid
// cluster: 1 node(s)"), and a single node owns every key anyway, so
// one-node systems (Redis Cluster of one node, zpnode-1) get plain
// redis-benchmark: the same keys and commands on both.
func clusterMode(sys *system) bool { return len(sys.respAddrs) > 1 }

// openClusterTarget opens zpbench's --redis-cluster target on sys's RESP
// addresses.
func openClusterTarget(ctx context.Context, cfg *Config, sys *system) (target.Target, error) {
	return target.NewRedisCluster(ctx, sys.respAddrs, target.RedisOptions{Conns: cfg.Conns, Timeout: cfg.Timeout})
}

// openClientTarget opens the zpbench target of client on sys.
func openClientTarget(ctx context.Context, cfg *Config, sys *system, client string, pipeline int, log *slog.Logger) (target.Target, error) {
	if client == ClientZpbenchCluster {
		return openClusterTarget(ctx, cfg, sys)
	}
	return openTarget(ctx, cfg, sys, pipeline, log)
}

// clientLabel names how client reached sys, for the tables.
func clientLabel(kind, client string, nodes int) string {
	switch client {
	case ClientRedisBenchmark:
		if nodes > 1 {
			return "redis-benchmark --cluster"
		}
		return "redis-benchmark"
	case ClientZpbenchCluster:
		return "zpbench --redis-cluster"
	}
	switch kind {
	case "zeppelin":
		return "zpbench --meta"
	case "redis":
		return "zpbench --redis"
	}
	return "zpbench --noop"
}

// respArgs is the zpbench flag naming sys's RESP servers.
func respArgs(sys *system) string {
	return "--redis-cluster " + strings.Join(sys.respAddrs, ",")
}
