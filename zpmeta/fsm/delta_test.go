package fsm

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/topodelta"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// fullTopology is the whole topology, as PULL without since_epoch gives it.
func fullTopology(t *testing.T, f *FSM) *zppb.Topology {
	t.Helper()
	pr := f.Pull(0)
	if pr.Delta {
		t.Fatal("PULL with since_epoch 0 answered a delta")
	}
	return pr.Topology
}

// checkDeltas checks, for every epoch recorded in history, that the delta
// since it applied to the whole topology of that epoch gives the current
// whole topology.
func checkDeltas(t *testing.T, f *FSM, history map[uint64]*zppb.Topology, when string) {
	t.Helper()
	now := fullTopology(t, f)
	for since, old := range history {
		pr := f.Pull(since)
		if !pr.Delta {
			t.Fatalf("%s: PULL since %d (state at %d) answered the whole topology", when, since, now.Epoch)
		}
		got, err := topodelta.Apply(old, pr)
		if err != nil {
			t.Fatalf("%s: delta since %d: %v", when, since, err)
		}
		if !proto.Equal(got, now) {
			t.Fatalf("%s: topology of epoch %d + delta since it =\n%v\nwant\n%v", when, since, got, now)
		}
		pp := f.PullPartitions(since)
		if got, err = topodelta.Apply(old, pp); err != nil {
			t.Fatalf("%s: partition delta since %d: %v", when, since, err)
		}
		if !proto.Equal(got, now) {
			t.Fatalf("%s: topology of epoch %d + partition delta since it =\n%v\nwant\n%v", when, since, got, now)
		}
		if proto.Size(pp) > proto.Size(pr) {
			t.Fatalf("%s: the partition delta since %d is larger than the table delta", when, since)
		}
		checkShared(t, f, since, when)
	}
	checkShared(t, f, 0, when)
	checkShared(t, f, now.Epoch+1, when)
}

// checkShared checks that PullShared's two parts, encoded one after the
// other as the meta server sends them, decode as Pull's answer.
func checkShared(t *testing.T, f *FSM, since uint64, when string) {
	t.Helper()
	for _, partial := range []bool{false, true} {
		head, shared := f.PullShared(since, partial, false)
		b, err := proto.Marshal(&zppb.Response{Result: &zppb.Response_Pull{Pull: head}})
		if err != nil {
			t.Fatal(err)
		}
		got := &zppb.Response{}
		if err := proto.Unmarshal(append(b, shared...), got); err != nil {
			t.Fatal(err)
		}
		want := f.Pull(since)
		if partial {
			want = f.PullPartitions(since)
		}
		if !proto.Equal(got.GetPull(), want) {
			t.Fatalf("%s: PULL since %d (partial %v) shared =\n%v\nwant\n%v", when, since, partial, got.GetPull(), want)
		}
	}
}

// TestPullSharedEncodesOncePerEpoch: every caller of the same since and
// epoch gets the same encoded bytes, a new epoch encodes again, and callers
// of more distinct epochs than kept still get their answer.
func TestPullSharedEncodesOncePerEpoch(t *testing.T) {
	f := movesFSM(t)
	first := f.Epoch()
	mustApply(t, f, createCmd(table("u", "b:1", "c:1"), 0))
	_, a := f.PullShared(first, false, false)
	_, b := f.PullShared(first, false, false)
	if len(a) == 0 || &a[0] != &b[0] {
		t.Fatal("two PULLs of the same delta encoded it twice")
	}
	_, w1 := f.PullShared(0, false, false)
	_, w2 := f.PullShared(f.Epoch()+5, true, false) // ahead: the whole topology too
	if &w1[0] != &w2[0] || &w1[0] == &a[0] {
		t.Fatal("the whole topology is not shared, or shared with a delta")
	}
	mustApply(t, f, createCmd(table("v", "c:1", "d:1"), 0))
	if _, c := f.PullShared(first, false, false); &c[0] == &a[0] {
		t.Fatal("a new epoch answered with the encoding of the previous one")
	}
	for range maxSharedPulls + 2 {
		mustApply(t, f, SetQuota("v", &zppb.Quota{OpsPerSec: f.Epoch()}, nil, 0))
	}
	for since := first; since <= f.Epoch(); since++ {
		checkShared(t, f, since, "many epochs")
	}
	if n := len(f.shared.answers); n != maxSharedPulls {
		t.Fatalf("%d answers kept, want %d", n, maxSharedPulls)
	}
}

