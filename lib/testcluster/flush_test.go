package testcluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestFlushTable flushes a table of 3 nodes × 3 replicas: every key is
// gone through every read path and on every replica, which all end at the
// same (term, lsn); writes after the flush stay; an unknown table is
// refused; another table keeps its data.
func TestFlushTable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{})
	cl := newClient(t, c)
	const partitions, n, kept = 4, 2000, 300
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: partitions, Replicas: 3, MinSyncReplicas: 1})
	createTable(t, cl, client.TableSpec{Name: "keep", Partitions: 2, Replicas: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	write := func(table string, from, to int) {
		t.Helper()
		var kvs []client.KeyValue
		for i := from; i < to; i++ {
			kvs = append(kvs, client.KeyValue{Key: key(i), Value: value(i)})
		}
		if err := cl.MSet(ctx, table, kvs, 0); err != nil {
			t.Fatal(err)
		}
	}
	write("t", 0, n)
	write("keep", 0, kept)
	// Keys with a TTL and keys listed by a hashtag scan go too.
	if err := cl.Set(ctx, "t", []byte("ttl"), []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := cl.WriteBatch(ctx, "t", []client.BatchOp{client.PutOp([]byte("{u}a"), []byte("1"), 0), client.PutOp([]byte("{u}b"), []byte("2"), 0)}); err != nil {
		t.Fatal(err)
	}

	if err := cl.FlushTable(ctx, "nosuch"); !errors.Is(err, status.ErrTableNotFound) {
		t.Fatalf("flushing an unknown table: %v, want TABLE_NOT_FOUND", err)
	}
	before := waitConverged(t, c, "t", partitions, 3, time.Minute)
	if err := cl.FlushTable(ctx, "t"); err != nil {
		t.Fatalf("FlushTable: %v", err)
	}
	after := waitConverged(t, c, "t", partitions, 3, time.Minute)
	for p := range uint32(partitions) {
		// One record per partition: the flush.
		if after[p][1] != before[p][1]+1 {
			t.Errorf("partition %d: lsn %d before the flush, %d after; want one record", p, before[p][1], after[p][1])
		}
	}
	checkFlushed(ctx, t, cl, n)
	if err := checkAll(ctx, cl, "keep", kept); err != nil {
		t.Fatalf("the other table after the flush: %v", err)
	}

	// Writes after the flush stay, here and on every replica.
	const again = 100
	write("t", 0, again)
	if err := checkAll(ctx, cl, "t", again); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, c, "t", partitions, 3, time.Minute)
	waitConverged(t, c, "keep", 2, 3, time.Minute)
	assertReplicasEqual(t, replicaDigests(t, c, "t", partitions), partitions, again)
	assertReplicasEqual(t, replicaDigests(t, c, "keep", 2), 2, kept)
}

// checkFlushed checks that GET, MGET, EXISTS, TTL and SCAN find none of
// the keys the test wrote to table t.
func checkFlushed(ctx context.Context, t *testing.T, cl *client.Client, n int) {
	t.Helper()
	keys := [][]byte{[]byte("ttl"), []byte("{u}a"), []byte("{u}b")}
	for i := range n {
		keys = append(keys, key(i))
	}
	res, err := cl.MGet(ctx, "t", keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Found {
			t.Fatalf("key %q survived the flush", r.Key)
		}
	}
	for _, k := range keys[:4] {
		if _, err := cl.Get(ctx, "t", k); !errors.Is(err, status.ErrNotFound) {
			t.Fatalf("GET %q after the flush: %v", k, err)
		}
		if ok, err := cl.Exists(ctx, "t", k); err != nil || ok {
			t.Fatalf("EXISTS %q after the flush: %v, %v", k, ok, err)
		}
	}
	if _, err := cl.TTL(ctx, "t", []byte("ttl")); !errors.Is(err, status.ErrNotFound) {
		t.Fatalf("TTL after the flush: %v", err)
	}
	kvs, _, err := cl.Scan(ctx, "t", []byte("u"), nil, 10)
	if err != nil || len(kvs) != 0 {
		t.Fatalf("SCAN {u} after the flush: %v, %v", kvs, err)
	}
}
