package testcluster_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// verifier writes increasing versions of a fixed set of keys from several
// goroutines and remembers, per key, the versions that were acknowledged
// and every version ever sent; it reads as it goes and checks that a read
// never returns a version that was never written nor one older than a
// version acknowledged before the read began.
type verifier struct {
	cl    *client.Client
	table string
	keys  [][]byte

	mu        sync.Mutex
	acked     map[string]int // highest acknowledged version per key
	sent      map[string]int // highest version sent per key
	errs      []error
	writes    int
	failed    int
	firstFail error
	stop      chan struct{}
	wg        sync.WaitGroup
}

func startVerifier(t *testing.T, cl *client.Client, table string, nkeys, workers int) *verifier {
	if nkeys%workers != 0 {
		t.Fatalf("verifier: %d keys do not split over %d workers", nkeys, workers)
	}
	v := &verifier{cl: cl, table: table, acked: map[string]int{}, sent: map[string]int{}, stop: make(chan struct{})}
	for i := range nkeys {
		v.keys = append(v.keys, fmt.Appendf(nil, "vk-%d", i))
	}
	for w := range workers {
		v.wg.Add(1)
		go v.run(w, workers)
	}
	t.Cleanup(v.halt)
	return v
}

func (v *verifier) run(w, workers int) {
	defer v.wg.Done()
	ctx := context.Background()
	for i := 0; ; i++ {
		select {
		case <-v.stop:
			return
		default:
		}
		// Each worker owns the keys whose index is w modulo workers (nkeys
		// is a multiple of workers), so versions of a key are sent in order.
		k := v.keys[(i*workers+w)%len(v.keys)]
		v.mu.Lock()
		ver := v.sent[string(k)] + 1
		v.sent[string(k)] = ver
		floor := v.acked[string(k)]
		v.mu.Unlock()

		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := v.cl.Set(wctx, v.table, k, []byte(strconv.Itoa(ver)), 0)
		cancel()
		v.mu.Lock()
		v.writes++
		if err == nil && ver > v.acked[string(k)] {
			v.acked[string(k)] = ver
		} else if err != nil {
			if v.failed++; v.firstFail == nil {
				v.firstFail = fmt.Errorf("write %s version %d: %w", k, ver, err)
			}
		}
		v.mu.Unlock()

		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		got, err := v.cl.Get(rctx, v.table, k)
		cancel()
		if err != nil {
			continue
		}
		n, perr := strconv.Atoi(string(got))
		v.mu.Lock()
		switch {
		case perr != nil || n > v.sent[string(k)]:
			v.errs = append(v.errs, fmt.Errorf("read %s = %q: never written", k, got))
		case n < floor:
			v.errs = append(v.errs, fmt.Errorf("read %s = %d after version %d was acknowledged", k, n, floor))
		}
		v.mu.Unlock()
	}
}

func (v *verifier) halt() {
	select {
	case <-v.stop:
	default:
		close(v.stop)
	}
	v.wg.Wait()
}

// check stops the writers and reads every key: each must hold its last
// acknowledged version or a later one that was sent. No write may have
// failed: moves answer WAIT, which the client retries within the deadline.
func (v *verifier) check(t *testing.T) {
	t.Helper()
	v.halt()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, e := range v.errs {
		t.Error(e)
	}
	for _, k := range v.keys {
		got, err := v.cl.Get(ctx, v.table, k)
		if err != nil && v.acked[string(k)] > 0 {
			t.Errorf("final read of %s: %v", k, err)
			continue
		}
		n, _ := strconv.Atoi(string(got))
		if n < v.acked[string(k)] || n > v.sent[string(k)] {
			t.Errorf("%s = %d; acknowledged %d, sent up to %d", k, n, v.acked[string(k)], v.sent[string(k)])
		}
	}
	t.Logf("verifier: %d writes, %d failed, %d read anomalies", v.writes, v.failed, len(v.errs))
	if v.failed > 0 {
		t.Errorf("%d of %d writes failed; the first: %v", v.failed, v.writes, v.firstFail)
	}
}

func (v *verifier) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.writes
}