// TestPullDeltaMatchesFull drives the state through every kind of
// topology-changing command and checks after each that the delta since
// every earlier epoch, merged into the topology of that epoch, is the
// current topology: a change that touches() forgot would be missing.
func TestPullDeltaMatchesFull(t *testing.T) {
	f := movesFSM(t) // nodes a..d, table t on a, b, c
	history := map[uint64]*zppb.Topology{}
	record := func(when string) {
		checkDeltas(t, f, history, when)
		history[f.Epoch()] = fullTopology(t, f)
	}
	record("seeded")
	mustApply(t, f, createCmd(table("u", "b:1", "c:1"), 0))
	record("create u")
	mustApply(t, f, createCmd(table("v", "c:1", "d:1"), 0))
	record("create v")
	mustApply(t, f, SetQuota("u", &zppb.Quota{OpsPerSec: 10}, nil, 0))
	record("quota")
	mustApply(t, f, SetTableCredentials("u", 0, []*zppb.TableCredential{credential(t, "pw")}, nil))
	record("credentials")
	restoring := table("r", "b:1", "d:1")
	restoring.Restoring = true
	mustApply(t, f, createCmd(restoring, 0))
	record("create restoring")
	mustApply(t, f, FinishRestore("r", 0))
	record("finish restore")
	for _, tb := range fullTopology(t, f).Tables {
		if tb.Name == "r" && tb.Restoring {
			t.Fatal("table r still restoring after FinishRestore")
		}
	}
	mustApply(t, f, dropCmd("r", 0))
	record("drop restored")
	mustApply(t, f, SetMasters("test", change("u", 0, "c:1", 1)))
	// A master changed: a caller that merges by partition gets that
	// partition alone.
	if pr := f.PullPartitions(f.Epoch() - 1); len(pr.Topology.Tables) != 0 || len(pr.PartialTables) != 1 || len(pr.PartialTables[0].Partitions) != 1 {
		t.Fatalf("partition delta after a master change: %v", pr)
	}
	record("set masters")
	id := addMove(t, f, &zppb.Move{Kind: zppb.MoveKind_MIGRATE, Table: "t", From: "a:1", To: "d:1"})
	record("queue a move")
	for _, s := range [][2]zppb.MoveState{{pending, catching}, {catching, slowdown}, {slowdown, stuck}, {stuck, removing}, {removing, done}} {
		if err := step(f, id, s[0], s[1]); err != nil {
			t.Fatal(err)
		}
		record(fmt.Sprintf("move %v -> %v", s[0], s[1]))
	}
	id = addMove(t, f, &zppb.Move{Kind: zppb.MoveKind_ADDSLAVE, Table: "v", To: "a:1"})
	if err := step(f, id, pending, catching); err != nil {
		t.Fatal(err)
	}
	record("add slave")
	if err := step(f, id, catching, failed); err != nil {
		t.Fatal(err)
	}
	record("roll back")
	id = addMove(t, f, &zppb.Move{Kind: zppb.MoveKind_ADDSLAVE, Table: "v", To: "a:1"})
	if err := step(f, id, pending, catching); err != nil {
		t.Fatal(err)
	}
	record("add slave again")
	mustApply(t, f, CancelMoves([]uint64{id}, false, "test", 3))
	record("cancel")
	mustApply(t, f, CordonNodes([]string{"b:1"}, true))
	record("cordon")
	mustApply(t, f, register("e:1"))
	// A node joined: the delta carries it alone, to merge.
	if pr := f.Pull(f.Epoch() - 1); pr.NodesChanged || len(pr.Topology.Nodes) != 1 || pr.Topology.Nodes[0].Addr != "e:1" || len(pr.Topology.Tables) != 0 {
		t.Fatalf("delta after a node joined: %v", pr)
	}
	record("register")
	mustApply(t, f, SetNodeState("e:1", zppb.NodeState_DOWN, 0))
	record("down")
	mustApply(t, f, RemoveNodes([]string{"e:1"}, 0))
	// A node removed: the whole list, which no longer has it.
	if pr := f.Pull(f.Epoch() - 1); !pr.NodesChanged || len(pr.Topology.Nodes) != 4 {
		t.Fatalf("delta after a node was removed: %v", pr)
	}
	record("remove node")
	mustApply(t, f, dropCmd("u", 0))
	record("drop u")
	mustApply(t, f, createCmd(table("u", "a:1"), 0))
	record("create u again")

	// A delta carries only what changed: the last change touched u alone.
	pr := f.Pull(f.Epoch() - 1)
	if len(pr.Topology.Tables) != 1 || pr.Topology.Tables[0].Name != "u" || pr.NodesChanged || len(pr.Tables) != 3 {
		t.Fatalf("delta after creating u: %v", pr)
	}
	// Nothing changed: an empty delta.
	if pr := f.Pull(f.Epoch()); !pr.Delta || len(pr.Topology.Tables) != 0 || pr.NodesChanged {
		t.Fatalf("delta since the current epoch: %v", pr)
	}
	// A caller ahead of this member (it read another one) gets the whole.
	if pr := f.Pull(f.Epoch() + 1); pr.Delta || len(pr.Topology.Tables) != 3 {
		t.Fatalf("PULL since a future epoch: %v", pr)
	}

	// The change epochs survive a snapshot.
	g := restored(t, f, nil)
	checkDeltas(t, g, history, "restored")
}

