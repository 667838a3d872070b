package testcluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

func newClient(t *testing.T, c *testcluster.Cluster) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func createTable(t *testing.T, cl *client.Client, spec client.TableSpec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := cl.CreateTable(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
}

// pullTable returns table's topology as meta has it now.
func pullTable(t *testing.T, cl *client.Client, table string) *client.Topology {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo, err := cl.Pull(ctx, table)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func key(i int) []byte { return fmt.Appendf(nil, "key:%06d", i) }
func value(i int) []byte {
	return fmt.Appendf(nil, "value-%06d-%s", i, bytes.Repeat([]byte{'x'}, i%64))
}

// parallel runs fn(i) for i in [0, n) on workers goroutines and returns the
// first error.
func parallel(n, workers int, fn func(i int) error) error {
	var (
		wg   sync.WaitGroup
		once sync.Once
		err  error
		next = make(chan int)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if e := fn(i); e != nil {
					once.Do(func() { err = e })
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return err
}

// startLoops runs fn(w, i), i = 0, 1, ..., on each of workers goroutines
// until the returned stop is called or the test ends, so that a test that
// fails half-way leaves no loop calling a closed client. After a failed call
// a loop waits 10ms: a node that fails at once is not hammered.
func startLoops(t *testing.T, workers int, fn func(w, i int) error) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				if fn(w, i) != nil {
					select {
					case <-done:
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
		})
	}
	var once sync.Once
	stop = func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
	t.Cleanup(stop)
	return stop
}

func checkAll(ctx context.Context, cl *client.Client, table string, n int) error {
	return parallel(n, 16, func(i int) error {
		got, err := cl.Get(ctx, table, key(i))
		if err != nil {
			return fmt.Errorf("get %s: %w", key(i), err)
		}
		if !bytes.Equal(got, value(i)) {
			return fmt.Errorf("get %s = %q, want %q", key(i), got, value(i))
		}
		return nil
	})
}

// TestDataSurvivesKillingEveryNode writes 10,000 keys, kills every zpnode
// with SIGKILL, restarts them and reads every key back.
func TestDataSurvivesKillingEveryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: 16, Replicas: 3})

	const n = 10_000
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	err := parallel(n, 16, func(i int) error { return cl.Set(ctx, "t", key(i), value(i), 0) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d keys in %v", n, time.Since(start))
	if err := checkAll(ctx, cl, "t", n); err != nil {
		t.Fatal(err)
	}

	for _, p := range c.Nodes {
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range c.Nodes {
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.WaitTableWritable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := checkAll(ctx, cl, "t", n); err != nil {
		t.Fatal(err)
	}
	t.Logf("read %d keys back after kill -9 of every node in %v", n, time.Since(start))
}

// TestMetaOutages kills the Raft leader and shows that tables can still be
// created, then stops every meta server and shows that data keeps flowing.
func TestMetaOutages(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "before", Partitions: 8, Replicas: 3})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := c.Metas[leader]
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	next, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Metas[next] == old {
		t.Fatalf("leader is still the killed %s", old.Name)
	}
	t.Logf("new leader %s elected %v after killing %s", c.Metas[next].Name, time.Since(killed), old.Name)
	// Nodes learn the new leader from their PINGs, which it answers.
	for _, n := range c.Nodes {
		testcluster.Poll(t, 30*time.Second, func() error {
			info, err := cl.Info(ctx, n.Addr, client.InfoServer, "")
			if err != nil {
				return err
			}
			if info.Server == nil {
				return fmt.Errorf("node %s: INFO has no server section", n.Addr)
			}
			if got := info.Server.MetaLeader; got != c.Metas[next].Addr {
				return fmt.Errorf("node %s names meta leader %q, want %s", n.Addr, got, c.Metas[next].Addr)
			}
			return nil
		})
	}
	createTable(t, cl, client.TableSpec{Name: "after", Partitions: 8, Replicas: 3})
	if err := cl.Set(ctx, "after", []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}

	for _, p := range c.Metas {
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	// Every meta server is down: reads and writes to both tables go on,
	// through a client that already had the topology and through one that
	// got it before the outage.
	for i := range 200 {
		table := []string{"before", "after"}[i%2]
		if err := cl.Set(ctx, table, key(i), value(i), 0); err != nil {
			t.Fatalf("set with meta down: %v", err)
		}
		got, err := cl.Get(ctx, table, key(i))
		if err != nil || !bytes.Equal(got, value(i)) {
			t.Fatalf("get with meta down: %q, %v", got, err)
		}
	}
	if n, err := cl.IncrBy(ctx, "after", []byte("counter"), 5); err != nil || n != 5 {
		t.Fatalf("incrby with meta down: %d, %v", n, err)
	}
}

// TestTTL sets a key with a short TTL and checks it is there before and
// gone after, on GET, TTL and SCAN. A check before expiry counts only when
// its answer came back before the TTL ran out; on a machine so slow that none
// did, it tries again with twice the TTL, so the test always checks both.
func TestTTL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Nodes: 1})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: 4, Replicas: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	long := []byte("{session}.long")
	if err := cl.Set(ctx, "t", long, []byte("2"), 0); err != nil {
		t.Fatal(err)
	}
	scanKeys := func() (map[string]bool, error) {
		kvs, _, err := cl.Scan(ctx, "t", []byte("session"), nil, 100)
		keys := map[string]bool{}
		for _, kv := range kvs {
			keys[string(kv.Key)] = true
		}
		return keys, err
	}
	var (
		short []byte
		ttl   time.Duration
		set   time.Time
	)
	for ttl = time.Second; ; ttl *= 2 {
		if ttl > 16*time.Second {
			t.Fatal("no check before expiry answered within the TTL, up to 16s")
		}
		short = fmt.Appendf(nil, "{session}.short-%v", ttl)
		set = time.Now()
		if err := cl.Set(ctx, "t", short, []byte("1"), ttl); err != nil {
			t.Fatal(err)
		}
		_, getErr := cl.Get(ctx, "t", short)
		left, ttlErr := cl.TTL(ctx, "t", short)
		keys, scanErr := scanKeys()
		if time.Since(set) >= ttl {
			t.Logf("checks took longer than the %v TTL; again with twice that", ttl)
			continue
		}
		if getErr != nil {
			t.Fatalf("GET before the TTL ran out: %v", getErr)
		}
		if ttlErr != nil || left <= 0 || left > ttl {
			t.Fatalf("TTL %v, %v; want in (0, %v]", left, ttlErr, ttl)
		}
		if scanErr != nil || !keys[string(short)] {
			t.Fatalf("SCAN before the TTL ran out: %v, %v", keys, scanErr)
		}
		break
	}

	testcluster.Poll(t, ttl+5*time.Second, func() error {
		if _, err := cl.Get(ctx, "t", short); !errors.Is(err, status.ErrNotFound) {
			return fmt.Errorf("get: %v, want NOT_FOUND", err)
		}
		return nil
	})
	if since := time.Since(set); since < ttl {
		t.Fatalf("key expired after %v, before its %v TTL", since, ttl)
	}
	keys, err := scanKeys()
	if err != nil {
		t.Fatal(err)
	}
	if keys[string(short)] || !keys[string(long)] {
		t.Fatalf("scan after expiry: %v, want %s and no %s", keys, long, short)
	}
	if ttl, err := cl.TTL(ctx, "t", long); err != nil || ttl != -1 {
		t.Fatalf("TTL of key without expiry: %v, %v; want -1", ttl, err)
	}
}

