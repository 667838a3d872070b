package tests

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/topodelta"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

// simNode PINGs meta the way zpnode does: with the epoch it has applied and
// its replica positions, PULLing when an answer names a newer epoch and then
// PINGing again at once.
type simNode struct {
	c    *cluster
	addr string

	mu        sync.Mutex
	epoch     uint64
	topo      *zppb.Topology // as applied: epoch is topo's (nil: none yet)
	positions []*zppb.ReplicaPosition
	frozen    bool // applies no newer topology, so every PING carries epoch
	// features are what its PINGs report (PingRequest.features); none,
	// as from a release before them, unless set.
	features []string
}

// setFeatures makes the node's next PINGs report features.
func (n *simNode) setFeatures(features ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.features = features
}

func (n *simNode) setPosition(table string, partition uint32, term, lsn uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.positions = []*zppb.ReplicaPosition{{Table: table, Partition: partition, Term: term, Lsn: lsn}}
}

func (n *simNode) freeze(frozen bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.frozen = frozen
}

func (n *simNode) appliedEpoch() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.epoch
}

// pingReq is the PING the node sends now.
func (n *simNode) pingReq() *zppb.Request {
	n.mu.Lock()
	defer n.mu.Unlock()
	ps := make([]*zppb.ReplicaPosition, len(n.positions))
	for i, p := range n.positions {
		ps[i] = proto.Clone(p).(*zppb.ReplicaPosition)
	}
	return &zppb.Request{Cmd: &zppb.Request_Ping{Ping: &zppb.PingRequest{Addr: n.addr, Epoch: n.epoch, Positions: ps, Features: n.features}}}
}

// send delivers req to member i through the real rpc client.
func (n *simNode) send(i int, req *zppb.Request) (*zppb.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := n.c.pool.Call(ctx, n.c.addr(i), req)
	if err == nil && resp.Code != zppb.Code_OK {
		err = fmt.Errorf("%v %s", resp.Code, resp.Msg)
	}
	return resp, err
}

// pull applies member i's topology if it is newer than the node's, asking
// for a delta against the node's topology as zpnode does.
func (n *simNode) pull(i int) error {
	n.mu.Lock()
	cur := n.topo
	n.mu.Unlock()
	resp, err := n.send(i, &zppb.Request{Cmd: &zppb.Request_Pull{Pull: &zppb.PullRequest{SinceEpoch: cur.GetEpoch()}}})
	if err != nil {
		return err
	}
	topo, err := topodelta.Apply(cur, resp.GetPull())
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.topo != cur {
		return nil // another pull won
	}
	if e := topo.GetEpoch(); e > n.epoch && !n.frozen {
		n.epoch, n.topo = e, topo
	}
	return nil
}

// heartbeat is one round of zpnode's heartbeat through member i.
func (n *simNode) heartbeat(i int) error {
	resp, err := n.send(i, n.pingReq())
	if err != nil {
		return err
	}
	if resp.GetPing().GetEpoch() <= n.appliedEpoch() {
		return nil
	}
	if err := n.pull(i); err != nil {
		return err
	}
	_, err = n.send(i, n.pingReq())
	return err
}

// keepAlive runs heartbeat through member i every interval until the
// returned stop is called; stop returns once no PING is in flight.
func (n *simNode) keepAlive(i int, interval time.Duration) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			n.heartbeat(i) // a failed round is retried at the next tick
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-stopped }) }
}

