package tests

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/topodelta"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func pullSinceReq(since uint64) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_Pull{Pull: &zppb.PullRequest{SinceEpoch: since}}}
}

// TestPullDeltaOverTheWire: a node that sends since_epoch gets only what
// changed after it from leader and followers alike, and converges to the
// whole topology however many epochs it missed; a node that does not send
// it (an older binary) gets the whole topology, without the delta flag.
func TestPullDeltaOverTheWire(t *testing.T) {
	c := startCluster(t, 3, longDown)
	leader := c.waitLeader(10 * time.Second)
	f := c.follower(leader)
	c.ping(leader, fakeNodes[:3]...)
	for _, name := range []string{"a", "b", "c"} {
		c.mustOK(leader, createReq(name, 8, 3))
	}
	old := c.pull(leader)

	// An older node: since_epoch absent.
	if pr := c.mustOK(leader, pullReq("")).GetPull(); pr.Delta || len(pr.Topology.Tables) != 3 || len(pr.Topology.Nodes) != 3 {
		t.Fatalf("PULL without since_epoch: %v", pr)
	}

	// Several epochs go by: a table dropped, one created, a node joins.
	c.mustOK(leader, dropReq("a", 0))
	c.mustOK(leader, createReq("d", 8, 3))
	c.ping(leader, fakeNodes[3])
	want := c.pull(leader)
	for _, i := range []int{leader, f} {
		waitFor(t, 5*time.Second, "the member to catch up", func() bool { return c.pull(i).Epoch == want.Epoch })
		pr := c.mustOK(i, pullSinceReq(old.Epoch)).GetPull()
		if !pr.Delta || len(pr.Topology.Tables) != 1 || pr.Topology.Tables[0].Name != "d" || pr.NodesChanged || len(pr.Topology.Nodes) != 1 || len(pr.Tables) != 3 {
			t.Fatalf("member %d: delta since %d: %v", i, old.Epoch, pr)
		}
		got, err := topodelta.Apply(old, pr)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(withoutHeartbeats(got), withoutHeartbeats(want)) {
			t.Fatalf("member %d: merged\n%v\nwant\n%v", i, got, want)
		}
	}
}
