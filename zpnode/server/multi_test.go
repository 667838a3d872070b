package server

import (
	"strconv"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func multiReq(cmds ...*zppb.Request) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_Multi{Multi: &zppb.MultiRequest{Table: "t", Cmds: cmds}}}
}

// TestMulti: each command sees the ones before it, a command's own error
// does not undo the others, the whole is one record, and a retry with the
// same id is answered from it without running again.
func TestMulti(t *testing.T) {
	ts := newMaster(t)
	ts.seed("{a}s", "str")
	req := with("m1", multiReq(
		setReq("{a}x", "1"),
		incrByReq("{a}x", 5),
		incrByReq("{a}s", 1), // NOT_INTEGER: its answer only
		setRangeReq("{a}x", 0, "9", true),
		getReq("{a}x"),
		delReq("{a}s", "{a}none"),
		existsReq("{a}s", "{a}x"),
		setReq("{a}x", "new", getOld),
	))
	_, lsnBefore, _ := ts.s.replicas.get("t", 0).Position()
	resp := ts.ok(req)
	rs := resp.GetMulti().GetResults()
	got := []string{
		rs[0].Code.String(),
		rs[1].Code.String() + " " + itoa(rs[1].GetIncrby().GetValue()),
		rs[2].Code.String(),
		itoa(rs[3].GetSetRange().GetLength()),
		string(rs[4].GetGet().GetValue()),
		itoa(rs[5].GetDel().GetDeleted()),
		itoa(rs[6].GetExists().GetCount()),
		string(rs[7].GetSet().GetOld()),
	}
	want := []string{"OK", "OK 6", "NOT_INTEGER", "2", "69", "1", "1", "69"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("answers %q, want %q", got, want)
		}
	}
	_, lsn, _ := ts.s.replicas.get("t", 0).Position()
	if lsn != lsnBefore+1 {
		t.Fatalf("MULTI logged %d records, want 1", lsn-lsnBefore)
	}
	if st := ts.state("{a}x"); st != "new" {
		t.Fatalf("{a}x = %s", st)
	}
	// The retry is answered from the record: the INCRBY does not run again.
	again := ts.ok(req).GetMulti().GetResults()
	if v := again[1].GetIncrby().GetValue(); v != 6 || string(again[7].GetSet().GetOld()) != "69" {
		t.Fatalf("retry answered %v", again)
	}
	if st := ts.state("{a}x"); st != "new" {
		t.Fatalf("{a}x after retry = %s", st)
	}

	// Keys of several slots, or a command MULTI cannot run, fail it all.
	if r := ts.do(multiReq(setReq("a", "1"), setReq("b", "1"))); r.Code != zppb.Code_CROSS_SLOT {
		t.Fatalf("cross slot: %v", r.Code)
	}
	if r := ts.do(multiReq(setReq("{a}y", "1"), &zppb.Request{Cmd: &zppb.Request_Scan{Scan: &zppb.ScanRequest{Table: "t"}}})); r.Code != zppb.Code_INVALID_ARGUMENT {
		t.Fatalf("scan in multi: %v", r.Code)
	}
	if st := ts.state("{a}y"); st != "-" {
		t.Fatalf("{a}y = %s after a refused MULTI", st)
	}
	// Only reads: nothing is logged.
	_, before, _ := ts.s.replicas.get("t", 0).Position()
	ts.ok(multiReq(getReq("{a}x"), existsReq("{a}x")))
	if _, after, _ := ts.s.replicas.get("t", 0).Position(); after != before {
		t.Fatal("a read-only MULTI was logged")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
