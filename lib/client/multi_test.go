package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client/clienttest"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func kvsN(n int, prefix string) []KV {
	kvs := make([]KV, n)
	for i := range kvs {
		kvs[i] = KV{Key: fmt.Appendf(nil, "%s-%d", prefix, i), Value: fmt.Appendf(nil, "v%d", i)}
	}
	return kvs
}

// MSET and MGET send one request per master node, in parallel, each with
// exactly the keys that node masters.
func TestMultiSplitsByNode(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 3)
	cl.AddTable("t", 16)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	kvs := kvsN(200, "multi")
	if err := c.MSet(ctx, "t", kvs, 0); err != nil {
		t.Fatalf("MSet: %v", err)
	}
	for _, n := range cl.Nodes {
		if got := n.Calls("mset"); got != 1 {
			t.Errorf("node %s got %d MSETs, want 1", n.Addr, got)
		}
	}
	for _, kv := range kvs {
		want := masterOf(t, cl, "t", kv.Key)
		for _, n := range cl.Nodes {
			if _, ok := n.Value("t", kv.Key); ok != (n == want) {
				t.Fatalf("key %q on %s = %v; master is %s", kv.Key, n.Addr, ok, want.Addr)
			}
		}
	}

	keys := [][]byte{[]byte("missing-1")}
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
	}
	keys = append(keys, []byte("missing-2"), kvs[0].Key) // duplicates are fine
	res, err := c.MGet(ctx, "t", keys)
	if err != nil {
		t.Fatalf("MGet: %v", err)
	}
	if len(res) != len(keys) {
		t.Fatalf("%d results for %d keys", len(res), len(keys))
	}
	want := make(map[string]string)
	for _, kv := range kvs {
		want[string(kv.Key)] = string(kv.Value)
	}
	for i, r := range res {
		if !bytes.Equal(r.Key, keys[i]) || r.Err != nil {
			t.Fatalf("result %d = %+v for key %q", i, r, keys[i])
		}
		v, stored := want[string(r.Key)]
		if r.Found != stored || string(r.Value) != v {
			t.Fatalf("key %q = %q, found %v; want %q, found %v", r.Key, r.Value, r.Found, v, stored)
		}
	}
	for _, n := range cl.Nodes {
		if got := n.Calls("mget"); got != 1 {
			t.Errorf("node %s got %d MGETs, want 1", n.Addr, got)
		}
	}
}

// Keys answered MOVE or WAIT one by one are retried on their own, at the
// right node, while the others are done.
func TestMultiRetriesPerKeyResults(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 3)
	cl.AddTable("t", 6)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	kvs := kvsN(60, "pk")
	if err := c.MSet(ctx, "t", kvs, 0); err != nil {
		t.Fatal(err)
	}

	// Partition 0 moves without the client knowing: its old master answers
	// MOVE per key. The data moves with it.
	key0 := keyIn(t, 6, 0, "pk-moved")
	if err := c.Set(ctx, "t", key0, []byte("moved"), 0); err != nil {
		t.Fatal(err)
	}
	oldM := masterOf(t, cl, "t", key0)
	newM := cl.Nodes[(indexOf(cl, oldM)+2)%3] // not the master of partition 1
	cl.SetMaster("t", 0, newM.Addr)
	for _, k := range append([][]byte{key0}, keysOf(kvs)...) {
		if v, ok := oldM.Value("t", k); ok && keyspace.Partition(k, 6) == 0 {
			copyKey(t, newM, k, v)
		}
	}
	// Another node answers WAIT for every key of its first MGET.
	waiter := cl.Nodes[(indexOf(cl, oldM)+1)%3]
	waiter.SetHook(times(1, "mget", func(req *zppb.Request) *zppb.Response {
		out := &zppb.MGetResponse{}
		for range req.GetMget().GetKeys() {
			out.Results = append(out.Results, &zppb.KeyResult{Code: zppb.Code_WAIT})
		}
		return &zppb.Response{Result: &zppb.Response_Mget{Mget: out}}
	}))

	res, err := c.MGet(ctx, "t", append([][]byte{key0}, keysOf(kvs)...))
	if err != nil {
		t.Fatalf("MGet: %v", err)
	}
	for _, r := range res {
		if !r.Found {
			t.Fatalf("key %q not found", r.Key)
		}
	}
	if string(res[0].Value) != "moved" {
		t.Fatalf("moved key = %q", res[0].Value)
	}
	if waiter.Calls("mget") < 2 {
		t.Fatal("WAITed keys were not retried")
	}
}

