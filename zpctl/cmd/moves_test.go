package cmd

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/movetally"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Moves carried out by the real meta leader (lib/inproc), each test on a
// table of its own in the shared cluster.

// roles returns partition id's master, its slave and the node holding no
// replica of it (a table of 2 replicas on 3 nodes).
func roles(t *testing.T, tb *zppb.Table, c *inproc.Cluster, id uint32) (master, slave, other string) {
	t.Helper()
	p := tb.Partitions[id]
	master, slave = p.Master, p.Slaves[0]
	for _, a := range c.NodeAddrs() {
		if a != master && a != slave {
			other = a
		}
	}
	return master, slave, other
}

func TestSingleMoves(t *testing.T) {
	cl := sharedCluster(t)
	tb := addTable(t, cl, 3, 2)
	m0, s0, o0 := roles(t, tb, cl, 0)
	m1, s1, o1 := roles(t, tb, cl, 1)
	for _, tt := range []struct {
		args  []string
		check func(p *zppb.Partition) bool
	}{
		{[]string{"migrate", tb.Name, "0", "--from", m0, "--to", o0}, func(p *zppb.Partition) bool {
			return p.Master == o0 && slices.Equal(p.Slaves, []string{s0})
		}},
		{[]string{"addslave", tb.Name, "1", o1}, func(p *zppb.Partition) bool {
			return p.Master == m1 && slices.Equal(p.Slaves, []string{s1, o1})
		}},
		{[]string{"removeslave", tb.Name, "1", s1}, func(p *zppb.Partition) bool {
			return p.Master == m1 && slices.Equal(p.Slaves, []string{o1})
		}},
	} {
		t.Run(tt.args[0], func(t *testing.T) {
			r := zpctl(t, cl, append(tt.args, "--yes", fast)...)
			id, _ := parsePartition(tt.args[2])
			if p := pullTable(t, cl, tb.Name).Partitions[id]; r.code != ExitOK || !tt.check(p) {
				t.Fatalf("exit %d, partition %v\n%s\n%s", r.code, p, r.stdout, r.stderr)
			}
			mustContain(t, "stderr", r.stderr, tt.args[0]+": done, 1/1 moves")
		})
	}
}

func TestFollowRetries(t *testing.T) {
	cl := sharedCluster(t)
	tb := addTable(t, cl, 3, 2)
	_, s0, _ := roles(t, tb, cl, 0)
	// zpctl asks the leader through a tap that fails its first two
	// MOVE_STATUS.
	tap := leaderTap(t, cl)
	var failed atomic.Int32
	tap.SetHook(func(req *zppb.Request) *zppb.Response {
		if req.GetMoveStatus() != nil && failed.Add(1) <= 2 {
			return &zppb.Response{Code: zppb.Code_ERROR, Msg: "leader stepping down"}
		}
		return nil
	})
	r := zpctl(t, addrs{tap.Addr()}, "setmaster", tb.Name, "0", s0, "--yes", fast)
	if r.code != ExitOK || pullTable(t, cl, tb.Name).Partitions[0].Master != s0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	mustContain(t, "stderr", r.stderr, "setmaster: move status: client: move status: ", "ERROR: leader stepping down", "setmaster: done")
}

// The detail of a follow's progress: the moves running and their copy,
// then the operation's bytes moved and ETA (zpctl/movetally).
func TestProgressSummary(t *testing.T) {
	const MiB = 1 << 20
	t0 := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	mv := func(id uint64, st client.MoveState, copied, total uint64) client.Move {
		return client.Move{ID: id, State: st, Origin: "shrink", CreatedMs: t0.UnixMilli(), BytesCopied: copied, BytesTotal: total}
	}
	tests := []struct {
		name       string
		seen, last []client.Move
		now        time.Duration
		want       string
	}{
		{"pending", nil, []client.Move{mv(1, client.MovePending, 0, 0)}, time.Second, "1 pending"},
		{"copying, the rest pending: no ETA yet", nil,
			[]client.Move{mv(1, client.MoveCatchingUp, 10*MiB, 40*MiB), mv(2, client.MovePending, 0, 0)}, time.Second,
			"1 running, 1 pending, copied 10.0 MiB/40.0 MiB"},
		{"a move done: moved and ETA",
			[]client.Move{mv(1, client.MoveCatchingUp, 30*MiB, 40*MiB), mv(2, client.MovePending, 0, 0), mv(3, client.MovePending, 0, 0)},
			[]client.Move{mv(1, client.MoveDone, 0, 0), mv(2, client.MoveCatchingUp, MiB, 8*MiB), mv(3, client.MovePending, 0, 0)},
			30 * time.Second, "1 running, 1 pending, copied 1.0 MiB/8.0 MiB, moved 41.0 MiB, ETA 1m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tl movetally.Tally
			tl.Observe(tt.seen)
			tl.Observe(tt.last)
			if got := progressSummary(tt.last, tl.Summarize(tt.last, t0.Add(tt.now))); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
