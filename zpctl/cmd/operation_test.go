package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/client/clienttest"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/tui"
)

func TestPlanners(t *testing.T) {
	const a, b, c, d, down = "n:1", "n:2", "n:3", "n:4", "n:5"
	topo := &client.Topology{Epoch: 9,
		Nodes: []client.Node{{Addr: a, State: "UP"}, {Addr: b, State: "UP"}, {Addr: c, State: "UP"}, {Addr: d, State: "UP"}, {Addr: down, State: "DOWN"}},
		Tables: []client.Table{
			{Name: "t", PartitionCount: 2, Partitions: []client.Partition{
				{ID: 0, Master: a, Slaves: []string{b, down}},
				{ID: 1, Master: b, Slaves: []string{c}},
			}},
			{Name: "u", PartitionCount: 1, Partitions: []client.Partition{{ID: 0, Master: c, Slaves: []string{a}}}},
		}}
	step := func(action, table string, id uint32, from, to string) string {
		return PlanStep{Action: action, Table: table, Partition: id, From: from, To: to}.String()
	}
	tests := []struct {
		name     string
		plan     func() (*Plan, error)
		want     []string
		wantCode zppb.Code
	}{
		{"setmaster", func() (*Plan, error) { return planSetMaster(topo, "t", 0, b) }, []string{step("setmaster", "t", 0, a, b)}, 0},
		{"setmaster to a down slave", func() (*Plan, error) { return planSetMaster(topo, "t", 0, down) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"setmaster to a non-slave", func() (*Plan, error) { return planSetMaster(topo, "t", 0, c) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"setmaster to the master", func() (*Plan, error) { return planSetMaster(topo, "t", 0, a) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"setmaster unknown table", func() (*Plan, error) { return planSetMaster(topo, "x", 0, a) }, nil, zppb.Code_TABLE_NOT_FOUND},
		{"setmaster unknown partition", func() (*Plan, error) { return planSetMaster(topo, "t", 7, b) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"addslave", func() (*Plan, error) { return planAddSlave(topo, "t", 1, d) }, []string{step("addslave", "t", 1, "", d)}, 0},
		{"addslave to a holder", func() (*Plan, error) { return planAddSlave(topo, "t", 1, c) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"addslave to an unknown node", func() (*Plan, error) { return planAddSlave(topo, "t", 1, "n:9") }, nil, zppb.Code_NODE_NOT_FOUND},
		{"removeslave", func() (*Plan, error) { return planRemoveSlave(topo, "t", 0, down) }, []string{step("removeslave", "t", 0, down, "")}, 0},
		{"removeslave of the master", func() (*Plan, error) { return planRemoveSlave(topo, "t", 0, a) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"migrate", func() (*Plan, error) { return planMove(topo, "t", 0, down, d) }, []string{step("migrate", "t", 0, down, d)}, 0},
		{"move from a non-holder", func() (*Plan, error) { return planMove(topo, "t", 0, c, d) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"move to a down node", func() (*Plan, error) { return planMove(topo, "t", 1, b, down) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"migrate onto a holder", func() (*Plan, error) { return planMove(topo, "t", 0, a, b) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"migrate to an unknown node", func() (*Plan, error) { return planMove(topo, "t", 0, a, "n:9") }, nil, zppb.Code_NODE_NOT_FOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.plan()
			if tt.wantCode != 0 {
				if status.Code(err) != tt.wantCode {
					t.Fatalf("err %v, want %v", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range p.Steps {
				got = append(got, s.String())
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || p.Epoch != 9 {
				t.Fatalf("plan %v, want %v", p, tt.want)
			}
		})
	}
}

// The topology commands against the fake cluster, whose meta servers run
// each move one step per MOVE_STATUS (clienttest/moves.go): table t has
// partitions 0 (n0 master, n1 slave), 1 (n1, n2) and 2 (n2, n0).

// fast makes an operation poll the move status every 5ms.
const fast = "--poll-interval=5ms"

func newMoveCluster(t *testing.T) (*clienttest.Cluster, []string) {
	t.Helper()
	cl := clienttest.NewCluster(t, 1, 3)
	cl.AddTable("t", 3)
	return cl, []string{cl.Nodes[0].Addr, cl.Nodes[1].Addr, cl.Nodes[2].Addr}
}

// zpctlIn runs zpctl against cl as inv says.
func zpctlIn(t *testing.T, cl *clienttest.Cluster, inv invocation) result {
	t.Helper()
	inv.args = append([]string{"--meta", strings.Join(cl.MetaAddrs(), ","), "--timeout", "2s"}, inv.args...)
	return run(t, inv)
}

func partition(cl *clienttest.Cluster, table string, id uint32) *zppb.Partition {
	for _, tb := range cl.Topology().Tables {
		if tb.Name == table {
			return tb.Partitions[id]
		}
	}
	return nil
}

func mustContain(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// stay is a move script that copies a quarter and stays there.
func stay(*zppb.Move, *zppb.Partition) []clienttest.MoveStep {
	return []clienttest.MoveStep{{State: zppb.MoveState_MOVE_CATCHING_UP, BytesTotal: 1 << 20, BytesCopied: 1 << 18, BytesPerSec: 1 << 20, EtaMs: 750, RecordsBehind: 99}}
}

func TestSetMaster(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		cl, n := newMoveCluster(t)
		epoch := cl.Epoch()
		r := zpctl(t, cl, "setmaster", "t", "0", n[1], "--yes", fast)
		if r.code != ExitOK {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		mustContain(t, "stdout", r.stdout, "Plan: setmaster, 1 move, made at epoch", "1  setmaster  t      0          "+n[0]+"  "+n[1],
			"ID  KIND       PARTITION  MOVE", "1   setmaster  t/0        "+n[0]+" -> "+n[1]+"  DONE", "80ms")
		mustContain(t, "stderr", r.stderr, "setmaster: move 1 queued: setmaster t/0 "+n[0]+" -> "+n[1]+"\n",
			"setmaster: move 1 PENDING -> CATCHING_UP\n", "setmaster: move 1 SLOWDOWN -> STUCK\n",
			"setmaster: move 1 DONE: setmaster t/0 "+n[0]+" -> "+n[1]+" (STUCK 80ms)\n", "setmaster: done, 1/1 moves (100%)")
		p := partition(cl, "t", 0)
		if p.Master != n[1] || !slices.Equal(p.Slaves, []string{n[0]}) || p.Term != 2 || p.State != zppb.PartitionState_ACTIVE {
			t.Fatalf("partition after setmaster: %v", p)
		}
		// Planned at the epoch it was queued at: CATCHING_UP changes nothing,
		// SLOWDOWN, STUCK and the handover do.
		if got := cl.Epoch(); got != epoch+3 {
			t.Fatalf("epoch %d, want %d", got, epoch+3)
		}
	})
	t.Run("json", func(t *testing.T) {
		cl, n := newMoveCluster(t)
		epoch := cl.Epoch()
		r := zpctl(t, cl, "-o", "json", "setmaster", "t", "0", n[1], "--yes", fast)
		var got operationJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitOK {
			t.Fatalf("exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
		}
		m := got.Moves[0]
		if !got.Waited || got.Done != 1 || got.Failed != 0 || got.Plan.Epoch != epoch || len(got.Moves) != 1 ||
			m.ID != 1 || m.Kind != "setmaster" || m.State != "DONE" || m.From != n[0] || m.To != n[1] || m.StuckMs != 80 || m.Origin != "manual" {
			t.Fatalf("json %+v", got)
		}
		// Progress still goes to stderr, as lines.
		mustContain(t, "stderr", r.stderr, "setmaster: done")
	})
	// Another change lands between the plan and the queueing: once, every
	// time, or one that changes the plan.
	t.Run("stale epoch, same plan", func(t *testing.T) {
		cl, n := newMoveCluster(t)
		bumps := 0
		cl.Metas[0].SetHook(func(req *zppb.Request) *zppb.Response {
			if req.GetSetMaster() != nil && bumps == 0 {
				bumps++
				cl.Update(func(*zppb.Topology) {})
			}
			return nil
		})
		epoch := cl.Epoch()
		r := zpctl(t, cl, "-o", "json", "setmaster", "t", "0", n[1], "--yes", fast)
		var got operationJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitOK || got.Plan.Epoch != epoch+1 || cl.Metas[0].Calls("set_master") != 2 {
			t.Fatalf("exit %d, %v: %s\n%s", r.code, err, r.stdout, r.stderr)
		}
		mustContain(t, "stderr", r.stderr, fmt.Sprintf("zpctl: setmaster: the epoch moved from %d to %d meanwhile; the plan is the same, queueing it at %d", epoch, epoch+1, epoch+1))
	})
	t.Run("stale epoch every time", func(t *testing.T) {
		cl, n := newMoveCluster(t)
		cl.Metas[0].SetHook(func(req *zppb.Request) *zppb.Response {
			if req.GetSetMaster() != nil {
				cl.Update(func(*zppb.Topology) {})
			}
			return nil
		})
		r := zpctl(t, cl, "setmaster", "t", "0", n[1], "--yes", fast)
		if r.code != ExitConflict || len(cl.Moves()) != 0 || cl.Metas[0].Calls("set_master") != 1+replans {
			t.Fatalf("exit %d, moves %v\n%s", r.code, cl.Moves(), r.stderr)
		}
		mustContain(t, "stderr", r.stderr, "STALE_EPOCH")
	})
	t.Run("stale plan", func(t *testing.T) {
		cl, n := newMoveCluster(t)
		// The master changes: the plan's FROM is no longer true.
		cl.Metas[0].SetHook(func(req *zppb.Request) *zppb.Response {
			if req.GetSetMaster() != nil && partition(cl, "t", 0).Master == n[0] {
				cl.SetMaster("t", 0, n[2])
			}
			return nil
		})
		r := zpctl(t, cl, "setmaster", "t", "0", n[1], "--yes", fast)
		if r.code != ExitConflict || len(cl.Moves()) != 0 {
			t.Fatalf("exit %d, moves %v\n%s", r.code, cl.Moves(), r.stderr)
		}
		mustContain(t, "stderr", r.stderr, "STALE_EPOCH", "the plan changed meanwhile")
	})
	t.Run("confirmation", func(t *testing.T) {
		cl, n := newMoveCluster(t)
		r := zpctlIn(t, cl, invocation{args: []string{"setmaster", "t", "0", n[1], fast}, terminal: true, stdin: "n\n"})
		if r.code != ExitAborted || cl.Metas[0].Calls("set_master") != 0 {
			t.Fatalf("declined: exit %d, %d calls: %s", r.code, cl.Metas[0].Calls("set_master"), r.stderr)
		}
		mustContain(t, "stderr", r.stderr, "Run this move? [y/N]")
		r = zpctlIn(t, cl, invocation{args: []string{"setmaster", "t", "0", n[1], fast}, terminal: true, stdin: "y\n"})
		if r.code != ExitOK || partition(cl, "t", 0).Master != n[1] {
			t.Fatalf("confirmed: exit %d: %s", r.code, r.stderr)
		}
	})
	t.Run("progress bar on a terminal", func(t *testing.T) {
		cl, n := newMoveCluster(t)
		r := zpctlIn(t, cl, invocation{args: []string{"setmaster", "t", "0", n[1], "--yes", fast}, stderrTerminal: true})
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		mustContain(t, "stderr", r.stderr, "\r\x1b[2Ksetmaster ", "1/1 moves (100%)", "\r\x1b[2Kmove 1 DONE", "setmaster: done")
	})
	t.Run("wait timeout", func(t *testing.T) {
		cl, n := newMoveCluster(t)
		cl.SetMoveScript(stay)
		r := zpctl(t, cl, "setmaster", "t", "0", n[1], "--yes", fast, "--wait-timeout", "100ms")
		if r.code != ExitUnavailable {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		mustContain(t, "stderr", r.stderr, "stopped following after 0 of 1 moves ended; the others keep running")
		mustContain(t, "stdout", r.stdout, "CATCHING_UP  256.0 KiB/1.0 MiB  99      1.0 MiB/s  750ms")
	})
}

func TestMoveFails(t *testing.T) {
	cl, n := newMoveCluster(t)
	cl.SetMoveScript(clienttest.FailingMoveScript(2, "target went DOWN"))
	r := zpctl(t, cl, "-o", "json", "migrate", "t", "0", "--from", n[1], "--to", n[2], "--yes", fast)
	var got operationJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitMoveFailed {
		t.Fatalf("exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	if got.Failed != 1 || got.Moves[0].State != "FAILED" || got.Moves[0].Error != "target went DOWN" {
		t.Fatalf("json %+v", got)
	}
	mustContain(t, "stderr", r.stderr, "migrate: move 1 FAILED: target went DOWN", `"exit_code": 11`)
	// Rolled back: the target added as a slave is gone again.
	if p := partition(cl, "t", 0); !slices.Equal(p.Slaves, []string{n[1]}) {
		t.Fatalf("partition after rollback: %v", p)
	}
}

func TestMigrateStatusAndCancel(t *testing.T) {
	cl, n := newMoveCluster(t)
	cl.SetMoveScript(stay)
	r := zpctl(t, cl, "migrate", "t", "0", "--from", n[1], "--to", n[2], "--yes", "--no-wait")
	if r.code != ExitOK || cl.Metas[0].Calls("move_status") != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	mustContain(t, "stdout", r.stdout, "Queued 1 move 1; follow with 'zpctl migrate status --watch'.")
	if r := zpctl(t, cl, "-o", "json", "addslave", "t", "1", n[0], "--yes", "--no-wait"); r.code != ExitOK ||
		!strings.Contains(r.stdout, `"waited": false`) || !strings.Contains(r.stdout, `"state": "PENDING"`) {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}

	r = zpctl(t, cl, "migrate", "status")
	want := [][]string{
		{"ID", "KIND", "PARTITION", "MOVE", "STATE", "COPIED", "BEHIND", "RATE", "ETA", "STUCK", "ERROR"},
		{"1", "migrate", "t/0", n[1], "->", n[2], "CATCHING_UP", "256.0", "KiB/1.0", "MiB", "99", "1.0", "MiB/s", "750ms", "-", "-"},
		{"2", "addslave", "t/1", "->", n[0], "CATCHING_UP", "256.0", "KiB/1.0", "MiB", "99", "1.0", "MiB/s", "750ms", "-", "-"},
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != ExitOK || len(lines) != len(want) {
		t.Fatalf("exit %d, status:\n%s", r.code, r.stdout)
	}
	for i, l := range lines {
		if !slices.Equal(strings.Fields(l), want[i]) {
			t.Fatalf("status line %d: %q, want %q", i, l, want[i])
		}
	}

	// The move on one partition, by id, with a prompt.
	r = zpctlIn(t, cl, invocation{args: []string{"migrate", "cancel", "t", "1"}, terminal: true, stdin: "y\n"})
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	mustContain(t, "stdout", r.stdout, "To cancel: 1 move", "Cancelled 1 move:", "2   addslave  t/1", "CANCELLED", "cancelled by operator")
	mustContain(t, "stderr", r.stderr, "Cancel this move? [y/N]")
	if p := partition(cl, "t", 1); !slices.Equal(p.Slaves, []string{n[2]}) {
		t.Fatalf("addslave not rolled back: %v", p)
	}
	for _, tt := range []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"migrate", "cancel", "2", "--yes"}, ExitInvalid, "move 2 already ended CANCELLED"},
		{[]string{"migrate", "cancel", "99", "--yes"}, ExitNotFound, "no move 99"},
		{[]string{"migrate", "cancel", "x"}, ExitUsage, "not a positive number"},
		{[]string{"migrate", "cancel"}, ExitUsage, "--yes"},
	} {
		if r := zpctl(t, cl, tt.args...); r.code != tt.wantCode || !strings.Contains(r.stderr, tt.want) {
			t.Fatalf("%v: exit %d: %s", tt.args, r.code, r.stderr)
		}
	}
	r = zpctl(t, cl, "-o", "json", "migrate", "cancel", "--yes")
	var cancelled migrateCancelJSON
	if err := json.Unmarshal([]byte(r.stdout), &cancelled); err != nil || r.code != ExitOK || len(cancelled.Cancelled) != 1 ||
		cancelled.Cancelled[0].ID != 1 || cancelled.Cancelled[0].State != "CANCELLED" {
		t.Fatalf("exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	if r := zpctl(t, cl, "migrate", "status"); r.stdout != "no moves in progress\n" {
		t.Fatalf("status after cancel: %s", r.stdout)
	}
	var all migrateStatusJSON
	r = zpctl(t, cl, "-o", "json", "migrate", "status", "--all")
	if err := json.Unmarshal([]byte(r.stdout), &all); err != nil || len(all.Moves) != 2 || all.Moves[0].State != "CANCELLED" {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if r := zpctl(t, cl, "migrate", "cancel", "--yes"); r.code != ExitOK || r.stdout != "no moves to cancel\n" {
		t.Fatalf("exit %d: %s", r.code, r.stdout)
	}
}

func TestRebalance(t *testing.T) {
	const newNode = "127.0.0.1:1" // in the topology only: the fakes never call it
	addNode := func(cl *clienttest.Cluster) {
		cl.Update(func(tp *zppb.Topology) {
			tp.Nodes = append(tp.Nodes, &zppb.Node{Addr: newNode, State: zppb.NodeState_UP, Weight: 100})
		})
	}
	t.Run("expand", func(t *testing.T) {
		cl, n := newMoveCluster(t)
		addNode(cl)
		r := zpctl(t, cl, "expand", "--dry-run")
		if r.code != ExitOK || cl.Metas[0].Calls("rebalance") != 1 || len(cl.Moves()) != 0 {
			t.Fatalf("dry run: exit %d: %s", r.code, r.stderr)
		}
		mustContain(t, "stdout", r.stdout, "Plan: expand, 1 move", "1  migrate  t      0          "+n[0]+"  "+newNode)
		r = zpctl(t, cl, "expand", "--yes", fast)
		if p := partition(cl, "t", 0); r.code != ExitOK || p.Master != newNode {
			t.Fatalf("exit %d, partition %v\n%s", r.code, p, r.stderr)
		}
		if m := cl.Moves()[0]; m.Origin != "expand" {
			t.Fatalf("move %v", m)
		}
		if r := zpctl(t, cl, "expand", "--yes"); r.code != ExitOK || !strings.Contains(r.stdout, "Plan: expand, 0 moves") {
			t.Fatalf("balanced: exit %d: %s", r.code, r.stdout)
		}
	})
	t.Run("shrink then node remove", func(t *testing.T) {
		cl, n := newMoveCluster(t)
		r := zpctl(t, cl, "-o", "json", "shrink", n[2], "--yes", fast)
		var got operationJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitOK || got.Done != 2 || len(got.Plan.Steps) != 2 {
			t.Fatalf("exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
		}
		for _, tb := range cl.Topology().Tables {
			for _, p := range tb.Partitions {
				if p.Master == n[2] || slices.Contains(p.Slaves, n[2]) {
					t.Fatalf("%s still on the drained node: %v", tb.Name, p)
				}
			}
		}
		if r := zpctl(t, cl, "node", "remove", n[2], "--yes"); r.code != ExitInvalid {
			t.Fatalf("remove an UP node: exit %d", r.code)
		}
		cl.Update(func(tp *zppb.Topology) { tp.Nodes[2].State = zppb.NodeState_DOWN })
		if r := zpctl(t, cl, "node", "remove", n[2], "--dry-run"); r.code != ExitOK || !strings.Contains(r.stdout, "Plan: remove 1 node (DOWN, no replicas)") {
			t.Fatalf("dry run: exit %d: %s", r.code, r.stdout)
		}
		r = zpctl(t, cl, "-o", "json", "node", "remove", n[2], "--yes")
		var rm nodeRemoveJSON
		if err := json.Unmarshal([]byte(r.stdout), &rm); err != nil || r.code != ExitOK || !rm.Removed || rm.Epoch != cl.Epoch() || len(cl.Topology().Nodes) != 2 {
			t.Fatalf("exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
		}
		if r := zpctl(t, cl, "node", "remove", n[2], "--yes"); r.code != ExitNotFound {
			t.Fatalf("remove again: exit %d", r.code)
		}
	})
	t.Run("node remove of a node with replicas", func(t *testing.T) {
		cl, n := newMoveCluster(t)
		cl.Update(func(tp *zppb.Topology) { tp.Nodes[0].State = zppb.NodeState_DOWN })
		if r := zpctl(t, cl, "node", "remove", n[0], "--yes"); r.code != ExitInvalid || !strings.Contains(r.stderr, "shrink or replace-node it first") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	})
	t.Run("replace-node", func(t *testing.T) {
		cl, n := newMoveCluster(t)
		addNode(cl)
		r := zpctl(t, cl, "replace-node", n[0], newNode, "--yes", fast)
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		mustContain(t, "stdout", r.stdout, "Plan: replace-node, 2 moves")
		mustContain(t, "stderr", r.stderr, "replace-node: done, 2/2 moves (100%)")
		if p0, p2 := partition(cl, "t", 0), partition(cl, "t", 2); p0.Master != newNode || !slices.Contains(p2.Slaves, newNode) {
			t.Fatalf("partitions %v %v", p0, p2)
		}
		if r := zpctl(t, cl, "replace-node", n[0], "127.0.0.1:2"); r.code != ExitNotFound {
			t.Fatalf("unknown NEW: exit %d", r.code)
		}
	})
	t.Run("planner unavailable", func(t *testing.T) {
		cl, _ := newMoveCluster(t)
		cl.SetRebalancer(func(*zppb.RebalanceRequest, *zppb.Topology) ([]*zppb.Move, error) {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "rebalance is not available yet")
		})
		if r := zpctl(t, cl, "expand", "--yes"); r.code != ExitInvalid || !strings.Contains(r.stderr, "expand: plan: client: rebalance: ") ||
			!strings.Contains(r.stderr, "INVALID_ARGUMENT: rebalance is not available yet") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	})
	t.Run("queued other than planned", func(t *testing.T) {
		cl, n := newMoveCluster(t)
		addNode(cl)
		calls := 0
		cl.SetRebalancer(func(r *zppb.RebalanceRequest, tp *zppb.Topology) ([]*zppb.Move, error) {
			calls++
			moves := []*zppb.Move{{Kind: zppb.MoveKind_MIGRATE, Table: "t", Partition: 0, From: n[0], To: newNode}}
			if calls > 1 {
				moves = append(moves, &zppb.Move{Kind: zppb.MoveKind_MIGRATE, Table: "t", Partition: 1, From: n[1], To: newNode})
			}
			return moves, nil
		})
		r := zpctl(t, cl, "expand", "--yes", fast)
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		mustContain(t, "stderr", r.stderr, "expand: the meta leader queued other moves than planned (1 planned, 2 queued)", "expand: done, 2/2 moves")
	})
}

// The follow loop rides over a meta server that fails for a moment.
func TestMigrateStatusWatch(t *testing.T) {
	cl, n := newMoveCluster(t)
	cl.SetMoveScript(stay)
	if r := zpctl(t, cl, "setmaster", "t", "0", n[1], "--yes", "--no-wait"); r.code != ExitOK {
		t.Fatal(r.stderr)
	}
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			var stdout, stderr strings.Builder
			ctx, cancel := context.WithTimeout(context.Background(), 350*time.Millisecond)
			defer cancel()
			// Ctrl-C (here the context's end) is the way out: exit 0.
			code := Main(ctx, Env{Args: []string{"--meta", cl.MetaAddrs()[0], "-o", format, "migrate", "status", "--watch", "--interval", "100ms"},
				Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			frames := strings.Count(stdout.String(), "setmaster")
			if frames < 2 || frames > 5 {
				t.Fatalf("%d frames:\n%s", frames, stdout.String())
			}
			if format == "table" && strings.Count(stdout.String(), "zpctl migrate status at ") != frames {
				t.Fatalf("frames without a time line:\n%s", stdout.String())
			}
		})
	}
}

// The TUI's actions, carried out against the fakes.
func TestTUIRunner(t *testing.T) {
	cl, n := newMoveCluster(t)
	c, err := client.New(context.Background(), client.Options{MetaAddrs: cl.MetaAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	run := tuiRunner(c)
	ctx := context.Background()
	cl.SetMoveScript(stay)

	msg, err := run(ctx, tui.Action{Kind: "setmaster", Table: "t", Partition: 0, From: n[0], To: n[1], Epoch: cl.Epoch() - 1})
	if status.Code(err) != zppb.Code_STALE_EPOCH || !strings.HasPrefix(err.Error(), "setmaster: ") {
		t.Fatalf("stale: %q, %v", msg, err)
	}
	msg, err = run(ctx, tui.Action{Kind: "setmaster", Table: "t", Partition: 0, From: n[0], To: n[1], Epoch: cl.Epoch()})
	if err != nil || msg != "setmaster: queued move 1: t/0 "+n[0]+" -> "+n[1]+"; view 5 follows it" {
		t.Fatalf("setmaster: %q, %v", msg, err)
	}
	if msg, err = run(ctx, tui.Action{Kind: "migrate", Table: "t", Partition: 1, From: n[2], To: n[0], Epoch: cl.Epoch()}); err != nil || !strings.Contains(msg, "queued move 2") {
		t.Fatalf("migrate: %q, %v", msg, err)
	}
	if msg, err = run(ctx, tui.Action{Kind: "cancel", MoveID: 1}); err != nil || msg != "cancel: move 1 cancelled and rolled back" {
		t.Fatalf("cancel: %q, %v", msg, err)
	}
	if msg, err = run(ctx, tui.Action{Kind: "expand", Epoch: cl.Epoch()}); err != nil || msg != "expand: nothing to do, the load is even" {
		t.Fatalf("expand: %q, %v", msg, err)
	}
	// t/1 is busy with move 2: the shrink's plan cannot be queued.
	if _, err = run(ctx, tui.Action{Kind: "shrink", Nodes: []string{n[2]}, Epoch: cl.Epoch()}); status.Code(err) != zppb.Code_INVALID_ARGUMENT {
		t.Fatalf("shrink: %v", err)
	}
	if _, err := run(ctx, tui.Action{Kind: "cancel", MoveID: 2}); err != nil {
		t.Fatal(err)
	}
	if msg, err = run(ctx, tui.Action{Kind: "shrink", Nodes: []string{n[2]}, Epoch: cl.Epoch()}); err != nil || !strings.Contains(msg, "shrink: queued 2 moves (3-4)") {
		t.Fatalf("shrink: %q, %v", msg, err)
	}
}
