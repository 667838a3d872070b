package tests

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

// TestAdminToken: meta servers started with an admin token refuse every
// request that changes the cluster without it or with a wrong one
// (UNAUTHENTICATED, the token in no message, nothing changed), through
// the leader and through a follower; reads and the nodes' PINGs need
// none; with the token the same requests go through.
func TestAdminToken(t *testing.T) {
	const token = "0123456789abcdef-admin"
	c := startCluster(t, 3, func(cfg *server.Config) { cfg.AdminToken = []byte(token) })
	leader := c.waitLeader(10 * time.Second)
	f := c.follower(leader)
	c.ping(leader, "10.0.0.1:9300", "10.0.0.2:9300", "10.0.0.3:9300")
	with := func(req *zppb.Request, tok string) *zppb.Request {
		r := proto.Clone(req).(*zppb.Request)
		r.AdminToken = []byte(tok)
		return r
	}
	b := true
	writes := []struct {
		name string
		req  *zppb.Request
	}{
		{"create table", createReq("t", 2, 3)},
		{"drop table", dropReq("nosuch", 0)},
		{"set quota", &zppb.Request{Cmd: &zppb.Request_SetQuota{SetQuota: &zppb.SetQuotaRequest{Table: "nosuch"}}}},
		{"add slave", &zppb.Request{Cmd: &zppb.Request_AddSlave{AddSlave: &zppb.AddSlaveRequest{Table: "nosuch", Node: "10.0.0.1:9300"}}}},
		{"remove slave", &zppb.Request{Cmd: &zppb.Request_RemoveSlave{RemoveSlave: &zppb.RemoveSlaveRequest{Table: "nosuch", Node: "10.0.0.1:9300"}}}},
		{"set master", &zppb.Request{Cmd: &zppb.Request_SetMaster{SetMaster: &zppb.SetMasterRequest{Table: "nosuch", Node: "10.0.0.1:9300"}}}},
		{"migrate", &zppb.Request{Cmd: &zppb.Request_Migrate{Migrate: &zppb.MigrateRequest{Table: "nosuch", From: "10.0.0.1:9300", To: "10.0.0.2:9300"}}}},
		{"split", &zppb.Request{Cmd: &zppb.Request_Split{Split: &zppb.SplitRequest{Table: "nosuch"}}}},
		{"expand", &zppb.Request{Cmd: &zppb.Request_Rebalance{Rebalance: &zppb.RebalanceRequest{Mode: zppb.RebalanceRequest_EXPAND}}}},
		{"cancel moves", &zppb.Request{Cmd: &zppb.Request_CancelMove{CancelMove: &zppb.CancelMoveRequest{}}}},
		{"remove nodes", &zppb.Request{Cmd: &zppb.Request_RemoveNodes{RemoveNodes: &zppb.RemoveNodesRequest{Nodes: []string{"10.0.0.1:9300"}}}}},
		{"cordon", &zppb.Request{Cmd: &zppb.Request_CordonNodes{CordonNodes: &zppb.CordonNodesRequest{Nodes: []string{"10.0.0.1:9300"}, Cordoned: true}}}},
		{"add meta", addMetaReq("127.0.0.1:1", false)},
		{"remove meta", removeMetaReq("127.0.0.1:1")},
		{"schedule pause", &zppb.Request{Cmd: &zppb.Request_Schedule{Schedule: &zppb.ScheduleRequest{Paused: &b}}}},
		// Reading a table's credentials needs the token too.
		{"table auth list", &zppb.Request{Cmd: &zppb.Request_TableAuth{TableAuth: &zppb.TableAuthRequest{Table: "nosuch"}}}},
		{"table auth add", &zppb.Request{Cmd: &zppb.Request_TableAuth{TableAuth: &zppb.TableAuthRequest{Table: "nosuch", Op: zppb.TableAuthOp_TABLE_AUTH_ADD, Password: []byte("pw")}}}},
		{"table auth remove", &zppb.Request{Cmd: &zppb.Request_TableAuth{TableAuth: &zppb.TableAuthRequest{Table: "nosuch", Op: zppb.TableAuthOp_TABLE_AUTH_REMOVE, Id: "x"}}}},
	}
	// Each kind of write from its own loopback address: wrong guesses are
	// slowed down per client IP (checked below).
	before := c.pull(leader)
	for i, w := range writes {
		for _, member := range []int{leader, f} {
			for _, tok := range []string{"", "wrong-token"} {
				resp := callFrom(t, fmt.Sprintf("127.0.0.%d", 10+i), c.addr(member), with(w.req, tok))
				if resp.Code != zppb.Code_UNAUTHENTICATED || strings.Contains(resp.Msg, token) || (tok != "" && strings.Contains(resp.Msg, tok)) {
					t.Errorf("%s via member %d with token %q: %v %q, want UNAUTHENTICATED naming no token", w.name, member, tok, resp.Code, resp.Msg)
				}
			}
		}
	}
	if after := c.pull(leader); after.Epoch != before.Epoch || len(after.Tables) != 0 {
		t.Fatalf("refused requests changed the cluster: epoch %d -> %d, %d tables", before.Epoch, after.Epoch, len(after.Tables))
	}
	sched := c.call(leader, &zppb.Request{Cmd: &zppb.Request_Schedule{Schedule: &zppb.ScheduleRequest{}}})
	if sched.Code != zppb.Code_OK || sched.GetSchedule().GetSchedule().GetPaused() {
		t.Fatalf("schedule read: %v %q (paused %t)", sched.Code, sched.Msg, sched.GetSchedule().GetSchedule().GetPaused())
	}

	// Reads need no token.
	for i, req := range []*zppb.Request{pullReq(""), listNodesReq(), listMetaReq(), {Cmd: &zppb.Request_ListTables{ListTables: &zppb.ListTablesRequest{}}},
		{Cmd: &zppb.Request_MoveStatus{MoveStatus: &zppb.MoveStatusRequest{}}},
		{Cmd: &zppb.Request_Rebalance{Rebalance: &zppb.RebalanceRequest{Mode: zppb.RebalanceRequest_EXPAND, DryRun: true}}}} {
		if resp := c.call(f, req); resp.Code == zppb.Code_UNAUTHENTICATED {
			t.Errorf("read %d refused: %q", i, resp.Msg)
		}
	}

	// With the token, through a follower: created.
	for i, w := range []*zppb.Request{createReq("t", 2, 3), with(createReq("t", 2, 3), token)} {
		resp := c.call(f, w)
		if want := []zppb.Code{zppb.Code_UNAUTHENTICATED, zppb.Code_OK}[i]; resp.Code != want {
			t.Fatalf("create %d: %v %q, want %v", i, resp.Code, resp.Msg, want)
		}
	}
	if got := c.pull(leader); len(got.Tables) != 1 {
		t.Fatalf("after the create with the token: %d tables", len(got.Tables))
	}

	// What checkup sees.
	cl := newClient(t, c.addr(f))
	if sec, err := cl.Security(context.Background(), ""); err != nil || !sec.AdminToken {
		t.Errorf("Security() = %+v, %v; want the admin token required", sec, err)
	}

	// Guessing: five wrong tokens from one address, then even the right
	// one is refused for a while; another address is not.
	for range 5 {
		callFrom(t, "127.0.0.99", c.addr(leader), with(dropReq("t", 0), "guess"))
	}
	if resp := callFrom(t, "127.0.0.99", c.addr(leader), with(dropReq("t", 0), token)); resp.Code != zppb.Code_UNAUTHENTICATED || !strings.Contains(resp.Msg, "too many") {
		t.Fatalf("after five wrong guesses: %v %q, want refused as too many", resp.Code, resp.Msg)
	}
	if resp := callFrom(t, "127.0.0.98", c.addr(leader), with(dropReq("t", 0), token)); resp.Code != zppb.Code_OK {
		t.Fatalf("another address with the token: %v %q", resp.Code, resp.Msg)
	}
}

// callFrom sends req to addr on a connection from the local IP from
// (127.0.0.x), for tests of what servers bound per client address.
func callFrom(t *testing.T, from, addr string, req *zppb.Request) *zppb.Response {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn := rpc.NewConn(nc, 0)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := conn.Call(ctx, req)
	if err != nil {
		t.Fatalf("call %s from %s: %v", addr, from, err)
	}
	return resp
}