// livenessCluster starts three meta members with a short down-timeout, three
// simulated nodes pinging through a follower, and table "t" (one partition,
// three replicas); it returns the partition's master and slaves as placed.
func livenessCluster(t *testing.T, downTimeout, pingEvery time.Duration) (c *cluster, leader, f int, nodes map[string]*simNode, stops map[string]func(), master string, slaves []string) {
	t.Helper()
	c = startCluster(t, 3, func(cfg *server.Config) { cfg.DownTimeout = downTimeout; cfg.Lease = downTimeout * 2 / 3 })
	leader = c.waitLeader(10 * time.Second)
	f = c.follower(leader)
	nodes = make(map[string]*simNode)
	stops = make(map[string]func())
	for _, a := range fakeNodes[:3] {
		n := &simNode{c: c, addr: a}
		if err := n.heartbeat(f); err != nil {
			t.Fatalf("register %s: %v", a, err)
		}
		nodes[a] = n
	}
	c.mustOK(f, createReq("t", 1, 3))
	p := c.pull(leader).Tables[0].Partitions[0]
	master, slaves = p.Master, p.Slaves
	for a, n := range nodes {
		n.setPosition("t", 0, p.Term, 10)
		stops[a] = n.keepAlive(f, pingEvery)
		t.Cleanup(stops[a])
	}
	epoch := c.pull(leader).Epoch
	waitFor(t, 5*time.Second, "every node to apply the table", func() bool {
		for _, n := range nodes {
			if n.appliedEpoch() < epoch {
				return false
			}
		}
		return true
	})
	return c, leader, f, nodes, stops, master, slaves
}

// leaderNode returns addr as the leader lists it.
func (c *cluster) leaderNode(leader int, addr string) *zppb.Node {
	c.t.Helper()
	for _, n := range c.mustOK(leader, listNodesReq()).GetListNodes().GetNodes() {
		if n.Addr == addr {
			return n
		}
	}
	c.t.Fatalf("node %s not listed", addr)
	return nil
}

// TestLatePingDoesNotReviveDownNode: a master is killed while its last PING
// is still on its way (queued on the follower's forwarding connection); that
// PING reaches the leader only after the leader marked the node DOWN. The
// node stays DOWN, its partition fails over within a ping interval of the
// DOWN mark (docs/failover.md), and when the node really comes back it is UP
// again within a PING, a PULL and a PING.
func TestLatePingDoesNotReviveDownNode(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a down-timeout")
	}
	const downTimeout, pingEvery = 1500 * time.Millisecond, 200 * time.Millisecond
	c, leader, f, nodes, stops, master, slaves := livenessCluster(t, downTimeout, pingEvery)

	// kill -9: the node pings no more, and the PING it sent last is held
	// back, to be delivered after the DOWN decision.
	stops[master]()
	late := nodes[master].pingReq()
	killed := time.Now()
	waitFor(t, downTimeout+3*time.Second, "the killed master to go DOWN", func() bool {
		return c.nodeState(leader, master) == zppb.NodeState_DOWN
	})
	downAt := time.Now()
	t.Logf("DOWN %v after the kill", downAt.Sub(killed).Round(time.Millisecond))
	down := c.leaderNode(leader, master)
	if down.DownEpoch <= late.GetPing().Epoch {
		t.Fatalf("down_epoch %d, want above the epoch %d the node had applied", down.DownEpoch, late.GetPing().Epoch)
	}

	// The late PING, through the follower as in the field.
	resp := c.mustOK(f, late)
	if e := resp.GetPing().GetEpoch(); e < down.DownEpoch {
		t.Fatalf("late PING answered with epoch %d, before the DOWN decision %d", e, down.DownEpoch)
	}
	if n := c.leaderNode(leader, master); n.State != zppb.NodeState_DOWN {
		t.Fatalf("a PING sent before the DOWN decision revived the node: %v", n)
	}

	waitFor(t, 2*pingEvery+500*time.Millisecond, "partition 0 to fail over", func() bool {
		return c.pull(leader).Tables[0].Partitions[0].Master != master
	})
	t.Logf("failover %v after the DOWN mark", time.Since(downAt).Round(time.Millisecond))
	p := c.pull(leader).Tables[0].Partitions[0]
	if !slices.Contains(slaves, p.Master) || !slices.Contains(p.Slaves, master) {
		t.Fatalf("after failover: %v (slaves were %v)", p, slaves)
	}
	if st := c.nodeState(leader, master); st != zppb.NodeState_DOWN {
		t.Fatalf("killed node %v after failover", st)
	}

	// Restarted, with the topology it had saved: its first PING carries the
	// old epoch and is not enough; the answer makes it PULL, and the PING
	// after that brings it back.
	n := nodes[master]
	if _, err := n.send(f, n.pingReq()); err != nil {
		t.Fatal(err)
	}
	if st := c.nodeState(leader, master); st != zppb.NodeState_DOWN {
		t.Fatalf("PING with the epoch from before the DOWN decision: %v", st)
	}
	if err := n.pull(f); err != nil {
		t.Fatal(err)
	}
	if _, err := n.send(f, n.pingReq()); err != nil {
		t.Fatal(err)
	}
	if st := c.nodeState(leader, master); st != zppb.NodeState_UP {
		t.Fatalf("PING after pulling the DOWN decision: %v, want UP", st)
	}
	if d := c.leaderNode(leader, master).DownEpoch; d != 0 {
		t.Fatalf("UP node keeps down_epoch %d", d)
	}
}

