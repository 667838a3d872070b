package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/tui"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

// TestLocalPlan: the plan zpctl makes itself when the meta leader predates
// PLAN_MOVES follows the meta servers' rules (lib/topo), words included.
func TestLocalPlan(t *testing.T) {
	const a, b, c, d, down = "n:1", "n:2", "n:3", "n:4", "n:5"
	topo := &client.Topology{Epoch: 9,
		Nodes: []client.Node{{Addr: a, State: "UP"}, {Addr: b, State: "UP"}, {Addr: c, State: "UP"}, {Addr: d, State: "UP", Cordoned: true}, {Addr: down, State: "DOWN"}},
		Tables: []client.Table{
			{Name: "t", PartitionCount: 2, Partitions: []client.Partition{
				{ID: 0, Master: a, Slaves: []string{b, down}},
				{ID: 1, Master: b, Slaves: []string{c}},
			}},
			{Name: "u", PartitionCount: 1, Partitions: []client.Partition{{ID: 0, Master: c, Slaves: []string{a}}}},
		}}
	move := func(kind client.MoveKind, table string, id uint32, from, to string) client.Move {
		return client.Move{Kind: kind, Table: table, Partition: id, From: from, To: to}
	}
	step := func(action client.MoveKind, table string, id uint32, from, to string) string {
		return PlanStep{Action: string(action), Table: table, Partition: id, From: from, To: to}.String()
	}
	const (
		setmaster, addslave, removeslave, migrate = client.MoveSetMaster, client.MoveAddSlave, client.MoveRemoveSlave, client.MoveMigrate
	)
	tests := []struct {
		name    string
		move    client.Move
		want    string // the plan's step, or the error
		wantErr zppb.Code
	}{
		{"setmaster", move(setmaster, "t", 0, "", b), step(setmaster, "t", 0, a, b), 0},
		{"setmaster to a down slave", move(setmaster, "t", 0, "", down), `node "n:5" is DOWN`, zppb.Code_INVALID_ARGUMENT},
		{"setmaster to a non-slave", move(setmaster, "t", 0, "", c), `"n:3" is not a slave of t/0`, zppb.Code_INVALID_ARGUMENT},
		{"setmaster to the master", move(setmaster, "t", 0, "", a), `"n:1" is already the master of t/0`, zppb.Code_INVALID_ARGUMENT},
		{"setmaster unknown table", move(setmaster, "x", 0, "", a), `table "x" does not exist`, zppb.Code_TABLE_NOT_FOUND},
		{"setmaster unknown partition", move(setmaster, "t", 7, "", b), `table "t" has no partition 7`, zppb.Code_INVALID_ARGUMENT},
		{"addslave", move(addslave, "u", 0, "", b), step(addslave, "u", 0, "", b), 0},
		{"addslave to a holder", move(addslave, "t", 1, "", c), `"n:3" already holds a replica of t/1`, zppb.Code_INVALID_ARGUMENT},
		{"addslave to a cordoned node", move(addslave, "t", 1, "", d), `node "n:4" is cordoned`, zppb.Code_INVALID_ARGUMENT},
		{"addslave to an unknown node", move(addslave, "t", 1, "", "n:9"), `node "n:9" is not registered`, zppb.Code_NODE_NOT_FOUND},
		{"removeslave", move(removeslave, "t", 0, down, ""), step(removeslave, "t", 0, down, ""), 0},
		{"removeslave of the master", move(removeslave, "t", 0, a, ""), `"n:1" is not a slave of t/0`, zppb.Code_INVALID_ARGUMENT},
		{"migrate", move(migrate, "t", 0, down, c), step(migrate, "t", 0, down, c), 0},
		{"move from a non-holder", move(migrate, "t", 0, c, b), `"n:3" holds no replica of t/0`, zppb.Code_INVALID_ARGUMENT},
		{"move to a down node", move(migrate, "t", 1, b, down), `node "n:5" is DOWN`, zppb.Code_INVALID_ARGUMENT},
		{"migrate onto a holder", move(migrate, "t", 0, a, b), `"n:2" already holds a replica of t/0`, zppb.Code_INVALID_ARGUMENT},
		{"migrate to an unknown node", move(migrate, "t", 0, a, "n:9"), `node "n:9" is not registered`, zppb.Code_NODE_NOT_FOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := localPlan(string(tt.move.Kind), topo, tt.move)
			if tt.wantErr != 0 {
				if status.Code(err) != tt.wantErr || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err %v, want %v with %q", err, tt.wantErr, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Steps) != 1 || p.Steps[0].String() != tt.want || p.Epoch != 9 || p.Operation != string(tt.move.Kind) {
				t.Fatalf("plan %v, want %v", p, tt.want)
			}
		})
	}
}

// The topology commands against real meta and node servers (lib/inproc),
// whose leader runs each move for real. A test that needs a move to stay
// in progress (status, cancel, watch, --wait-timeout) cuts the move's
// target off from the meta servers: it never learns that it is to be a
// slave, so the move stays CATCHING_UP until it is cancelled (the meta
// servers' DownTimeout is long enough that the target stays UP meanwhile).
// Tests that rebalance or stop nodes, whose moves span every table, start
// clusters of their own.

// fast makes an operation poll the move status every 5ms.
const fast = "--poll-interval=5ms"

// zpctlIn runs zpctl against c's meta leader as inv says.
func zpctlIn(t *testing.T, c *inproc.Cluster, inv invocation) result {
	t.Helper()
	inv.args = append([]string{"--meta", leaderAddr(t, c), "--timeout", "2s"}, inv.args...)
	return run(t, inv)
}

// leaderTap is a tap in front of c's meta leader, closed when t ends.
func leaderTap(t *testing.T, c *inproc.Cluster) *inproc.Tap {
	t.Helper()
	tap, err := inproc.NewTap("127.0.0.1:0", leaderAddr(t, c))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tap.Close() })
	return tap
}

