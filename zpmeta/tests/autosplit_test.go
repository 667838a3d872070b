package tests

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

// writeKeys writes keys count..count+n-1 of table ("k<i>"), each with a
// random value of size(key) bytes, from a few goroutines, and returns the
// key and value bytes written by key.
func writeKeys(t *testing.T, ctx context.Context, cl *client.Client, table string, n int, size func(key string) int) map[string]int {
	t.Helper()
	keys := make(chan string)
	var mu sync.Mutex
	written := make(map[string]int)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				v := make([]byte, size(k))
				rand.Read(v) // incompressible: the table files hold what was written
				if err := cl.Set(ctx, table, []byte(k), v, 0); err != nil {
					select {
					case errs <- fmt.Errorf("set %s: %w", k, err):
					default:
					}
					continue
				}
				mu.Lock()
				written[k] = len(k) + len(v)
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		keys <- fmt.Sprintf("k%d", i)
	}
	close(keys)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	return written
}

// assertSlotsOnce checks that table's partitions cover every slot exactly
// once, and returns the table.
func assertSlotsOnce(t *testing.T, ctx context.Context, cl *client.Client, table string) client.Table {
	t.Helper()
	tp, err := cl.Pull(ctx, table)
	if err != nil {
		t.Fatal(err)
	}
	tb := tp.Tables[0]
	pb := &zppb.Table{Name: table, PartitionCount: tb.PartitionCount}
	for _, p := range tb.Partitions {
		pb.Partitions = append(pb.Partitions, &zppb.Partition{Id: p.ID, SlotBegin: p.SlotBegin, SlotEnd: p.SlotEnd})
	}
	if _, err := topo.SlotMap(pb); err != nil {
		t.Fatalf("slot coverage: %v", err)
	}
	return tb
}

// TestSplitBySize: a partition whose bytes are mostly in its lowest
// slots, split without a slot, splits where its bytes halve (the middle
// of the range would leave nearly all of them below it).
func TestSplitBySize(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newSplitFixture(t, ctx, nil)
	// Keys of the lowest quarter of the slots hold 4 KiB, the others 64
	// bytes: about 95% of the bytes below slot 4096.
	written := writeKeys(t, ctx, f.cl, "r", 1200, func(k string) int {
		if keyspace.Slot([]byte(k)) < 4096 {
			return 4096
		}
		return 64
	})
	// SPLITPOINT, as the meta leader sends it: the master answers the
	// point; a bad range, a partition it does not have and a node that is
	// not the master get errors.
	pool := rpc.NewPool(rpc.PoolOptions{ConnsPerAddr: 1})
	defer pool.Close()
	ask := func(addr string, id, b, e uint32) (*zppb.Response, error) {
		return pool.Call(ctx, addr, &zppb.Request{Cmd: &zppb.Request_SplitPoint{SplitPoint: &zppb.SplitPointRequest{Table: "r", Partition: id, SlotBegin: b, SlotEnd: e}}})
	}
	resp, err := ask(f.master.Addr, 0, 0, keyspace.Slots)
	if sp := resp.GetSplitPoint(); err != nil || resp.Code != zppb.Code_OK || !sp.Exact || sp.SampledKeys != uint64(len(written)) || sp.At == 0 {
		t.Fatalf("SPLITPOINT: %v, %v", resp, err)
	}
	var other string
	for _, n := range f.c.Nodes {
		if n != f.master {
			other = n.Addr
		}
	}
	for _, tt := range []struct {
		addr     string
		id, b, e uint32
		want     zppb.Code
	}{
		{f.master.Addr, 0, 5, 6, zppb.Code_INVALID_ARGUMENT},
		{f.master.Addr, 0, 7, 3, zppb.Code_INVALID_ARGUMENT},
		{f.master.Addr, 0, 0, keyspace.Slots + 1, zppb.Code_INVALID_ARGUMENT},
		{f.master.Addr, 9, 0, keyspace.Slots, zppb.Code_TABLE_NOT_FOUND},
		{other, 0, 0, keyspace.Slots, zppb.Code_MOVE},
	} {
		if resp, err := ask(tt.addr, tt.id, tt.b, tt.e); err != nil || resp.Code != tt.want {
			t.Errorf("SPLITPOINT %d [%d, %d) at %s: %v, %v; want %v", tt.id, tt.b, tt.e, tt.addr, resp.GetCode(), err, tt.want)
		}
	}
	moves, err := f.cl.Split(ctx, "r", 0, 0, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, f.cl, moves[0].ID, client.MoveDone)
	tb := assertSlotsOnce(t, ctx, f.cl, "r")
	at := tb.Partitions[0].SlotEnd
	var below, total int
	for k, n := range written {
		total += n
		if uint32(keyspace.Slot([]byte(k))) < at {
			below += n
		}
	}
	share := float64(below) / float64(total)
	t.Logf("split at slot %d: %.2f of the bytes below it", at, share)
	if tb.PartitionCount != 2 || share < 0.3 || share > 0.7 {
		t.Fatalf("split at %d (%d partitions): %.2f of the bytes below, want 0.3-0.7", at, tb.PartitionCount, share)
	}
	for k := range written {
		if _, err := f.cl.Get(ctx, "r", []byte(k)); err != nil {
			t.Fatalf("get %s after the split: %v", k, err)
		}
	}
}

// TestAutoSplit: a table created with a split size splits by itself once
// written past it; every key reads back and the slots are covered once.
func TestAutoSplit(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the masters' size reports (about 10 s)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newSplitFixture(t, ctx, func(cfg *server.Config) { cfg.Scheduler = true })
	// Only the automatic split: no master balance moving the masters.
	off := false
	if _, err := f.cl.Schedule(ctx, client.ScheduleChange{MasterBalance: &off}); err != nil {
		t.Fatal(err)
	}
	const splitSize = 4 << 20
	if _, err := f.cl.CreateTable(ctx, client.TableSpec{Name: "a", Partitions: 1, Replicas: 3, SplitSize: splitSize}); err != nil {
		t.Fatal(err)
	}
	if err := f.cl.WaitTableWritable(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	// 5 MiB in 4 KiB values: over the split size, and each half under it.
	written := writeKeys(t, ctx, f.cl, "a", 1280, func(string) int { return 4096 })
	var split client.Move
	for split.ID == 0 {
		moves, _ := f.cl.MoveStatus(ctx, true)
		for _, m := range moves {
			if m.Table == "a" && m.Kind == client.MoveSplit && m.State == client.MoveDone {
				split = m
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no automatic split: %+v", moves)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Logf("split %d at %d: %s", split.ID, split.SplitAt, split.Reason)
	if split.Origin != "scheduler" || split.Reason == "" {
		t.Fatalf("split %+v: want one the scheduler queued, with a reason", split)
	}
	tb := assertSlotsOnce(t, ctx, f.cl, "a")
	if tb.PartitionCount < 2 || tb.SplitSize != splitSize {
		t.Fatalf("after the automatic split: %d partitions, split size %d", tb.PartitionCount, tb.SplitSize)
	}
	for k := range written {
		if _, err := f.cl.Get(ctx, "a", []byte(k)); err != nil {
			t.Fatalf("get %s after the split: %v", k, err)
		}
	}
	// Turned off (zpctl table alter --split-size off).
	if _, err := f.cl.SetSplitSize(ctx, "a", 0, 0); err != nil {
		t.Fatal(err)
	}
	if tb := assertSlotsOnce(t, ctx, f.cl, "a"); tb.SplitSize != 0 {
		t.Fatalf("split size %d after turning it off", tb.SplitSize)
	}
}