// TestFailoverCountsPositionsSentAfterDown: slave positions from PINGs sent
// before the master was marked DOWN — handled after it — do not count for
// the failover; the slave that really has the most is promoted.
func TestFailoverCountsPositionsSentAfterDown(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a down-timeout")
	}
	const downTimeout, pingEvery = 1500 * time.Millisecond, 200 * time.Millisecond
	c, leader, f, nodes, stops, master, slaves := livenessCluster(t, downTimeout, pingEvery)
	first, second := nodes[slaves[0]], nodes[slaves[1]]
	// Before the kill the second slave lags behind the first; by the time
	// the master is DOWN it has received everything and leads.
	p := c.pull(leader).Tables[0].Partitions[0]
	first.setPosition("t", 0, p.Term, 9)
	second.setPosition("t", 0, p.Term, 8)
	// Every PING of the slaves from now until they pull again carries the
	// epoch from before the DOWN decision, as PINGs queued before it do.
	first.freeze(true)
	second.freeze(true)

	stops[master]()
	waitFor(t, downTimeout+3*time.Second, "the killed master to go DOWN", func() bool {
		return c.nodeState(leader, master) == zppb.NodeState_DOWN
	})
	downAt := time.Now()
	stops[slaves[0]]()
	stops[slaves[1]]()
	// The stale PINGs, handled after the decision, through the follower.
	c.mustOK(f, first.pingReq())
	c.mustOK(f, second.pingReq())
	if m := c.pull(leader).Tables[0].Partitions[0].Master; m != master {
		t.Fatalf("failed over to %s on positions sent before the DOWN decision", m)
	}

	first.freeze(false)
	second.freeze(false)
	if err := first.heartbeat(f); err != nil {
		t.Fatal(err)
	}
	if m := c.pull(leader).Tables[0].Partitions[0].Master; m != master {
		t.Fatalf("failed over to %s before %s reported after the DOWN decision", m, second.addr)
	}
	second.setPosition("t", 0, p.Term, 10)
	if err := second.heartbeat(f); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "partition 0 to fail over", func() bool {
		return c.pull(leader).Tables[0].Partitions[0].Master != master
	})
	t.Logf("failover %v after the DOWN mark", time.Since(downAt).Round(time.Millisecond))
	if m := c.pull(leader).Tables[0].Partitions[0].Master; m != second.addr {
		t.Fatalf("promoted %s; %s reported the highest position after the DOWN decision", m, second.addr)
	}
}

