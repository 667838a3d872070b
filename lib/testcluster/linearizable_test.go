package testcluster_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// The history checked for linearizability: per key, a register (SET, GET,
// DEL) or a counter (INCRBY, GET).
type kvOp int

const (
	opGet kvOp = iota
	opPut
	opDel
	opIncr
)

type kvInput struct {
	op    kvOp
	key   string
	value string // opPut
	delta int64  // opIncr
}

type kvOutput struct {
	value   string // opGet: "" means not found
	existed bool   // opDel
	n       int64  // opIncr: the new value
	// unknown: the write failed and may or may not have taken effect;
	// it stays open until the end of the history and any answer fits.
	unknown bool
}

var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := make(map[string][]porcupine.Operation)
		for _, op := range history {
			k := op.Input.(kvInput).key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in, out, st := input.(kvInput), output.(kvOutput), state.(string)
		switch in.op {
		case opPut:
			return true, in.value
		case opDel:
			return out.unknown || out.existed == (st != ""), ""
		case opIncr:
			cur, err := strconv.ParseInt(cmp.Or(st, "0"), 10, 64)
			if err != nil {
				return false, st
			}
			next := cur + in.delta
			return out.unknown || out.n == next, strconv.FormatInt(next, 10)
		default:
			return out.value == st, st
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		switch {
		case in.op == opPut:
			return fmt.Sprintf("set(%s, %s)", in.key, in.value)
		case out.unknown:
			return fmt.Sprintf("%s(%s) -> unknown", [...]string{"get", "set", "del", "incrby"}[in.op], in.key)
		case in.op == opDel:
			return fmt.Sprintf("del(%s) -> %v", in.key, out.existed)
		case in.op == opIncr:
			return fmt.Sprintf("incrby(%s, %d) -> %d", in.key, in.delta, out.n)
		}
		return fmt.Sprintf("get(%s) -> %q", in.key, out.value)
	},
}

// history is the operations of a run, as the clients saw them.
type history struct {
	begin  time.Time
	mu     sync.Mutex
	ops    []porcupine.Operation
	failed atomic.Int64
	ok     atomic.Int64 // operations that succeeded
}

func (h *history) now() int64 { return int64(time.Since(h.begin)) }

func (h *history) add(op porcupine.Operation) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// runOp performs one random operation on cl and records it. Registers take
// SET, GET and DEL; counters INCRBY and GET.
func runOp(ctx context.Context, cl *client.Client, table string, id int, rnd *rand.Rand, seq *atomic.Int64, h *history) {
	registers := []string{"a", "b", "c", "d", "e", "f"}
	counters := []string{"n1", "n2", "n3"}
	op := porcupine.Operation{ClientId: id, Call: h.now()}
	var (
		in  kvInput
		out kvOutput
		err error
	)
	if rnd.IntN(3) == 0 {
		in.key = counters[rnd.IntN(len(counters))]
		if rnd.IntN(2) == 0 {
			in.op, in.delta = opIncr, int64(rnd.IntN(5)+1)
			out.n, err = cl.IncrBy(ctx, table, []byte(in.key), in.delta)
		}
	} else {
		in.key = registers[rnd.IntN(len(registers))]
		switch rnd.IntN(6) {
		case 0, 1, 2:
			in.op, in.value = opPut, fmt.Sprint(seq.Add(1))
			err = cl.Set(ctx, table, []byte(in.key), []byte(in.value), 0)
		case 3:
			in.op = opDel
			out.existed, err = cl.Del(ctx, table, []byte(in.key))
		}
	}
	if in.op == opGet {
		var v []byte
		v, err = cl.Get(ctx, table, []byte(in.key))
		if errors.Is(err, status.ErrNotFound) {
			v, err = nil, nil
		}
		out.value = string(v)
	}
	op.Return = h.now()
	if err == nil {
		h.ok.Add(1)
	} else {
		h.failed.Add(1)
		if in.op == opGet || !errors.Is(err, client.ErrUnknownOutcome) {
			// A failed read tells nothing; a write that certainly failed
			// did nothing, and is left out: a read of its value is then a
			// violation.
			return
		}
		// The write may or may not have happened: it stays open until the
		// end of the history.
		op.Return, out = math.MaxInt64, kvOutput{unknown: true}
	}
	op.Input, op.Output = in, out
	h.add(op)
}

// fault is one failure the linearizability test inflicts on a cluster.
type fault struct {
	name string
	// victim picks the node to hurt and prepares it (e.g. makes it the
	// master of every partition).
	victim func(t *testing.T) string
	// hurt and heal inflict and end the failure on the victim's process.
	hurt, heal func(p *testcluster.Process) error
}

