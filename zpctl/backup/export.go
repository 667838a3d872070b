package backup

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// DefaultExportPage is the keys an export reads per request.
const DefaultExportPage = 1000

// ExportOptions configures Export.
type ExportOptions struct {
	Cluster Cluster
	// Dial connects to nodes with the cluster secret (the export calls
	// are peer-only, as the full-sync ones).
	Dial  Dialer
	Table string
	// PageSize is the keys per request; default DefaultExportPage.
	PageSize int
	// Emit is given every live key of the table, partition after
	// partition, in each partition's key order. An error stops the
	// export.
	Emit func(e *zppb.ExportEntry) error
	// Log, when set, is told each partition's source and position.
	Log func(line string)
	// Keys and Partitions, when set, count what was exported, for the
	// caller's progress.
	Keys, Partitions *atomic.Int64
}

// Export reads every key of opts.Table, with its value and expiry, from a
// consistent snapshot of each partition (a checkpoint of one replica, an
// in-sync slave when there is one, taken when the partition's turn comes:
// partitions are not of one instant). A replica that cannot start the
// snapshot is replaced by the next; one that fails in the middle fails the
// export, since another replica's snapshot would not be the same.
func Export(ctx context.Context, opts ExportOptions) (keys int64, err error) {
	if opts.Cluster == nil || opts.Dial == nil || opts.Table == "" || opts.Emit == nil {
		return 0, errors.New("backup: ExportOptions.Cluster, Dial, Table and Emit are required")
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultExportPage
	}
	if opts.Log == nil {
		opts.Log = func(string) {}
	}
	if opts.Keys == nil {
		opts.Keys = &atomic.Int64{}
	}
	if opts.Partitions == nil {
		opts.Partitions = &atomic.Int64{}
	}
	topo, err := opts.Cluster.Pull(ctx, opts.Table)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	tb := topo.Table(opts.Table)
	if tb == nil {
		return 0, fmt.Errorf("export: %w", status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found", opts.Table))
	}
	for id := range tb.PartitionCount {
		n, err := exportPartition(ctx, opts, tb.CreatedEpoch, id)
		keys += n
		if err != nil {
			return keys, fmt.Errorf("export: partition %d: %w", id, err)
		}
		opts.Partitions.Add(1)
	}
	return keys, nil
}

func exportPartition(ctx context.Context, opts ExportOptions, createdEpoch uint64, id uint32) (int64, error) {
	failed := make(map[string]bool)
	var lastErr error
	for attempt := 0; attempt < DefaultAttempts; attempt++ {
		cands, err := replicasOf(ctx, opts.Cluster, opts.Table, createdEpoch, id, "", failed)
		if err == nil && len(cands) == 0 {
			err = errors.New("no replica left to try")
		}
		if err != nil {
			lastErr = err
			if status.Code(err) == zppb.Code_TABLE_NOT_FOUND {
				return 0, err
			}
			clear(failed)
			if serr := sleep(ctx, DefaultRetryPause); serr != nil {
				return 0, serr
			}
			continue
		}
		cand := cands[0]
		conn, err := opts.Dial(ctx, cand.addr)
		if err != nil {
			lastErr, failed[cand.addr] = err, true
			continue
		}
		n, started, err := exportFrom(ctx, opts, conn, id, cand)
		conn.Close()
		if err == nil {
			return n, nil
		}
		if started || ctx.Err() != nil || !retryable(err) {
			return n, err
		}
		lastErr, failed[cand.addr] = err, true
		opts.Log(fmt.Sprintf("partition %d: %s failed (%s); trying another replica", id, cand.addr, briefErr(err)))
	}
	return 0, fmt.Errorf("gave up after %d attempts: %w", DefaultAttempts, lastErr)
}

// exportFrom reads partition id's snapshot from one replica; started says
// whether any key was emitted (after which no other replica may take
// over).
func exportFrom(ctx context.Context, opts ExportOptions, conn Conn, id uint32, cand candidate) (n int64, started bool, err error) {
	resp, err := call(ctx, conn, &zppb.Request{Cmd: &zppb.Request_ExportStart{ExportStart: &zppb.ExportStartRequest{Table: opts.Table, Partition: id}}})
	if err != nil {
		return 0, false, err
	}
	st := resp.GetExportStart()
	defer call(context.WithoutCancel(ctx), conn, &zppb.Request{Cmd: &zppb.Request_ExportEnd{ExportEnd: &zppb.ExportEndRequest{
		Table: opts.Table, Partition: id, Session: st.GetSession()}}})
	if err := cand.accept(id, st.GetLsn()); err != nil {
		return 0, false, err
	}
	opts.Log(fmt.Sprintf("partition %d: from %s (%s) at (term %d, lsn %d)", id, cand.addr, cand.role, st.GetTerm(), st.GetLsn()))
	var cursor []byte
	for {
		resp, err := call(ctx, conn, &zppb.Request{Cmd: &zppb.Request_ExportNext{ExportNext: &zppb.ExportNextRequest{
			Table: opts.Table, Partition: id, Session: st.GetSession(), Cursor: cursor, Count: uint32(opts.PageSize)}}})
		if err != nil {
			return n, n > 0, err
		}
		page := resp.GetExportNext()
		for _, e := range page.GetEntries() {
			if err := opts.Emit(e); err != nil {
				return n, true, err
			}
			n++
			opts.Keys.Add(1)
		}
		if len(page.GetNext()) == 0 {
			return n, true, nil
		}
		cursor = page.GetNext()
	}
}

func call(ctx context.Context, conn Conn, req *zppb.Request) (*zppb.Response, error) {
	resp, err := conn.Call(ctx, req)
	if err == nil {
		err = status.FromResponse(resp)
	}
	return resp, err
}
