package testcluster_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestRedisClusterFailoverAndMoves drives the RESP front the way a
// service would, through go-redis's ClusterClient with nothing but its
// seeds, with min_sync_replicas=1, while the cluster changes under it: a
// planned master switch (TRYAGAIN during the handover, MOVED after it, both
// followed by the client), a migration of a master to another node (the
// old node answers MOVED naming the new one's RESP address), and kill -9 of
// a master. Every write the client saw acknowledged is read back at the
// end, through RESP and through the native client.
func TestRedisClusterFailoverAndMoves(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	const partitions = 4
	c, cl, rdb := startRedisCluster(t, testcluster.Options{Nodes: 4}, client.TableSpec{Partitions: partitions, Replicas: 3, MinSyncReplicas: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var (
		mu       sync.Mutex
		acked    []string
		fails    atomic.Int64
		errMu    sync.Mutex
		errKinds = map[string]int{} // failures by their first words, for the log
	)
	stop := startLoops(t, 4, func(w, i int) error {
		k := fmt.Sprintf("w%d-%d", w, i)
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		if err := rdb.Set(wctx, k, k, 0).Err(); err != nil {
			fails.Add(1)
			words := strings.Fields(err.Error())
			errMu.Lock()
			errKinds[strings.Join(words[:min(len(words), 3)], " ")]++
			errMu.Unlock()
			return err
		}
		mu.Lock()
		acked = append(acked, k)
		mu.Unlock()
		return nil
	})
	progress := func(n int) {
		t.Helper()
		mu.Lock()
		want := len(acked) + n
		mu.Unlock()
		testcluster.Poll(t, time.Minute, func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(acked) < want {
				return fmt.Errorf("%d writes acknowledged, want %d", len(acked), want)
			}
			return nil
		})
	}
	progress(200)

	// A planned switch of partition 0's master: writes pause for the
	// handover (TRYAGAIN, then MOVED), and go on.
	p0 := masterOf(t, cl, "default", 0)
	topo, err := cl.Pull(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	to := topo.Tables[0].Partitions[0].Slaves[0]
	if _, err := cl.SetMaster(ctx, "default", 0, to, 0); err != nil {
		t.Fatal(err)
	}
	testcluster.Poll(t, time.Minute, func() error {
		if m := masterOf(t, cl, "default", 0); m != to {
			return fmt.Errorf("partition 0 still on %s", m)
		}
		return nil
	})
	progress(200)

	// The old master now redirects a key of partition 0 to the new one's
	// RESP address.
	wantMoved(t, c.NodeByAddr(p0).RedisAddr, keyOfPartition(0, partitions), c.NodeByAddr(to).RedisAddr)

	// Migrate partition 1's master to a node that holds no replica of it.
	topo, err = cl.Pull(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	p1 := topo.Tables[0].Partitions[1]
	var spare string
	for _, n := range c.NodeAddrs() {
		if n != p1.Master && !slices.Contains(p1.Slaves, n) {
			spare = n
		}
	}
	if _, err := cl.Migrate(ctx, "default", 1, p1.Master, spare, 0); err != nil {
		t.Fatal(err)
	}
	testcluster.Poll(t, time.Minute, func() error {
		if m := masterOf(t, cl, "default", 1); m != spare {
			return fmt.Errorf("partition 1 on %s, want %s", m, spare)
		}
		return nil
	})
	// The node it left learns of the move with its next epoch.
	key := keyOfPartition(1, partitions)
	wantMoved(t, c.NodeByAddr(p1.Master).RedisAddr, key, c.NodeByAddr(spare).RedisAddr)
	progress(200)

	// kill -9 of partition 2's master: go-redis finds the new one.
	victim := c.NodeByAddr(masterOf(t, cl, "default", 2))
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	testcluster.Poll(t, time.Minute, func() error {
		if m := masterOf(t, cl, "default", 2); m == victim.Addr {
			return fmt.Errorf("partition 2 still on %s", m)
		}
		return nil
	})
	progress(200)
	stop()
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitNodesUp(ctx, victim.Addr); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d writes acknowledged, %d failed (go-redis gave up; not acknowledged): %v", len(acked), fails.Load(), errKinds)
	// go-redis reports a node it could not dial a moment ago (the restarted
	// one) until its pool dials it again, so reads are retried until each
	// key has been read once; a wrong value fails at once.
	left := slices.Clone(acked)
	testcluster.Poll(t, time.Minute, func() error {
		var retry []string
		var last error
		for _, k := range left {
			v, err := rdb.Get(ctx, k).Result()
			switch {
			case err != nil:
				retry, last = append(retry, k), err
			case v != k:
				t.Fatalf("acknowledged %s: GET through RESP = %q", k, v)
			}
		}
		if left = retry; len(left) > 0 {
			return fmt.Errorf("%d keys not read yet: %v", len(left), last)
		}
		return nil
	})
	for _, k := range acked {
		if nv, err := cl.Get(ctx, "default", []byte(k)); err != nil || string(nv) != k {
			t.Fatalf("acknowledged %s: native GET = %q, %v", k, nv, err)
		}
	}
}

// wantMoved waits until the node at addr answers GET key with
// -MOVED <slot> to.
func wantMoved(t *testing.T, addr, key, to string) {
	t.Helper()
	want := fmt.Sprintf("-MOVED %d %s", keyspace.Slot([]byte(key)), to)
	testcluster.Poll(t, 30*time.Second, func() error {
		if got := rawRESP(t, addr, "GET", key); got != want {
			return fmt.Errorf("GET %s at %s: %q, want %q", key, addr, got, want)
		}
		return nil
	})
}

// rawRESP sends one command on its own connection and returns the first
// line of the reply.
func rawRESP(t *testing.T, addr string, args ...string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return line
}
