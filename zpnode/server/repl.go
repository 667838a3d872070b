package server

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/dbsync"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// masterReplica finds the replica of (table, id) that a slave replicates
// from; MOVE names the master the topology knows when it is not this node.
func (s *Server) masterReplica(table string, id uint32) (*replica.Replica, error) {
	topo := s.topo.Load()
	_, p, ok := topo.partitionByID(table, id)
	if !ok {
		return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "no partition %s/%d", table, id)
	}
	if p.Master != s.cfg.Addr {
		return nil, &status.Error{Code: zppb.Code_MOVE, Msg: fmt.Sprintf("partition %s/%d is mastered by %q", table, id, p.Master), Master: p.Master, Epoch: topo.epoch}
	}
	r := s.replicas.get(table, id)
	if r == nil {
		return nil, status.New(zppb.Code_WAIT, "partition %s/%d is opening", table, id)
	}
	return r, nil
}

func (s *Server) trySync(req *zppb.TrySyncRequest) (*zppb.Response, error) {
	r, err := s.masterReplica(req.Table, req.Partition)
	if err != nil {
		return nil, err
	}
	resp, err := r.TrySync(req)
	if err != nil {
		return nil, writeError(err)
	}
	return &zppb.Response{Result: &zppb.Response_TrySync{TrySync: resp}}, nil
}

func (s *Server) binlogPull(ctx context.Context, req *zppb.BinlogPullRequest) (*zppb.Response, error) {
	r, err := s.masterReplica(req.Table, req.Partition)
	if err != nil {
		return nil, err
	}
	resp, err := r.Pull(ctx, req)
	if err != nil {
		return nil, writeError(err)
	}
	return &zppb.Response{Result: &zppb.Response_BinlogPull{BinlogPull: resp}}, nil
}

// backupReplica finds the replica of (table, id) a backup may checkpoint:
// this node's, master or slave, as long as the topology gives it one. A
// node that holds none answers MOVE to the master, where the backup can
// go instead.
func (s *Server) backupReplica(table string, id uint32) (*replica.Replica, error) {
	topo := s.topo.Load()
	_, p, ok := topo.partitionByID(table, id)
	if !ok {
		return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "no partition %s/%d", table, id)
	}
	if p.Master != s.cfg.Addr && !slices.Contains(p.Slaves, s.cfg.Addr) {
		return nil, &status.Error{Code: zppb.Code_MOVE, Msg: fmt.Sprintf("partition %s/%d has no replica on %s; its master is %q", table, id, s.cfg.Addr, p.Master), Master: p.Master, Epoch: topo.epoch}
	}
	r := s.replicas.get(table, id)
	if r == nil {
		return nil, status.New(zppb.Code_WAIT, "partition %s/%d is opening", table, id)
	}
	return r, nil
}

func (s *Server) fullSyncStart(ctx context.Context, req *zppb.FullSyncStartRequest) (*zppb.Response, error) {
	find := s.masterReplica
	if req.Backup {
		find = s.backupReplica
	}
	r, err := find(req.Table, req.Partition)
	if err != nil {
		return nil, err
	}
	if s.trimmingAfterSplit(req.Table, req.Partition, r) {
		// A copy now would carry the other half's keys, which the copy's
		// holder would never trim.
		return nil, status.New(zppb.Code_WAIT, "partition %s/%d is trimming after a split", req.Table, req.Partition)
	}
	var resp *zppb.FullSyncStartResponse
	err = r.WithDB(func(db *engine.DB) error {
		var err error
		resp, err = s.fullsync.Start(ctx, req.Table, req.Partition, db)
		return err
	})
	if err != nil {
		return nil, fullSyncError(err)
	}
	// Not trimming (above), the copy holds the keys of the range the
	// node's topology gives the partition, no more: a slave that owns
	// less trims the rest (replica.installOwnedLocked).
	if tb, p, ok := s.topo.Load().partitionByID(req.Table, req.Partition); ok {
		resp.SlotBegin, resp.SlotEnd = topo.SlotRange(tb, p)
	}
	if req.Backup {
		// No slave will catch up from lsn: nothing to pin.
		s.cfg.Logger.Info("backup checkpoint taken", "table", req.Table, "partition", req.Partition,
			"session", resp.Session, "term", resp.Term, "lsn", resp.Lsn, "files", len(resp.Files))
		return &zppb.Response{Result: &zppb.Response_FullsyncStart{FullsyncStart: resp}}, nil
	}
	r.PinForFullSync(req.Slave, resp.Lsn)
	s.cfg.Logger.Info("full sync started", "table", req.Table, "partition", req.Partition, "slave", req.Slave,
		"session", resp.Session, "lsn", resp.Lsn, "files", len(resp.Files))
	return &zppb.Response{Result: &zppb.Response_FullsyncStart{FullsyncStart: resp}}, nil
}

