package testcluster_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestRedisClientThatNeverReads pipelines GETs of a 256 KiB value and never
// reads a reply. The node stops reading the client's commands once its
// replies back up (TCP backpressure) instead of buffering them: the
// commands it ran stay a small fraction of those sent, and its memory does
// not grow by what the replies would take (about 500 MiB), while other
// clients are served.
func TestRedisClientThatNeverReads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Nodes: 1, Redis: true})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "default", Partitions: 1, Replicas: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node := c.Nodes[0]
	rdb := redis.NewClient(&redis.Options{Addr: node.RedisAddr, DisableIdentity: true})
	defer rdb.Close()
	big := bytes.Repeat([]byte("x"), 256<<10)
	testcluster.Poll(t, 30*time.Second, func() error { return rdb.Set(ctx, "big", big, 0).Err() })
	processed := func() int64 {
		t.Helper()
		info, err := rdb.Info(ctx, "stats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		t.Fatalf("no total_commands_processed in %q", info)
		return 0
	}
	rssBefore := rssKiB(t, node.Pid())
	before := processed()

	const sent = 2000
	conn, err := net.Dial("tcp", node.RedisAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		// Blocks once the node stops reading; ends when conn is closed.
		w := bufio.NewWriter(conn)
		for range sent {
			w.WriteString("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n")
		}
		w.Flush()
	}()
	// Wait until the node has stopped taking the stalled client's commands:
	// the count of processed commands (ours included) stops moving.
	var ran int64
	testcluster.Poll(t, time.Minute, func() error {
		a := processed()
		time.Sleep(300 * time.Millisecond) // two readings apart, to see whether it moves
		b := processed()
		if b-a > 2 { // the two INFO calls themselves
			return fmt.Errorf("still processing: %d commands in 300 ms", b-a)
		}
		ran = b - before
		return nil
	})
	rssAfter := rssKiB(t, node.Pid())
	t.Logf("ran %d of %d pipelined GETs; node RSS %d -> %d KiB", ran, sent, rssBefore, rssAfter)
	if ran >= sent/4 {
		t.Errorf("the node ran %d of %d GETs nobody read: it buffers replies instead of pushing back", ran, sent)
	}
	if grew := rssAfter - rssBefore; grew > 128<<10 {
		t.Errorf("node RSS grew by %d KiB for a client that never reads", grew)
	}
	// Others are served meanwhile.
	if v, err := rdb.Get(ctx, "big").Result(); err != nil || len(v) != len(big) {
		t.Fatalf("another client's GET: %d bytes, %v", len(v), err)
	}
}

// rssKiB reads a process's resident set size.
func rssKiB(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
