package cmd

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedis starts redis-server on a free port, without persistence, for
// the test, with extra arguments; it skips the test when redis-server is not
// installed.
func startRedis(t *testing.T, extra ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed (apt-get install -y redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	cmd := exec.Command(bin, append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}, extra...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	rdb := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if err := rdb.Ping(ctx).Err(); err == nil {
			return addr
		} else if ctx.Err() != nil {
			t.Fatalf("redis-server did not answer: %v", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestRedisEndToEnd runs every workload against a real Redis: the
// mapping of each operation (YCSB scans as MGET, read-modify-write as GET
// and SET) and batch pipelining.
func TestRedisEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	addr := startRedis(t)
	code, stdout, stderr := zpbench(t, "load", "--redis", addr, "--keyspace", "2000", "--batch", "50", "--conns", "4")
	if code != ExitOK {
		t.Fatalf("load: exit code %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	for _, tc := range workloadCases {
		t.Run(tc.workload+"/P"+tc.pipeline, func(t *testing.T) {
			args := append([]string{"--redis", addr, "--workload", tc.workload, "--keyspace", "2000",
				"--conns", "3", "--workers", "5", "--pipeline", tc.pipeline, "--ops", "300"}, tc.extra...)
			out := runJSON(t, args...)
			checkRun(t, out, 300)
			if p := out["target"].(map[string]any)["pipelining"]; p != "batch" {
				t.Errorf("pipelining %v, want batch", p)
			}
			if strings.HasPrefix(tc.workload, "get") || tc.workload == "ycsb-e" {
				if m := out["misses"].(float64); m != 0 {
					t.Errorf("%v misses after loading the keyspace", m)
				}
			}
		})
	}
}

// TestRedisClusterEndToEnd runs the --redis-cluster target (go-redis's
// ClusterClient) against a one-node Redis Cluster that owns every slot:
// the client discovers the node through CLUSTER SLOTS and routes every key
// there, pipelines included.
func TestRedisClusterEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	addr := startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	rdb := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rdb.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	for {
		info, err := rdb.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("cluster state never ok: %q, %v", info, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	for _, tc := range []struct{ workload, pipeline string }{{"set", "1"}, {"get", "1"}, {"set", "16"}, {"incr", "4"}} {
		t.Run(tc.workload+"/P"+tc.pipeline, func(t *testing.T) {
			out := runJSON(t, "--redis-cluster", addr, "--workload", tc.workload, "--keyspace", "2000",
				"--conns", "3", "--workers", "5", "--pipeline", tc.pipeline, "--ops", "300")
			checkRun(t, out, 300)
			if k := out["target"].(map[string]any)["kind"]; k != "redis-cluster" {
				t.Errorf("target kind %v, want redis-cluster", k)
			}
		})
	}
}
