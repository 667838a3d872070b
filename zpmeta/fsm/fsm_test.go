package fsm

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

var quiet = slog.New(slog.DiscardHandler)

func register(addr string) *zppb.MetaCommand {
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_RegisterNode{RegisterNode: &zppb.RegisterNodeCommand{Addr: addr}}}
}

func createCmd(t *zppb.Table, expected uint64) *zppb.MetaCommand {
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_CreateTable{CreateTable: &zppb.CreateTableCommand{Table: t, ExpectedEpoch: expected}}}
}

func dropCmd(name string, expected uint64) *zppb.MetaCommand {
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_DropTable{DropTable: &zppb.DropTableCommand{Name: name, ExpectedEpoch: expected}}}
}

// table returns a valid one-partition table over the given replicas.
func table(name string, master string, slaves ...string) *zppb.Table {
	return &zppb.Table{
		Name: name, PartitionCount: 1, Replicas: uint32(1 + len(slaves)),
		Partitions: []*zppb.Partition{{Id: 0, Master: master, Slaves: slaves}},
	}
}

func applyLog(f *FSM, data []byte) Result {
	return f.Apply(&raft.Log{Type: raft.LogCommand, Data: data}).(Result)
}

func mustApply(t *testing.T, f *FSM, cmd *zppb.MetaCommand) Result {
	t.Helper()
	b, err := proto.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	res := applyLog(f, b)
	if res.Err != nil {
		t.Fatalf("apply %v: %v", cmd, res.Err)
	}
	return res
}

// seeded returns an FSM with nodes a, b, c and table "t" on them (epoch 4).
func seeded(t *testing.T) *FSM {
	f := New(quiet)
	for _, a := range []string{"a:1", "b:1", "c:1"} {
		mustApply(t, f, register(a))
	}
	mustApply(t, f, createCmd(table("t", "a:1", "b:1", "c:1"), 0))
	if f.Epoch() != 4 {
		t.Fatalf("seeded epoch %d, want 4", f.Epoch())
	}
	return f
}

func TestApplyChanges(t *testing.T) {
	f := seeded(t)
	tp, err := f.Topology("t")
	if err != nil {
		t.Fatal(err)
	}
	tb := tp.Tables[0]
	if tb.CreatedEpoch != 4 || tb.Partitions[0].Term != 1 || tb.Partitions[0].State != zppb.PartitionState_ACTIVE {
		t.Fatalf("created table %v", tb)
	}

	tests := []struct {
		name        string
		cmd         *zppb.MetaCommand
		wantChanged bool
	}{
		{"register same node again", register("a:1"), false},
		{"weight 0 is the default weight", &zppb.MetaCommand{Cmd: &zppb.MetaCommand_RegisterNode{RegisterNode: &zppb.RegisterNodeCommand{Addr: "a:1", Weight: topo.DefaultWeight}}}, false},
		{"new zone", &zppb.MetaCommand{Cmd: &zppb.MetaCommand_RegisterNode{RegisterNode: &zppb.RegisterNodeCommand{Addr: "a:1", Zone: "z1"}}}, true},
		{"mark down", SetNodeState("b:1", zppb.NodeState_DOWN, 0), true},
		{"mark down again", SetNodeState("b:1", zppb.NodeState_DOWN, 0), false},
		{"mark up", SetNodeState("b:1", zppb.NodeState_UP, 0), true},
		{"create with current epoch", createCmd(table("u", "c:1"), 7), true},
		{"drop", dropCmd("u", 0), true},
		{"create again under the same name", createCmd(table("u", "c:1"), 0), true},
	}
	for _, tt := range tests {
		before := f.Epoch()
		res := mustApply(t, f, tt.cmd)
		want := before
		if tt.wantChanged {
			want++
		}
		if res.Changed != tt.wantChanged || res.Epoch != want || f.Epoch() != want {
			t.Errorf("%s: changed %v epoch %d (fsm %d), want %v %d", tt.name, res.Changed, res.Epoch, f.Epoch(), tt.wantChanged, want)
		}
	}
	// A table dropped and created again has a new created_epoch.
	tp, _ = f.Topology("u")
	if got := tp.Tables[0].CreatedEpoch; got != f.Epoch() {
		t.Errorf("recreated table's created_epoch %d, want %d", got, f.Epoch())
	}
	if n := f.Node("a:1"); n.Zone != "z1" || n.Weight != topo.DefaultWeight || n.State != zppb.NodeState_UP {
		t.Errorf("node a: %v", n)
	}
}

