package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func kvsN(n int, prefix string) []KeyValue {
	kvs := make([]KeyValue, n)
	for i := range kvs {
		kvs[i] = KeyValue{Key: fmt.Appendf(nil, "%s-%d", prefix, i), Value: fmt.Appendf(nil, "v%d", i)}
	}
	return kvs
}

// MSET and MGET send one request per master node, in parallel, each with
// exactly the keys that node masters.
func TestMultiSplitsByNode(t *testing.T) {
	cl := sharedCluster(t)
	// Every node masters some of the partitions.
	tb := cl.addTable("", 16, 3)
	tb = cl.spreadMasters(tb, allParts, cl.Nodes...)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	kvs := kvsN(200, "multi")
	// The keys of each MSET and MGET each node was sent.
	var mu sync.Mutex
	sent := map[string]map[string][][]string{"mset": {}, "mget": {}}
	for _, n := range cl.Nodes {
		n.Tap().SetHook(func(req *zppb.Request) *zppb.Response {
			var keys []string
			for _, kv := range req.GetMset().GetKvs() {
				keys = append(keys, string(kv.GetKey()))
			}
			for _, k := range req.GetMget().GetKeys() {
				keys = append(keys, string(k))
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case req.GetMset() != nil:
				sent["mset"][n.Addr] = append(sent["mset"][n.Addr], keys)
			case req.GetMget() != nil:
				sent["mget"][n.Addr] = append(sent["mget"][n.Addr], keys)
			}
			return nil
		})
	}
	if err := c.MSet(ctx, tb.Name, kvs, 0); err != nil {
		t.Fatalf("MSet: %v", err)
	}
	keys := [][]byte{[]byte("missing-1")}
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
	}
	keys = append(keys, []byte("missing-2"), kvs[0].Key) // duplicates are fine
	res, err := c.MGet(ctx, tb.Name, keys)
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

	// One request per node carries every key it masters. On a loaded
	// machine a node may answer WAIT for a moment (its lease lapsing
	// between two PINGs); the client then sends it some of those keys
	// again, and no others.
	mu.Lock()
	defer mu.Unlock()
	for op, batch := range map[string][][]byte{"mset": keysOf(kvs), "mget": keys} {
		for _, n := range cl.Nodes {
			mine := make(map[string]bool)
			for _, k := range batch {
				if cl.Node(tb.Partitions[keyspace.Partition(k, 16)].Master) == n {
					mine[string(k)] = true
				}
			}
			reqs := sent[op][n.Addr]
			if len(reqs) == 0 {
				t.Fatalf("node %s got no %s", n.Addr, op)
			}
			first := make(map[string]bool)
			for _, k := range reqs[0] {
				first[k] = true
			}
			if !maps.Equal(first, mine) {
				t.Errorf("node %s: first %s had %d distinct keys, want the %d it masters", n.Addr, op, len(first), len(mine))
			}
			for _, r := range reqs[1:] {
				for _, k := range r {
					if !mine[k] {
						t.Errorf("node %s was sent key %q in a %s, which it does not master", n.Addr, k, op)
					}
				}
			}
			if len(reqs) > 1 {
				t.Logf("node %s: %d %s requests (retries)", n.Addr, len(reqs), op)
			}
		}
	}
}

// Keys answered MOVE or WAIT one by one are retried on their own, at the
// right node, while the others are done.
func TestMultiRetriesPerKeyResults(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 6, 3)
	oldM := cl.Node(tb.Partitions[0].Master)
	newM := cl.Node(tb.Partitions[0].Slaves[0])
	// The third node masters some other partition: it answers WAIT for
	// every key of its first MGET.
	waiter := cl.Node(tb.Partitions[0].Slaves[1])
	cl.spreadMasters(tb, 0, waiter)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	kvs := kvsN(60, "pk")
	if err := c.MSet(ctx, tb.Name, kvs, 0); err != nil {
		t.Fatal(err)
	}

	// Partition 0 moves to a slave without the client knowing: its old
	// master answers MOVE per key. The data is on the slave already.
	key0 := keyIn(t, 6, 0, "pk-moved")
	if err := c.Set(ctx, tb.Name, key0, []byte("moved"), 0); err != nil {
		t.Fatal(err)
	}
	cl.setMaster(tb.Name, 0, newM.Addr)
	waiter.Tap().SetHook(times(1, "mget", func(req *zppb.Request) *zppb.Response {
		out := &zppb.MGetResponse{}
		for range req.GetMget().GetKeys() {
			out.Results = append(out.Results, &zppb.KeyResult{Code: zppb.Code_WAIT})
		}
		return &zppb.Response{Result: &zppb.Response_Mget{Mget: out}}
	}))

	res, err := c.MGet(ctx, tb.Name, append([][]byte{key0}, keysOf(kvs)...))
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
	if oldM.Tap().Calls("mget") == 0 {
		t.Fatal("the old master was never asked: no MOVE was followed")
	}
	if waiter.Tap().Calls("mget") < 2 {
		t.Fatal("WAITed keys were not retried")
	}
}

