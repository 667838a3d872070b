package server

import (
	"context"
	"errors"

	"github.com/zeppelin-kv/zeppelin/lib/failpoint"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// maxBulkChunk bounds a BULK_FETCH answer.
const maxBulkChunk = 8 << 20

// bulkStage stages a chunk of a bulk load's table file on this node's
// replica of the partition, master or slave (zpctl bulkload).
func (s *Server) bulkStage(ctx context.Context, req *zppb.BulkStageRequest) (*zppb.Response, error) {
	r, err := s.backupReplica(req.Table, req.Partition)
	if err != nil {
		return nil, err
	}
	if req.Abort {
		return &zppb.Response{Result: &zppb.Response_BulkStage{BulkStage: &zppb.BulkStageResponse{}}}, bulkError(r.Unstage(req.Id))
	}
	data := req.Data
	if a := rpc.AttachmentOf(ctx); a != nil {
		if len(data) > 0 {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "bulk stage chunk with both data and an attachment")
		}
		data = a
	}
	have, err := r.Stage(ctx, req.Id, req.Offset, data, req.Last, req.Size, req.Crc32C)
	if err != nil {
		return nil, bulkError(err)
	}
	return &zppb.Response{Result: &zppb.Response_BulkStage{BulkStage: &zppb.BulkStageResponse{Have: have, TakesAttachment: true}}}, nil
}

// bulkIngest logs and applies the record that ingests a staged file, at
// the partition's master while it holds its lease.
func (s *Server) bulkIngest(ctx context.Context, req *zppb.BulkIngestRequest) (*zppb.Response, error) {
	nt, lease := s.snapshot()
	tb, p, ok := nt.partitionByID(req.Table, req.Partition)
	if !ok {
		return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "no partition %s/%d", req.Table, req.Partition)
	}
	r, err := s.servePartition(nt, lease, tb, p)
	if err != nil {
		return nil, err
	}
	if req.File == nil {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "bulk ingest of %s/%d without a file", req.Table, req.Partition)
	}
	if req.SlotEnd != 0 {
		if b, e := topo.SlotRange(tb, p); b != req.SlotBegin || e != req.SlotEnd {
			return nil, status.New(zppb.Code_STALE_EPOCH, "partition %s/%d owns slots [%d, %d) now, the file was routed for [%d, %d): route the load again",
				req.Table, req.Partition, b, e, req.SlotBegin, req.SlotEnd)
		}
	}
	if err := failpoint.Hold(ctx, s.cfg.Logger, failpoint.BulkIngest); err != nil {
		return nil, err
	}
	term, lsn, err := r.Ingest(ctx, req.File, req.SlotBegin, req.SlotEnd)
	if err != nil {
		return nil, bulkError(writeError(err))
	}
	s.cfg.Logger.Info("bulk load ingested", "table", req.Table, "partition", req.Partition,
		"id", req.File.Id, "records", req.File.Records, "bytes", req.File.Size, "term", term, "lsn", lsn)
	return &zppb.Response{Result: &zppb.Response_BulkIngest{BulkIngest: &zppb.BulkIngestResponse{Term: term, Lsn: lsn}}}, nil
}

// bulkFetch serves a staged file to a slave that lacks it.
func (s *Server) bulkFetch(req *zppb.BulkFetchRequest) (*zppb.Response, error) {
	r, err := s.masterReplica(req.Table, req.Partition)
	if err != nil {
		return nil, err
	}
	n := int(req.MaxBytes)
	if n <= 0 || n > maxBulkChunk {
		n = maxBulkChunk
	}
	data, eof, err := r.ReadStaged(req.Id, req.Offset, n)
	if err != nil {
		return nil, bulkError(err)
	}
	return &zppb.Response{Result: &zppb.Response_BulkFetch{BulkFetch: &zppb.BulkFetchResponse{Data: data, Eof: eof}}}, nil
}

// bulkError gives the replica's bulk load errors their codes.
func bulkError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, replica.ErrNotStaged):
		return status.New(zppb.Code_NOT_FOUND, "%v", err)
	case errors.Is(err, replica.ErrStaging):
		return status.New(zppb.Code_INVALID_ARGUMENT, "%v", err)
	}
	return err
}
