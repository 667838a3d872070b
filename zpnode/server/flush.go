package server

import (
	"context"
	"sync"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// flushConcurrency bounds the partitions one FLUSH_TABLE flushes at once.
// Each flush is a write that waits for its binlog sync (and, with
// min_sync_replicas, for slaves): one at a time would add those waits up,
// all at once would queue an fsync per partition of a large table.
const flushConcurrency = 16

// flushTable empties the requested partitions of a table. Each partition's
// flush is one CLEAR record through its binlog, so slaves, replay after a
// crash, log matching and request-id deduplication treat it as any other
// write. A partition this node does not master or cannot serve now gets
// its own result (MOVE, WAIT), as MSET's keys do; the others are flushed.
func (s *Server) flushTable(ctx context.Context, id []byte, req *zppb.FlushTableRequest) (*zppb.Response, error) {
	tb := s.topo.Load().tables[req.Table]
	if tb == nil {
		return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found", req.Table)
	}
	if err := checkFlushPartitions(req.Partitions, tb.PartitionCount); err != nil {
		return nil, err
	}
	results := make([]*zppb.KeyResult, len(req.Partitions))
	sem := make(chan struct{}, flushConcurrency)
	var wg sync.WaitGroup
	for i, pid := range req.Partitions {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := s.flushPartition(ctx, id, req.Table, pid); err != nil {
				results[i] = keyResult(err)
			} else {
				results[i] = &zppb.KeyResult{}
			}
		})
	}
	wg.Wait()
	return &zppb.Response{Result: &zppb.Response_FlushTable{FlushTable: &zppb.FlushTableResponse{Results: results}}}, nil
}

// checkFlushPartitions rejects a request naming no partition, one out of
// range or one twice: bad input fails the whole request before anything is
// flushed.
func checkFlushPartitions(ids []uint32, count uint32) error {
	if len(ids) == 0 {
		return status.New(zppb.Code_INVALID_ARGUMENT, "FLUSH_TABLE without partitions")
	}
	seen := make(map[uint32]bool, len(ids))
	for _, id := range ids {
		switch {
		case id >= count:
			return status.New(zppb.Code_INVALID_ARGUMENT, "partition %d of a table with %d", id, count)
		case seen[id]:
			return status.New(zppb.Code_INVALID_ARGUMENT, "partition %d named twice", id)
		}
		seen[id] = true
	}
	return nil
}

// flushPartition logs and applies a CLEAR on partition id of table.
//
// The request id goes to the replica as it is, unlike MSET's shares
// (partID): deduplication is per replica, one partition is one replica,
// and a call names each partition once, so within a replica the id only
// ever recurs on a retry of the same share, which is what it must
// recognise.
func (s *Server) flushPartition(ctx context.Context, id []byte, table string, pid uint32) error {
	r, err := s.routePartitionWrite(ctx, table, pid)
	if err != nil {
		return err
	}
	rec := &zppb.WriteRecord{Mutations: []*zppb.Mutation{{Kind: zppb.Mutation_CLEAR}}}
	return writeError(r.Write(ctx, id, rec))
}
