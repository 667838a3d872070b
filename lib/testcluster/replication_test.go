package testcluster_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// replicationInfo returns INFO replication of every running node, by node
// address.
func replicationInfo(ctx context.Context, c *testcluster.Cluster, table string) (map[string][]*zppb.ReplicaInfo, error) {
	out := make(map[string][]*zppb.ReplicaInfo)
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		resp, err := c.Call(ctx, n.Addr, &zppb.Request{Cmd: &zppb.Request_Info{Info: &zppb.InfoRequest{
			Section: zppb.InfoSection_INFO_REPLICATION, Table: table,
		}}})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.Name, err)
		}
		out[n.Addr] = resp.GetInfo().GetReplication()
	}
	return out, nil
}

// waitConverged polls until every replica of every partition of table
// reports the same (term, lsn) as its master, and returns that position by
// partition.
func waitConverged(t *testing.T, c *testcluster.Cluster, table string, partitions, replicas int, timeout time.Duration) map[uint32][2]uint64 {
	t.Helper()
	var pos map[uint32][2]uint64
	testcluster.Poll(t, timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		infos, err := replicationInfo(ctx, c, table)
		if err != nil {
			return err
		}
		byPart := make(map[uint32][][2]uint64)
		for _, list := range infos {
			for _, ri := range list {
				byPart[ri.Partition] = append(byPart[ri.Partition], [2]uint64{ri.Term, ri.Lsn})
			}
		}
		pos = make(map[uint32][2]uint64)
		for p := range uint32(partitions) {
			got := byPart[p]
			if len(got) != replicas {
				return fmt.Errorf("partition %d: %d replicas report, want %d", p, len(got), replicas)
			}
			for _, g := range got[1:] {
				if g != got[0] {
					return fmt.Errorf("partition %d: positions differ: %v", p, got)
				}
			}
			pos[p] = got[0]
		}
		return nil
	})
	return pos
}

// replicaDigests stops every node gracefully and opens each replica of
// table from its data directory, returning digest and position per node
// and partition.
type replicaState struct {
	digest    string
	keys      int
	term, lsn uint64
}

