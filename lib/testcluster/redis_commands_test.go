package testcluster_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestRedisCommands runs the string and key commands of issue 13 through
// go-redis's ClusterClient (seed addresses only) on 3 real nodes: options
// and error replies, a pipeline across slots, MULTI/EXEC, SCAN over every
// master (also while a partition moves), and READONLY reads on a slave.
func TestRedisCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c, cl, rdb := startRedisCluster(t, testcluster.Options{}, client.TableSpec{Partitions: 4, Replicas: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// expect checks one command's reply (as fmt.Sprint of its value) or
	// its error text.
	expect := func(t *testing.T, cmd redis.Cmder, want string) {
		t.Helper()
		var got string
		if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) {
			got = "error: " + err.Error()
		} else if errors.Is(err, redis.Nil) {
			got = "nil"
		} else {
			switch v := cmd.(type) {
			case *redis.StringCmd:
				got = v.Val()
			case *redis.IntCmd:
				got = strconv.FormatInt(v.Val(), 10)
			case *redis.BoolCmd:
				got = strconv.FormatBool(v.Val())
			case *redis.StatusCmd:
				got = v.Val()
			case *redis.DurationCmd:
				got = v.Val().String()
			case *redis.FloatCmd:
				got = strconv.FormatFloat(v.Val(), 'f', -1, 64)
			case *redis.Cmd:
				got = fmt.Sprint(v.Val())
			default:
				got = fmt.Sprint(cmd)
			}
		}
		if got != want {
			t.Errorf("%v: %q, want %q", cmd.Args(), got, want)
		}
	}
	do := func(args ...any) *redis.Cmd { return rdb.Do(ctx, args...) }

	t.Run("strings", func(t *testing.T) {
		expect(t, do("set", "s1", "a", "nx"), "OK")
		expect(t, do("set", "s1", "b", "nx"), "nil")
		expect(t, do("set", "s1", "c", "xx", "get"), "a")
		expect(t, do("set", "s-none", "c", "xx"), "nil")
		expect(t, do("set", "s1", "d", "get", "ex", "100"), "c")
		expect(t, do("set", "s1", "e", "keepttl"), "OK")
		expect(t, rdb.TTL(ctx, "s1"), "1m40s")
		expect(t, do("set", "s1", "f"), "OK")
		expect(t, do("ttl", "s1"), "-1")
		expect(t, do("set", "s1", "v", "pxat", strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)), "OK")
		expect(t, do("set", "s1", "v", "nx", "xx"), "error: ERR syntax error")
		expect(t, do("set", "s1", "v", "ex", "0"), "error: ERR invalid expire time in 'set' command")
		expect(t, do("set", "s1", "v", "exat", "1"), "OK") // in the past: gone at once
		expect(t, rdb.Exists(ctx, "s1"), "0")
		expect(t, rdb.SetNX(ctx, "s2", "1", 0), "true")
		expect(t, rdb.SetNX(ctx, "s2", "2", 0), "false")
		expect(t, do("setex", "s3", "100", "v"), "OK")
		expect(t, do("psetex", "s3", "100000", "v"), "OK")
		expect(t, do("setex", "s3", "-1", "v"), "error: ERR invalid expire time in 'setex' command")
		expect(t, do("getset", "s3", "w"), "v")
		expect(t, do("ttl", "s3"), "-1")
		expect(t, do("getdel", "s3"), "w")
		expect(t, do("getdel", "s3"), "nil")
		expect(t, do("set", "s4", "x"), "OK")
		expect(t, do("getex", "s4", "ex", "50"), "x")
		expect(t, do("ttl", "s4"), "50")
		expect(t, do("getex", "s4", "persist"), "x")
		expect(t, do("ttl", "s4"), "-1")
		expect(t, do("getex", "s4", "persist", "ex", "1"), "error: ERR syntax error")
		expect(t, do("msetnx", "{m}1", "a", "{m}2", "b"), "1")
		expect(t, do("msetnx", "{m}2", "c", "{m}3", "d"), "0")
		expect(t, do("mget", "{m}1", "{m}2", "{m}3"), "[a b <nil>]")
		expect(t, do("msetnx", "a", "1", "b", "2"), "error: CROSSSLOT Keys in request don't hash to the same slot")
		expect(t, do("incrbyfloat", "f", "10.5"), "10.5")
		expect(t, do("incrbyfloat", "f", "0.1"), "10.6")
		expect(t, do("incrbyfloat", "s4", "1"), "error: ERR value is not a valid float")
		expect(t, do("decrby", "n", "5"), "-5")
		expect(t, do("incrby", "n", "x"), "error: ERR value is not an integer or out of range")
		expect(t, do("set", "n", "9223372036854775807"), "OK")
		expect(t, do("incr", "n"), "error: ERR increment or decrement would overflow")
		expect(t, do("append", "ap", "Hello"), "5")
		expect(t, do("append", "ap", " World"), "11")
		expect(t, do("strlen", "ap"), "11")
		expect(t, do("strlen", "none"), "0")
		expect(t, do("getrange", "ap", "-5", "-1"), "World")
		expect(t, do("getrange", "none", "0", "-1"), "")
		expect(t, do("setrange", "ap", "6", "Redis"), "11")
		expect(t, do("get", "ap"), "Hello Redis")
		expect(t, do("setrange", "sr", "3", "x"), "4")
		expect(t, do("get", "sr"), "\x00\x00\x00x")
		expect(t, do("setrange", "sr", "-1", "x"), "error: ERR offset is out of range")
		expect(t, do("setrange", "sr", "536870912", "x"), "error: ERR string exceeds maximum allowed size (proto-max-bulk-len)")
	})

	t.Run("keys", func(t *testing.T) {
		expect(t, do("mset", "{k}1", "a", "{k}2", "b", "{k}3", "c"), "OK")
		expect(t, do("del", "{k}1", "{k}2", "{k}none"), "2")
		expect(t, do("unlink", "{k}3"), "1")
		expect(t, do("exists", "{k}3", "{k}3"), "0")
		expect(t, do("set", "t", "v"), "OK")
		expect(t, do("touch", "t", "t"), "2")
		expect(t, do("type", "t"), "string")
		expect(t, do("type", "none"), "none")
		expect(t, do("expire", "t", "100", "xx"), "0")
		expect(t, do("expire", "t", "100", "nx"), "1")
		expect(t, do("expire", "t", "50", "gt"), "0")
		expect(t, do("expire", "t", "200", "gt"), "1")
		expect(t, do("pexpire", "t", "150000", "lt"), "1")
		expect(t, do("ttl", "t"), "150")
		at := time.Now().Add(time.Hour).Unix()
		expect(t, do("expireat", "t", strconv.FormatInt(at, 10)), "1")
		expect(t, do("expiretime", "t"), strconv.FormatInt(at, 10))
		expect(t, do("pexpiretime", "t"), strconv.FormatInt(at*1000, 10))
		expect(t, do("pexpireat", "t", strconv.FormatInt(at*1000, 10), "gt"), "0")
		expect(t, do("persist", "t"), "1")
		expect(t, do("persist", "t"), "0")
		expect(t, do("expiretime", "t"), "-1")
		expect(t, do("expiretime", "none"), "-2")
		expect(t, do("expire", "none", "10"), "0")
		expect(t, do("expire", "t", "10", "nx", "xx"), "error: ERR NX and XX, GT or LT options at the same time are not compatible")
		expect(t, do("expire", "t", "10", "foo"), "error: ERR Unsupported option foo")
		expect(t, do("expire", "t", "-1"), "1") // a past time deletes the key
		expect(t, do("exists", "t"), "0")
		expect(t, do("del", "a", "b"), "error: CROSSSLOT Keys in request don't hash to the same slot")
		expect(t, do("nosuch", "x"), "error: ERR unknown command 'nosuch', with args beginning with: 'x' ")
		expect(t, do("watch", "t"), "error: ERR WATCH is not supported: MULTI/EXEC runs atomically on its own (keys of one slot, one binlog record)")
	})

	t.Run("pipeline", func(t *testing.T) {
		pipe := rdb.Pipeline()
		var cmds []redis.Cmder
		for i := range 60 {
			k := fmt.Sprintf("pl:%d", i)
			cmds = append(cmds, pipe.Set(ctx, k, "x", 0), pipe.Append(ctx, k, "y"), pipe.SetNX(ctx, k, "z", 0), pipe.GetSet(ctx, k, "w"), pipe.Expire(ctx, k, time.Hour))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(cmds); i += 5 {
			for j, want := range []string{"OK", "2", "false", "xy", "true"} {
				expect(t, cmds[i+j], want)
			}
		}
	})

	t.Run("multi", func(t *testing.T) {
		expect(t, do("set", "{tx}s", "str"), "OK")
		var incr, bad, get *redis.Cmd
		cmds, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Do(ctx, "set", "{tx}n", "10")
			incr = p.Do(ctx, "incrby", "{tx}n", "5")
			bad = p.Do(ctx, "incr", "{tx}s") // fails alone; the rest applies
			p.Do(ctx, "append", "{tx}n", "0")
			get = p.Do(ctx, "get", "{tx}n")
			return nil
		})
		if err == nil || err.Error() != "ERR value is not an integer or out of range" {
			t.Fatalf("EXEC: %v (%d answers)", err, len(cmds))
		}
		expect(t, incr, "15")
		expect(t, bad, "error: ERR value is not an integer or out of range")
		expect(t, get, "150")
		expect(t, do("get", "{tx}n"), "150")

		// A raw connection to the slot's master: EXECABORT, CROSSSLOT.
		m, err := rdb.MasterForKey(ctx, "{tx}n")
		if err != nil {
			t.Fatal(err)
		}
		conn := m.Conn()
		defer conn.Close()
		expect(t, conn.Do(ctx, "multi"), "OK")
		expect(t, conn.Do(ctx, "set", "{tx}n", "1"), "QUEUED")
		expect(t, conn.Do(ctx, "get"), "error: ERR wrong number of arguments for 'get' command")
		expect(t, conn.Do(ctx, "exec"), "error: EXECABORT Transaction discarded because of previous errors.")
		expect(t, conn.Do(ctx, "get", "{tx}n"), "150")
		expect(t, conn.Do(ctx, "multi"), "OK")
		expect(t, conn.Do(ctx, "discard"), "OK")
		expect(t, conn.Do(ctx, "exec"), "error: ERR EXEC without MULTI")
	})

	t.Run("scan", func(t *testing.T) {
		want := map[string]bool{}
		pipe := rdb.Pipeline()
		for i := range 400 {
			k := fmt.Sprintf("sc:%d", i)
			want[k] = true
			pipe.Set(ctx, k, "v", 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		// One walk per master: every key once over all of them.
		seen := map[string]int{}
		var mu = make(chan struct{}, 1)
		mu <- struct{}{}
		err := rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			var cursor uint64
			for {
				keys, next, err := m.Scan(ctx, cursor, "sc:*", 37).Result()
				if err != nil {
					return err
				}
				<-mu
				for _, k := range keys {
					seen[k]++
				}
				mu <- struct{}{}
				if next == 0 {
					return nil
				}
				cursor = next
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		for k := range want {
			if seen[k] != 1 {
				t.Fatalf("SCAN returned %s %d times", k, seen[k])
			}
		}
		if len(seen) != len(want) {
			t.Fatalf("SCAN returned %d keys, want %d", len(seen), len(want))
		}
		// KEYS on every master: the same keys.
		total := 0
		rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			ks, err := m.Keys(ctx, "sc:*").Result()
			<-mu
			total += len(ks)
			mu <- struct{}{}
			return err
		})
		if total != len(want) {
			t.Fatalf("KEYS returned %d keys, want %d", total, len(want))
		}
		if v, err := do("scan", "0", "type", "hash").Slice(); err != nil || len(v) != 2 || fmt.Sprint(v[1]) != "[]" {
			t.Fatalf("SCAN TYPE hash: %v, %v", v, err)
		}

		// Walks started on every node, then partition 0 moves to one of
		// its slaves, then the walks go on: every key that existed
		// throughout is returned at least once, and never twice by one
		// walk.
		type walk struct {
			c      *redis.Client
			cursor uint64
			seen   map[string]int
		}
		var walks []*walk
		for _, addr := range c.RedisAddrs() {
			w := &walk{c: redis.NewClient(&redis.Options{Addr: addr}), seen: map[string]int{}}
			defer w.c.Close()
			walks = append(walks, w)
		}
		page := func(w *walk) bool {
			keys, next, err := w.c.Scan(ctx, w.cursor, "sc:*", 10).Result()
			if err != nil {
				t.Fatalf("SCAN: %v", err)
			}
			for _, k := range keys {
				w.seen[k]++
			}
			w.cursor = next
			return next != 0
		}
		for _, w := range walks {
			page(w)
		}
		topo, err := cl.Pull(ctx, "default")
		if err != nil {
			t.Fatal(err)
		}
		target := topo.Tables[0].Partitions[0].Slaves[0]
		if _, err := cl.SetMaster(ctx, "default", 0, target, 0); err != nil {
			t.Fatal(err)
		}
		// Wait until the new master serves partition 0 through RESP.
		k0 := keyOfPartition(0, 4)
		tc := redis.NewClient(&redis.Options{Addr: c.NodeByAddr(target).RedisAddr})
		defer tc.Close()
		testcluster.Poll(t, 60*time.Second, func() error {
			if err := tc.Get(ctx, k0).Err(); !errors.Is(err, redis.Nil) {
				return err
			}
			return nil
		})
		for _, w := range walks {
			for w.cursor != 0 && page(w) {
			}
		}
		for k := range want {
			n := 0
			for i, w := range walks {
				if w.seen[k] > 1 {
					t.Fatalf("walk on node %d returned %s %d times", i, k, w.seen[k])
				}
				n += w.seen[k]
			}
			if n == 0 {
				t.Fatalf("no walk returned %s (partition %d)", k, keyspace.Partition([]byte(k), 4))
			}
		}
		expect(t, do("scan", "12345"), "error: ERR invalid cursor")
		if k, err := rdb.RandomKey(ctx).Result(); err != nil || k == "" {
			t.Fatalf("RANDOMKEY = %q, %v", k, err)
		}
	})

	t.Run("readonly", func(t *testing.T) {
		// A node that holds partition 1 as a slave answers MOVED, and
		// after READONLY serves the read from its own data.
		k := keyOfPartition(1, 4)
		expect(t, do("set", k, "from-master"), "OK")
		topo, err := cl.Pull(ctx, "default")
		if err != nil {
			t.Fatal(err)
		}
		p := topo.Tables[0].Partitions[1]
		slave := redis.NewClient(&redis.Options{Addr: c.NodeByAddr(p.Slaves[0]).RedisAddr})
		defer slave.Close()
		conn := slave.Conn()
		defer conn.Close()
		want := fmt.Sprintf("MOVED %d %s", keyspace.Slot([]byte(k)), c.NodeByAddr(p.Master).RedisAddr)
		if err := conn.Get(ctx, k).Err(); err == nil || err.Error() != want {
			t.Fatalf("GET on a slave: %v, want %s", err, want)
		}
		expect(t, conn.ReadOnly(ctx), "OK")
		// The slave may lag: poll until it has the write.
		testcluster.Poll(t, 10*time.Second, func() error {
			v, err := conn.Get(ctx, k).Result()
			if err != nil || v != "from-master" {
				return fmt.Errorf("GET after READONLY: %q, %v", v, err)
			}
			return nil
		})
		expect(t, conn.Exists(ctx, k), "1")
		expect(t, conn.StrLen(ctx, k), "11")
		if err := conn.Set(ctx, k, "x", 0).Err(); err == nil || err.Error() != want {
			t.Fatalf("SET after READONLY: %v, want %s", err, want)
		}
		expect(t, conn.ReadWrite(ctx), "OK")
		if err := conn.Get(ctx, k).Err(); err == nil || err.Error() != want {
			t.Fatalf("GET after READWRITE: %v, want %s", err, want)
		}
		// go-redis's ReadOnly cluster client reads from slaves as it likes.
		ro := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.RedisAddrs(), ReadOnly: true})
		defer ro.Close()
		for range 10 {
			if v, err := ro.Get(ctx, k).Result(); err != nil || v != "from-master" {
				t.Fatalf("ReadOnly client GET: %q, %v", v, err)
			}
		}
	})
}