// TestLinearizableUnderFaults runs registers (SET, GET, DEL) and counters
// (INCRBY, GET) with min_sync_replicas=1 from several clients while, in
// turn, a master is killed (-9), a master is cut off from the network, a
// master is cut off from the meta servers only (clients still reach it:
// its lease fences it), and a node mastering every partition is paused
// (SIGSTOP); after each fault the node comes back. porcupine then checks
// the whole history: no acknowledged write lost, no stale read, no DEL or
// INCRBY answer that does not follow from the writes before it.
func TestLinearizableUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Proxies: true})
	cl := newClient(t, c)
	const table, partitions = "t", 2
	createTable(t, cl, client.TableSpec{Name: table, Partitions: partitions, Replicas: 3, MinSyncReplicas: 1})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h := &history{begin: time.Now()}
	var seq atomic.Int64
	rnds := make([]*rand.Rand, 6)
	for id := range rnds {
		rnds[id] = rand.New(rand.NewPCG(uint64(id), 42))
	}
	stop := startLoops(t, len(rnds), func(id, _ int) error {
		octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
		defer ocancel()
		runOp(octx, cl, table, id, rnds[id], &seq, h)
		return nil
	})

	masterOfPartition := func(p uint32) func(t *testing.T) string {
		return func(t *testing.T) string { return masterOf(t, cl, table, p) }
	}
	restart := func(p *testcluster.Process) error { return p.Start() }
	kill := func(p *testcluster.Process) error { return p.Kill() }
	faults := []fault{
		{"kill -9 the master of partition 0", masterOfPartition(0), kill, restart},
		{"cut the master of partition 1 off the network", masterOfPartition(1), (*testcluster.Process).Isolate, (*testcluster.Process).Heal},
		{"pause a node mastering every partition", func(t *testing.T) string {
			return masterOfAll(t, cl, table, partitions)
		}, (*testcluster.Process).Pause, (*testcluster.Process).Resume},
		{"cut the master of partition 0 off the meta servers", masterOfPartition(0), (*testcluster.Process).CutFromMeta, (*testcluster.Process).Heal},
		{"kill -9 the master of partition 1", masterOfPartition(1), kill, restart},
	}
	for i, f := range faults {
		// Some operations between faults, with the cluster healthy.
		waitOps(t, h, 200)
		victim := f.victim(t)
		p := c.NodeByAddr(victim)
		owned := partitionsOf(t, cl, table, partitions, victim)
		if err := f.hurt(p); err != nil {
			t.Fatal(err)
		}
		hurt := time.Now()
		testcluster.Poll(t, time.Minute, func() error {
			for _, id := range owned {
				if m := masterOf(t, cl, table, id); m == victim {
					return fmt.Errorf("partition %d still on %s", id, victim)
				}
			}
			return nil
		})
		failedOver := time.Since(hurt)
		// Clients must find the new masters while the fault lasts: a
		// hung or unreachable old master does not hold them back.
		waitOps(t, h, 100)
		if err := f.heal(p); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitNodesUp(ctx, victim); err != nil {
			t.Fatal(err)
		}
		t.Logf("fault %d, %s: %s (partitions %v) failed over in %v", i, f.name, victim, owned, failedOver.Round(time.Millisecond))
	}
	stop()

	h.mu.Lock()
	ops := h.ops
	h.mu.Unlock()
	t.Logf("%d operations, %d failed or with unknown outcome", len(ops), h.failed.Load())
	counts := make(map[kvOp]int)
	for _, op := range ops {
		counts[op.Input.(kvInput).op]++
	}
	for _, op := range []kvOp{opGet, opPut, opDel, opIncr} {
		if counts[op] == 0 {
			t.Fatalf("no operation of kind %d in the history: %v", op, counts)
		}
	}
	res := porcupine.CheckOperationsTimeout(kvModel, ops, time.Minute)
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Fatalf("linearizability check timed out on %d operations", len(ops))
	default:
		reportNonLinearizable(t, ops)
		t.Fatalf("history of %d operations is not linearizable", len(ops))
	}
}

// waitOps waits until n more operations have succeeded.
func waitOps(t *testing.T, h *history, n int64) {
	t.Helper()
	want := h.ok.Load() + n
	testcluster.Poll(t, time.Minute, func() error {
		if got := h.ok.Load(); got < want {
			return fmt.Errorf("%d operations succeeded so far, want %d", got, want)
		}
		return nil
	})
}

// partitionsOf lists the partitions node masters.
func partitionsOf(t *testing.T, cl *client.Client, table string, n uint32, node string) []uint32 {
	t.Helper()
	var out []uint32
	for id := range n {
		if masterOf(t, cl, table, id) == node {
			out = append(out, id)
		}
	}
	return out
}

