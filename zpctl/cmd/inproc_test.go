package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
	nodeserver "github.com/zeppelin-kv/zeppelin/zpnode/server"
)

// zpctl's tests run against real meta and node servers in this process
// (lib/inproc). Most share one cluster, with tables of their own; tests
// that stop servers, or whose output lists every table or node, start
// their own.
//
// The shared cluster's nodes sit behind proxies, so that a test can hold a
// move in progress by cutting its target off from the meta servers
// (operation_test.go); a node is DOWN only 30s after its last PING, so that
// the target stays UP meanwhile.
var shared = inproc.Shared{Options: inproc.Options{NodeConfig: quiet, Proxies: true, MetaConfig: slowDown}}

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Close()
	os.Exit(code)
}

// quiet keeps nodes' slow logs empty: on a busy machine any request may
// take the default 10ms, and tests compare slow logs exactly.
func quiet(_ int, cfg *nodeserver.Config) { cfg.SlowlogThreshold = time.Hour }

// slowDown makes a node DOWN 30s after its last PING.
func slowDown(_ int, cfg *metaserver.Config) { cfg.DownTimeout = 30 * time.Second }

// sharedCluster returns the package's cluster of 3 metas and 3 nodes,
// started on first use.
func sharedCluster(t *testing.T) *inproc.Cluster {
	t.Helper()
	return shared.Cluster(t)
}

// ownCluster starts a cluster for t alone.
func ownCluster(t *testing.T, opts inproc.Options) *inproc.Cluster {
	t.Helper()
	if opts.NodeConfig == nil {
		opts.NodeConfig = quiet
	}
	return inproc.StartTest(t, opts)
}

var (
	tableChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)
	tableSeq   atomic.Int64
)

// tableName names a table after the test, uniquely in the process.
func tableName(t *testing.T) string {
	return fmt.Sprintf("%s-%d", tableChars.ReplaceAllString(strings.TrimPrefix(t.Name(), "Test"), "_"), tableSeq.Add(1))
}

// newClient returns a client of c, closed when the test ends.
func newClient(t *testing.T, c *inproc.Cluster) *client.Client {
	t.Helper()
	cl, err := client.New(testCtx(t), client.Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: 20 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// addTable creates a table of parts partitions and replicas copies in c
// and waits until it is writable.
func addTable(t *testing.T, c *inproc.Cluster, parts, replicas uint32) *zppb.Table {
	t.Helper()
	cl := newClient(t, c)
	name := tableName(t)
	if _, err := cl.CreateTable(testCtx(t), client.TableSpec{Name: name, Partitions: parts, Replicas: replicas}); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(testCtx(t), name); err != nil {
		t.Fatal(err)
	}
	tb := pullTable(t, c, name)
	waitStreaming(t, c, tb)
	waitMetasKnow(t, c, name)
	return tb
}

// waitMetasKnow waits until every meta server has table name: a client
// (or zpctl command) that PULLs from a follower still applying the
// creation would find no such table.
func waitMetasKnow(t *testing.T, c *inproc.Cluster, name string) {
	t.Helper()
	for _, addr := range c.MetaAddrs() {
		cl, err := client.New(testCtx(t), client.Options{MetaAddrs: []string{addr}, DefaultTimeout: 20 * time.Second, Logger: slog.New(slog.DiscardHandler), LazyPull: true})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			_, err := cl.Pull(testCtx(t), name)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				cl.Close()
				t.Fatalf("meta %s does not have table %s after 20 s: %v", addr, name, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		cl.Close()
	}
}

// waitStreaming waits until every slave of tb streams from its master:
// writable is the masters' part, and checkup reports a slave still
// connecting.
func waitStreaming(t *testing.T, c *inproc.Cluster, tb *zppb.Table) {
	t.Helper()
	cl := leaderClient(t, c)
	deadline := time.Now().Add(20 * time.Second)
	for {
		want := 0
		for _, p := range tb.Partitions {
			want += len(p.Slaves)
		}
		streaming := 0
		for _, ni := range cl.InfoNodes(testCtx(t), c.NodeAddrs(), tb.Name, client.InfoReplication) {
			for _, ri := range ni.Info.Replication {
				if ri.Role == "slave" && ri.State == "streaming" {
					streaming++
				}
			}
		}
		if streaming >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d slaves of %s streaming", streaming, want, tb.Name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leaderClient returns a client that asks the meta leader only. Followers
// answer reads from their own copy, which may lag a moment behind a
// change just made, and a client starts with any member.
func leaderClient(t *testing.T, c *inproc.Cluster) *client.Client {
	t.Helper()
	cl, err := client.New(testCtx(t), client.Options{MetaAddrs: []string{leaderAddr(t, c)}, DefaultTimeout: 20 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// pullTable returns a table as the meta leader has it.
func pullTable(t *testing.T, c *inproc.Cluster, name string) *zppb.Table {
	t.Helper()
	topo, err := leaderClient(t, c).Pull(testCtx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	tb := topo.Tables[0]
	out := &zppb.Table{Name: tb.Name, PartitionCount: tb.PartitionCount, Replicas: tb.Replicas, SplitSize: tb.SplitSize}
	for _, p := range tb.Partitions {
		out.Partitions = append(out.Partitions, &zppb.Partition{Id: p.ID, Master: p.Master, Slaves: p.Slaves, SlotBegin: p.SlotBegin, SlotEnd: p.SlotEnd})
	}
	return out
}

// leaderAddr is the meta leader's address.
func leaderAddr(t *testing.T, c *inproc.Cluster) string {
	t.Helper()
	i, err := c.WaitLeader(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return c.Metas[i].Addr
}

// stored counts the keys of table that the cluster has, of keys.
func stored(t *testing.T, c *inproc.Cluster, table string, keys []string) int {
	t.Helper()
	var bs [][]byte
	for _, k := range keys {
		bs = append(bs, []byte(k))
	}
	res, err := leaderClient(t, c).MGet(testCtx(t), table, bs)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range res {
		if r.Found {
			n++
		}
	}
	return n
}

// waitSettled waits until every running meta server and node has applied
// the meta leader's epoch: followers apply what the leader committed a
// moment later, nodes learn of it at their next PING.
func waitSettled(t *testing.T, c *inproc.Cluster) {
	t.Helper()
	cl := leaderClient(t, c)
	topo, err := cl.Pull(testCtx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, m := range c.Metas {
		for m.Server() != nil {
			mc, err := client.New(testCtx(t), client.Options{MetaAddrs: []string{m.Addr}, LazyPull: true, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			mt, err := mc.Pull(testCtx(t), "")
			mc.Close()
			if err == nil && mt.Epoch >= topo.Epoch {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("meta %s not at epoch %d: %v", m.Addr, topo.Epoch, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, n := range c.Nodes {
		for n.Server() != nil {
			info, err := cl.Info(testCtx(t), n.Addr, client.InfoServer, "")
			if err == nil && info.Server != nil && info.Server.Epoch >= topo.Epoch {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s not at epoch %d: %+v, %v", n.Addr, topo.Epoch, info.Server, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// addrs points zpctl at meta servers by address alone.
type addrs []string

func (a addrs) MetaAddrs() []string { return a }
