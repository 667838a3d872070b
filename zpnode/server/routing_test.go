package server

import (
	"cmp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestRouting checks, for a read and a write of every kind, what the
// command layer answers depending on the partition's place in the node's
// topology: served by its master, MOVE naming the master elsewhere (WAIT
// instead once meta has named a newer epoch the node has not applied: its
// master may be stale), WAIT while STUCK or without a master lease, TABLE_NOT_FOUND for a table the
// node does not know; and that the per-table stats count what was served
// and refused, never what was routed elsewhere.
func TestRouting(t *testing.T) {
	const other = "127.0.0.1:7002"
	key := []byte("k")
	reqs := map[string]func(table string) *zppb.Request{
		"get": func(tb string) *zppb.Request {
			return &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: tb, Key: key}}}
		},
		"set": func(tb string) *zppb.Request {
			return &zppb.Request{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: tb, Key: key, Value: []byte("v")}}}
		},
		"del": func(tb string) *zppb.Request {
			return &zppb.Request{Cmd: &zppb.Request_Del{Del: &zppb.DelRequest{Table: tb, Key: key}}}
		},
		"incrby": func(tb string) *zppb.Request {
			return &zppb.Request{Cmd: &zppb.Request_Incrby{Incrby: &zppb.IncrByRequest{Table: tb, Key: []byte("n"), Delta: 1}}}
		},
		"exists": func(tb string) *zppb.Request {
			return &zppb.Request{Cmd: &zppb.Request_Exists{Exists: &zppb.ExistsRequest{Table: tb, Key: key}}}
		},
		"mset": func(tb string) *zppb.Request {
			return &zppb.Request{Cmd: &zppb.Request_Mset{Mset: &zppb.MSetRequest{Table: tb, Kvs: []*zppb.KeyValue{{Key: key, Value: []byte("v")}}}}}
		},
	}
	tests := []struct {
		name  string
		setup func(ts *testServer)
		table string // the request's table; default "t"
		code  zppb.Code
		msg   string // in the answer's message (per key for MSET)
	}{
		{name: "master", code: zppb.Code_OK},
		{name: "master elsewhere", setup: func(ts *testServer) {
			ts.s.applyTopology(singleMaster(2, other, ts.s.cfg.Addr))
		}, code: zppb.Code_MOVE, msg: other},
		{name: "master elsewhere, newer epoch named", setup: func(ts *testServer) {
			ts.s.applyTopology(singleMaster(2, other, ts.s.cfg.Addr))
			ts.s.notified(3) // a NOTIFY of an epoch not pulled yet
		}, code: zppb.Code_WAIT, msg: "catching up"},
		{name: "stuck for a move", setup: func(ts *testServer) {
			topo := singleMaster(2, ts.s.cfg.Addr)
			topo.Tables[0].Partitions[0].State = zppb.PartitionState_STUCK
			ts.s.applyTopology(topo)
		}, code: zppb.Code_WAIT, msg: "STUCK"},
		{name: "lease ran out", setup: func(ts *testServer) {
			ts.s.lease = masterLease{logger: ts.s.cfg.Logger}
			ts.s.lease.renewed(time.Now().Add(-time.Hour), time.Second, true)
		}, code: zppb.Code_WAIT, msg: "lease"},
		{name: "unknown table", table: "nope", code: zppb.Code_TABLE_NOT_FOUND},
	}
	for _, tt := range tests {
		for cmd, build := range reqs {
			t.Run(tt.name+"/"+cmd, func(t *testing.T) {
				ts := newMaster(t)
				if tt.setup != nil {
					tt.setup(ts)
				}
				resp := ts.do(build(cmp.Or(tt.table, "t")))
				code, msg := resp.Code, resp.Msg
				if ms := resp.GetMset(); ms != nil && code == zppb.Code_OK && len(ms.Results) == 1 {
					code, msg = ms.Results[0].Code, ms.Results[0].Msg+" "+ms.Results[0].Master
				}
				if code == zppb.Code_NOT_FOUND && tt.code == zppb.Code_OK {
					code = zppb.Code_OK // a read of a missing key was served
				}
				if code != tt.code || !strings.Contains(msg+" "+resp.Master, tt.msg) {
					t.Fatalf("%v %q (master %q), want %v containing %q", resp.Code, resp.Msg, resp.Master, tt.code, tt.msg)
				}
				if tt.code == zppb.Code_MOVE && resp.GetMset() == nil && resp.Master != other {
					t.Errorf("MOVE names %q, want %q", resp.Master, other)
				}
				st := ts.s.stats.table("t")
				served := st.ops() + st.errors.Load()
				switch tt.code {
				case zppb.Code_OK:
					if st.ops() == 0 {
						t.Errorf("served, but the table's stats count no operation")
					}
				case zppb.Code_TABLE_NOT_FOUND:
					if served != 0 {
						t.Errorf("stats counted %d for a table the node does not know", served)
					}
				}
			})
		}
	}
}

// TestRoutingBySlotRanges: the node decides which partition a key is in by
// the partitions' slot ranges, whatever the order of their ids (as after
// splits): it serves the keys of the ranges it masters and answers MOVE,
// naming the master, for the others. The even layout of three partitions
// would swap the two keys below.
func TestRoutingBySlotRanges(t *testing.T) {
	const other = "127.0.0.1:7002"
	ts := newTestServer(t, "127.0.0.1:7001")
	self := ts.s.cfg.Addr
	ts.s.applyTopology(&zppb.Topology{Epoch: 5, Tables: []*zppb.Table{{Name: "t", PartitionCount: 3, Replicas: 1, CreatedEpoch: 1,
		Partitions: []*zppb.Partition{
			{Id: 0, Master: self, Term: 1, SlotBegin: 0, SlotEnd: 4096},
			{Id: 1, Master: self, Term: 1, SlotBegin: 8192, SlotEnd: 16384},
			{Id: 2, Master: other, Term: 1, SlotBegin: 4096, SlotEnd: 8192},
		}}}})
	// "foo" is in slot 12182, partition 1's.
	ts.ok(setReq("foo", "v"))
	if got := ts.state("foo"); got != "v" {
		t.Fatalf("foo = %s", got)
	}
	var held []string
	err := ts.s.replicas.get("t", 1).WithDB(func(db *engine.DB) error {
		return db.ForEach(0, func(key, _ []byte, _ int64) error {
			held = append(held, string(key))
			return nil
		})
	})
	if err != nil || !slices.Equal(held, []string{"foo"}) {
		t.Fatalf("partition 1 holds %q (%v), want foo", held, err)
	}
	// "k" is in slot 7629, partition 2's, mastered elsewhere.
	if resp := ts.do(setReq("k", "v")); resp.Code != zppb.Code_MOVE || resp.Master != other {
		t.Fatalf("SET k: %v %q %s, want MOVE to %s", resp.Code, resp.Master, resp.Msg, other)
	}
}