// rewriteTap is a leaderTap that forwards the requests edit returns true
// for as edit changed them, and gives the leader's answers to them to
// answer (when not nil) to change before zpctl reads them: a meta leader
// of an older release, or one whose answer is cut.
func rewriteTap(t *testing.T, c *inproc.Cluster, edit func(*zppb.Request) bool, answer func(*zppb.Response)) *inproc.Tap {
	t.Helper()
	tap := leaderTap(t, c)
	tap.SetHook(func(req *zppb.Request) *zppb.Response {
		if !edit(req) {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := tap.Forward(ctx, req)
		if err != nil {
			return &zppb.Response{Code: zppb.Code_ERROR, Msg: err.Error()}
		}
		if answer != nil {
			answer(resp)
		}
		return resp
	})
	return tap
}

func mustContain(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// q quotes s for a regular expression.
func q(s string) string { return regexp.QuoteMeta(s) }

// mustMatch checks that got has a match of each regular expression of
// want ((?m) is implied) and returns the submatches of the last.
func mustMatch(t *testing.T, what, got string, want ...string) []string {
	t.Helper()
	var sub []string
	for _, w := range want {
		if sub = regexp.MustCompile("(?m)" + w).FindStringSubmatch(got); sub == nil {
			t.Fatalf("%s has no match of %q:\n%s", what, w, got)
		}
	}
	return sub
}

// row is a regular expression for a line of a table whose cells match
// cells (regular expressions themselves, matching no newline).
func row(cells ...string) string { return `^[ \t]*` + strings.Join(cells, `[ \t]+`) + `[ \t]*$` }

// movesHeader is the header of a table of moves.
var movesHeader = row("ID", "KIND", "PARTITION", "MOVE", "STATE", "COPIED", "BEHIND", "RATE", "ETA", "STUCK", "ERROR")

// atoi parses a number zpctl printed.
func atoi(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// layout returns table's partitions as the meta leader has them.
func layout(t *testing.T, c *inproc.Cluster, table string) []client.Partition {
	t.Helper()
	topo, err := leaderClient(t, c).Pull(testCtx(t), table)
	if err != nil {
		t.Fatal(err)
	}
	return topo.Tables[0].Partitions
}

// epoch is the meta leader's epoch.
func epoch(t *testing.T, c *inproc.Cluster) uint64 {
	t.Helper()
	topo, err := leaderClient(t, c).Pull(testCtx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	return topo.Epoch
}

// movesOf returns the moves of table as `zpctl migrate status -o json`
// lists them: those in progress, or with all the finished ones too.
func movesOf(t *testing.T, c *inproc.Cluster, table string, all bool) []client.Move {
	t.Helper()
	args := []string{"-o", "json", "migrate", "status"}
	if all {
		args = append(args, "--all")
	}
	r := zpctl(t, c, args...)
	var got migrateStatusJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitOK {
		t.Fatalf("migrate status: exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	var out []client.Move
	for _, m := range got.Moves {
		if m.Table == table {
			out = append(out, m)
		}
	}
	return out
}

// waitMove waits until zpctl lists move id of table in state want.
func waitMove(t *testing.T, c *inproc.Cluster, table string, id uint64, want client.MoveState) client.Move {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, m := range movesOf(t, c, table, true) {
			if m.ID == id && m.State == want {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("move %d not %s: %+v", id, want, movesOf(t, c, table, true))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hold cuts nodes off from c's meta servers, so that moves onto them stay
// CATCHING_UP. When the test ends it cancels table's moves still in
// progress (rolling them back) and heals the nodes.
func hold(t *testing.T, c *inproc.Cluster, table string, nodes ...string) {
	t.Helper()
	for _, a := range nodes {
		if err := c.Node(a).CutFromMeta(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, m := range movesOf(t, c, table, false) {
			// A move may end by itself between the listing and the cancel
			// (its target cut off long enough goes DOWN and fails it; a
			// setmaster queued behind a cancelled migration starts and
			// ends at once): the cancel then says so, as it says of a
			// move past its handover (errNotAllCancelled).
			if r := zpctl(t, c, "migrate", "cancel", fmt.Sprint(m.ID), "--yes"); r.code != ExitOK &&
				!strings.Contains(r.stderr, "already ended") && !strings.Contains(r.stderr, errNotAllCancelled.Error()) {
				t.Errorf("cancelling move %d: exit %d: %s", m.ID, r.code, r.stderr)
			}
		}
		for _, a := range nodes {
			if err := c.Node(a).Heal(); err != nil {
				t.Error(err)
			}
		}
	})
}

// heldMigrate queues a migration of table's partition id from its slave
// to the node holding no replica of it, cut off from the meta servers
// (hold), and waits until it is CATCHING_UP. It returns the move's id and
// the target.
func heldMigrate(t *testing.T, c *inproc.Cluster, tb *zppb.Table, id uint32) (uint64, string) {
	t.Helper()
	_, slave, other := roles(t, tb, c, id)
	hold(t, c, tb.Name, other)
	r := zpctl(t, c, "migrate", tb.Name, fmt.Sprint(id), "--from", slave, "--to", other, "--yes", "--no-wait")
	if r.code != ExitOK {
		t.Fatalf("migrate: exit %d: %s", r.code, r.stderr)
	}
	move := atoi(t, mustMatch(t, "stdout", r.stdout, `Queued 1 move (\d+); follow with 'zpctl migrate status --watch'\.$`)[1])
	waitMove(t, c, tb.Name, move, "CATCHING_UP")
	return move, other
}

// moveStates are a move's states in the order it goes through them.
var moveStates = []string{"PENDING", "CATCHING_UP", "SLOWDOWN", "STUCK", "REMOVING", "DONE"}

// checkProgress checks an operation's progress lines on stderr: each
// state change it reports goes forward.
func checkProgress(t *testing.T, label, stderr string) {
	t.Helper()
	for _, l := range regexp.MustCompile(`(?m)^`+q(label)+`: move \d+ (\w+) -> (\w+)$`).FindAllStringSubmatch(stderr, -1) {
		if slices.Index(moveStates, l[1]) < 0 || slices.Index(moveStates, l[1]) >= slices.Index(moveStates, l[2]) {
			t.Errorf("progress goes from %s to %s:\n%s", l[1], l[2], stderr)
		}
	}
}

// stuck is the STUCK cell of a move's row: how long the partition was
// STUCK, or none.
const stuck = `(-|[0-9.]+[mµn]?s)`

func TestSetMaster(t *testing.T) {
	cl := sharedCluster(t)
	t.Run("text", func(t *testing.T) {
		tb := addTable(t, cl, 1, 2)
		m, s, _ := roles(t, tb, cl, 0)
		before, e := layout(t, cl, tb.Name)[0], epoch(t, cl)
		r := zpctl(t, cl, "setmaster", tb.Name, "0", s, "--yes", fast)
		if r.code != ExitOK {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		mustMatch(t, "stdout", r.stdout, `^Plan: setmaster, 1 move, made at epoch \d+$`, row("1", "setmaster", q(tb.Name), "0", q(m), q(s)), movesHeader)
		id := mustMatch(t, "stdout", r.stdout, row(`(\d+)`, "setmaster", q(tb.Name+"/0"), q(m), "->", q(s), "DONE", "-", "-", "-", "-", stuck, "-"))[1]
		mustMatch(t, "stderr", r.stderr, `^setmaster: move `+id+` queued: setmaster `+q(tb.Name+"/0 "+m+" -> "+s)+`$`,
			`^setmaster: move `+id+` DONE: setmaster `+q(tb.Name+"/0 "+m+" -> "+s)+`( \(STUCK [0-9.]+[mµn]?s\))?$`,
			`^setmaster: done, 1/1 moves \(100%\) in \S+$`)
		checkProgress(t, "setmaster", r.stderr)
		p := layout(t, cl, tb.Name)[0]
		if p.Master != s || !slices.Equal(p.Slaves, []string{m}) || p.Term != before.Term+1 || p.State != "ACTIVE" {
			t.Fatalf("partition after setmaster: %+v (before %+v)", p, before)
		}
		// The switchover's steps change the topology.
		if got := epoch(t, cl); got <= e {
			t.Fatalf("epoch %d, was %d", got, e)
		}
	})
	t.Run("json", func(t *testing.T) {
		tb := addTable(t, cl, 1, 2)
		m, s, _ := roles(t, tb, cl, 0)
		e := epoch(t, cl)
		r := zpctl(t, cl, "-o", "json", "setmaster", tb.Name, "0", s, "--yes", fast)
		var got operationJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitOK {
			t.Fatalf("exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
		}
		if len(got.Moves) != 1 {
			t.Fatalf("json %+v", got)
		}
		mv := got.Moves[0]
		if !got.Waited || got.DryRun || got.Done != 1 || got.Failed != 0 || got.Plan.Epoch < e || len(got.Plan.Steps) != 1 ||
			mv.ID == 0 || mv.Kind != "setmaster" || mv.State != "DONE" || mv.Table != tb.Name || mv.Partition != 0 ||
			mv.From != m || mv.To != s || mv.Origin != "manual" || mv.Error != "" || mv.StuckMs < 0 || mv.CreatedMs == 0 || mv.UpdatedMs < mv.CreatedMs {
			t.Fatalf("json %+v", got)
		}
		// Progress still goes to stderr, as lines.
		mustContain(t, "stderr", r.stderr, fmt.Sprintf("setmaster: move %d DONE", mv.ID), "setmaster: done")
	})
	// Another change lands between the plan and the queueing: once, every
	// time, or one that changes the plan. zpctl asks the leader through a
	// tap whose hook makes the change before the leader gets SETMASTER.
	// bump changes tb's quota, which moves the epoch on and nothing else,
	// and returns the new epoch.
	bump := func(lc *client.Client, table string, n *atomic.Uint64) (uint64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return lc.SetQuota(ctx, table, client.Quota{OpsPerSec: 100_000 + n.Add(1)}, 0)
	}
	t.Run("stale epoch, same plan", func(t *testing.T) {
		tb := addTable(t, cl, 1, 2)
		_, s, _ := roles(t, tb, cl, 0)
		lc, tap := leaderClient(t, cl), leaderTap(t, cl)
		var n, bumped atomic.Uint64
		var bumpErr atomic.Value
		tap.SetHook(func(req *zppb.Request) *zppb.Response {
			if req.GetSetMaster() != nil && n.Load() == 0 {
				e, err := bump(lc, tb.Name, &n)
				if err != nil {
					bumpErr.Store(err)
				}
				bumped.Store(e)
			}
			return nil
		})
		r := zpctl(t, addrs{tap.Addr()}, "-o", "json", "setmaster", tb.Name, "0", s, "--yes", fast)
		if err := bumpErr.Load(); err != nil {
			t.Fatal(err)
		}
		var got operationJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitOK || got.Plan.Epoch != bumped.Load() ||
			tap.Calls("set_master") != 2 || got.Done != 1 {
			t.Fatalf("exit %d, %v, bumped to %d, %d SETMASTER: %s\n%s", r.code, err, bumped.Load(), tap.Calls("set_master"), r.stdout, r.stderr)
		}
		sub := mustMatch(t, "stderr", r.stderr, `^zpctl: setmaster: the epoch moved from (\d+) to (\d+) meanwhile; the plan is the same, queueing it at (\d+)$`)
		if from, to := atoi(t, sub[1]), atoi(t, sub[2]); from >= to || to != bumped.Load() || sub[3] != sub[2] {
			t.Fatalf("stderr %q, bumped to %d", sub[0], bumped.Load())
		}
	})
	t.Run("stale epoch every time", func(t *testing.T) {
		tb := addTable(t, cl, 1, 2)
		m, s, _ := roles(t, tb, cl, 0)
		lc, tap := leaderClient(t, cl), leaderTap(t, cl)
		var n atomic.Uint64
		tap.SetHook(func(req *zppb.Request) *zppb.Response {
			if req.GetSetMaster() != nil {
				bump(lc, tb.Name, &n)
			}
			return nil
		})
		r := zpctl(t, addrs{tap.Addr()}, "setmaster", tb.Name, "0", s, "--yes", fast)
		moves := movesOf(t, cl, tb.Name, true)
		if r.code != ExitConflict || len(moves) != 0 || tap.Calls("set_master") != 1+replans || layout(t, cl, tb.Name)[0].Master != m {
			t.Fatalf("exit %d, %d SETMASTER, moves %+v\n%s", r.code, tap.Calls("set_master"), moves, r.stderr)
		}
		mustContain(t, "stderr", r.stderr, "STALE_EPOCH")
	})
	t.Run("stale plan", func(t *testing.T) {
		// 3 replicas: the hook hands the partition to the other slave, so
		// that the plan's FROM is no longer true.
		tb := addTable(t, cl, 1, 3)
		p := tb.Partitions[0]
		to, other := p.Slaves[0], p.Slaves[1]
		lc, tap := leaderClient(t, cl), leaderTap(t, cl)
		var once atomic.Bool
		hookErr := make(chan error, 1)
		tap.SetHook(func(req *zppb.Request) *zppb.Response {
			if req.GetSetMaster() == nil || once.Swap(true) {
				return nil
			}
			hookErr <- func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				if _, err := lc.SetMaster(ctx, tb.Name, 0, other, 0); err != nil {
					return err
				}
				for ctx.Err() == nil {
					topo, err := lc.Pull(ctx, tb.Name)
					if err == nil && topo.Tables[0].Partitions[0].Master == other && topo.Tables[0].Partitions[0].State == "ACTIVE" {
						return nil
					}
					time.Sleep(20 * time.Millisecond)
				}
				return ctx.Err()
			}()
			return nil
		})
		r := zpctl(t, addrs{tap.Addr()}, "setmaster", tb.Name, "0", to, "--yes", fast, "--timeout=20s")
		if err := <-hookErr; err != nil {
			t.Fatalf("the hook's setmaster: %v", err)
		}
		moves := movesOf(t, cl, tb.Name, true)
		if r.code != ExitConflict || len(moves) != 1 || moves[0].To != other {
			t.Fatalf("exit %d, moves %+v\n%s", r.code, moves, r.stderr)
		}
		mustContain(t, "stderr", r.stderr, "STALE_EPOCH", "the plan changed meanwhile")
	})
	t.Run("confirmation", func(t *testing.T) {
		tb := addTable(t, cl, 1, 2)
		m, s, _ := roles(t, tb, cl, 0)
		r := zpctlIn(t, cl, invocation{args: []string{"setmaster", tb.Name, "0", s, fast}, terminal: true, stdin: "n\n"})
		if moves := movesOf(t, cl, tb.Name, true); r.code != ExitAborted || len(moves) != 0 || layout(t, cl, tb.Name)[0].Master != m {
			t.Fatalf("declined: exit %d, moves %+v: %s", r.code, moves, r.stderr)
		}
		mustContain(t, "stderr", r.stderr, "Run this move? [y/N]")
		r = zpctlIn(t, cl, invocation{args: []string{"setmaster", tb.Name, "0", s, fast}, terminal: true, stdin: "y\n"})
		if r.code != ExitOK || layout(t, cl, tb.Name)[0].Master != s {
			t.Fatalf("confirmed: exit %d: %s", r.code, r.stderr)
		}
	})
	t.Run("progress bar on a terminal", func(t *testing.T) {
		tb := addTable(t, cl, 1, 2)
		_, s, _ := roles(t, tb, cl, 0)
		r := zpctlIn(t, cl, invocation{args: []string{"setmaster", tb.Name, "0", s, "--yes", fast}, stderrTerminal: true})
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		mustContain(t, "stderr", r.stderr, "\r\x1b[2Ksetmaster ", "1/1 moves (100%)", "setmaster: done")
		mustMatch(t, "stderr", r.stderr, "\r\x1b\\[2Kmove \\d+ DONE")
	})
	t.Run("wait timeout", func(t *testing.T) {
		// The setmaster waits behind a migration onto its target that
		// stays CATCHING_UP.
		tb := addTable(t, cl, 1, 2)
		m, _, _ := roles(t, tb, cl, 0)
		_, target := heldMigrate(t, cl, tb, 0)
		r := zpctl(t, cl, "setmaster", tb.Name, "0", target, "--yes", fast, "--wait-timeout", "300ms")
		if r.code != ExitUnavailable {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		mustContain(t, "stderr", r.stderr, "stopped following after 0 of 1 moves ended; the others keep running")
		// The leader names a PENDING setmaster's source only when it
		// starts the move; the command shows the one it planned.
		mustMatch(t, "stdout", r.stdout, row(`\d+`, "setmaster", q(tb.Name+"/0"), q(m), "->", q(target), "PENDING", "-", "-", "-", "-", "-", "-"))
	})
}

func TestMoveFails(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	// A node cut from the meta servers is DOWN 1.5s after its last PING.
	cl := ownCluster(t, inproc.Options{Proxies: true, MetaConfig: func(_ int, c *metaserver.Config) { c.DownTimeout = 1500 * time.Millisecond }})
	tb := addTable(t, cl, 1, 2)
	m, s, target := roles(t, tb, cl, 0)
	hold(t, cl, tb.Name, target)
	r := zpctl(t, cl, "-o", "json", "migrate", tb.Name, "0", "--from", s, "--to", target, "--yes", fast)
	var got operationJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitMoveFailed {
		t.Fatalf("exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	why := "target " + target + " is not UP"
	if len(got.Moves) != 1 || got.Failed != 1 || got.Done != 0 || got.Moves[0].State != "FAILED" || got.Moves[0].Error != why {
		t.Fatalf("json %+v", got)
	}
	mustContain(t, "stderr", r.stderr, fmt.Sprintf("migrate: move %d FAILED: %s", got.Moves[0].ID, why), `"exit_code": 11`)
	// Rolled back: the target added as a slave is gone again.
	if p := layout(t, cl, tb.Name)[0]; p.Master != m || !slices.Equal(p.Slaves, []string{s}) || p.State != "ACTIVE" {
		t.Fatalf("partition after rollback: %+v", p)
	}
}

func TestMigrateStatusAndCancel(t *testing.T) {
	cl := sharedCluster(t)
	tb := addTable(t, cl, 2, 2)
	m0, s0, o0 := roles(t, tb, cl, 0)
	_, s1, o1 := roles(t, tb, cl, 1)
	hold(t, cl, tb.Name, slices.Compact(slices.Sorted(slices.Values([]string{o0, o1})))...)

	// --no-wait asks no MOVE_STATUS.
	tap := leaderTap(t, cl)
	r := zpctl(t, addrs{tap.Addr()}, "migrate", tb.Name, "0", "--from", s0, "--to", o0, "--yes", "--no-wait")
	if r.code != ExitOK || tap.Calls("move_status") != 0 {
		t.Fatalf("exit %d, %d MOVE_STATUS: %s", r.code, tap.Calls("move_status"), r.stderr)
	}
	migrate := mustMatch(t, "stdout", r.stdout, `^Queued 1 move (\d+); follow with 'zpctl migrate status --watch'\.$`)[1]
	r = zpctl(t, cl, "-o", "json", "addslave", tb.Name, "1", o1, "--yes", "--no-wait")
	var queued operationJSON
	if err := json.Unmarshal([]byte(r.stdout), &queued); err != nil || r.code != ExitOK || queued.Waited || len(queued.Moves) != 1 || queued.Moves[0].State != "PENDING" {
		t.Fatalf("exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	addslave := fmt.Sprint(queued.Moves[0].ID)
	waitMove(t, cl, tb.Name, atoi(t, migrate), "CATCHING_UP")
	waitMove(t, cl, tb.Name, queued.Moves[0].ID, "CATCHING_UP")

	// The targets have not started a full sync: nothing copied, no rate.
	r = zpctl(t, cl, "migrate", "status")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != ExitOK || len(lines) != 3 {
		t.Fatalf("exit %d, status:\n%s", r.code, r.stdout)
	}
	mustMatch(t, "status", r.stdout, movesHeader,
		row(migrate, "migrate", q(tb.Name+"/0"), q(s0), "->", q(o0), "CATCHING_UP", "-", `\d+`, "-", "-", "-", "-"),
		row(addslave, "addslave", q(tb.Name+"/1"), "->", q(o1), "CATCHING_UP", "-", `\d+`, "-", "-", "-", "-"))

	// The leader plans no rebalance while moves run.
	if r := zpctl(t, cl, "expand", "--dry-run"); r.code != ExitInvalid || !strings.Contains(r.stderr, "expand: plan: INVALID_ARGUMENT: moves are in progress") {
		t.Fatalf("expand: exit %d: %s", r.code, r.stderr)
	}

	// The move on one partition, with a prompt.
	r = zpctlIn(t, cl, invocation{args: []string{"migrate", "cancel", tb.Name, "1"}, terminal: true, stdin: "y\n"})
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	mustContain(t, "stdout", r.stdout, "To cancel: 1 move", "Cancelled 1 move:")
	mustMatch(t, "stdout", r.stdout, row(addslave, "addslave", q(tb.Name+"/1"), "->", q(o1), "CANCELLED", ".*", "cancelled by operator"))
	mustContain(t, "stderr", r.stderr, "Cancel this move? [y/N]")
	if p := layout(t, cl, tb.Name)[1]; !slices.Equal(p.Slaves, []string{s1}) {
		t.Fatalf("addslave not rolled back: %+v", p)
	}
	for _, tt := range []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"migrate", "cancel", addslave, "--yes"}, ExitInvalid, "move " + addslave + " already ended CANCELLED"},
		{[]string{"migrate", "cancel", "999999", "--yes"}, ExitNotFound, "no move 999999"},
		{[]string{"migrate", "cancel", "x"}, ExitUsage, "not a positive number"},
		{[]string{"migrate", "cancel"}, ExitUsage, "--yes"},
	} {
		if r := zpctl(t, cl, tt.args...); r.code != tt.wantCode || !strings.Contains(r.stderr, tt.want) {
			t.Fatalf("%v: exit %d: %s", tt.args, r.code, r.stderr)
		}
	}
	// Every move left.
	r = zpctl(t, cl, "-o", "json", "migrate", "cancel", "--yes")
	var cancelled migrateCancelJSON
	if err := json.Unmarshal([]byte(r.stdout), &cancelled); err != nil || r.code != ExitOK || len(cancelled.Cancelled) != 1 ||
		fmt.Sprint(cancelled.Cancelled[0].ID) != migrate || cancelled.Cancelled[0].State != "CANCELLED" {
		t.Fatalf("exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	if r := zpctl(t, cl, "migrate", "status"); r.stdout != "no moves in progress\n" {
		t.Fatalf("status after cancel: %s", r.stdout)
	}
	all := movesOf(t, cl, tb.Name, true)
	if len(all) != 2 || all[0].State != "CANCELLED" || all[1].State != "CANCELLED" {
		t.Fatalf("status --all: %+v", all)
	}
	if r := zpctl(t, cl, "migrate", "cancel", "--yes"); r.code != ExitOK || r.stdout != "no moves to cancel\n" {
		t.Fatalf("exit %d: %s", r.code, r.stdout)
	}
	if p := layout(t, cl, tb.Name)[0]; p.Master != m0 || !slices.Equal(p.Slaves, []string{s0}) {
		t.Fatalf("migrate not rolled back: %+v", p)
	}
}

// TestCancelAllDuringExpand: migrate cancel --yes while an expand of 20+
// moves runs decides on all of them in one step: each move ends CANCELLED
// or DONE, what zpctl reports matches migrate status --all, and its exit
// code says whether some passed their handover first.
func TestCancelAllDuringExpand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	cl := ownCluster(t, inproc.Options{})
	tb := addTable(t, cl, 32, 2)
	ctx := testCtx(t)
	for range 2 {
		if _, err := cl.AddNode(ctx); err != nil {
			t.Fatal(err)
		}
	}
	r := zpctl(t, cl, "-o", "json", "expand", "--yes", "--no-wait")
	var queued operationJSON
	if err := json.Unmarshal([]byte(r.stdout), &queued); err != nil || r.code != ExitOK || len(queued.Moves) < 20 {
		t.Fatalf("expand: exit %d, %v, %d moves: %s %s", r.code, err, len(queued.Moves), r.stdout, r.stderr)
	}
	// Cancel in the middle: some moves done, others running or queued.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if slices.ContainsFunc(movesOf(t, cl, tb.Name, true), func(m client.Move) bool { return m.State == client.MoveDone }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no move of the expand done after 30s: %+v", movesOf(t, cl, tb.Name, true))
		}
	}
	r = zpctl(t, cl, "-o", "json", "migrate", "cancel", "--yes")
	var report migrateCancelJSON
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil {
		t.Fatalf("cancel: exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	wantCode := ExitOK
	if len(report.NotCancelled) > 0 {
		wantCode = ExitConflict
	}
	if r.code != wantCode || len(report.Cancelled) == 0 {
		t.Fatalf("cancel: exit %d (want %d), %d cancelled, %d not: %s", r.code, wantCode, len(report.Cancelled), len(report.NotCancelled), r.stderr)
	}
	t.Logf("expand queued %d moves; cancel: %d cancelled, %d not cancelled", len(queued.Moves), len(report.Cancelled), len(report.NotCancelled))

	for deadline := time.Now().Add(30 * time.Second); len(movesOf(t, cl, tb.Name, false)) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("moves still running 30s after the cancel: %+v", movesOf(t, cl, tb.Name, false))
		}
	}
	final := map[uint64]client.Move{}
	for _, m := range movesOf(t, cl, tb.Name, true) {
		final[m.ID] = m
	}
	cancelled, notCancelled := map[uint64]bool{}, map[uint64]bool{}
	for _, m := range report.Cancelled {
		cancelled[m.ID] = true
	}
	for _, m := range report.NotCancelled {
		notCancelled[m.ID] = true
		if m.State != client.MoveRemoving && m.State != client.MoveDone {
			t.Errorf("move %d reported not cancelled while %s", m.ID, m.State)
		}
	}
	for _, q := range queued.Moves {
		f, ok := final[q.ID]
		switch {
		case !ok:
			t.Errorf("move %d is not in migrate status --all", q.ID)
		case f.State == client.MoveCancelled:
			if !cancelled[q.ID] || f.Error != "cancelled by operator" {
				t.Errorf("move %d ended %+v; zpctl reported it cancelled: %v", q.ID, f, cancelled[q.ID])
			}
		case f.State == client.MoveDone:
			if cancelled[q.ID] {
				t.Errorf("move %d ended DONE, but zpctl reported it cancelled", q.ID)
			}
		default:
			t.Errorf("move %d ended %s, want CANCELLED or DONE", q.ID, f.State)
		}
		delete(cancelled, q.ID)
		delete(notCancelled, q.ID)
	}
	if len(cancelled) != 0 || len(notCancelled) != 0 {
		t.Errorf("zpctl reported moves the expand did not queue: %v %v", cancelled, notCancelled)
	}
	for _, p := range layout(t, cl, tb.Name) {
		if p.Master == "" || len(p.Slaves) != 1 || p.State != "ACTIVE" {
			t.Errorf("partition %d after the cancel: %+v", p.ID, p)
		}
	}
	// Slaves the rollback removed, nodes catching up on the epoch: healthy
	// within a while.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r := zpctl(t, cl, "checkup")
		if r.code == ExitOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkup: exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
	}
}

// TestCancelThroughOlderMeta: a meta leader older than batch cancel reads
// only the first id of a CANCEL_MOVE; zpctl sees that in the answer and
// cancels the other moves one call each.
func TestCancelThroughOlderMeta(t *testing.T) {
	cl := sharedCluster(t)
	tb := addTable(t, cl, 2, 2)
	first, _ := heldMigrate(t, cl, tb, 0)
	second, _ := heldMigrate(t, cl, tb, 1)
	tap := rewriteTap(t, cl, func(req *zppb.Request) bool {
		c := req.GetCancelMove()
		if c != nil {
			c.Ids = nil // unknown to the older meta
		}
		return c != nil
	}, func(resp *zppb.Response) {
		if mr := resp.GetMoves(); mr != nil {
			mr.CancelledAsBatch, mr.NotCancelled = false, nil
		}
	})
	r := zpctl(t, addrs{tap.Addr()}, "-o", "json", "migrate", "cancel", "--yes")
	var report migrateCancelJSON
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil || r.code != ExitOK || len(report.Cancelled) != 2 || len(report.NotCancelled) != 0 {
		t.Fatalf("exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	if n := tap.Calls("cancel_move"); n != 2 {
		t.Fatalf("%d CANCEL_MOVE calls, want 2 (one batch the older meta cut to one move, then one more)", n)
	}
	for _, id := range []uint64{first, second} {
		waitMove(t, cl, tb.Name, id, client.MoveCancelled)
	}
}

// TestPlanFromMeta: the plan of a one-move command is the meta leader's
// (PLAN_MOVES), so what only the leader knows counts before any prompt: a
// slave that a migration in progress moves cannot be removed, which the
// topology alone would allow.
func TestPlanFromMeta(t *testing.T) {
	cl := sharedCluster(t)
	tb := addTable(t, cl, 1, 2)
	move, _ := heldMigrate(t, cl, tb, 0)
	_, slave, _ := roles(t, tb, cl, 0)
	topo, err := leaderClient(t, cl).Pull(testCtx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	removal := client.Move{Kind: client.MoveRemoveSlave, Table: tb.Name, Partition: 0, From: slave}
	if _, err := localPlan("removeslave", topo, removal); err != nil {
		t.Fatalf("the topology alone refuses the removal too: %v", err)
	}
	r := zpctlIn(t, cl, invocation{args: []string{"removeslave", tb.Name, "0", slave, fast}, terminal: true, stdin: "y\n"})
	if r.code != ExitInvalid || strings.Contains(r.stderr, "Run this move?") {
		t.Fatalf("exit %d, want %d before any prompt:\n%s", r.code, ExitInvalid, r.stderr)
	}
	mustContain(t, "stderr", r.stderr, fmt.Sprintf("removeslave: plan: INVALID_ARGUMENT: node %q of %s/0 is already part of move %d", slave, tb.Name, move))
	if moves := movesOf(t, cl, tb.Name, true); len(moves) != 1 || moves[0].ID != move {
		t.Fatalf("moves %+v, want only move %d", moves, move)
	}
}

// TestPlanThroughOlderMeta: a meta leader older than PLAN_MOVES reads it
// as a request without a command; zpctl then plans by the same rules
// against the topology, and queues as usual.
func TestPlanThroughOlderMeta(t *testing.T) {
	cl := sharedCluster(t)
	tb := addTable(t, cl, 1, 2)
	m, s, other := roles(t, tb, cl, 0)
	tap := rewriteTap(t, cl, func(req *zppb.Request) bool {
		plan := req.GetPlanMoves() != nil
		if plan {
			req.Cmd = nil // what the older meta parses
		}
		return plan
	}, nil)
	r := zpctl(t, addrs{tap.Addr()}, "setmaster", tb.Name, "0", other, "--dry-run")
	if r.code != ExitInvalid || tap.Calls("plan_moves") != 1 {
		t.Fatalf("setmaster to a non-slave: exit %d, %d PLAN_MOVES: %s", r.code, tap.Calls("plan_moves"), r.stderr)
	}
	mustContain(t, "stderr", r.stderr, fmt.Sprintf("setmaster: plan: INVALID_ARGUMENT: %q is not a slave of %s/0", other, tb.Name))
	r = zpctl(t, addrs{tap.Addr()}, "-o", "json", "setmaster", tb.Name, "0", s, "--yes", fast)
	var got operationJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitOK || got.Done != 1 || tap.Calls("plan_moves") != 2 ||
		len(got.Plan.Steps) != 1 || got.Plan.Steps[0] != (PlanStep{Action: "setmaster", Table: tb.Name, Partition: 0, From: m, To: s}) {
		t.Fatalf("exit %d, %v, %d PLAN_MOVES: %s\n%s", r.code, err, tap.Calls("plan_moves"), r.stdout, r.stderr)
	}
}

func TestRebalance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	// Rebalancing moves every table, and the subtests add, stop and
	// remove nodes: a cluster of its own, whose nodes are DOWN 1.5s after
	// their last PING. The subtests build on each other.
	cl := ownCluster(t, inproc.Options{MetaConfig: func(_ int, c *metaserver.Config) { c.DownTimeout = 1500 * time.Millisecond }})
	tb := addTable(t, cl, 4, 2)
	ctx := testCtx(t)
	// holding lists the partitions node holds, by id, as master ("m")
	// or slave ("s").
	holding := func(t *testing.T, node string) map[uint32]string {
		out := map[uint32]string{}
		for _, p := range layout(t, cl, tb.Name) {
			if p.Master == node {
				out[p.ID] = "m"
			} else if slices.Contains(p.Slaves, node) {
				out[p.ID] = "s"
			}
		}
		return out
	}
	t.Run("expand, queued other than planned", func(t *testing.T) {
		n, err := cl.AddNode(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r := zpctl(t, cl, "-o", "json", "expand", "--dry-run")
		var plan operationJSON
		if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil || r.code != ExitOK || !plan.DryRun || len(plan.Plan.Steps) < 2 {
			t.Fatalf("dry run: exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
		}
		for _, s := range plan.Plan.Steps {
			if s.Action == "migrate" && s.To != n.Addr {
				t.Fatalf("dry run: a migration to %s, not the new node: %+v", s.To, plan.Plan)
			}
		}
		r = zpctl(t, cl, "expand", "--dry-run")
		mustMatch(t, "stdout", r.stdout, fmt.Sprintf(`^Plan: expand, %d moves, made at epoch \d+$`, len(plan.Plan.Steps)),
			row("1", plan.Plan.Steps[0].Action, q(tb.Name), fmt.Sprint(plan.Plan.Steps[0].Partition), ".*"))
		if moves := movesOf(t, cl, tb.Name, true); r.code != ExitOK || len(moves) != 0 {
			t.Fatalf("dry run: exit %d, moves %+v: %s", r.code, moves, r.stderr)
		}
		// The leader queues every move of its plan, though zpctl was shown
		// only the first: a tap in front of the leader trims the dry run's
		// answer.
		tap := rewriteTap(t, cl, func(req *zppb.Request) bool { return req.GetRebalance().GetDryRun() }, func(resp *zppb.Response) {
			if mr := resp.GetMoves(); len(mr.GetMoves()) > 1 {
				mr.Moves = mr.Moves[:1]
			}
		})
		r = zpctl(t, addrs{tap.Addr()}, "-o", "json", "expand", "--yes", fast)
		var got operationJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitOK || len(got.Plan.Steps) != 1 ||
			len(got.Moves) != len(plan.Plan.Steps) || got.Done != len(got.Moves) {
			t.Fatalf("exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
		}
		for _, m := range got.Moves {
			if m.Origin != "expand" || m.State != "DONE" {
				t.Fatalf("move %+v", m)
			}
		}
		mustContain(t, "stderr", r.stderr, fmt.Sprintf("expand: the meta leader queued other moves than planned (1 planned, %d queued)", len(got.Moves)),
			fmt.Sprintf("expand: done, %d/%d moves", len(got.Moves), len(got.Moves)))
		if len(holding(t, n.Addr)) == 0 {
			t.Fatalf("the new node holds nothing: %+v", layout(t, cl, tb.Name))
		}
		if r := zpctl(t, cl, "expand", "--yes"); r.code != ExitOK || !strings.Contains(r.stdout, "Plan: expand, 0 moves") || !strings.Contains(r.stdout, "Nothing to do.") {
			t.Fatalf("balanced: exit %d: %s", r.code, r.stdout)
		}
	})
	t.Run("shrink then node remove", func(t *testing.T) {
		n := cl.Nodes[2]
		r := zpctl(t, cl, "-o", "json", "shrink", n.Addr, "--yes", fast)
		var got operationJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitOK || len(got.Plan.Steps) == 0 ||
			got.Done != len(got.Plan.Steps) || got.Failed != 0 || strings.Contains(r.stderr, "other moves than planned") {
			t.Fatalf("exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
		}
		if h := holding(t, n.Addr); len(h) != 0 {
			t.Fatalf("still on the drained node: %v", h)
		}
		if r := zpctl(t, cl, "node", "remove", n.Addr, "--yes"); r.code != ExitInvalid {
			t.Fatalf("remove an UP node: exit %d", r.code)
		}
		if err := n.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := cl.WaitNodes(ctx, zppb.NodeState_DOWN, n.Addr); err != nil {
			t.Fatal(err)
		}
		if r := zpctl(t, cl, "node", "remove", n.Addr, "--dry-run"); r.code != ExitOK || !strings.Contains(r.stdout, "Plan: remove 1 node (DOWN, no replicas)") {
			t.Fatalf("dry run: exit %d: %s", r.code, r.stdout)
		}
		r = zpctl(t, cl, "-o", "json", "node", "remove", n.Addr, "--yes")
		var rm nodeRemoveJSON
		if err := json.Unmarshal([]byte(r.stdout), &rm); err != nil || r.code != ExitOK || !rm.Removed || rm.Epoch != epoch(t, cl) {
			t.Fatalf("exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
		}
		topo, err := leaderClient(t, cl).Pull(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(topo.Nodes) != len(cl.Nodes)-1 || slices.ContainsFunc(topo.Nodes, func(tn client.Node) bool { return tn.Addr == n.Addr }) {
			t.Fatalf("nodes after remove: %+v", topo.Nodes)
		}
		if r := zpctl(t, cl, "node", "remove", n.Addr, "--yes"); r.code != ExitNotFound {
			t.Fatalf("remove again: exit %d", r.code)
		}
	})
	t.Run("replace-node", func(t *testing.T) {
		old := cl.Nodes[0].Addr
		n, err := cl.AddNode(ctx)
		if err != nil {
			t.Fatal(err)
		}
		had := holding(t, old)
		r := zpctl(t, cl, "replace-node", old, n.Addr, "--yes", fast)
		if r.code != ExitOK || strings.Contains(r.stderr, "other moves than planned") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		mustContain(t, "stdout", r.stdout, fmt.Sprintf("Plan: replace-node, %s", plural(len(had), "move")))
		mustContain(t, "stderr", r.stderr, fmt.Sprintf("replace-node: done, %d/%d moves (100%%)", len(had), len(had)))
		// The new node took the old one's place, master where it was.
		if got := holding(t, n.Addr); !maps.Equal(got, had) || len(holding(t, old)) != 0 {
			t.Fatalf("new node holds %v, the old one held %v: %+v", got, had, layout(t, cl, tb.Name))
		}
		if r := zpctl(t, cl, "replace-node", old, "127.0.0.1:2"); r.code != ExitNotFound {
			t.Fatalf("unknown NEW: exit %d", r.code)
		}
	})
	t.Run("node remove of a node with replicas", func(t *testing.T) {
		n := cl.Nodes[1]
		if len(holding(t, n.Addr)) == 0 {
			t.Fatalf("%s holds nothing: %+v", n.Addr, layout(t, cl, tb.Name))
		}
		if err := n.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := cl.WaitNodes(ctx, zppb.NodeState_DOWN, n.Addr); err != nil {
			t.Fatal(err)
		}
		if r := zpctl(t, cl, "node", "remove", n.Addr, "--yes"); r.code != ExitInvalid || !strings.Contains(r.stderr, "shrink or replace-node it first") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	})
}

// syncWriter collects what Main writes, for a test goroutine to read
// meanwhile; it calls full once when the output has n matches of frame.
type syncWriter struct {
	mu    sync.Mutex
	b     strings.Builder
	frame string
	n     int
	full  func()
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if w.full != nil && strings.Count(w.b.String(), w.frame) >= w.n {
		w.full()
		w.full = nil
	}
	return len(p), nil
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// --watch redraws until interrupted: here the context ends once it has
// drawn three frames.
func TestMigrateStatusWatch(t *testing.T) {
	cl := sharedCluster(t)
	tb := addTable(t, cl, 1, 2)
	id, target := heldMigrate(t, cl, tb, 0)
	_, s, _ := roles(t, tb, cl, 0)
	const frames, interval = 3, 100 * time.Millisecond
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			frame := "zpctl migrate status at "
			if format == "json" {
				frame = `"moves":`
			}
			stdout := &syncWriter{frame: frame, n: frames, full: cancel}
			var stderr strings.Builder
			start := time.Now()
			// Ctrl-C (here the context's end) is the way out: exit 0.
			code := Main(ctx, Env{Args: []string{"--meta", leaderAddr(t, cl), "-o", format, "migrate", "status", "--watch", "--interval", interval.String()},
				Stdin: strings.NewReader(""), Stdout: stdout, Stderr: &stderr})
			out := stdout.String()
			if code != ExitOK || stderr.Len() != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if n := strings.Count(out, frame); n != frames {
				t.Fatalf("%d frames, want %d:\n%s", n, frames, out)
			}
			// A frame per interval.
			if d := time.Since(start); d < (frames-1)*interval {
				t.Fatalf("%d frames in %v", frames, d)
			}
			if format == "table" {
				want := row(fmt.Sprint(id), "migrate", q(tb.Name+"/0"), q(s), "->", q(target), "CATCHING_UP", "-", `\d+`, "-", "-", "-", "-")
				if n := len(regexp.MustCompile("(?m)"+want).FindAllString(out, -1)); n != frames {
					t.Fatalf("the move in %d frames:\n%s", n, out)
				}
				return
			}
			dec := json.NewDecoder(strings.NewReader(out))
			for range frames {
				var doc migrateStatusJSON
				if err := dec.Decode(&doc); err != nil {
					t.Fatalf("%v:\n%s", err, out)
				}
				if !slices.ContainsFunc(doc.Moves, func(m client.Move) bool { return m.ID == id && m.State == "CATCHING_UP" && m.To == target }) {
					t.Fatalf("move %d not in %+v", id, doc.Moves)
				}
			}
		})
	}
}

// The TUI's actions, carried out on a cluster of its own (expand and
// shrink move every table).
func TestTUIRunner(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	cl := ownCluster(t, inproc.Options{Proxies: true, MetaConfig: slowDown})
	tb := addTable(t, cl, 3, 2)
	c := newClient(t, cl)
	runner := tuiRunner(c)
	var queued []uint64
	run := func(ctx context.Context, a tui.Action) (string, error) {
		out, err := runner(ctx, a)
		queued = out.Moves
		return out.Status, err
	}
	ctx := testCtx(t)
	m1, s1, o1 := roles(t, tb, cl, 1)
	m0, s0, _ := roles(t, tb, cl, 0)

	msg, err := run(ctx, tui.Action{Kind: "setmaster", Table: tb.Name, Partition: 0, From: m0, To: s0, Epoch: epoch(t, cl) - 1})
	if status.Code(err) != zppb.Code_STALE_EPOCH || !strings.HasPrefix(err.Error(), "setmaster: ") {
		t.Fatalf("stale: %q, %v", msg, err)
	}
	// A migration that stays CATCHING_UP (its target is cut from meta),
	// and a switchover to its target that waits behind it.
	hold(t, cl, tb.Name, o1)
	msg, err = run(ctx, tui.Action{Kind: "migrate", Table: tb.Name, Partition: 1, From: s1, To: o1, Epoch: epoch(t, cl)})
	sub := regexp.MustCompile(`^migrate: queued move (\d+): ` + q(tb.Name+"/1 "+s1+" -> "+o1) + `; view 5 follows it$`).FindStringSubmatch(msg)
	if err != nil || sub == nil {
		t.Fatalf("migrate: %q, %v", msg, err)
	}
	migrate := atoi(t, sub[1])
	if fmt.Sprint(queued) != fmt.Sprintf("[%d]", migrate) {
		t.Fatalf("migrate: moves %v, want [%d]", queued, migrate)
	}
	waitMove(t, cl, tb.Name, migrate, "CATCHING_UP")
	msg, err = run(ctx, tui.Action{Kind: "setmaster", Table: tb.Name, Partition: 1, From: m1, To: o1, Epoch: epoch(t, cl)})
	if want := fmt.Sprintf("setmaster: queued move %d: %s/1 %s -> %s; view 5 follows it", migrate+1, tb.Name, m1, o1); err != nil || msg != want {
		t.Fatalf("setmaster: %q, %v; want %q", msg, err, want)
	}
	if msg, err = run(ctx, tui.Action{Kind: "cancel", MoveID: migrate + 1}); err != nil || msg != fmt.Sprintf("cancel: move %d cancelled and rolled back", migrate+1) {
		t.Fatalf("cancel: %q, %v", msg, err)
	}
	for _, kind := range []string{"cordon", "uncordon"} {
		if msg, err = run(ctx, tui.Action{Kind: kind, Nodes: []string{o1}}); err != nil || msg != fmt.Sprintf("%s: %sed %s", kind, kind, o1) {
			t.Fatalf("%s: %q, %v", kind, msg, err)
		}
		if got := nodeRows(t, cl)[o1].Cordoned; got != (kind == "cordon") {
			t.Fatalf("after %s, %s cordoned = %v", kind, o1, got)
		}
	}
	// The leader plans no rebalance while a move runs.
	for _, act := range []tui.Action{{Kind: "expand"}, {Kind: "shrink", Nodes: []string{o1}}} {
		act.Epoch = epoch(t, cl)
		if _, err = run(ctx, act); status.Code(err) != zppb.Code_INVALID_ARGUMENT || !strings.HasPrefix(err.Error(), act.Kind+": ") {
			t.Fatalf("%s: %v", act.Kind, err)
		}
	}
	if _, err := run(ctx, tui.Action{Kind: "cancel", MoveID: migrate}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Node(o1).Heal(); err != nil {
		t.Fatal(err)
	}
	// The layout meta made is even.
	if msg, err = run(ctx, tui.Action{Kind: "expand", Epoch: epoch(t, cl)}); err != nil || msg != "expand: nothing to do, the load is even" {
		t.Fatalf("expand: %q, %v", msg, err)
	}
	// The shrink dialog's plan is the CLI's, and the moves queued at its
	// epoch are the plan's.
	if p, err := tuiPlanner(c)(ctx, tui.Action{Kind: "expand"}); err != nil || len(p.Steps) != 0 {
		t.Fatalf("expand plan: %+v, %v", p, err)
	}
	plan, err := tuiPlanner(c)(ctx, tui.Action{Kind: "shrink", Nodes: []string{o1}})
	if err != nil || len(plan.Steps) < 2 || plan.Epoch != epoch(t, cl) {
		t.Fatalf("shrink plan: %+v, %v", plan, err)
	}
	r := zpctl(t, cl, "-o", "json", "shrink", o1, "--dry-run")
	var cli operationJSON
	if err := json.Unmarshal([]byte(r.stdout), &cli); err != nil || len(cli.Plan.Steps) != len(plan.Steps) || cli.Plan.Steps[0].String() != plan.Steps[0] {
		t.Fatalf("the CLI's plan %+v (%v), the TUI's %+v", cli.Plan, err, plan)
	}
	msg, err = run(ctx, tui.Action{Kind: "shrink", Nodes: []string{o1}, Epoch: plan.Epoch})
	if len(queued) != len(plan.Steps) {
		t.Fatalf("shrink queued %d moves, planned %d", len(queued), len(plan.Steps))
	}
	sub = regexp.MustCompile(`^shrink: queued (\d+) moves \((\d+)-(\d+)\); view 5 follows them$`).FindStringSubmatch(msg)
	if err != nil || sub == nil || atoi(t, sub[1]) < 2 || atoi(t, sub[2]) != migrate+2 || atoi(t, sub[3])-atoi(t, sub[2])+1 != atoi(t, sub[1]) {
		t.Fatalf("shrink: %q, %v", msg, err)
	}
	// The shrink's moves end before the cluster closes.
	deadline := time.Now().Add(20 * time.Second)
	for len(movesOf(t, cl, tb.Name, false)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("moves still running: %+v", movesOf(t, cl, tb.Name, false))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