// masterOfAll makes the master of partition 0 the master of every
// partition of table, and returns it.
func masterOfAll(t *testing.T, cl *client.Client, table string, n uint32) string {
	t.Helper()
	node := masterOf(t, cl, table, 0)
	for id := uint32(1); id < n; id++ {
		testcluster.Poll(t, time.Minute, func() error {
			if masterOf(t, cl, table, id) == node {
				return nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// Refused while the partition is still settling after the
			// last fault (its new slave catching up): asked again.
			if _, err := cl.SetMaster(ctx, table, id, node, 0); err != nil {
				return fmt.Errorf("setmaster %d %s: %w", id, node, err)
			}
			return fmt.Errorf("partition %d moving to %s", id, node)
		})
	}
	return node
}

// reportNonLinearizable logs the operations of the keys whose histories do
// not check, in call order, for the post-mortem.
func reportNonLinearizable(t *testing.T, history []porcupine.Operation) {
	for _, ops := range kvModel.Partition(history) {
		if porcupine.CheckOperations(kvModel, ops) {
			continue
		}
		slices.SortFunc(ops, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		t.Logf("key %s: %d operations, not linearizable:", ops[0].Input.(kvInput).key, len(ops))
		for _, op := range ops {
			ret := "pending"
			if op.Return != math.MaxInt64 {
				ret = time.Duration(op.Return).String()
			}
			t.Logf("  client %d [%v, %s] %s", op.ClientId, time.Duration(op.Call), ret, kvModel.DescribeOperation(op.Input, op.Output))
		}
	}
}

// TestKVModelRejectsNonLinearizable shows the checker above has teeth: a
// read that misses a write acknowledged before it began is flagged, as are
// a DEL that misses a key and a counter that skips, while an operation
// concurrent with an unacknowledged write may see either state.
func TestKVModelRejectsNonLinearizable(t *testing.T) {
	put := func(v string, call, ret int64) porcupine.Operation {
		out := kvOutput{unknown: ret == math.MaxInt64}
		return porcupine.Operation{Input: kvInput{op: opPut, key: "k", value: v}, Output: out, Call: call, Return: ret}
	}
	get := func(v string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: 1, Input: kvInput{key: "k"}, Output: kvOutput{value: v}, Call: call, Return: ret}
	}
	del := func(existed bool, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: 2, Input: kvInput{op: opDel, key: "k"}, Output: kvOutput{existed: existed}, Call: call, Return: ret}
	}
	incr := func(delta, n int64, call, ret int64) porcupine.Operation {
		out := kvOutput{n: n, unknown: ret == math.MaxInt64}
		return porcupine.Operation{ClientId: 3, Input: kvInput{op: opIncr, key: "k", delta: delta}, Output: out, Call: call, Return: ret}
	}
	tests := []struct {
		name    string
		history []porcupine.Operation
		want    bool
	}{
		{"read after write", []porcupine.Operation{put("1", 0, 10), get("1", 20, 30)}, true},
		{"stale read", []porcupine.Operation{put("1", 0, 10), get("", 20, 30)}, false},
		{"lost write", []porcupine.Operation{put("1", 0, 10), put("2", 11, 20), get("1", 30, 40)}, false},
		{"unknown outcome seen", []porcupine.Operation{put("1", 0, math.MaxInt64), get("1", 20, 30)}, true},
		{"unknown outcome not seen", []porcupine.Operation{put("1", 0, math.MaxInt64), get("", 20, 30)}, true},
		{"del of a present key", []porcupine.Operation{put("1", 0, 10), del(true, 20, 30), get("", 40, 50)}, true},
		{"del misses a present key", []porcupine.Operation{put("1", 0, 10), del(false, 20, 30)}, false},
		{"del said absent, then read finds it", []porcupine.Operation{put("1", 0, 10), del(true, 20, 30), del(false, 40, 50), get("1", 60, 70)}, false},
		{"counter counts", []porcupine.Operation{incr(2, 2, 0, 10), incr(3, 5, 20, 30), get("5", 40, 50)}, true},
		{"counter applied twice", []porcupine.Operation{incr(2, 2, 0, 10), get("4", 20, 30)}, false},
		{"counter skips", []porcupine.Operation{incr(2, 2, 0, 10), incr(3, 7, 20, 30)}, false},
		{"unknown increment seen", []porcupine.Operation{incr(2, 0, 0, math.MaxInt64), incr(1, 3, 20, 30)}, true},
		{"unknown increment not seen", []porcupine.Operation{incr(2, 0, 0, math.MaxInt64), incr(1, 1, 20, 30)}, true},
	}
	for _, tt := range tests {
		if got := porcupine.CheckOperations(kvModel, tt.history); got != tt.want {
			t.Errorf("%s: linearizable = %v, want %v", tt.name, got, tt.want)
		}
	}
}
