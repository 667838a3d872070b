package client

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// FlushTable sends each master the partitions it masters, follows MOVE and
// retries WAIT per partition, all under one request id, and leaves other
// tables alone.
func TestFlushTable(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 6, 3)
	other := cl.addTable("-other", 3, 1).Name
	// The new master of partition 0 and the third node, which answers its
	// first FLUSH_TABLE with WAIT per partition, master others too.
	oldM := cl.Node(tb.Partitions[0].Master)
	newM := cl.Node(tb.Partitions[0].Slaves[0])
	waiter := cl.Node(tb.Partitions[0].Slaves[1])
	cl.spreadMasters(tb, 0, newM, waiter)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	kvs := kvsN(60, "f")
	for _, table := range []string{tb.Name, other} {
		if err := c.MSet(ctx, table, kvs, 0); err != nil {
			t.Fatal(err)
		}
	}

	// Partition 0 moves to a slave, which has its data, without the
	// client knowing.
	cl.setMaster(tb.Name, 0, newM.Addr)
	waiter.Tap().SetHook(times(1, "flush_table", func(req *zppb.Request) *zppb.Response {
		out := &zppb.FlushTableResponse{}
		for range req.GetFlushTable().GetPartitions() {
			out.Results = append(out.Results, &zppb.KeyResult{Code: zppb.Code_WAIT})
		}
		return &zppb.Response{Result: &zppb.Response_FlushTable{FlushTable: out}}
	}))
	var (
		mu  sync.Mutex
		ids [][]byte
	)
	for _, n := range cl.Nodes {
		if n == waiter {
			continue
		}
		n.Tap().SetHook(func(req *zppb.Request) *zppb.Response {
			if req.GetFlushTable() != nil {
				mu.Lock()
				ids = append(ids, req.RequestId)
				mu.Unlock()
			}
			return nil
		})
	}

	if err := c.FlushTable(ctx, tb.Name); err != nil {
		t.Fatalf("FlushTable: %v", err)
	}
	res, err := c.MGet(ctx, tb.Name, keysOf(kvs))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Found {
			t.Fatalf("key %q survived the flush", r.Key)
		}
	}
	if kept := cl.stored(other, kvs); kept != len(kvs) {
		t.Fatalf("table other has %d keys after flushing t, want %d", kept, len(kvs))
	}
	if waiter.Tap().Calls("flush_table") < 2 {
		t.Fatal("WAITed partitions were not retried")
	}
	if oldM.Tap().Calls("flush_table") == 0 || newM.Tap().Calls("flush_table") < 2 {
		t.Fatalf("flush calls: old master %d, new master %d; want the MOVE followed", oldM.Tap().Calls("flush_table"), newM.Tap().Calls("flush_table"))
	}
	for _, id := range ids {
		if len(id) == 0 || !bytes.Equal(id, ids[0]) {
			t.Fatalf("request ids %x: want one id, the same on every request of the call", ids)
		}
	}
}

func TestFlushTableErrors(t *testing.T) {
	tests := []struct {
		name string
		// hook is installed on the master of partition 1 of the test's
		// table (2 partitions).
		hook    func(req *zppb.Request) *zppb.Response
		timeout time.Duration
		table   string // "t" is the test's table
		check   func(t *testing.T, err error)
	}{
		{
			name:  "unknown table",
			table: "nosuch",
			check: func(t *testing.T, err error) {
				if !errors.Is(err, status.ErrTableNotFound) {
					t.Fatalf("err %v, want TABLE_NOT_FOUND", err)
				}
			},
		},
		{
			name:    "a partition waits past the deadline",
			table:   "t",
			timeout: 100 * time.Millisecond,
			hook: func(req *zppb.Request) *zppb.Response {
				if req.GetFlushTable() == nil {
					return nil
				}
				return &zppb.Response{Code: zppb.Code_WAIT}
			},
			check: func(t *testing.T, err error) {
				var pe *PartitionsError
				if !errors.As(err, &pe) || pe.Total != 2 || len(pe.Errs) != 1 || pe.Errs[0].Partition != 1 {
					t.Fatalf("err %v, want a PartitionsError for partition 1", err)
				}
				if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, status.ErrWait) {
					t.Fatalf("err %v, want DeadlineExceeded wrapping WAIT", err)
				}
			},
		},
		{
			name:  "a partition refused",
			table: "t",
			hook: func(req *zppb.Request) *zppb.Response {
				if req.GetFlushTable() == nil {
					return nil
				}
				return &zppb.Response{Result: &zppb.Response_FlushTable{FlushTable: &zppb.FlushTableResponse{
					Results: []*zppb.KeyResult{{Code: zppb.Code_ERROR, Msg: "disk on fire"}}}}}
			},
			check: func(t *testing.T, err error) {
				var pe *PartitionsError
				if !errors.As(err, &pe) || len(pe.Errs) != 1 || pe.Errs[0].Partition != 1 || status.Code(err) != zppb.Code_ERROR {
					t.Fatalf("err %v, want partition 1 failed with ERROR", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, c, tb, k0, k1 := twoPartitions(t)
			ctx := testCtx(t)
			cl.masterOf(tb, k1).Tap().SetHook(tt.hook)
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			table := tt.table
			if table == "t" {
				table = tb
			}
			tt.check(t, c.FlushTable(ctx, table))
			kept0 := cl.stored(tb, []KeyValue{{k0, []byte("a")}}) == 1
			kept1 := cl.stored(tb, []KeyValue{{k1, []byte("b")}}) == 1
			if wantKept0 := tt.table != "t"; kept0 != wantKept0 || !kept1 {
				t.Fatalf("after the flush: partition 0 kept %v (want %v), partition 1 kept %v (want true)", kept0, wantKept0, kept1)
			}
		})
	}
}