// restored returns a new FSM restored from f's snapshot, edit changing the
// snapshot first.
func restored(t *testing.T, f *FSM, edit func(*zppb.MetaSnapshot)) *FSM {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	data := s.Bytes()
	if edit != nil {
		ms := &zppb.MetaSnapshot{}
		if err := proto.Unmarshal(data, ms); err != nil {
			t.Fatal(err)
		}
		edit(ms)
		if data, err = proto.Marshal(ms); err != nil {
			t.Fatal(err)
		}
	}
	g := New(quiet)
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestPullDeltaFromOldSnapshot: a snapshot written by a meta that did not
// record change epochs loads, and everything in it counts as changed at its
// epoch, so a delta against an older epoch carries it all, and one against
// its epoch or later only what changed since.
func TestPullDeltaFromOldSnapshot(t *testing.T) {
	f := seeded(t)
	mustApply(t, f, createCmd(table("u", "b:1"), 0))
	before := fullTopology(t, f)
	mustApply(t, f, SetQuota("u", &zppb.Quota{OpsPerSec: 1}, nil, 0))
	g := restored(t, f, func(ms *zppb.MetaSnapshot) {
		ms.TableChangedEpochs, ms.NodeChangedEpochs, ms.NodesRemovedEpoch = nil, nil, 0
	})
	epoch := g.Epoch()
	pr := g.Pull(before.Epoch)
	if !pr.Delta || len(pr.Topology.Tables) != 2 || !pr.NodesChanged {
		t.Fatalf("delta since before the old snapshot: %v", pr)
	}
	if got, err := topodelta.Apply(before, pr); err != nil || !proto.Equal(got, fullTopology(t, g)) {
		t.Fatalf("applying it: %v %v", got, err)
	}
	mustApply(t, g, SetQuota("t", &zppb.Quota{OpsPerSec: 1}, nil, 0))
	pr = g.Pull(epoch)
	if len(pr.Topology.Tables) != 1 || pr.Topology.Tables[0].Name != "t" || pr.NodesChanged || len(pr.Topology.Nodes) != 0 {
		t.Fatalf("delta since the old snapshot's epoch: %v", pr)
	}
}

// TestPullDeltaSize: with many tables, the delta after one table changed
// carries that table only, a small part of the whole topology.
func TestPullDeltaSize(t *testing.T) {
	f := New(quiet)
	nodes := []string{"a:1", "b:1", "c:1"}
	for _, a := range nodes {
		mustApply(t, f, register(a))
	}
	const tables, parts = 50, 64
	for i := range tables {
		tb := &zppb.Table{Name: fmt.Sprintf("t%02d", i), PartitionCount: parts, Replicas: 3}
		for p := range uint32(parts) {
			tb.Partitions = append(tb.Partitions, &zppb.Partition{Id: p, Master: nodes[p%3], Slaves: []string{nodes[(p+1)%3], nodes[(p+2)%3]}})
		}
		mustApply(t, f, createCmd(tb, 0))
	}
	since := f.Epoch()
	mustApply(t, f, SetMasters("test", change("t07", 3, nodes[1], 1)))
	full, _ := proto.Marshal(&zppb.PullResponse{Topology: fullTopology(t, f)})
	pr := f.Pull(since)
	delta, _ := proto.Marshal(pr)
	if len(pr.Topology.Tables) != 1 || pr.Topology.Tables[0].Name != "t07" || len(pr.Tables) != tables {
		t.Fatalf("delta carries %d tables (%d stamps)", len(pr.Topology.Tables), len(pr.Tables))
	}
	// One table of 50 plus 50 stamps: well under a tenth of the whole.
	if len(delta)*10 > len(full) {
		t.Fatalf("delta is %d bytes, the whole topology %d", len(delta), len(full))
	}
	t.Logf("delta %d bytes, whole topology %d bytes", len(delta), len(full))
}

// TestPullDeltaSizeAtScale logs the sizes of the whole topology and of the
// deltas after typical changes at the size of issue 16: 1,000 nodes, 10
// tables of 3,334 partitions x 3 (100,020 replicas), placed round-robin.
// It runs only when asked:
//
//	ZP_SCALE=1 go test -run TestPullDeltaSizeAtScale -v ./zpmeta/fsm/
func TestPullDeltaSizeAtScale(t *testing.T) {
	if os.Getenv("ZP_SCALE") == "" {
		t.Skip("set ZP_SCALE=1")
	}
	f := New(quiet)
	var nodes []string
	for i := range 1000 {
		nodes = append(nodes, fmt.Sprintf("10.0.%d.%d:9231", i/250, i%250))
		mustApply(t, f, register(nodes[i]))
	}
	const tables, parts = 10, 3334
	create := func(name string, shift int) {
		tb := &zppb.Table{Name: name, PartitionCount: parts, Replicas: 3}
		for p := range parts {
			n := func(k int) string { return nodes[(p*3+k+shift)%len(nodes)] }
			tb.Partitions = append(tb.Partitions, &zppb.Partition{Id: uint32(p), Master: n(0), Slaves: []string{n(1), n(2)}})
		}
		mustApply(t, f, createCmd(tb, 0))
	}
	for i := range tables - 1 {
		create(fmt.Sprintf("t%02d", i), i*7)
	}
	size := func(pr *zppb.PullResponse) int { return proto.Size(pr) }
	since := f.Epoch()
	create(fmt.Sprintf("t%02d", tables-1), (tables-1)*7)
	t.Logf("whole topology: %d bytes", size(f.Pull(0)))
	t.Logf("delta after a table create: %d bytes", size(f.Pull(since)))

	since = f.Epoch()
	mustApply(t, f, register("10.0.9.9:9231"))
	t.Logf("delta after a node joined: %d bytes", size(f.Pull(since)))

	// One move step: a partition goes SLOWDOWN.
	since = f.Epoch()
	id := addMove(t, f, &zppb.Move{Kind: zppb.MoveKind_SETMASTER, Table: "t03", Partition: 5, To: f.Pull(0).Topology.Tables[3].Partitions[5].Slaves[0]})
	for _, s := range [][2]zppb.MoveState{{pending, catching}, {catching, slowdown}} {
		if err := step(f, id, s[0], s[1]); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("delta after a move step: %d bytes, per partition %d", size(f.Pull(f.Epoch()-1)), size(f.PullPartitions(f.Epoch()-1)))

	// A node's failover: every partition it masters, in every table.
	since = f.Epoch()
	var changes []*zppb.MasterChange
	for _, tb := range f.Pull(0).Topology.Tables {
		for _, p := range tb.Partitions {
			if p.Master == nodes[0] {
				changes = append(changes, change(tb.Name, p.Id, p.Slaves[0], p.Term))
			}
		}
	}
	mustApply(t, f, SetNodeState(nodes[0], zppb.NodeState_DOWN, 0))
	mustApply(t, f, SetMasters("failover", changes...))
	t.Logf("delta after a node DOWN and the failover of its %d masters: %d bytes (%d since the DOWN), per partition %d (%d)",
		len(changes), size(f.Pull(since)), size(f.Pull(since+1)), size(f.PullPartitions(since)), size(f.PullPartitions(since+1)))
}