func TestApplyRejects(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		cmd  *zppb.MetaCommand
		want *status.Error
	}{
		{name: "garbage", data: []byte{0xff, 0xff, 0xff}, want: status.ErrInvalidArgument},
		{name: "empty command", cmd: &zppb.MetaCommand{}, want: status.ErrInvalidArgument},
		{name: "register empty addr", cmd: register(""), want: status.ErrInvalidArgument},
		{name: "register addr without port", cmd: register("host"), want: status.ErrInvalidArgument},
		{name: "state of unknown node", cmd: SetNodeState("x:1", zppb.NodeState_DOWN, 0), want: status.ErrNodeNotFound},
		{name: "state UNKNOWN", cmd: SetNodeState("a:1", zppb.NodeState_NODE_STATE_UNKNOWN, 0), want: status.ErrInvalidArgument},
		{name: "create without table", cmd: createCmd(nil, 0), want: status.ErrInvalidArgument},
		{name: "create existing", cmd: createCmd(table("t", "a:1"), 0), want: status.ErrTableExists},
		{name: "create stale epoch", cmd: createCmd(table("u", "a:1"), 3), want: status.ErrStaleEpoch},
		{name: "create bad name", cmd: createCmd(table("a/b", "a:1"), 0), want: status.ErrInvalidArgument},
		{name: "create on unknown node", cmd: createCmd(table("u", "x:1"), 0), want: status.ErrInvalidArgument},
		{name: "create without master", cmd: createCmd(table("u", ""), 0), want: status.ErrInvalidArgument},
		{name: "create two replicas on one node", cmd: createCmd(table("u", "a:1", "a:1"), 0), want: status.ErrInvalidArgument},
		{name: "create min_sync = replicas", cmd: createCmd(func() *zppb.Table { t := table("u", "a:1", "b:1"); t.MinSyncReplicas = 2; return t }(), 0), want: status.ErrInvalidArgument},
		{name: "create with too few placed partitions", cmd: createCmd(func() *zppb.Table { t := table("u", "a:1"); t.PartitionCount = 2; return t }(), 0), want: status.ErrInvalidArgument},
		{name: "create with wrong partition id", cmd: createCmd(func() *zppb.Table { t := table("u", "a:1"); t.Partitions[0].Id = 1; return t }(), 0), want: status.ErrInvalidArgument},
		{name: "create with wrong replica count", cmd: createCmd(func() *zppb.Table { t := table("u", "a:1"); t.Replicas = 2; return t }(), 0), want: status.ErrInvalidArgument},
		{name: "create zero partitions", cmd: createCmd(&zppb.Table{Name: "u", Replicas: 1}, 0), want: status.ErrInvalidArgument},
		{name: "drop unknown", cmd: dropCmd("nope", 0), want: status.ErrTableNotFound},
		{name: "drop stale epoch", cmd: dropCmd("t", 1), want: status.ErrStaleEpoch},
		{name: "drop empty name", cmd: dropCmd("", 0), want: status.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := seeded(t)
			before, _ := f.Snapshot()
			data := tt.data
			if tt.cmd != nil {
				var err error
				if data, err = proto.Marshal(tt.cmd); err != nil {
					t.Fatal(err)
				}
			}
			res := applyLog(f, data)
			if !errors.Is(res.Err, tt.want) || res.Changed || res.Epoch != 4 {
				t.Fatalf("got %+v, want %v and no change", res, tt.want)
			}
			after, _ := f.Snapshot()
			if !bytes.Equal(before.(*snapshot).data, after.(*snapshot).data) {
				t.Fatal("rejected command changed the state")
			}
		})
	}
}

