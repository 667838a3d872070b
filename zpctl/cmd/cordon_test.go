package cmd

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
)

// TestCordonAndDrain: a cordoned node gets nothing new (a new table,
// a switchover, expand) and keeps what it has; node drain empties it
// under writes, none lost, and leaves it cordoned; uncordoned, expand gives it replicas again.
func TestCordonAndDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	cl := ownCluster(t, inproc.Options{})
	old := addTable(t, cl, 8, 2)
	x := cl.Nodes[2].Addr
	holds := func(table string) (replicas, masters int) {
		for _, p := range layout(t, cl, table) {
			if p.Master == x {
				masters++
			}
			if p.Holds(x) {
				replicas++
			}
		}
		return replicas, masters
	}
	before, _ := holds(old.Name)
	if before == 0 {
		t.Fatalf("%s holds nothing of %s to begin with", x, old.Name)
	}

	r := zpctl(t, cl, "-o", "json", "node", "cordon", x)
	var got nodeCordonJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitOK || !got.Cordoned || got.Epoch == 0 {
		t.Fatalf("cordon: exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	if r := zpctl(t, cl, "node", "list"); !strings.Contains(r.stdout, "UP/cordoned") {
		t.Fatalf("node list does not show the cordon:\n%s", r.stdout)
	}
	if r := zpctl(t, cl, "node", "cordon", "127.0.0.1:1"); r.code != ExitNotFound {
		t.Fatalf("cordon of an unknown node: exit %d: %s", r.code, r.stderr)
	}

	fresh := addTable(t, cl, 8, 2)
	if n, _ := holds(fresh.Name); n != 0 {
		t.Fatalf("a table created after the cordon has %d replicas on %s: %+v", n, x, layout(t, cl, fresh.Name))
	}
	if n, _ := holds(old.Name); n != before {
		t.Fatalf("the cordon moved replicas: %d on %s, was %d", n, x, before)
	}
	for _, p := range layout(t, cl, old.Name) {
		if slices.Contains(p.Slaves, x) {
			r := zpctl(t, cl, "setmaster", old.Name, fmt.Sprint(p.ID), x, "--yes")
			if r.code != ExitInvalid || !strings.Contains(r.stderr, "cordoned") {
				t.Fatalf("setmaster to a cordoned node: exit %d: %s", r.code, r.stderr)
			}
			break
		}
	}

	// The drain runs under writes: every one is acknowledged (moves
	// answer WAIT, which the client retries) and readable after.
	writer := newClient(t, cl)
	stop, written := make(chan struct{}), make(chan []string, 1)
	go func() {
		var acked []string
		for i := 0; ; i++ {
			select {
			case <-stop:
				written <- acked
				return
			default:
			}
			k := fmt.Sprintf("drain-%d", i)
			if err := writer.Set(testCtx(t), old.Name, []byte(k), []byte(k), 0); err != nil {
				t.Errorf("write %s during the drain: %v", k, err)
				written <- acked
				return
			}
			acked = append(acked, k)
		}
	}()
	r = zpctl(t, cl, "node", "drain", x, "--yes", fast)
	close(stop)
	acked := <-written
	if r.code != ExitOK {
		t.Fatalf("drain: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	for _, k := range acked {
		if v, err := writer.Get(testCtx(t), old.Name, []byte(k)); err != nil || string(v) != k {
			t.Fatalf("after the drain, %s = %q, %v", k, v, err)
		}
	}
	t.Logf("%d writes during the drain, all read back", len(acked))
	for _, tb := range []string{old.Name, fresh.Name} {
		if n, _ := holds(tb); n != 0 {
			t.Fatalf("after the drain %s holds %d replicas of %s", x, n, tb)
		}
	}
	if rows := nodeRows(t, cl); !rows[x].Cordoned {
		t.Fatalf("the drained node is not cordoned: %+v", rows[x])
	}

	if r := zpctl(t, cl, "node", "uncordon", x); r.code != ExitOK || !strings.HasPrefix(r.stdout, "uncordoned "+x+" (epoch ") {
		t.Fatalf("uncordon: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if rows := nodeRows(t, cl); rows[x].Cordoned {
		t.Fatal("still cordoned after uncordon")
	}
	if r := zpctl(t, cl, "expand", "--yes", fast); r.code != ExitOK {
		t.Fatalf("expand: exit %d: %s", r.code, r.stderr)
	}
	if n, _ := holds(old.Name); n == 0 {
		t.Fatalf("uncordoned, %s got nothing back from expand", x)
	}
}

// nodeRows reads zpctl node list -o json, by address.
func nodeRows(t *testing.T, c *inproc.Cluster) map[string]nodeRow {
	t.Helper()
	r := zpctl(t, c, "-o", "json", "node", "list")
	var l nodeListJSON
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || r.code != ExitOK {
		t.Fatalf("node list: exit %d, %v: %s", r.code, err, r.stderr)
	}
	out := map[string]nodeRow{}
	for _, n := range l.Nodes {
		out[n.Addr] = n
	}
	return out
}

// TestLeavingNodes: node list shows a cordoned node as draining while a
// move not yet ended takes something off it.
func TestLeavingNodes(t *testing.T) {
	moves := []client.Move{
		{Kind: client.MoveMigrate, From: "a:1", To: "d:1", State: client.MoveCatchingUp},
		{Kind: client.MoveSetMaster, From: "b:1", To: "c:1", State: client.MoveSlowdown},
		{Kind: client.MoveAddSlave, To: "e:1", State: client.MovePending},
		{Kind: client.MoveRemoveSlave, From: "f:1", State: client.MoveDone},
		{Kind: client.MoveSetMaster, To: "c:1", State: client.MovePending},
	}
	got := client.LeavingNodes(moves)
	want := map[string]bool{"a:1": true, "b:1": true}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("leaving %v, want %v", got, want)
	}
	var buf strings.Builder
	if err := writeNodes(&buf, []nodeRow{{Node: client.Node{Addr: "a:1", State: "UP", Cordoned: true}, Draining: true}, {Node: client.Node{Addr: "b:1", State: "UP", Cordoned: true}}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "UP/draining") || !strings.Contains(buf.String(), "UP/cordoned") {
		t.Errorf("node list:\n%s", buf.String())
	}
}