// TestBadInput sends each kind of bad request to a node and checks the
// precise code and that nothing changed.
func TestBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	const maxValue = 1 << 20
	c := testcluster.Start(t, testcluster.Options{Nodes: 1, NodeArgs: []string{"--max-value-size", fmt.Sprint(maxValue)}})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: 4, Replicas: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	node := c.Nodes[0].Addr

	existing := []byte("existing")
	if err := cl.Set(ctx, "t", existing, []byte("original"), 0); err != nil {
		t.Fatal(err)
	}
	set := func(table string, k, v []byte, ttl int64) *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: table, Key: k, Value: v, TtlMs: ttl}}}
	}
	longID := func(req *zppb.Request) *zppb.Request {
		req.RequestId = bytes.Repeat([]byte{'i'}, replica.MaxRequestIDSize+1)
		return req
	}
	tests := []struct {
		name string
		req  *zppb.Request
		want zppb.Code
	}{
		{"set with a request id over 16 bytes", longID(set("t", existing, []byte("v"), 0)), zppb.Code_INVALID_ARGUMENT},
		{"mset with a request id over 16 bytes", longID(&zppb.Request{Cmd: &zppb.Request_Mset{Mset: &zppb.MSetRequest{Table: "t", Kvs: []*zppb.KeyValue{
			{Key: existing, Value: []byte("changed")}}}}}), zppb.Code_INVALID_ARGUMENT},
		{"key over 64 KiB", set("t", bytes.Repeat([]byte{'k'}, keyspace.MaxKeySize+1), []byte("v"), 0), zppb.Code_KEY_TOO_LARGE},
		{"value over limit", set("t", existing, make([]byte, maxValue+1), 0), zppb.Code_VALUE_TOO_LARGE},
		{"unknown table", set("nope", existing, []byte("v"), 0), zppb.Code_TABLE_NOT_FOUND},
		{"empty key", set("t", nil, []byte("v"), 0), zppb.Code_EMPTY_KEY},
		{"negative ttl", set("t", existing, []byte("v"), -5), zppb.Code_INVALID_ARGUMENT},
		{"incrby on a non-integer", &zppb.Request{Cmd: &zppb.Request_Incrby{Incrby: &zppb.IncrByRequest{Table: "t", Key: existing, Delta: 1}}}, zppb.Code_NOT_INTEGER},
		{"write batch across slots", &zppb.Request{Cmd: &zppb.Request_WriteBatch{WriteBatch: &zppb.WriteBatchRequest{Table: "t", Ops: []*zppb.BatchOp{
			{Key: []byte("{a}x"), Value: []byte("1")}, {Key: existing, Value: []byte("2")},
		}}}}, zppb.Code_CROSS_SLOT},
		{"mset with one bad key", &zppb.Request{Cmd: &zppb.Request_Mset{Mset: &zppb.MSetRequest{Table: "t", Kvs: []*zppb.KeyValue{
			{Key: existing, Value: []byte("changed")}, {Key: nil, Value: []byte("x")},
		}}}}, zppb.Code_EMPTY_KEY},
		{"empty request", &zppb.Request{}, zppb.Code_INVALID_ARGUMENT},
		{"meta command sent to a node", &zppb.Request{Cmd: &zppb.Request_Pull{Pull: &zppb.PullRequest{}}}, zppb.Code_INVALID_ARGUMENT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Call(ctx, node, tt.req)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code %v (%v), want %v", got, err, tt.want)
			}
			if got, err := cl.Get(ctx, "t", existing); err != nil || string(got) != "original" {
				t.Fatalf("existing key is now %q, %v", got, err)
			}
		})
	}

	t.Run("malformed frame", func(t *testing.T) {
		conn, err := rpc.Dial(ctx, node, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		resp, err := conn.CallRaw(ctx, []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Code != zppb.Code_MALFORMED {
			t.Fatalf("code %v, want MALFORMED", resp.Code)
		}
		// The node goes on serving the same connection.
		resp, err = conn.Call(ctx, &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: "t", Key: existing}}})
		if err != nil || string(resp.GetGet().GetValue()) != "original" {
			t.Fatalf("after malformed frame: %v, %v", resp, err)
		}
	})
}
