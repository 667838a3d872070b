package client

import (
	"context"
	"fmt"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// FlushTable deletes every key of table on every replica, keeping the
// table, its settings and its placement. Each partition's master logs the
// flush as one binlog record, so its slaves apply it in order with the
// writes around it, and it is acknowledged like a write (after
// min_sync_replicas slaves have it, when the table asks for that). Writes
// acknowledged after FlushTable returns are kept; a write that races it
// may land before or after the flush of its partition.
//
// Partitions are grouped by master, flushed in parallel, and those
// answered MOVE or WAIT are retried on their own until ctx ends. A retry
// carries the call's request id, so a partition whose answer was lost is
// not flushed a second time (which would delete the writes made between
// the two). The error is
// nil when every partition was flushed; otherwise a *PartitionsError
// naming the partitions that may not have been (the others were). An
// unknown table fails at once with status.ErrTableNotFound and flushes
// nothing.
func (c *core) FlushTable(ctx context.Context, table string) error {
	const op = "flush table"
	if table == "" {
		return fmt.Errorf("client: %s: %w", op, status.New(zppb.Code_INVALID_ARGUMENT, "empty table name"))
	}
	if c.closed.Load() {
		return fmt.Errorf("client: %s: %w", op, ErrClosed)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	tr, err := c.tableFor(ctx, table)
	if err != nil {
		return fmt.Errorf("client: %s: %w", op, err)
	}
	id := newRequestID()
	var errs []error
	for from, to := uint32(0), tr.n; ; {
		more, err := c.flushPartitions(ctx, op, table, id, from, to)
		if err != nil {
			return err
		}
		errs = append(errs, more...)
		if partitionsError("", errs) != nil {
			break // the caller learns which partitions to flush again
		}
		// A split during the flush adds partitions, numbered from the
		// count on, holding what their parent held at the split, which
		// may be before the parent's flush: they are flushed too, until
		// the count read after a round is the one it flushed to.
		tp, err := c.Pull(ctx, table)
		if err != nil {
			return fmt.Errorf("client: %s: %w", op, err)
		}
		n := to
		if tb := tp.Table(table); tb != nil {
			n = tb.PartitionCount
		}
		if n <= to {
			break
		}
		if _, err := c.refreshWait(ctx, tp.Epoch); err != nil { // the cache routes the new ids
			return fmt.Errorf("client: %s: %w", op, err)
		}
		from, to = to, n
	}
	return partitionsError(op+" "+table, errs)
}

// flushPartitions flushes partitions [from, to) of table; errs[i] is
// partition from+i's outcome.
func (c *core) flushPartitions(ctx context.Context, op, table string, id []byte, from, to uint32) (errs []error, err error) {
	return c.runMulti(ctx, &multiCmd{
		op:    op,
		table: table,
		write: true,
		n:     int(to - from),
		partition: func(tr *tableRoute, i int) (uint32, error) {
			if tr.n < to {
				return 0, fmt.Errorf("table %q has %d partitions now, %d when the flush started: it was dropped and created again", table, tr.n, to)
			}
			return from + uint32(i), nil
		},
		size: func(int) int { return 4 },
		build: func(idx []int) *zppb.Request {
			r := &zppb.FlushTableRequest{Table: table, Partitions: make([]uint32, len(idx))}
			for j, i := range idx {
				r.Partitions[j] = from + uint32(i)
			}
			return &zppb.Request{RequestId: id, Cmd: &zppb.Request_FlushTable{FlushTable: r}}
		},
		results: func(resp *zppb.Response) []*zppb.KeyResult { return resp.GetFlushTable().GetResults() },
		settle:  settleWrite,
	})
}

// partitionsError gathers the failed items of a per-partition call, whose
// item i is partition i.
func partitionsError(op string, errs []error) error {
	pe := &PartitionsError{Op: op, Total: len(errs)}
	for i, e := range errs {
		if e != nil {
			pe.Errs = append(pe.Errs, PartitionError{Partition: uint32(i), Err: e})
		}
	}
	if len(pe.Errs) == 0 {
		return nil
	}
	return pe
}