// waitMoves polls MoveStatus until no move is active and returns the moves
// as they finished.
func waitMoves(t *testing.T, cl *client.Client, timeout time.Duration) []client.Move {
	t.Helper()
	testcluster.Poll(t, timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		moves, err := cl.MoveStatus(ctx, false)
		if err != nil {
			return err
		}
		if len(moves) > 0 {
			return fmt.Errorf("%d moves active, first %d %v", len(moves), moves[0].ID, moves[0].State)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := cl.MoveStatus(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func TestMigrateAndSetMasterUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Nodes: 4})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: 1, Replicas: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topo, err := cl.Pull(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	p := topo.Tables[0].Partitions[0]
	var spare string
	for _, a := range c.NodeAddrs() {
		if a != p.Master && !slices.Contains(p.Slaves, a) {
			spare = a
		}
	}
	// Some data for the target to copy, then load while it moves.
	if err := parallel(100, 8, func(b int) error {
		kvs := make([]client.KeyValue, 100)
		for i := range kvs {
			kvs[i] = client.KeyValue{Key: key(b*100 + i), Value: value(b*100 + i)}
		}
		return cl.MSet(ctx, "t", kvs, 0)
	}); err != nil {
		t.Fatal(err)
	}
	v := startVerifier(t, cl, "t", 16, 4)

	if _, err := cl.Migrate(ctx, "t", 0, p.Master, spare, 0); err != nil {
		t.Fatal(err)
	}
	moves := waitMoves(t, cl, 2*time.Minute)
	m := moves[len(moves)-1]
	if m.State != client.MoveDone {
		t.Fatalf("migration ended %v: %s", m.State, m.Error)
	}
	t.Logf("migrated the master %s -> %s; STUCK for %d ms", m.From, m.To, m.StuckMs)
	topo, _ = cl.Pull(ctx, "t")
	if got := topo.Tables[0].Partitions[0]; got.Master != spare || slices.Contains(got.Slaves, p.Master) || len(got.Slaves) != 2 {
		t.Fatalf("after the migration: master %s slaves %v; want master %s without %s", got.Master, got.Slaves, spare, p.Master)
	}

	// A planned switchover back to one of the slaves.
	target := topo.Tables[0].Partitions[0].Slaves[0]
	if _, err := cl.SetMaster(ctx, "t", 0, target, 0); err != nil {
		t.Fatal(err)
	}
	moves = waitMoves(t, cl, time.Minute)
	m = moves[len(moves)-1]
	if m.State != client.MoveDone || m.Kind != client.MoveSetMaster {
		t.Fatalf("switchover ended %v: %s", m.State, m.Error)
	}
	t.Logf("switched master to %s; STUCK for %d ms", target, m.StuckMs)
	if got := masterOf(t, cl, "t", 0); got != target {
		t.Fatalf("master %s after SETMASTER, want %s", got, target)
	}
	before := v.count()
	testcluster.Poll(t, 30*time.Second, func() error {
		if v.count() < before+200 {
			return fmt.Errorf("%d writes since the switchover", v.count()-before)
		}
		return nil
	})
	v.check(t)
	for i := range 10_000 {
		if i%997 != 0 {
			continue
		}
		got, err := cl.Get(ctx, "t", key(i))
		if err != nil || !bytes.Equal(got, value(i)) {
			t.Fatalf("%s after the moves: %q, %v", key(i), got, err)
		}
	}
}

// TestMetaLeaderKilledMidMigration kills the meta leader while a migration
// is catching up; the new leader finishes it.
func TestMetaLeaderKilledMidMigration(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	// A target never counts as close behind while writes flow, so the move
	// stays in CATCHING_UP until the writers stop.
	c := testcluster.Start(t, testcluster.Options{Nodes: 4, MetaArgs: []string{"--slowdown-lag", "1"}})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: 1, Replicas: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topo, _ := cl.Pull(ctx, "t")
	p := topo.Tables[0].Partitions[0]
	var spare string
	for _, a := range c.NodeAddrs() {
		if a != p.Master && !slices.Contains(p.Slaves, a) {
			spare = a
		}
	}
	v := startVerifier(t, cl, "t", 16, 4)
	queued, err := cl.Migrate(ctx, "t", 0, p.Master, spare, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := queued[0].ID
	testcluster.Poll(t, time.Minute, func() error {
		moves, err := cl.MoveStatus(ctx, true)
		if err != nil {
			return err
		}
		for _, m := range moves {
			if m.ID == id && m.State == client.MoveCatchingUp {
				return nil
			}
		}
		return fmt.Errorf("move %d not catching up yet", id)
	})
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Metas[leader].Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	v.check(t) // stops the writers: the target can catch up now
	moves := waitMoves(t, cl, 2*time.Minute)
	for _, m := range moves {
		if m.ID == id && (m.State != client.MoveDone || !m.State.Ended()) {
			t.Fatalf("move %d ended %v: %s", id, m.State, m.Error)
		}
	}
	if got := masterOf(t, cl, "t", 0); got != spare {
		t.Fatalf("master %s after the migration, want %s", got, spare)
	}
}