func (s *Server) fullSyncFetch(ctx context.Context, req *zppb.FullSyncFetchRequest) (*zppb.Response, error) {
	data, err := s.fullsync.Fetch(ctx, req)
	if err != nil {
		return nil, fullSyncError(err)
	}
	return &zppb.Response{Result: &zppb.Response_FullsyncFetch{FullsyncFetch: &zppb.FullSyncFetchResponse{Data: data}}}, nil
}

func (s *Server) fullSyncEnd(req *zppb.FullSyncEndRequest) (*zppb.Response, error) {
	if err := s.fullsync.End(req.Session); err != nil {
		return nil, fullSyncError(err)
	}
	return &zppb.Response{}, nil
}

// restorePartition installs a backup, which req.Source serves, in this
// node's master replica of a partition of a new table (zpctl backup
// restore). It answers when the backup is installed, however long the
// copy takes.
func (s *Server) restorePartition(ctx context.Context, req *zppb.RestorePartitionRequest) (*zppb.Response, error) {
	r, err := s.masterReplica(req.Table, req.Partition)
	if err != nil {
		return nil, err
	}
	if req.Source == "" {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "restore of %s/%d without a source", req.Table, req.Partition)
	}
	conn, err := s.dialPeer(ctx, req.Source)
	if err != nil {
		return nil, status.New(zppb.Code_UNAVAILABLE, "restore of %s/%d: cannot reach the backup at %s: %v", req.Table, req.Partition, req.Source, err)
	}
	defer conn.Close()
	s.cfg.Logger.Info("restoring a backup", "table", req.Table, "partition", req.Partition, "source", req.Source)
	term, lsn, res, err := r.Restore(ctx, conn)
	switch {
	case errors.Is(err, replica.ErrNotEmpty):
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "restore of %s/%d: %v", req.Table, req.Partition, err)
	case errors.Is(err, replica.ErrNotMaster):
		return nil, status.New(zppb.Code_WAIT, "restore of %s/%d: this node is no longer its master", req.Table, req.Partition)
	case err != nil:
		return nil, fmt.Errorf("restore of %s/%d: %w", req.Table, req.Partition, err)
	}
	return &zppb.Response{Result: &zppb.Response_RestorePartition{RestorePartition: &zppb.RestorePartitionResponse{
		Term: term, Lsn: lsn, BytesTotal: res.BytesTotal, BytesFetched: res.BytesFetched,
	}}}, nil
}

func fullSyncError(err error) error {
	switch {
	case errors.Is(err, dbsync.ErrNoSession):
		return status.New(zppb.Code_NOT_FOUND, "%v", err)
	case errors.Is(err, dbsync.ErrBusy):
		return status.New(zppb.Code_WAIT, "%v", err)
	}
	return err
}

// purge removes the replica's binlog segments the retention policy lets go.
func (s *Server) purge(k replicaKey, r *replica.Replica) {
	n, err := r.Purge(s.cfg.Purge)
	if err != nil {
		s.cfg.Logger.Warn("binlog purge failed", "table", k.table, "partition", k.id, "err", err)
	} else if n > 0 {
		s.cfg.Logger.Debug("binlog purged", "table", k.table, "partition", k.id, "segments", n)
	}
}