func TestPrepare(t *testing.T) {
	tests := []struct {
		name string
		req  *zppb.CreateTableRequest
		want *status.Error // nil: OK
	}{
		{"defaults to 3 replicas", &zppb.CreateTableRequest{Name: "u", Partitions: 4}, nil},
		{"empty name", &zppb.CreateTableRequest{Partitions: 1}, status.ErrInvalidArgument},
		{"bad chars", &zppb.CreateTableRequest{Name: "a b", Partitions: 1}, status.ErrInvalidArgument},
		{"dot dot", &zppb.CreateTableRequest{Name: "..", Partitions: 1}, status.ErrInvalidArgument},
		{"leading dot", &zppb.CreateTableRequest{Name: ".fullsync", Partitions: 1}, status.ErrInvalidArgument},
		{"leading dash", &zppb.CreateTableRequest{Name: "-t", Partitions: 1}, status.ErrInvalidArgument},
		{"name too long", &zppb.CreateTableRequest{Name: strings.Repeat("x", topo.MaxTableNameLen+1), Partitions: 1}, status.ErrInvalidArgument},
		{"longest name", &zppb.CreateTableRequest{Name: strings.Repeat("x", topo.MaxTableNameLen), Partitions: 1}, nil},
		{"zero partitions", &zppb.CreateTableRequest{Name: "u"}, status.ErrInvalidArgument},
		{"too many partitions", &zppb.CreateTableRequest{Name: "u", Partitions: topo.MaxPartitions + 1}, status.ErrInvalidArgument},
		{"replicas > nodes", &zppb.CreateTableRequest{Name: "u", Partitions: 1, Replicas: 4}, status.ErrNotEnoughNodes},
		{"min_sync = replicas", &zppb.CreateTableRequest{Name: "u", Partitions: 1, Replicas: 2, MinSyncReplicas: 2}, status.ErrInvalidArgument},
		{"stale epoch", &zppb.CreateTableRequest{Name: "u", Partitions: 1, ExpectedEpoch: 3}, status.ErrStaleEpoch},
		{"stale epoch before exists", &zppb.CreateTableRequest{Name: "t", Partitions: 1, ExpectedEpoch: 3}, status.ErrStaleEpoch},
		{"exists", &zppb.CreateTableRequest{Name: "t", Partitions: 1}, status.ErrTableExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := seeded(t)
			cmd, err := f.PrepareCreateTable(tt.req)
			if tt.want != nil {
				if !errors.Is(err, tt.want) || cmd != nil {
					t.Fatalf("got %v, %v; want %v", cmd, err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			res := mustApply(t, f, cmd)
			if res.Table.Replicas != topo.DefaultReplicas || res.Table.CreatedEpoch != 5 {
				t.Fatalf("created %v", res.Table)
			}
		})
	}

	// A DOWN node gets no replicas.
	f := seeded(t)
	mustApply(t, f, SetNodeState("c:1", zppb.NodeState_DOWN, 0))
	if _, err := f.PrepareCreateTable(&zppb.CreateTableRequest{Name: "u", Partitions: 1}); !errors.Is(err, status.ErrNotEnoughNodes) {
		t.Fatalf("3 replicas with a node DOWN: %v", err)
	}

	if cmd, err := f.PrepareRegisterNode(&zppb.PingRequest{Addr: "a:1"}); cmd != nil || err != nil {
		t.Fatalf("ping of a known node: %v %v", cmd, err)
	}
	if cmd, err := f.PrepareRegisterNode(&zppb.PingRequest{Addr: "a:1", Rack: "r"}); cmd == nil || err != nil {
		t.Fatalf("ping with a new rack: %v %v", cmd, err)
	}
	cmd, err := f.PrepareRegisterNode(&zppb.PingRequest{Addr: "a:1", RedisAddr: "a:2"})
	if err != nil || cmd.GetRegisterNode().GetRedisAddr() != "a:2" {
		t.Fatalf("ping with a RESP address: %v %v", cmd, err)
	}
	mustApply(t, f, cmd)
	if n := f.Node("a:1"); n.GetRedisAddr() != "a:2" {
		t.Fatalf("node after registering its RESP address: %v", n)
	}
	if cmd, err := f.PrepareRegisterNode(&zppb.PingRequest{Addr: "a:1", RedisAddr: "a:2"}); cmd != nil || err != nil {
		t.Fatalf("ping with the same RESP address: %v %v", cmd, err)
	}
	if cmd, err := f.PrepareRegisterNode(&zppb.PingRequest{Addr: "a:1", RedisAddr: "no-port"}); !errors.Is(err, status.ErrInvalidArgument) {
		t.Fatalf("ping with a RESP address that is not host:port: %v %v", cmd, err)
	}
	if _, err := f.PrepareDropTable(&zppb.DropTableRequest{Name: "nope"}); !errors.Is(err, status.ErrTableNotFound) {
		t.Fatalf("drop unknown: %v", err)
	}
}

type sink struct {
	bytes.Buffer
	cancelled bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { s.cancelled = true; return nil }
func (s *sink) Close() error  { return nil }

// TestDownEpoch: marking a node DOWN records the epoch of that decision, and
// only a PING from a sender that has applied it counts as sent after.
func TestDownEpoch(t *testing.T) {
	f := seeded(t) // epoch 4
	steps := []struct {
		name          string
		cmd           *zppb.MetaCommand
		wantDownEpoch uint64
		// sentAfter maps a PING's epoch to whether it counts as sent
		// after the DOWN decision of b.
		sentAfter map[uint64]bool
	}{
		{"UP node: every PING counts", nil, 0, map[uint64]bool{0: true, 4: true}},
		{"marked DOWN at epoch 5", SetNodeState("b:1", zppb.NodeState_DOWN, 0), 5, map[uint64]bool{0: false, 4: false, 5: true, 6: true}},
		{"DOWN again changes nothing", SetNodeState("b:1", zppb.NodeState_DOWN, 0), 5, map[uint64]bool{4: false, 5: true}},
		{"another change does not move it", register("d:1"), 5, map[uint64]bool{5: true}},
		{"UP clears it", SetNodeState("b:1", zppb.NodeState_UP, 0), 0, map[uint64]bool{0: true}},
		{"DOWN again at epoch 8", SetNodeState("b:1", zppb.NodeState_DOWN, 0), 8, map[uint64]bool{5: false, 7: false, 8: true}},
	}
	for _, st := range steps {
		if st.cmd != nil {
			mustApply(t, f, st.cmd)
		}
		n := f.Node("b:1")
		if n.DownEpoch != st.wantDownEpoch {
			t.Errorf("%s: down_epoch %d, want %d", st.name, n.DownEpoch, st.wantDownEpoch)
		}
		for epoch, want := range st.sentAfter {
			if got := SentAfterDown(n, epoch); got != want {
				t.Errorf("%s: SentAfterDown(ping at epoch %d) = %v, want %v", st.name, epoch, got, want)
			}
		}
	}
	if !SentAfterDown(nil, 0) {
		t.Error("an unknown node's PING does not count")
	}
	// Marked DOWN by a version without down_epoch: no evidence, as before.
	if !SentAfterDown(&zppb.Node{State: zppb.NodeState_DOWN}, 0) {
		t.Error("legacy DOWN node (down_epoch 0) refused")
	}
}

func TestSnapshotRestore(t *testing.T) {
	f := seeded(t)
	mustApply(t, f, SetNodeState("b:1", zppb.NodeState_DOWN, 0))
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Changes after the snapshot are not in it.
	mustApply(t, f, dropCmd("t", 0))

	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	g := New(quiet)
	if err := g.Restore(io.NopCloser(bytes.NewReader(s.Bytes()))); err != nil {
		t.Fatal(err)
	}
	topo, err := g.Topology("")
	if err != nil {
		t.Fatal(err)
	}
	if topo.Epoch != 5 || len(topo.Tables) != 1 || len(topo.Nodes) != 3 || topo.Nodes[1].State != zppb.NodeState_DOWN || topo.Nodes[1].DownEpoch != 5 {
		t.Fatalf("restored %v", topo)
	}
	// Restore replaces, never merges.
	if err := f.Restore(io.NopCloser(bytes.NewReader(s.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Topology("t"); err != nil {
		t.Fatalf("table dropped after the snapshot not restored: %v", err)
	}

	bad := []*zppb.MetaSnapshot{
		{Nodes: []*zppb.Node{{Addr: "a:1"}, {Addr: "a:1"}}},
		{Tables: []*zppb.Table{{Name: ""}}},
	}
	for _, b := range bad {
		data, _ := proto.Marshal(b)
		if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err == nil {
			t.Errorf("restored invalid snapshot %v", b)
		}
	}
	if err := g.Restore(io.NopCloser(strings.NewReader("\xff\xff"))); err == nil {
		t.Error("restored garbage")
	}
	if g.Epoch() != 5 {
		t.Errorf("failed restores changed the state: epoch %d", g.Epoch())
	}
}

func change(table string, partition uint32, newMaster string, term uint64) *zppb.MasterChange {
	return &zppb.MasterChange{Table: table, Partition: partition, NewMaster: newMaster, ExpectedTerm: term}
}

func TestSetMasters(t *testing.T) {
	f := seeded(t)
	res := mustApply(t, f, SetMasters("failover", change("t", 0, "c:1", 1)))
	if !res.Changed || res.Epoch != 5 {
		t.Fatalf("result %+v, want a change at epoch 5", res)
	}
	topo, _ := f.Topology("t")
	p := topo.Tables[0].Partitions[0]
	if p.Master != "c:1" || p.Term != 2 || len(p.Slaves) != 2 || p.Slaves[0] != "b:1" || p.Slaves[1] != "a:1" {
		t.Fatalf("after failover: master %s slaves %v term %d; want c:1, [b:1 a:1], 2", p.Master, p.Slaves, p.Term)
	}

	tests := []struct {
		name string
		cmd  *zppb.MetaCommand
		want error
	}{
		{"stale term", SetMasters("failover", change("t", 0, "b:1", 1)), status.ErrStaleEpoch},
		{"not a slave", SetMasters("failover", change("t", 0, "d:1", 2)), status.ErrInvalidArgument},
		{"current master", SetMasters("failover", change("t", 0, "c:1", 2)), status.ErrInvalidArgument},
		{"unknown table", SetMasters("failover", change("nope", 0, "b:1", 2)), status.ErrTableNotFound},
		{"unknown partition", SetMasters("failover", change("t", 7, "b:1", 2)), status.ErrInvalidArgument},
		{"no changes", SetMasters("failover"), status.ErrInvalidArgument},
		{"one bad change spoils all", SetMasters("failover", change("t", 0, "b:1", 2), change("t", 0, "a:1", 2)), status.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := f.Topology("")
			b, _ := proto.Marshal(tt.cmd)
			res := applyLog(f, b)
			if !errors.Is(res.Err, tt.want) {
				t.Fatalf("err %v, want %v", res.Err, tt.want)
			}
			after, _ := f.Topology("")
			if !proto.Equal(before, after) {
				t.Fatalf("rejected command changed the state:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// TestPlacementDoesNotBlockApply: PrepareCreateTable places the table
// outside the FSM lock (seconds for a big table on many nodes), so commands
// apply, and reads answer, while it runs.
func TestPlacementDoesNotBlockApply(t *testing.T) {
	f := seeded(t)
	placing, release := make(chan struct{}), make(chan struct{})
	orig := placeTable
	placeTable = func(nodes []*zppb.Node, existing []*zppb.Table, partitions, replicas uint32) ([]*zppb.Partition, error) {
		close(placing)
		<-release
		return orig(nodes, existing, partitions, replicas)
	}
	defer func() { placeTable = orig }()
	prepared := make(chan error, 1)
	go func() {
		_, err := f.PrepareCreateTable(&zppb.CreateTableRequest{Name: "big", Partitions: 4, Replicas: 3})
		prepared <- err
	}()
	<-placing
	applied := make(chan Result, 1)
	go func() { applied <- f.ApplyCommand(register("d:1")) }()
	var res Result
	select {
	case res = <-applied:
	case <-time.After(10 * time.Second):
		t.Error("a command could not apply while a table was being placed")
		close(release)
		res = <-applied
		release = nil
	}
	if res.Err != nil || !res.Changed {
		t.Errorf("apply during placement: %+v", res)
	}
	if release != nil {
		close(release)
	}
	if err := <-prepared; err != nil {
		t.Fatal(err)
	}
}

func TestOrphans(t *testing.T) {
	f := seeded(t) // t/0 mastered by a:1, slaves b:1 and c:1
	mustApply(t, f, createCmd(table("u", "b:1", "a:1"), 0))
	if o, up := f.Orphans(); len(o) != 0 || len(up) != 3 {
		t.Fatalf("every node UP: orphans %v, up %v", o, up)
	}
	mustApply(t, f, SetNodeState("a:1", zppb.NodeState_DOWN, 0))
	o, up := f.Orphans()
	if len(o) != 1 || o[0].Table != "t" || o[0].Partition.Master != "a:1" || o[0].Master.DownEpoch != f.Epoch() || up["a:1"] || !up["b:1"] {
		t.Fatalf("a:1 DOWN: orphans %v, up %v", o, up)
	}
	// Copies: changing them changes nothing.
	o[0].Partition.Master = "x:1"
	if o, _ := f.Orphans(); o[0].Partition.Master != "a:1" {
		t.Fatal("Orphans returned the state's own partition")
	}
}

// TestCreateTableRecordsSlotRanges: the meta records each new partition's
// slot range, the even layout, whether or not the leader's command carried
// ranges (a leader of an older release sends none).
func TestCreateTableRecordsSlotRanges(t *testing.T) {
	f := seeded(t)
	tb := &zppb.Table{Name: "u", PartitionCount: 3, Replicas: 1}
	for i := range uint32(3) {
		tb.Partitions = append(tb.Partitions, &zppb.Partition{Id: i, Master: "a:1"})
	}
	mustApply(t, f, createCmd(tb, 0))
	tp, err := f.Topology("u")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range tp.Tables[0].Partitions {
		b, e := keyspace.SlotRange(uint32(i), 3)
		if p.SlotBegin != b || p.SlotEnd != e {
			t.Errorf("partition %d: [%d, %d), want [%d, %d)", i, p.SlotBegin, p.SlotEnd, b, e)
		}
	}
}

// TestSplitSize: a table's automatic split size is set at creation and
// by SetQuota (alone, leaving the quota, or left alone by a quota
// change), a size under topo.MinSplitSize is refused, and a snapshot
// keeps it.
func TestSplitSize(t *testing.T) {
	f := seeded(t)
	tb := table("s", "a:1", "b:1")
	tb.SplitSize = 8 << 20
	mustApply(t, f, createCmd(tb, 0))
	size := func() (uint64, *zppb.Quota) {
		t.Helper()
		tp, err := f.Topology("s")
		if err != nil {
			t.Fatal(err)
		}
		return tp.Tables[0].SplitSize, tp.Tables[0].Quota
	}
	u := func(v uint64) *uint64 { return &v }
	mustApply(t, f, SetQuota("s", &zppb.Quota{OpsPerSec: 5}, nil, 0))
	if s, q := size(); s != 8<<20 || q.GetOpsPerSec() != 5 {
		t.Fatalf("after a quota change: split size %d, quota %v", s, q)
	}
	mustApply(t, f, SetQuota("s", nil, u(16<<20), 0))
	if s, q := size(); s != 16<<20 || q.GetOpsPerSec() != 5 {
		t.Fatalf("after a split size change: split size %d, quota %v", s, q)
	}
	if sized, _ := f.SplitSizedTables(); len(sized) != 1 || sized[0].Name != "s" {
		t.Fatalf("tables with a split size: %v, want s alone", sized)
	}
	epoch := f.Epoch()
	for _, bad := range []*zppb.MetaCommand{SetQuota("s", nil, u(1000), 0), SetQuota("nope", nil, u(0), 0)} {
		b, _ := proto.Marshal(bad)
		if res := applyLog(f, b); res.Err == nil {
			t.Errorf("applied %v", bad)
		}
	}
	tb2 := table("s2", "a:1")
	tb2.SplitSize = 1
	b, _ := proto.Marshal(createCmd(tb2, 0))
	if res := applyLog(f, b); res.Err == nil || f.Epoch() != epoch {
		t.Errorf("created a table with split size 1: %v", res.Err)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sk sink
	if err := snap.Persist(&sk); err != nil {
		t.Fatal(err)
	}
	g := New(quiet)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sk.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if tp, err := g.Topology("s"); err != nil || tp.Tables[0].SplitSize != 16<<20 {
		t.Fatalf("restored: %v, %v", tp, err)
	}
}
