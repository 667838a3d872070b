package client

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client/clienttest"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// FlushTable sends each master the partitions it masters, follows MOVE and
// retries WAIT per partition, all under one request id, and leaves other
// tables alone.
func TestFlushTable(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 3)
	cl.AddTable("t", 6)
	cl.AddTable("other", 3)
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	kvs := kvsN(60, "f")
	for _, table := range []string{"t", "other"} {
		if err := c.MSet(ctx, table, kvs, 0); err != nil {
			t.Fatal(err)
		}
	}

	// Partition 0 moves without the client knowing, data and all.
	oldM := cl.Node(cl.Topology().Tables[0].Partitions[0].Master)
	newM := cl.Nodes[(indexOf(cl, oldM)+2)%3]
	cl.SetMaster("t", 0, newM.Addr)
	for _, kv := range kvs {
		if keyspace.Partition(kv.Key, 6) == 0 {
			copyKey(t, newM, kv.Key, kv.Value)
		}
	}
	// Another node answers its first FLUSH_TABLE with WAIT per partition.
	waiter := cl.Nodes[(indexOf(cl, oldM)+1)%3]
	waiter.SetHook(times(1, "flush_table", func(req *zppb.Request) *zppb.Response {
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
		n.SetHook(func(req *zppb.Request) *zppb.Response {
			if req.GetFlushTable() != nil {
				mu.Lock()
				ids = append(ids, req.RequestId)
				mu.Unlock()
			}
			return nil
		})
	}

	if err := c.FlushTable(ctx, "t"); err != nil {
		t.Fatalf("FlushTable: %v", err)
	}
	// The old master of partition 0 keeps its copy, as a node that no
	// longer holds a replica would until it deletes it; masters have none.
	res, err := c.MGet(ctx, "t", keysOf(kvs))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Found {
			t.Fatalf("key %q survived the flush", r.Key)
		}
	}
	kept := 0
	for _, n := range cl.Nodes {
		kept += n.Len("other")
	}
	if kept != len(kvs) {
		t.Fatalf("table other has %d keys after flushing t, want %d", kept, len(kvs))
	}
	if waiter.Calls("flush_table") < 2 {
		t.Fatal("WAITed partitions were not retried")
	}
	if oldM.Calls("flush_table") == 0 || newM.Calls("flush_table") < 2 {
		t.Fatalf("flush calls: old master %d, new master %d; want the MOVE followed", oldM.Calls("flush_table"), newM.Calls("flush_table"))
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
		// hook is installed on the master of partition 1 of t (2 partitions).
		hook    func(req *zppb.Request) *zppb.Response
		timeout time.Duration
		table   string
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
			cl, c, k0, k1 := twoPartitions(t)
			ctx := testCtx(t)
			m1 := masterOf(t, cl, "t", k1)
			m1.SetHook(tt.hook)
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			tt.check(t, c.FlushTable(ctx, tt.table))
			_, kept0 := masterOf(t, cl, "t", k0).Value("t", k0)
			_, kept1 := m1.Value("t", k1)
			if wantKept0 := tt.table != "t"; kept0 != wantKept0 || !kept1 {
				t.Fatalf("after the flush: partition 0 kept %v (want %v), partition 1 kept %v (want true)", kept0, wantKept0, kept1)
			}
		})
	}
}