// copyKey stores key in n, as a migration would have.
func copyKey(t *testing.T, n *clienttest.Node, key, value []byte) {
	t.Helper()
	resp := n.Handle(&zppb.Request{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: "t", Key: key, Value: value}}})
	if err := status.FromResponse(resp); err != nil {
		t.Fatal(err)
	}
}

func keysOf(kvs []KV) [][]byte {
	keys := make([][]byte, len(kvs))
	for i, kv := range kvs {
		keys[i] = kv.Key
	}
	return keys
}

func indexOf(cl *clienttest.Cluster, n *clienttest.Node) int {
	for i, o := range cl.Nodes {
		if o == n {
			return i
		}
	}
	return -1
}

// A key refused for good fails alone: the error names it, the rest are
// written.
func TestMultiPartialFailure(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 2)
	cl.AddTable("t", 4)
	c := newTestClient(t, cl)
	kvs := kvsN(20, "pf")
	bad := kvs[7].Key
	for _, n := range cl.Nodes {
		n.SetHook(func(req *zppb.Request) *zppb.Response {
			ms := req.GetMset()
			if ms == nil {
				return nil
			}
			// The node refuses bad and writes the rest.
			var kept []*zppb.KeyValue
			for _, kv := range ms.GetKvs() {
				if !bytes.Equal(kv.GetKey(), bad) {
					kept = append(kept, kv)
				}
			}
			resp := n.Handle(&zppb.Request{Cmd: &zppb.Request_Mset{Mset: &zppb.MSetRequest{Table: ms.GetTable(), Kvs: kept, TtlMs: ms.GetTtlMs()}}})
			results := resp.GetMset().GetResults()
			var out []*zppb.KeyResult
			for _, kv := range ms.GetKvs() {
				if bytes.Equal(kv.GetKey(), bad) {
					out = append(out, &zppb.KeyResult{Code: zppb.Code_QUOTA_EXCEEDED, Msg: "full"})
					continue
				}
				out, results = append(out, results[0]), results[1:]
			}
			resp.GetMset().Results = out
			return resp
		})
	}
	err := c.MSet(testCtx(t), "t", kvs, time.Minute)
	var me *MultiError
	if !errors.As(err, &me) || len(me.Errs) != 1 || me.Errs[0].Index != 7 || me.Total != 20 {
		t.Fatalf("MSet = %v, want a MultiError for key 7 only", err)
	}
	if !errors.Is(err, status.ErrQuotaExceeded) {
		t.Fatalf("errors.Is(%v, ErrQuotaExceeded) = false", err)
	}
	for i, kv := range kvs {
		found := false
		for _, n := range cl.Nodes {
			_, ok := n.Value("t", kv.Key)
			found = found || ok
		}
		if found != (i != 7) {
			t.Fatalf("key %d stored = %v", i, found)
		}
	}
}