func replicaDigests(t *testing.T, c *testcluster.Cluster, table string, partitions int) map[string]map[uint32]replicaState {
	t.Helper()
	for _, n := range c.Nodes {
		if err := n.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	shared, err := engine.NewShared(engine.SharedOptions{BlockCacheSize: 16 << 20, WriteBufferSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	now := time.Now().UnixMilli()
	out := make(map[string]map[uint32]replicaState)
	for _, n := range c.Nodes {
		out[n.Name] = make(map[uint32]replicaState)
		for p := range uint32(partitions) {
			dir := filepath.Join(n.DataDir, table, strconv.Itoa(int(p)))
			r, err := replica.Open(replica.Options{Dir: dir, Table: table, ID: p, Shared: shared, Logger: quietLogger})
			if err != nil {
				t.Fatalf("%s partition %d: %v", n.Name, p, err)
			}
			d, keys, err := r.Digest(now)
			term, lsn, _ := r.Position()
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			out[n.Name][p] = replicaState{digest: hex.EncodeToString(d[:8]), keys: keys, term: term, lsn: lsn}
		}
	}
	return out
}

func assertReplicasEqual(t *testing.T, states map[string]map[uint32]replicaState, partitions, wantKeys int) {
	t.Helper()
	total := 0
	for p := range uint32(partitions) {
		var first replicaState
		var firstNode string
		for node, parts := range states {
			st := parts[p]
			if firstNode == "" {
				first, firstNode = st, node
				total += st.keys
				continue
			}
			if st != first {
				t.Errorf("partition %d: %s has %+v, %s has %+v", p, node, st, firstNode, first)
			}
		}
	}
	if total != wantKeys {
		t.Errorf("replicas hold %d keys in all, want %d", total, wantKeys)
	}
}

// TestReplicasConverge writes 50,000 keys to a 3-replica table and checks
// that every replica of every partition ends with the same data and the
// same (term, lsn).
func TestReplicasConverge(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{})
	cl := newClient(t, c)
	const partitions, n = 8, 50_000
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: partitions, Replicas: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	err := parallel(n/100, 8, func(b int) error {
		kvs := make([]client.KeyValue, 100)
		for i := range kvs {
			kvs[i] = client.KeyValue{Key: key(b*100 + i), Value: value(b*100 + i)}
		}
		return cl.MSet(ctx, "t", kvs, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Some deletes and overwrites, so the replicas apply more than puts.
	for i := 0; i < 1000; i++ {
		if _, err := cl.Del(ctx, "t", key(i)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d keys in %v", n, time.Since(start))
	pos := waitConverged(t, c, "t", partitions, 3, time.Minute)
	t.Logf("converged: %v", pos)
	assertReplicasEqual(t, replicaDigests(t, c, "t", partitions), partitions, n-1000)
}

// TestSlaveFullSyncAfterPurge stops a slave, writes enough for the master
// to purge the binlog the slave needs, and restarts it: it full-syncs and
// converges. A second full sync after a short outage transfers much less
// than the whole DB.
func TestSlaveFullSyncAfterPurge(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{
		Nodes: 2,
		NodeArgs: []string{
			"--binlog-segment-size", "65536", "--binlog-max-segments", "2", "--binlog-min-segments", "1",
			"--binlog-purge-interval", "100ms",
		},
	})
	cl := newClient(t, c)
	// One partition, so the stopped node is only ever a slave: failover is
	// not what this test is about.
	const partitions = 1
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: partitions, Replicas: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// One writer: keys reach the master in order, so each table file
	// holds a key range after the one before it and a compaction of new
	// files leaves older ones alone, as it would for any key range that
	// new writes do not touch. With interleaved writers, the only file of
	// the last level of this small DB overlaps every new file, and each
	// compaction rewrites all of it: the test would measure that, not
	// full sync.
	write := func(from, to int) {
		t.Helper()
		err := parallel((to-from)/100, 1, func(b int) error {
			kvs := make([]client.KeyValue, 100)
			for i := range kvs {
				kvs[i] = client.KeyValue{Key: key(from + b*100 + i), Value: value(from + b*100 + i)}
			}
			return cl.MSet(ctx, "t", kvs, 0)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	write(0, 10_000)
	pos := waitConverged(t, c, "t", partitions, 2, time.Minute)

	// Stop the node that is slave of partition 0.
	topo, err := cl.Pull(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	slaveAddr := topo.Tables[0].Partitions[0].Slaves[0]
	slave := c.NodeByAddr(slaveAddr)
	if err := slave.Kill(); err != nil {
		t.Fatal(err)
	}
	write(10_000, 110_000)
	// The master purges what the slave would need next.
	masterAddr := topo.Tables[0].Partitions[0].Master
	waitPurged(t, c, masterAddr, "t", 0, pos[0][1]+1)
	if err := slave.Start(); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, c, "t", partitions, 2, 2*time.Minute)
	first := fullSyncOf(t, c, slaveAddr, "t", 0)
	t.Logf("first full sync: %d of %d bytes fetched", first.BytesFetched, first.BytesTotal)
	if first.BytesFetched == 0 || first.BytesTotal == 0 {
		t.Fatalf("no full sync recorded: %+v", first)
	}

	// A short outage: a few writes, the binlog rolls past the slave again.
	pos = waitConverged(t, c, "t", partitions, 2, time.Minute)
	if err := slave.Kill(); err != nil {
		t.Fatal(err)
	}
	write(110_000, 115_000)
	waitPurged(t, c, masterAddr, "t", 0, pos[0][1]+1)
	if err := slave.Start(); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, c, "t", partitions, 2, 2*time.Minute)
	second := fullSyncOf(t, c, slaveAddr, "t", 0)
	t.Logf("second full sync: %d of %d bytes fetched", second.BytesFetched, second.BytesTotal)
	// What the slave lacks: the new writes' table files, and the files of
	// the first checkpoint that were still in level 0 and have since been
	// compacted into the last level (recompressed, so rewritten). On this
	// 1 MB DB that is 9–21% of it; the rest is reused.
	if second.BytesFetched*2 > second.BytesTotal {
		t.Fatalf("second full sync fetched %d of %d bytes; want well under half", second.BytesFetched, second.BytesTotal)
	}
	assertReplicasEqual(t, replicaDigests(t, c, "t", partitions), partitions, 115_000)
}

// waitPurged polls until the master at addr no longer holds record lsn of
// the partition.
func waitPurged(t *testing.T, c *testcluster.Cluster, addr, table string, partition uint32, lsn uint64) {
	t.Helper()
	testcluster.Poll(t, time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		infos, err := replicationInfo(ctx, c, table)
		if err != nil {
			return err
		}
		for _, ri := range infos[addr] {
			if ri.Partition == partition && ri.FirstLsn <= lsn {
				return fmt.Errorf("master still holds lsn %d (first %d)", lsn, ri.FirstLsn)
			}
		}
		return nil
	})
}

func fullSyncOf(t *testing.T, c *testcluster.Cluster, addr, table string, partition uint32) *zppb.FullSyncProgress {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	infos, err := replicationInfo(ctx, c, table)
	if err != nil {
		t.Fatal(err)
	}
	for _, ri := range infos[addr] {
		if ri.Partition == partition {
			if ri.Fullsync == nil {
				t.Fatalf("%s partition %d: no full sync in INFO: %+v", addr, partition, ri)
			}
			return ri.Fullsync
		}
	}
	t.Fatalf("%s has no replica of %s/%d", addr, table, partition)
	return nil
}

// TestMinSyncKeepsAcknowledgedWrites writes with min_sync_replicas=1 from
// several goroutines, kills the master of a partition with SIGKILL right
// after, and checks every acknowledged key is on a slave.
func TestMinSyncKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{})
	cl := newClient(t, c)
	const partitions = 4
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: partitions, Replicas: 3, MinSyncReplicas: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo, err := cl.Pull(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	victim := topo.Tables[0].Partitions[0].Master

	var (
		mu    sync.Mutex
		acked [][]byte
	)
	stop := startLoops(t, 8, func(w, i int) error {
		k := fmt.Appendf(nil, "w%d-%d", w, i)
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		defer wcancel()
		err := cl.Set(wctx, "t", k, k, 0)
		if err == nil {
			mu.Lock()
			acked = append(acked, k)
			mu.Unlock()
		}
		return err
	})
	// Let writes flow, then kill the master mid-stream.
	testcluster.Poll(t, time.Minute, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 3000 {
			return fmt.Errorf("%d writes acknowledged", len(acked))
		}
		return nil
	})
	if err := c.NodeByAddr(victim).Kill(); err != nil {
		t.Fatal(err)
	}
	stop()

	// Every key the master of partition 0 acknowledged must be on one of
	// its slaves.
	var want [][]byte
	for _, k := range acked {
		if keyspace.Partition(k, partitions) == 0 {
			want = append(want, k)
		}
	}
	t.Logf("%d writes acknowledged, %d in partition 0 mastered by the killed node", len(acked), len(want))
	found := make(map[string]bool)
	shared, err := engine.NewShared(engine.SharedOptions{BlockCacheSize: 16 << 20, WriteBufferSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	for _, addr := range topo.Tables[0].Partitions[0].Slaves {
		n := c.NodeByAddr(addr)
		if err := n.Kill(); err != nil {
			t.Fatal(err)
		}
		r, err := replica.Open(replica.Options{Dir: filepath.Join(n.DataDir, "t", "0"), Table: "t", ID: 0, Shared: shared, Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range want {
			if _, _, err := r.Get(k); err == nil {
				found[string(k)] = true
			}
		}
		r.Close()
	}
	missing := 0
	for _, k := range want {
		if !found[string(k)] {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged key %s is on no slave", k)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged keys lost", missing, len(want))
	}
}

// quietLogger keeps replicas opened by the test itself out of its output.
var quietLogger = slog.New(slog.DiscardHandler)