func keysOf(kvs []KeyValue) [][]byte {
	keys := make([][]byte, len(kvs))
	for i, kv := range kvs {
		keys[i] = kv.Key
	}
	return keys
}

// A key refused for good fails alone: the error names it, the rest are
// written.
func TestMultiPartialFailure(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 4, 1).Name
	c := newTestClient(t, cl)
	kvs := kvsN(20, "pf")
	bad := kvs[7].Key
	for _, n := range cl.Nodes {
		n := n.Tap()
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
			resp, err := n.Forward(testCtx(t), &zppb.Request{Cmd: &zppb.Request_Mset{Mset: &zppb.MSetRequest{Table: ms.GetTable(), Kvs: kept, TtlMs: ms.GetTtlMs()}}})
			if err != nil {
				return &zppb.Response{Code: zppb.Code_ERROR, Msg: err.Error()}
			}
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
	err := c.MSet(testCtx(t), tb, kvs, time.Minute)
	var me *MultiError
	if !errors.As(err, &me) || len(me.Errs) != 1 || me.Errs[0].Index != 7 || me.Total != 20 {
		t.Fatalf("MSet = %v, want a MultiError for key 7 only", err)
	}
	if !errors.Is(err, status.ErrQuotaExceeded) {
		t.Fatalf("errors.Is(%v, ErrQuotaExceeded) = false", err)
	}
	for i, kv := range kvs {
		_, err := cl.get(tb, kv.Key)
		found := err == nil
		if err != nil && !errors.Is(err, status.ErrNotFound) {
			t.Fatal(err)
		}
		if found != (i != 7) {
			t.Fatalf("key %d stored = %v", i, found)
		}
	}
}

// Keys of a dead node run out of time; the other keys are answered, and
// the error lists only the dead node's keys.
func TestMGetDeadlineOnOneNode(t *testing.T) {
	cl, c, tb, k0, k1 := twoPartitions(t)
	ctx := testCtx(t)
	dead := cl.masterOf(tb, k1).Tap()
	dead.SetHook(times(-1, "mget", func(*zppb.Request) *zppb.Response { return &zppb.Response{Code: zppb.Code_WAIT} }))
	// Long enough for the healthy node to answer on a busy machine.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	res, err := c.MGet(short, tb, [][]byte{k0, k1})
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
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 1).Name
	c := newTestClient(t, cl)
	kvs := kvsN(2*maxKeysPerRequest+1, "big")
	if err := c.MSet(testCtx(t), tb, kvs, 0); err != nil {
		t.Fatal(err)
	}
	if got := cl.calls("mset"); got != 3 {
		t.Fatalf("%d MSETs for %d keys, want 3", got, len(kvs))
	}
	if got := cl.stored(tb, kvs); got != len(kvs) {
		t.Fatalf("%d keys stored, want %d", got, len(kvs))
	}
}

func TestMultiEmptyAndUnknownTable(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 1).Name
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	if res, err := c.MGet(ctx, tb, nil); err != nil || len(res) != 0 {
		t.Fatalf("MGet of nothing = %v, %v", res, err)
	}
	if err := c.MSet(ctx, tb, nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.MGet(ctx, "nosuch", [][]byte{[]byte("k")}); !errors.Is(err, status.ErrTableNotFound) {
		t.Fatalf("MGet unknown table: %v", err)
	}
	var me *MultiError
	if err := c.MSet(ctx, "nosuch", []KeyValue{{Key: []byte("k")}}, 0); !errors.Is(err, status.ErrTableNotFound) || errors.As(err, &me) {
		t.Fatalf("MSet unknown table: %v", err)
	}
}

// The per-node requests of one call are in flight together: each node
// answers only once every node has received its request, which a client
// sending them one after another would never see.
func TestMultiRequestsRunInParallel(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 3, 1)
	for i, p := range tb.Partitions {
		for _, q := range tb.Partitions[:i] {
			if p.Master == q.Master {
				t.Fatalf("partitions %d and %d both on %s", q.Id, p.Id, p.Master)
			}
		}
	}
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
		n.Tap().SetHook(func(req *zppb.Request) *zppb.Response {
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
	if _, err := c.MGet(ctx, tb.Name, keys); err != nil {
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
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 1).Name
	c := newTestClient(t, cl)
	n := cl.masterOf(tb, []byte("k")).Tap()
	applyThenDrop(t, n, "mset")
	kvs := kvsN(10, "drop")
	if err := c.MSet(testCtx(t), tb, kvs, 0); err != nil {
		t.Fatal(err)
	}
	if got := n.Calls("mset"); got != 2 {
		t.Fatalf("%d MSETs, want 2", got)
	}
	if got := cl.stored(tb, kvs); got != len(kvs) {
		t.Fatalf("%d keys stored, want %d", got, len(kvs))
	}
}
