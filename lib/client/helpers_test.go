package client

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client/clienttest"
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
func newTestClient(t *testing.T, cl *clienttest.Cluster, mod ...func(*Options)) *Client {
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

// twoPartitions returns a cluster of two nodes with table "t" of two
// partitions, a client of it, and a key in each partition, stored with
// values "a" and "b".
func twoPartitions(t *testing.T) (cl *clienttest.Cluster, c *Client, k0, k1 []byte) {
	t.Helper()
	cl = clienttest.NewCluster(t, 1, 2)
	cl.AddTable("t", 2)
	c = newTestClient(t, cl)
	k0, k1 = keyIn(t, 2, 0, "two"), keyIn(t, 2, 1, "two")
	if err := c.MSet(testCtx(t), "t", []KV{{k0, []byte("a")}, {k1, []byte("b")}}, 0); err != nil {
		t.Fatal(err)
	}
	return cl, c, k0, k1
}

// masterOf returns the node the cluster says masters key.
func masterOf(t *testing.T, cl *clienttest.Cluster, table string, key []byte) *clienttest.Node {
	t.Helper()
	for _, tb := range cl.Topology().Tables {
		if tb.Name == table {
			return cl.Node(tb.Partitions[keyspace.Partition(key, tb.PartitionCount)].Master)
		}
	}
	t.Fatalf("no table %q", table)
	return nil
}

// otherNode returns a node of cl that is not n.
func otherNode(cl *clienttest.Cluster, n *clienttest.Node) *clienttest.Node {
	for _, o := range cl.Nodes {
		if o != n {
			return o
		}
	}
	return nil
}

// calls sums a command's calls over nodes.
func calls(nodes []*clienttest.Node, cmd string) int {
	total := 0
	for _, n := range nodes {
		total += n.Calls(cmd)
	}
	return total
}

func metaCalls(cl *clienttest.Cluster, cmd string) int {
	total := 0
	for _, m := range cl.Metas {
		total += m.Calls(cmd)
	}
	return total
}

// times returns a hook that answers the first n requests of cmd with
// resp and leaves the rest (and other commands) to the default.
func times(n int, cmd string, resp func(req *zppb.Request) *zppb.Response) clienttest.Hook {
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
