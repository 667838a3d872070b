package tests

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

func addMetaReq(addr string, nonvoter bool) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_AddMeta{AddMeta: &zppb.AddMetaRequest{Addr: addr, Nonvoter: nonvoter}}}
}

func removeMetaReq(addr string) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_RemoveMeta{RemoveMeta: &zppb.RemoveMetaRequest{Addr: addr}}}
}

// newClient is a client of the meta servers at addrs, closed with the test.
func newClient(t *testing.T, addrs ...string) *client.Client {
	t.Helper()
	cli, err := client.New(context.Background(), client.Options{MetaAddrs: addrs, LazyPull: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// members maps each member's address to its suffrage, as a server
// answered LIST_META or a membership change.
func members(lm *zppb.ListMetaResponse) map[string]string {
	out := make(map[string]string, len(lm.GetMembers()))
	for _, m := range lm.GetMembers() {
		out[m.Addr] = m.Suffrage
	}
	return out
}

// statusMembers is members of what the client returned.
func statusMembers(st *client.MetaStatus) map[string]string {
	out := make(map[string]string, len(st.Members))
	for _, m := range st.Members {
		out[m.Addr] = m.Suffrage
	}
	return out
}

// wantMembers fails the test unless got lists exactly the members want.
func wantMembers(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if !equalMaps(got, want) {
		t.Fatalf("%s: members %v, want %v", what, got, want)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func voters(addrs ...string) map[string]string {
	out := make(map[string]string, len(addrs))
	for _, a := range addrs {
		out[a] = "voter"
	}
	return out
}

func changeCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitCaughtUp waits until member i serves the leader's topology.
func (c *cluster) waitCaughtUp(i, leader int) {
	c.t.Helper()
	waitFor(c.t, 10*time.Second, fmt.Sprintf("member %d to serve the leader's topology", i), func() bool {
		resp := c.call(i, pullReq(""))
		return resp.Code == zppb.Code_OK && proto.Equal(withoutHeartbeats(resp.GetPull().GetTopology()), withoutHeartbeats(c.pull(leader)))
	})
}

// TestMembershipChanges grows a group of three by a voter and a nonvoter
// started in join mode, checks that they learn the state from before they
// joined (from a snapshot), then removes a follower, the leader (asked directly, and asked
// through a follower) and refuses to remove the last voter. Re-running a
// change is a no-op.
func TestMembershipChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("changes the Raft membership through several elections")
	}
	// The log is compacted down to the last entry, so the members that
	// join get the state as a snapshot.
	c := startCluster(t, 3, func(cfg *server.Config) {
		longDown(cfg)
		cfg.TrailingLogs = 1
	})
	leader := c.waitLeader(10 * time.Second)
	c.ping(leader, fakeNodes[:3]...)
	c.mustOK(leader, createReq("before", 4, 3))
	if err := c.server(leader).Snapshot(changeCtx(t)); err != nil {
		t.Fatal(err)
	}
	cli := newClient(t, c.MetaAddrs()...)

	// A voter joins and learns the tables created before it.
	j := c.join()
	if resp := c.call(j, pullReq("")); resp.Code != zppb.Code_UNAVAILABLE {
		t.Fatalf("member not added yet: PULL %v %q, want UNAVAILABLE", resp.Code, resp.Msg)
	}
	lm, err := cli.AddMeta(changeCtx(t), c.addr(j), false)
	if err != nil {
		t.Fatalf("AddMeta: %v", err)
	}
	wantMembers(t, "after add", statusMembers(lm), voters(c.MetaAddrs()[:4]...))
	if lm.Leader != c.addr(leader) {
		t.Errorf("membership names leader %q, want %q", lm.Leader, c.addr(leader))
	}
	c.waitCaughtUp(j, leader)
	if resp := c.call(j, pullReq("before")); resp.Code != zppb.Code_OK || resp.GetPull().GetTopology().GetTables()[0].GetPartitionCount() != 4 {
		t.Fatalf("new member: PULL before: %v %s", resp.Code, resp.Msg)
	}
	// It knows the leader, forwards writes to it, and answers LIST_META.
	waitFor(t, 5*time.Second, "new member to know the leader", func() bool { return c.server(j).Leader() == c.addr(leader) })
	c.ping(j, fakeNodes[3])
	wantMembers(t, "LIST_META of the new member", members(c.mustOK(j, listMetaReq()).GetListMeta()), voters(c.MetaAddrs()[:4]...))

	// Adding it again changes nothing: no entry is committed.
	again, err := cli.AddMeta(changeCtx(t), c.addr(j), false)
	if err != nil {
		t.Fatalf("AddMeta again: %v", err)
	}
	wantMembers(t, "after adding again", statusMembers(again), voters(c.MetaAddrs()[:4]...))
	before := c.mustOK(leader, listMetaReq()).GetListMeta().CommitIndex
	c.mustOK(leader, addMetaReq(c.addr(j), false))
	if after := c.mustOK(leader, listMetaReq()).GetListMeta().CommitIndex; after != before {
		t.Errorf("adding a member again committed entries: commit index %d -> %d", before, after)
	}

	// A nonvoter joins and catches up, is promoted, demoted, removed.
	n := c.join()
	lm, err = cli.AddMeta(changeCtx(t), c.addr(n), true)
	if err != nil {
		t.Fatalf("AddMeta nonvoter: %v", err)
	}
	want := voters(c.MetaAddrs()[:4]...)
	want[c.addr(n)] = "nonvoter"
	wantMembers(t, "after adding a nonvoter", statusMembers(lm), want)
	c.waitCaughtUp(n, leader)
	want[c.addr(n)] = "voter"
	wantMembers(t, "after promotion", members(c.mustOK(n, addMetaReq(c.addr(n), false)).GetMetaMembers()), want)
	want[c.addr(n)] = "nonvoter"
	wantMembers(t, "after demotion", members(c.mustOK(leader, addMetaReq(c.addr(n), true)).GetMetaMembers()), want)
	lm, err = cli.RemoveMeta(changeCtx(t), c.addr(n))
	if err != nil {
		t.Fatalf("RemoveMeta nonvoter: %v", err)
	}
	wantMembers(t, "after removing the nonvoter", statusMembers(lm), voters(c.MetaAddrs()[:4]...))
	c.stop(n)

	// An old follower goes; removing it again is a no-op. The client now
	// knows every address, as an operator's --meta list would after the
	// additions.
	cli = newClient(t, c.MetaAddrs()...)
	f := c.follower(leader)
	lm, err = cli.RemoveMeta(changeCtx(t), c.addr(f))
	if err != nil {
		t.Fatalf("RemoveMeta follower: %v", err)
	}
	left := slices.DeleteFunc(slices.Clone(c.MetaAddrs()[:4]), func(a string) bool { return a == c.addr(f) })
	wantMembers(t, "after removing a follower", statusMembers(lm), voters(left...))
	c.stop(f)
	lm, err = cli.RemoveMeta(changeCtx(t), c.addr(f))
	if err != nil {
		t.Fatalf("RemoveMeta again: %v", err)
	}
	wantMembers(t, "after removing again", statusMembers(lm), voters(left...))

	// The leader, asked directly, hands over and the new leader removes it.
	resp := c.mustOK(leader, removeMetaReq(c.addr(leader)))
	left = slices.DeleteFunc(left, func(a string) bool { return a == c.addr(leader) })
	wantMembers(t, "after removing the leader", members(resp.GetMetaMembers()), voters(left...))
	if l := resp.GetMetaMembers().GetLeader(); l == c.addr(leader) || !slices.Contains(left, l) {
		t.Errorf("membership after removing the leader names leader %q; remaining %v", l, left)
	}
	// Left running, it sends clients and nodes elsewhere.
	waitFor(t, 5*time.Second, "the removed leader to refuse PULL", func() bool {
		return c.call(leader, pullReq("")).Code == zppb.Code_UNAVAILABLE
	})
	if resp := c.call(leader, pingReq(fakeNodes[0])); resp.Code != zppb.Code_UNAVAILABLE {
		t.Errorf("removed leader: PING %v %q, want UNAVAILABLE", resp.Code, resp.Msg)
	}
	c.stop(leader)
	leader = c.waitLeader(10 * time.Second)
	if !slices.Contains(left, c.addr(leader)) {
		t.Fatalf("leader %s is not among the remaining members %v", c.addr(leader), left)
	}
	if _, err := cli.CreateTable(changeCtx(t), client.TableSpec{Name: "after", Partitions: 2, Replicas: 3}); err != nil {
		t.Fatalf("CreateTable after removing the leader: %v", err)
	}
	c.waitCaughtUp(j, leader)

	// Two voters left: the leader, asked through the other one, goes too.
	other := c.follower(leader)
	resp = c.mustOK(other, removeMetaReq(c.addr(leader)))
	wantMembers(t, "after removing the leader through a follower", members(resp.GetMetaMembers()), voters(c.addr(other)))
	c.stop(leader)
	leader = c.waitLeader(10 * time.Second)
	if leader != other {
		t.Fatalf("leader is member %d, want the last voter %d", leader, other)
	}

	// The last voter stays, and bad addresses are refused, with nothing
	// changed.
	last := c.addr(other)
	tests := []struct {
		name string
		req  *zppb.Request
		msg  string
	}{
		{"remove the last voter", removeMetaReq(last), "last voter"},
		{"demote the last voter", addMetaReq(last, true), "last voter"},
		{"add empty", addMetaReq("", false), "empty"},
		{"remove empty", removeMetaReq(""), "empty"},
		{"add without port", addMetaReq("127.0.0.1", false), "host:port"},
		{"add without host", addMetaReq(":9221", false), "host:port"},
		{"add port 0", addMetaReq("127.0.0.1:0", false), "port"},
		{"add port too big", addMetaReq("127.0.0.1:70000", false), "port"},
		{"remove bad port", removeMetaReq("127.0.0.1:http"), "port"},
		{"add a server that does not answer", addMetaReq(c.addr(f), false), "does not answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := c.call(other, tt.req)
			if resp.Code != zppb.Code_INVALID_ARGUMENT || !strings.Contains(resp.Msg, tt.msg) {
				t.Fatalf("%v %q, want INVALID_ARGUMENT with %q", resp.Code, resp.Msg, tt.msg)
			}
			wantMembers(t, "after a refused change", members(c.mustOK(other, listMetaReq()).GetListMeta()), voters(last))
		})
	}
	if _, err := cli.RemoveMeta(changeCtx(t), last); !errors.Is(err, status.ErrInvalidArgument) {
		t.Fatalf("client: RemoveMeta of the last voter: %v, want INVALID_ARGUMENT", err)
	}
}

// TestAddMetaRefusesAnotherGroup: a server that bootstrapped a group of its
// own (started without --bootstrap=false) is refused, so that its log does
// not clash with the group's.
func TestAddMetaRefusesAnotherGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two Raft groups")
	}
	c := startCluster(t, 3, longDown)
	leader := c.waitLeader(10 * time.Second)
	alone := startCluster(t, 1, longDown)
	alone.waitLeader(10 * time.Second)

	resp := c.call(c.follower(leader), addMetaReq(alone.addr(0), false))
	if resp.Code != zppb.Code_INVALID_ARGUMENT || !strings.Contains(resp.Msg, "another Raft group") {
		t.Fatalf("%v %q, want INVALID_ARGUMENT naming another group", resp.Code, resp.Msg)
	}
	wantMembers(t, "after the refusal", members(c.mustOK(leader, listMetaReq()).GetListMeta()), voters(c.MetaAddrs()...))
}
