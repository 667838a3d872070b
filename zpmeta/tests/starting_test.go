package tests

import (
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func startingReq(addr string, opened, total uint32) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_Starting{Starting: &zppb.StartingRequest{Addr: addr,
		Progress: &zppb.StartupProgress{Opened: opened, Total: total, StartedUnixMs: time.Now().UnixMilli(), ElapsedMs: 1000}}}}
}

// TestStartingProgress: a starting node's STARTING, sent to a follower,
// reaches the leader, which lists the progress (also when a follower is
// asked) without taking it for a heartbeat, not in PULL; the node's first
// PING clears it. A node the topology does not have is not listed with
// progress.
func TestStartingProgress(t *testing.T) {
	c := startCluster(t, 3, longDown)
	leader := c.waitLeader(10 * time.Second)
	f := c.follower(leader)
	node := fakeNodes[0]
	c.ping(f, node)
	before := c.leaderNode(leader, node).LastHeartbeatUnixMs

	if r := c.mustOK(f, startingReq(node, 4512, 10000)).GetStarting(); r.GetLeader() != c.addr(leader) {
		t.Fatalf("STARTING answered by leader %q, want %q", r.GetLeader(), c.addr(leader))
	}
	c.mustOK(f, startingReq(fakeNodes[1], 1, 2))
	for _, i := range []int{leader, f} {
		var n *zppb.Node
		for _, ln := range c.mustOK(i, listNodesReq()).GetListNodes().GetNodes() {
			switch ln.Addr {
			case node:
				n = ln
			case fakeNodes[1]:
				t.Fatalf("member %d lists %s, which never PINGed: %v", i, ln.Addr, ln)
			}
		}
		if p := n.GetStarting(); p.GetOpened() != 4512 || p.GetTotal() != 10000 {
			t.Fatalf("member %d lists %s starting %v, want 4512 of 10000", i, node, p)
		}
		if n.LastHeartbeatUnixMs != before {
			t.Fatalf("member %d: STARTING moved the last heartbeat from %d to %d", i, before, n.LastHeartbeatUnixMs)
		}
	}

	for _, n := range c.pull(leader).Nodes {
		if n.Starting != nil {
			t.Fatalf("PULL lists %s starting %v: a delta would leave it stale", n.Addr, n.Starting)
		}
	}

	c.ping(f, node)
	if n := c.leaderNode(leader, node); n.Starting != nil || n.State != zppb.NodeState_UP {
		t.Fatalf("after a PING: %v, want UP, not starting", n)
	}
}
