package testcluster_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestRedisCluster runs Redis Cluster clients against 3 real nodes with
// RESP ports: go-redis's ClusterClient with nothing but seed addresses,
// redis-cli -c, redis-benchmark --cluster, and raw malformed input.
func TestRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c, cl, rdb := startRedisCluster(t, testcluster.Options{}, client.TableSpec{Partitions: 4, Replicas: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("commands", func(t *testing.T) {
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(rdb.Set(ctx, "foo", "bar", 0).Err())
		if v, err := rdb.Get(ctx, "foo").Result(); err != nil || v != "bar" {
			t.Fatalf("GET foo = %q, %v", v, err)
		}
		if _, err := rdb.Get(ctx, "missing").Result(); !errors.Is(err, redis.Nil) {
			t.Fatalf("GET missing: %v, want redis.Nil", err)
		}
		must(rdb.Set(ctx, "ttl", "v", time.Minute).Err())
		if d, err := rdb.TTL(ctx, "ttl").Result(); err != nil || d <= 58*time.Second || d > time.Minute {
			t.Fatalf("TTL = %v, %v", d, err)
		}
		if n, err := rdb.Incr(ctx, "counter").Result(); err != nil || n != 1 {
			t.Fatalf("INCR = %d, %v", n, err)
		}
		if n, err := rdb.IncrBy(ctx, "counter", 41).Result(); err != nil || n != 42 {
			t.Fatalf("INCRBY = %d, %v", n, err)
		}
		if err := rdb.Incr(ctx, "foo").Err(); err == nil || err.Error() != "ERR value is not an integer or out of range" {
			t.Fatalf("INCR of a string: %v", err)
		}
		must(rdb.MSet(ctx, "{user1}.name", "ann", "{user1}.age", "42").Err())
		vals, err := rdb.MGet(ctx, "{user1}.name", "{user1}.age", "{user1}.none").Result()
		if err != nil || fmt.Sprint(vals) != "[ann 42 <nil>]" {
			t.Fatalf("MGET = %v, %v", vals, err)
		}
		if n, err := rdb.Exists(ctx, "{user1}.name", "{user1}.age", "{user1}.none").Result(); err != nil || n != 2 {
			t.Fatalf("EXISTS = %d, %v", n, err)
		}
		if n, err := rdb.Del(ctx, "{user1}.name", "{user1}.none").Result(); err != nil || n != 1 {
			t.Fatalf("DEL = %d, %v", n, err)
		}

		// A pipeline across every node's slots.
		pipe := rdb.Pipeline()
		for i := range 300 {
			pipe.Set(ctx, fmt.Sprintf("p:%d", i), i, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		gets := make([]*redis.StringCmd, 300)
		for i := range gets {
			gets[i] = pipe.Get(ctx, fmt.Sprintf("p:%d", i))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for i, g := range gets {
			if g.Val() != strconv.Itoa(i) {
				t.Fatalf("p:%d = %q", i, g.Val())
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		one := redis.NewClient(&redis.Options{Addr: c.RedisAddrs()[0]})
		defer one.Close()
		for _, tc := range []struct {
			args []any
			want string
		}{
			{[]any{"mget", "a", "b"}, "CROSSSLOT Keys in request don't hash to the same slot"},
			{[]any{"mset", "a", "1", "b", "2"}, "CROSSSLOT Keys in request don't hash to the same slot"},
			{[]any{"select", "1"}, "ERR SELECT is not allowed in cluster mode"},
			{[]any{"nosuch", "x"}, "ERR unknown command 'nosuch', with args beginning with: 'x' "},
			{[]any{"get"}, "ERR wrong number of arguments for 'get' command"},
			{[]any{"set", "k", "v", "ex", "0"}, "ERR invalid expire time in 'set' command"},
		} {
			err := one.Do(ctx, tc.args...).Err()
			if err == nil || err.Error() != tc.want {
				t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
			}
		}
		if err := one.Do(ctx, "select", "0").Err(); err != nil {
			t.Errorf("SELECT 0: %v", err)
		}
	})

	t.Run("moved", func(t *testing.T) {
		// A key of partition 0, written through its master's RESP port.
		k := keyOfPartition(0, 4)
		old := masterOf(t, cl, "default", 0)
		oldRESP := c.NodeByAddr(old).RedisAddr
		direct := redis.NewClient(&redis.Options{Addr: oldRESP})
		defer direct.Close()
		if err := direct.Set(ctx, k, "v1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		topo, err := cl.Pull(ctx, "default")
		if err != nil {
			t.Fatal(err)
		}
		target := topo.Tables[0].Partitions[0].Slaves[0]
		if _, err := cl.SetMaster(ctx, "default", 0, target, 0); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("MOVED %d %s", keyspace.Slot([]byte(k)), c.NodeByAddr(target).RedisAddr)
		testcluster.Poll(t, 60*time.Second, func() error {
			err := direct.Get(ctx, k).Err()
			if err == nil || err.Error() != want {
				return fmt.Errorf("GET on the old master: %v, want %s", err, want)
			}
			return nil
		})
		// Once the new master runs the new epoch too (until then it may
		// still name the old one, and a client bounces between them), the
		// cluster client follows the redirection.
		newRESP := redis.NewClient(&redis.Options{Addr: c.NodeByAddr(target).RedisAddr})
		defer newRESP.Close()
		testcluster.Poll(t, 60*time.Second, func() error {
			if v, err := newRESP.Get(ctx, k).Result(); err != nil || v != "v1" {
				return fmt.Errorf("GET on the new master: %q, %v", v, err)
			}
			return nil
		})
		if v, err := rdb.Get(ctx, k).Result(); err != nil || v != "v1" {
			t.Fatalf("GET after the switchover: %q, %v", v, err)
		}
		if err := rdb.Set(ctx, k, "v2", 0).Err(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("redis-cli", func(t *testing.T) {
		if _, err := exec.LookPath("redis-cli"); err != nil {
			t.Skip("redis-cli is not installed (apt-get install redis-tools)")
		}
		_, p0 := hostPort(t, c.RedisAddrs()[0])
		_, p1 := hostPort(t, c.RedisAddrs()[1])
		if out := run(t, "redis-cli", "-c", "-p", p0, "set", "foo", "baz"); out != "OK" {
			t.Fatalf("redis-cli set: %q", out)
		}
		if out := run(t, "redis-cli", "-c", "-p", p1, "get", "foo"); out != "baz" {
			t.Fatalf("redis-cli get: %q", out)
		}
	})

	t.Run("redis-benchmark", func(t *testing.T) {
		if _, err := exec.LookPath("redis-benchmark"); err != nil {
			t.Skip("redis-benchmark is not installed (apt-get install redis-tools)")
		}
		_, p := hostPort(t, c.RedisAddrs()[0])
		out := run(t, "redis-benchmark", "--cluster", "-p", p, "-t", "set,get", "-n", "20000", "-q")
		t.Logf("redis-benchmark:\n%s", out)
		for _, line := range strings.Split(out, "\n") {
			if l := strings.ToLower(line); strings.Contains(l, "error") || strings.Contains(l, "moved") {
				t.Errorf("redis-benchmark: %s", line)
			}
		}
		if !strings.Contains(out, "SET:") || !strings.Contains(out, "GET:") {
			t.Errorf("redis-benchmark ran no SET and GET")
		}
	})

	t.Run("malformed", func(t *testing.T) {
		nc, err := net.Dial("tcp", c.RedisAddrs()[0])
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(nc, "PING\r\n*1\r\n$x\r\n")
		br := bufio.NewReader(nc)
		for _, want := range []string{"+PONG\r\n", "-ERR Protocol error: invalid bulk length\r\n"} {
			if line, err := br.ReadString('\n'); line != want {
				t.Fatalf("read %q, %v; want %q", line, err, want)
			}
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("connection not closed after a protocol error: %v", err)
		}
	})
}

// slotsCovered checks that CLUSTER SLOTS on addr covers every slot once.
// startRedisCluster starts a cluster whose nodes serve RESP, creates table
// "default" (the nodes' RESP table) as spec says, waits until every node's
// CLUSTER SLOTS covers all slots, and returns a go-redis ClusterClient
// given nothing but the nodes' addresses, closed with the test.
func startRedisCluster(t *testing.T, opts testcluster.Options, spec client.TableSpec) (*testcluster.Cluster, *client.Client, *redis.ClusterClient) {
	t.Helper()
	opts.Redis = true
	c := testcluster.Start(t, opts)
	cl := newClient(t, c)
	spec.Name = "default"
	createTable(t, cl, spec)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, addr := range c.RedisAddrs() {
		testcluster.Poll(t, 30*time.Second, func() error { return slotsCovered(ctx, addr) })
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.RedisAddrs()})
	t.Cleanup(func() { rdb.Close() })
	return c, cl, rdb
}

func slotsCovered(ctx context.Context, addr string) error {
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	slots, err := rc.ClusterSlots(ctx).Result()
	if err != nil {
		return err
	}
	seen := make([]int, keyspace.Slots)
	for _, s := range slots {
		if len(s.Nodes) == 0 || s.Nodes[0].Addr == "" {
			return fmt.Errorf("slots %d-%d without a master", s.Start, s.End)
		}
		for i := s.Start; i <= s.End; i++ {
			seen[i]++
		}
	}
	for i, n := range seen {
		if n != 1 {
			return fmt.Errorf("%s: slot %d listed %d times", addr, i, n)
		}
	}
	return nil
}

// keyOfPartition returns a key of partition id of n.
func keyOfPartition(id, n uint32) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("k%d", i)
		if keyspace.Partition([]byte(k), n) == id {
			return k
		}
	}
}

func hostPort(t *testing.T, addr string) (string, string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// run runs a command and returns its trimmed output, failing the test if
// it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return strings.TrimSpace(string(out))
}

var _ = zppb.Code_OK
