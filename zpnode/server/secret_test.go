package server_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
	nodeserver "github.com/zeppelin-kv/zeppelin/zpnode/server"
)

// TestClusterSecret: with a cluster secret on every server the cluster
// works as before (nodes register, replicate, a write reaches every
// replica); a stranger without the secret, or with another, cannot
// TRYSYNC, pull a binlog, start a full sync, NOTIFY a node or PING meta
// as a node, and its attempts change nothing; with the secret it could.
func TestClusterSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	secret := []byte("cluster-secret-for-the-test")
	c := inproc.StartTest(t, inproc.Options{
		MetaConfig: func(_ int, cfg *metaserver.Config) { cfg.ClusterSecret = secret },
		NodeConfig: func(_ int, cfg *nodeserver.Config) { cfg.ClusterSecret = secret },
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "t", Partitions: 1, Replicas: 3, MinSyncReplicas: 2}); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	// Two slaves must acknowledge: the write proves replication works
	// with the secret.
	if err := cl.Set(ctx, "t", []byte("k"), []byte("v"), 0); err != nil {
		t.Fatalf("a write acknowledged by two slaves: %v", err)
	}
	topo, err := cl.Pull(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	master := topo.Tables[0].Partitions[0].Master

	// Each stranger from its own loopback address: guesses are slowed
	// down per client IP.
	strangers := 0
	stranger := func(token string) *rpc.Conn {
		strangers++
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("127.0.0.%d", 10+strangers))}, Timeout: 5 * time.Second}
		nc, err := d.DialContext(ctx, "tcp", master)
		if err != nil {
			t.Fatal(err)
		}
		sc := rpc.NewConn(nc, 0)
		t.Cleanup(func() { sc.Close() })
		if token != "" {
			sc.SetClusterToken([]byte(token))
		}
		return sc
	}
	peerRequests := map[string]*zppb.Request{
		"TRYSYNC":        {Cmd: &zppb.Request_TrySync{TrySync: &zppb.TrySyncRequest{Table: "t", Partition: 0, Slave: "10.9.9.9:1"}}},
		"BINLOG_PULL":    {Cmd: &zppb.Request_BinlogPull{BinlogPull: &zppb.BinlogPullRequest{Table: "t", Partition: 0, Slave: "10.9.9.9:1"}}},
		"FULLSYNC_START": {Cmd: &zppb.Request_FullsyncStart{FullsyncStart: &zppb.FullSyncStartRequest{Table: "t", Partition: 0, Slave: "10.9.9.9:1"}}},
		"FULLSYNC_FETCH": {Cmd: &zppb.Request_FullsyncFetch{FullsyncFetch: &zppb.FullSyncFetchRequest{Table: "t", Partition: 0, Session: "x", Name: "CURRENT"}}},
		"BINLOG_WATCH":   {Cmd: &zppb.Request_BinlogWatch{BinlogWatch: &zppb.BinlogWatchRequest{}}},
		"NOTIFY":         {Cmd: &zppb.Request_Notify{Notify: &zppb.NotifyRequest{Epoch: 1 << 40}}},
		"BULK_STAGE":     {Cmd: &zppb.Request_BulkStage{BulkStage: &zppb.BulkStageRequest{Table: "t", Partition: 0, Id: "x", Data: []byte("sst")}}},
		"BULK_INGEST":    {Cmd: &zppb.Request_BulkIngest{BulkIngest: &zppb.BulkIngestRequest{Table: "t", Partition: 0, File: &zppb.IngestFile{Id: "x"}}}},
		"BULK_FETCH":     {Cmd: &zppb.Request_BulkFetch{BulkFetch: &zppb.BulkFetchRequest{Table: "t", Partition: 0, Id: "x"}}},
	}
	for _, token := range []string{"", "another-secret"} {
		sc := stranger(token)
		for name, req := range peerRequests {
			resp, err := sc.Call(ctx, proto.Clone(req).(*zppb.Request))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if resp.Code != zppb.Code_UNAUTHENTICATED {
				t.Errorf("%s from a stranger with token %q: %v %q, want UNAUTHENTICATED", name, token, resp.Code, resp.Msg)
			}
		}
		// Data requests are not the cluster secret's to guard.
		if resp, err := sc.Call(ctx, &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: "t", Key: []byte("k")}}}); err != nil || resp.Code != zppb.Code_OK {
			t.Errorf("GET from a client: %v %v", resp.GetCode(), err)
		}
		// Nor can it register as a node.
		mc, err := rpc.Dial(ctx, c.MetaAddrs()[0], 0)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			mc.SetClusterToken([]byte(token))
		}
		resp, err := mc.Call(ctx, &zppb.Request{Cmd: &zppb.Request_Ping{Ping: &zppb.PingRequest{Addr: "10.9.9.9:1"}}})
		mc.Close()
		if err != nil || resp.Code != zppb.Code_UNAUTHENTICATED {
			t.Errorf("PING from a stranger with token %q: %v %v, want UNAUTHENTICATED", token, resp.GetCode(), err)
		}
	}
	// What checkup sees: nodes want the secret, meta no admin token.
	if sec, err := cl.Security(ctx, master); err != nil || !sec.ClusterSecret || sec.AdminToken {
		t.Errorf("Security() = %+v, %v; want the cluster secret and no admin token", sec, err)
	}
	nodes, _, err := cl.ListNodes(ctx)
	if err != nil || len(nodes) != 3 {
		t.Fatalf("nodes after the strangers: %v, %v", nodes, err)
	}

	// The secret lets the same TRYSYNC through the check.
	resp, err := stranger(string(secret)).Call(ctx, proto.Clone(peerRequests["TRYSYNC"]).(*zppb.Request))
	if err != nil || resp.Code == zppb.Code_UNAUTHENTICATED {
		t.Fatalf("TRYSYNC with the secret: %v %q, %v", resp.GetCode(), resp.GetMsg(), err)
	}
}