// TestFailoverPicksHighestPosition: of the UP slaves, the one with the
// highest (term, lsn) is promoted, the term counting before the lsn; on a
// tie one that is not cordoned, then the first in the slave list wins, so
// every leader decides alike.
func TestFailoverPicksHighestPosition(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a down-timeout")
	}
	tests := []struct {
		name         string
		first, other [2]uint64 // (term, lsn) of slaves[0] and slaves[1]
		// cordonFirst cordons slaves[0] before the master dies.
		cordonFirst bool
		wantFirst   bool
	}{
		{"higher lsn", [2]uint64{1, 7}, [2]uint64{1, 9}, false, false},
		{"higher term before higher lsn", [2]uint64{2, 5}, [2]uint64{1, 9}, false, true},
		{"tie goes to the first slave", [2]uint64{1, 9}, [2]uint64{1, 9}, false, true},
		{"tie goes to a slave not cordoned", [2]uint64{1, 9}, [2]uint64{1, 9}, true, false},
		{"a cordoned slave further along wins", [2]uint64{1, 10}, [2]uint64{1, 9}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const downTimeout, pingEvery = 1500 * time.Millisecond, 200 * time.Millisecond
			c, leader, _, nodes, stops, master, slaves := livenessCluster(t, downTimeout, pingEvery)
			nodes[slaves[0]].setPosition("t", 0, tt.first[0], tt.first[1])
			nodes[slaves[1]].setPosition("t", 0, tt.other[0], tt.other[1])
			if tt.cordonFirst {
				c.mustOK(leader, &zppb.Request{Cmd: &zppb.Request_CordonNodes{CordonNodes: &zppb.CordonNodesRequest{Nodes: []string{slaves[0]}, Cordoned: true}}})
			}
			stops[master]()
			waitFor(t, downTimeout+5*time.Second, "partition 0 to fail over", func() bool {
				return c.pull(leader).Tables[0].Partitions[0].Master != master
			})
			want := slaves[1]
			if tt.wantFirst {
				want = slaves[0]
			}
			if got := c.pull(leader).Tables[0].Partitions[0].Master; got != want {
				t.Fatalf("promoted %s, want %s (slaves %v at %v and %v)", got, want, slaves, tt.first, tt.other)
			}
		})
	}
}

// TestMostNodesSilentAtOnce: when every node misses its PINGs at once (the
// meta server's process or machine stalled, or its network), the leader
// marks none DOWN for a while, so no partition fails over to whichever slave
// pings first; a node that alone stops pinging goes DOWN as before, and
// nodes that stay silent together go DOWN once the hold has passed.
func TestMostNodesSilentAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out down-timeouts")
	}
	const downTimeout, pingEvery = time.Second, 100 * time.Millisecond
	c, leader, f, nodes, stops, master, _ := livenessCluster(t, downTimeout, pingEvery)
	term := c.pull(leader).Tables[0].Partitions[0].Term

	// All three fall silent for one and a half down-timeouts, then two
	// ping again, and the third half a down-timeout later (as PINGs come
	// back one at a time to a leader that stalled).
	for _, stop := range stops {
		stop()
	}
	silent := time.Now()
	allUp := func(span time.Duration) {
		for end := time.Now().Add(span); time.Now().Before(end); time.Sleep(50 * time.Millisecond) { // a check of what must not happen, over a span
			for a := range nodes {
				if st := c.nodeState(leader, a); st != zppb.NodeState_UP {
					t.Fatalf("node %s %v %v after every node fell silent at once", a, st, time.Since(silent).Round(time.Millisecond))
				}
			}
		}
	}
	allUp(downTimeout * 3 / 2)
	last := ""
	for a, n := range nodes {
		if last == "" && a != master {
			last = a
			continue
		}
		stops[a] = n.keepAlive(f, pingEvery)
		t.Cleanup(stops[a])
	}
	allUp(downTimeout / 2)
	stops[last] = nodes[last].keepAlive(f, pingEvery)
	t.Cleanup(stops[last])
	if p := c.pull(leader).Tables[0].Partitions[0]; p.Term != term || p.Master != master {
		t.Fatalf("partition failed over while every node was silent: %v", p)
	}

	// One node alone: DOWN after the down-timeout, and its partition fails over.
	stops[master]()
	waitFor(t, downTimeout+3*time.Second, "the silent master to go DOWN", func() bool {
		return c.nodeState(leader, master) == zppb.NodeState_DOWN
	})
	waitFor(t, 3*time.Second, "partition 0 to fail over", func() bool {
		return c.pull(leader).Tables[0].Partitions[0].Master != master
	})

	// The two left fall silent for good: DOWN once the hold has passed.
	for a, stop := range stops {
		if a != master {
			stop()
		}
	}
	waitFor(t, (massSilenceHold+1)*downTimeout+5*time.Second, "the two silent nodes to go DOWN", func() bool {
		for a := range nodes {
			if c.nodeState(leader, a) != zppb.NodeState_DOWN {
				return false
			}
		}
		return true
	})
}

// massSilenceHold is zpmeta/server's: the test waits for it to pass.
const massSilenceHold = 3