// Keys of a dead node run out of time; the other keys are answered, and
// the error lists only the dead node's keys.
func TestMGetDeadlineOnOneNode(t *testing.T) {
	cl, c, k0, k1 := twoPartitions(t)
	ctx := testCtx(t)
	dead := masterOf(t, cl, "t", k1)
	dead.SetHook(func(*zppb.Request) *zppb.Response { return &zppb.Response{Code: zppb.Code_WAIT} })
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	res, err := c.MGet(short, "t", [][]byte{k0, k1})
	var me *MultiError
	if !errors.As(err, &me) || len(me.Errs) != 1 || me.Errs[0].Index != 1 {
		t.Fatalf("MGet = %v, want a MultiError for key 1", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, status.ErrWait) {
		t.Fatalf("err = %v, want DeadlineExceeded wrapping WAIT", err)
	}
	if !res[0].Found || string(res[0].Value) != "a" || res[1].Err == nil {
		t.Fatalf("results %+v", res)
	}
}

// Large calls are split into several requests per node.
func TestMultiSplitsLargeCalls(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 1)
	cl.AddTable("t", 1)
	c := newTestClient(t, cl)
	kvs := kvsN(2*maxKeysPerRequest+1, "big")
	if err := c.MSet(testCtx(t), "t", kvs, 0); err != nil {
		t.Fatal(err)
	}
	if got := cl.Nodes[0].Calls("mset"); got != 3 {
		t.Fatalf("%d MSETs for %d keys, want 3", got, len(kvs))
	}
	if got := cl.Nodes[0].Len("t"); got != len(kvs) {
		t.Fatalf("%d keys stored, want %d", got, len(kvs))
	}
}

func TestMultiEmptyAndUnknownTable(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 1)
	cl.AddTable("t", 1)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	if res, err := c.MGet(ctx, "t", nil); err != nil || len(res) != 0 {
		t.Fatalf("MGet of nothing = %v, %v", res, err)
	}
	if err := c.MSet(ctx, "t", nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.MGet(ctx, "nosuch", [][]byte{[]byte("k")}); !errors.Is(err, status.ErrTableNotFound) {
		t.Fatalf("MGet unknown table: %v", err)
	}
	var me *MultiError
	if err := c.MSet(ctx, "nosuch", []KV{{Key: []byte("k")}}, 0); !errors.Is(err, status.ErrTableNotFound) || errors.As(err, &me) {
		t.Fatalf("MSet unknown table: %v", err)
	}
}

// The per-node requests of one call are in flight together: each node
// answers only once every node has received its request, which a client
// sending them one after another would never see.
func TestMultiRequestsRunInParallel(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 3)
	cl.AddTable("t", 3)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	arrived := make(chan struct{}, len(cl.Nodes))
	all := make(chan struct{})
	go func() {
		for range cl.Nodes {
			select {
			case <-arrived:
			case <-ctx.Done():
				return
			}
		}
		close(all)
	}()
	for _, n := range cl.Nodes {
		n.SetHook(func(req *zppb.Request) *zppb.Response {
			if req.GetMget() == nil {
				return nil
			}
			arrived <- struct{}{}
			select {
			case <-all:
			case <-ctx.Done():
			}
			return nil
		})
	}
	keys := [][]byte{keyIn(t, 3, 0, "p"), keyIn(t, 3, 1, "p"), keyIn(t, 3, 2, "p")}
	if _, err := c.MGet(ctx, "t", keys); err != nil {
		t.Fatal(err)
	}
	select {
	case <-all:
	default:
		t.Fatal("the nodes never had their requests at the same time")
	}
}

// MSET is idempotent: a request whose connection broke is sent again.
func TestMSetRetriedAfterDroppedConnection(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 1)
	cl.AddTable("t", 2)
	c := newTestClient(t, cl)
	applyThenDrop(cl.Nodes[0], "mset")
	kvs := kvsN(10, "drop")
	if err := c.MSet(testCtx(t), "t", kvs, 0); err != nil {
		t.Fatal(err)
	}
	if got := cl.Nodes[0].Calls("mset"); got != 2 {
		t.Fatalf("%d MSETs, want 2", got)
	}
	if got := cl.Nodes[0].Len("t"); got != len(kvs) {
		t.Fatalf("%d keys stored, want %d", got, len(kvs))
	}
}
