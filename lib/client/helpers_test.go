package client

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// testTimeout bounds every test call: long enough never to fire on a slow
// CI machine, so a test that reaches it has hung.
const testTimeout = 20 * time.Second

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newTestClient returns a client of cl with fast retries, closed at the end
// of the test.
func newTestClient(t *testing.T, cl *cluster, mod ...func(*Options)) *Client {
	t.Helper()
	opts := Options{
		MetaAddrs:        cl.MetaAddrs(),
		PoolConnsPerAddr: 1,
		RetryBackoff:     time.Millisecond,
		MaxRetryBackoff:  5 * time.Millisecond,
		DefaultTimeout:   testTimeout,
		Logger:           slog.New(slog.DiscardHandler),
	}
	for _, m := range mod {
		m(&opts)
	}
	c, err := New(testCtx(t), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// keyIn returns a key that a table with n partitions puts in partition id.
func keyIn(t *testing.T, n, id uint32, prefix string) []byte {
	t.Helper()
	for i := range 1 << 20 {
		k := fmt.Appendf(nil, "%s-%d", prefix, i)
		if keyspace.Partition(k, n) == id {
			return k
		}
	}
	t.Fatalf("no key for partition %d of %d", id, n)
	return nil
}

// twoPartitions returns the shared cluster with a table of two
// partitions on different masters, a client of it, and a key in each
// partition, stored with values "a" and "b".
func twoPartitions(t *testing.T) (cl *cluster, c *Client, table string, k0, k1 []byte) {
	t.Helper()
	cl = sharedCluster(t)
	tb := cl.addTable("", 2, 1)
	if tb.Partitions[0].Master == tb.Partitions[1].Master {
		t.Fatalf("both partitions of %s on %s", tb.Name, tb.Partitions[0].Master)
	}
	c = newTestClient(t, cl)
	k0, k1 = keyIn(t, 2, 0, "two"), keyIn(t, 2, 1, "two")
	if err := c.MSet(testCtx(t), tb.Name, []KeyValue{{k0, []byte("a")}, {k1, []byte("b")}}, 0); err != nil {
		t.Fatal(err)
	}
	return cl, c, tb.Name, k0, k1
}

// times returns a hook that answers the first n requests of cmd with
// resp (every one when n < 0) and leaves the rest, and other commands, to
// the server.
func times(n int, cmd string, resp func(req *zppb.Request) *zppb.Response) inproc.Hook {
	var mu sync.Mutex
	left := n
	return func(req *zppb.Request) *zppb.Response {
		mu.Lock()
		if cmdOf(req) != cmd || left == 0 {
			mu.Unlock()
			return nil
		}
		left--
		mu.Unlock()
		return resp(req)
	}
}

func cmdOf(req *zppb.Request) string {
	switch req.GetCmd().(type) {
	case *zppb.Request_Set:
		return "set"
	case *zppb.Request_Get:
		return "get"
	case *zppb.Request_Incrby:
		return "incrby"
	case *zppb.Request_Mget:
		return "mget"
	case *zppb.Request_Mset:
		return "mset"
	case *zppb.Request_Exists:
		return "exists"
	case *zppb.Request_Pull:
		return "pull"
	case *zppb.Request_CreateTable:
		return "create_table"
	case *zppb.Request_FlushTable:
		return "flush_table"
	}
	return "other"
}
