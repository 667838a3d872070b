package testcluster_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// keyIn returns a key of partition id of a table with n partitions.
func keyIn(n, id uint32, prefix string) []byte {
	for i := 0; ; i++ {
		k := fmt.Appendf(nil, "%s-%d", prefix, i)
		if keyspace.Partition(k, n) == id {
			return k
		}
	}
}

// masterOf returns the current master of (table, partition) as meta says.
func masterOf(t *testing.T, cl *client.Client, table string, partition uint32) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo, err := cl.Pull(ctx, table)
	if err != nil {
		t.Fatal(err)
	}
	return topo.Tables[0].Partitions[partition].Master
}

// TestFailoverAfterMasterKill kills the master of a partition under
// continuous writes, with the default heartbeat settings (ping 1 s,
// down-timeout 3 s), and measures how long writes to that partition fail.
func TestFailoverAfterMasterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{NodeArgs: []string{"--ping-interval", "1s"}})
	cl := newClient(t, c)
	const partitions = 4
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: partitions, Replicas: 3})
	victim := masterOf(t, cl, "t", 0)
	k := keyIn(partitions, 0, "hot")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		killedAt    atomic.Int64 // unix nanos
		recoveredAt atomic.Int64
		wg          sync.WaitGroup
		stop        = make(chan struct{})
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now().UnixNano()
				wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
				err := cl.Set(wctx, "t", k, fmt.Appendf(nil, "%d-%d", w, i), 0)
				wcancel()
				if err == nil && killedAt.Load() != 0 && start > killedAt.Load() {
					recoveredAt.CompareAndSwap(0, time.Now().UnixNano())
				}
			}
		}()
	}
	testcluster.Poll(t, 30*time.Second, func() error {
		if _, err := cl.Get(ctx, "t", k); err != nil {
			return err
		}
		return nil
	})
	if err := c.NodeByAddr(victim).Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt.Store(time.Now().UnixNano())
	testcluster.Poll(t, time.Minute, func() error {
		if recoveredAt.Load() == 0 {
			return errors.New("no write started after the kill has succeeded")
		}
		return nil
	})
	close(stop)
	wg.Wait()
	recovery := time.Duration(recoveredAt.Load() - killedAt.Load())
	newMaster := masterOf(t, cl, "t", 0)
	t.Logf("time to recover: %v (master %s killed, %s promoted)", recovery, victim, newMaster)
	if newMaster == victim {
		t.Fatalf("partition 0 still mastered by the killed %s", victim)
	}
	if recovery > 5*time.Second {
		t.Errorf("writes failed for %v after the master was killed; the target is under 5s", recovery)
	}

	// The killed node comes back as a slave and catches up.
	if err := c.NodeByAddr(victim).Start(); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, c, "t", partitions, 3, time.Minute)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	infos, err := replicationInfo(ctx2, c, "t")
	if err != nil {
		t.Fatal(err)
	}
	for _, ri := range infos[victim] {
		if ri.Partition == 0 && ri.Role != "slave" {
			t.Fatalf("the old master rejoined as %s", ri.Role)
		}
	}
}

// TestPausedMasterIsFencedAndRejoins stops a master with SIGSTOP while a
// client writes to it, lets meta fail it over, and resumes it: it serves no
// write any more, becomes a slave and ends with exactly the new master's
// data.
func TestPausedMasterIsFencedAndRejoins(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Proxies: true})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: 1, Replicas: 3})
	old := masterOf(t, cl, "t", 0)
	oldNode := c.NodeByAddr(old)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var (
		acked atomic.Int64
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Appendf(nil, "w%d-%d", w, i)
				wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
				if cl.Set(wctx, "t", k, k, 0) == nil {
					acked.Add(1)
				}
				wcancel()
			}
		}()
	}
	testcluster.Poll(t, 30*time.Second, func() error {
		if acked.Load() < 500 {
			return fmt.Errorf("%d writes so far", acked.Load())
		}
		return nil
	})

	if err := oldNode.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	// A write sent straight to the paused master waits in its socket.
	conn, err := rpc.Dial(ctx, old, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fenced := make(chan *zppb.Response, 1)
	go func() {
		resp, err := conn.Call(ctx, &zppb.Request{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: "t", Key: []byte("fenced"), Value: []byte("x")}}})
		if err != nil {
			resp = status.Response(err)
		}
		fenced <- resp
	}()

	testcluster.Poll(t, time.Minute, func() error {
		if m := masterOf(t, cl, "t", 0); m == old {
			return fmt.Errorf("%s is still master", old)
		}
		return nil
	})
	t.Logf("failover %v after SIGSTOP", time.Since(paused))
	before := acked.Load()
	testcluster.Poll(t, time.Minute, func() error {
		if acked.Load() < before+100 {
			return fmt.Errorf("only %d writes since the failover", acked.Load()-before)
		}
		return nil
	})

	if err := oldNode.Resume(); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-fenced:
		if resp.Code == zppb.Code_OK {
			t.Fatalf("the replaced master accepted a write after it resumed (answer at epoch %d)", resp.Epoch)
		}
		t.Logf("write to the resumed old master: %v %s", resp.Code, resp.Msg)
	case <-ctx.Done():
		t.Fatal("no answer from the resumed master")
	}
	close(stop)
	wg.Wait()

	waitConverged(t, c, "t", 1, 3, 2*time.Minute)
	states := replicaDigests(t, c, "t", 1)
	assertReplicasEqual(t, states, 1, int(countKeys(states)))
	for node, parts := range states {
		t.Logf("%s: %+v", node, parts[0])
	}
}

// countKeys is the key count of the first replica in states (the test then
// checks every replica has the same).
func countKeys(states map[string]map[uint32]replicaState) int {
	for _, parts := range states {
		return parts[0].keys
	}
	return 0
}

// kvInput and kvOutput are the operations of a register per key.
type kvInput struct {
	put   bool
	key   string
	value string
}

type kvOutput struct {
	value string // "" means not found
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
		in := input.(kvInput)
		if in.put {
			return true, in.value
		}
		return output.(kvOutput).value == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(kvInput)
		if in.put {
			return fmt.Sprintf("put(%s, %s)", in.key, in.value)
		}
		return fmt.Sprintf("get(%s) -> %q", in.key, output.(kvOutput).value)
	},
}

// TestLinearizableUnderMasterKills runs single-key register reads and writes
// with min_sync_replicas=1 from several clients while masters are killed
// again and again, and checks the history with porcupine: no acknowledged
// write is lost and no read returns a stale value.
func TestLinearizableUnderMasterKills(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{})
	cl := newClient(t, c)
	const partitions = 2
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: partitions, Replicas: 3, MinSyncReplicas: 1})
	keys := []string{"a", "b", "c", "d", "e", "f"}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		seq     atomic.Int64
		failed  atomic.Int64
	)
	begin := time.Now()
	now := func() int64 { return int64(time.Since(begin)) }
	for id := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(id), 42))
			for {
				select {
				case <-stop:
					return
				default:
				}
				key := keys[rnd.IntN(len(keys))]
				op := porcupine.Operation{ClientId: id, Call: now()}
				octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
				if rnd.IntN(2) == 0 {
					v := fmt.Sprint(seq.Add(1))
					op.Input = kvInput{put: true, key: key, value: v}
					err := cl.Set(octx, "t", []byte(key), []byte(v), 0)
					op.Return = now()
					if err != nil {
						failed.Add(1)
						if !mayHaveApplied(err) {
							ocancel()
							continue
						}
						// The write may or may not have happened: it
						// stays open until the end of the history.
						op.Return = math.MaxInt64
					}
					op.Output = kvOutput{}
				} else {
					op.Input = kvInput{key: key}
					v, err := cl.Get(octx, "t", []byte(key))
					op.Return = now()
					switch {
					case err == nil:
						op.Output = kvOutput{value: string(v)}
					case errors.Is(err, status.ErrNotFound):
						op.Output = kvOutput{}
					default:
						ocancel()
						failed.Add(1)
						continue // a failed read tells nothing
					}
				}
				ocancel()
				mu.Lock()
				history = append(history, op)
				mu.Unlock()
			}
		}()
	}

	// Kill the master of a partition, wait for the failover, bring the
	// node back as a slave; three times.
	for round := range 3 {
		testcluster.Poll(t, time.Minute, func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(history) < (round+1)*300 {
				return fmt.Errorf("%d operations so far", len(history))
			}
			return nil
		})
		p := uint32(round % partitions)
		victim := masterOf(t, cl, "t", p)
		if err := c.NodeByAddr(victim).Kill(); err != nil {
			t.Fatal(err)
		}
		testcluster.Poll(t, time.Minute, func() error {
			if m := masterOf(t, cl, "t", p); m == victim {
				return fmt.Errorf("partition %d still on %s", p, victim)
			}
			return nil
		})
		if err := c.NodeByAddr(victim).Start(); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitNodesUp(ctx, victim); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed %s, master of partition %d", round, victim, p)
	}
	close(stop)
	wg.Wait()

	t.Logf("%d operations, %d failed or with unknown outcome", len(history), failed.Load())
	res := porcupine.CheckOperationsTimeout(kvModel, history, time.Minute)
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Fatalf("linearizability check timed out on %d operations", len(history))
	default:
		reportNonLinearizable(t, history)
		t.Fatalf("history of %d operations is not linearizable", len(history))
	}
}

// mayHaveApplied reports whether a failed write may have been applied, as
// the client's contract says: only errors matching ErrUnknownOutcome. A
// write that certainly failed is left out of the history, which makes the
// check stronger: a read that returns its value is then a violation.
func mayHaveApplied(err error) bool {
	return errors.Is(err, client.ErrUnknownOutcome)
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

// TestKVModelRejectsStaleRead shows the checker above has teeth: a read
// that misses a write acknowledged before it began is flagged, while one
// concurrent with an unacknowledged write may see either value.
func TestKVModelRejectsStaleRead(t *testing.T) {
	put := func(v string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{Input: kvInput{put: true, key: "k", value: v}, Output: kvOutput{}, Call: call, Return: ret}
	}
	get := func(v string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: 1, Input: kvInput{key: "k"}, Output: kvOutput{value: v}, Call: call, Return: ret}
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
	}
	for _, tt := range tests {
		if got := porcupine.CheckOperations(kvModel, tt.history); got != tt.want {
			t.Errorf("%s: linearizable = %v, want %v", tt.name, got, tt.want)
		}
	}
}
