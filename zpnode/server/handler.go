package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// handle runs one request that arrived at start (see Server.start, the
// entry that calls it). Every command validates its whole input before it
// writes anything, so a rejected request changes nothing.
func (s *Server) handle(ctx context.Context, req *zppb.Request, start time.Time) *zppb.Response {
	var (
		table string
		write bool
		resp  *zppb.Response
		err   error
	)
	if err := checkRequestID(req); err != nil {
		return s.respond(req, "", false, nil, err, start)
	}
	if err := s.checkPeer(ctx, req); err != nil {
		return s.respond(req, "", false, nil, err, start)
	}
	if err := s.checkTable(ctx, req); err != nil {
		return s.respond(req, tableauth.RequestTable(req), false, nil, err, start)
	}
	switch c := req.Cmd.(type) {
	case *zppb.Request_Set:
		table, write = c.Set.Table, true
		resp, err = s.set(ctx, req.RequestId, c.Set)
	case *zppb.Request_Get:
		table = c.Get.Table
		resp, err = s.get(c.Get, req.AllowStale)
	case *zppb.Request_Del:
		table, write = c.Del.Table, true
		resp, err = s.del(ctx, req.RequestId, c.Del)
	case *zppb.Request_Mget:
		table = c.Mget.Table
		resp, err = s.mget(c.Mget, req.AllowStale)
	case *zppb.Request_Mset:
		table, write = c.Mset.Table, true
		resp, err = s.mset(ctx, req.RequestId, c.Mset)
	case *zppb.Request_Incrby:
		table, write = c.Incrby.Table, true
		resp, err = s.incrBy(ctx, req.RequestId, c.Incrby)
	case *zppb.Request_Getex:
		table, write = c.Getex.Table, c.Getex.Change != nil
		resp, err = s.getEx(ctx, req.RequestId, c.Getex)
	case *zppb.Request_Expire:
		table, write = c.Expire.Table, true
		resp, err = s.expire(ctx, req.RequestId, c.Expire)
	case *zppb.Request_SetRange:
		table, write = c.SetRange.Table, true
		resp, err = s.setRange(ctx, req.RequestId, c.SetRange)
	case *zppb.Request_IncrbyFloat:
		table, write = c.IncrbyFloat.Table, true
		resp, err = s.incrByFloat(ctx, req.RequestId, c.IncrbyFloat)
	case *zppb.Request_Multi:
		table, write = c.Multi.Table, true
		resp, err = s.multi(ctx, req.RequestId, c.Multi)
	case *zppb.Request_Exists:
		table = c.Exists.Table
		resp, err = s.exists(c.Exists, req.AllowStale)
	case *zppb.Request_Ttl:
		table = c.Ttl.Table
		resp, err = s.ttl(c.Ttl, req.AllowStale)
	case *zppb.Request_WriteBatch:
		table, write = c.WriteBatch.Table, true
		err = s.writeBatch(ctx, req.RequestId, c.WriteBatch)
	case *zppb.Request_Scan:
		table = c.Scan.Table
		resp, err = s.scan(c.Scan, req.AllowStale)
	case *zppb.Request_FlushTable:
		table, write = c.FlushTable.Table, true
		resp, err = s.flushTable(ctx, req.RequestId, c.FlushTable)
	case *zppb.Request_Info:
		table = c.Info.Table
		resp, err = s.info(c.Info)
	case *zppb.Request_Notify:
		s.notified(c.Notify.Epoch)
		resp = &zppb.Response{}
	case *zppb.Request_TrySync:
		table = c.TrySync.Table
		resp, err = s.trySync(c.TrySync)
	case *zppb.Request_BinlogPull:
		table = c.BinlogPull.Table
		resp, err = s.binlogPull(ctx, c.BinlogPull)
	case *zppb.Request_BinlogWatch:
		resp = &zppb.Response{Result: &zppb.Response_BinlogWatch{BinlogWatch: s.watchServer.Serve(ctx, c.BinlogWatch)}}
	case *zppb.Request_FullsyncStart:
		table = c.FullsyncStart.Table
		resp, err = s.fullSyncStart(ctx, c.FullsyncStart)
	case *zppb.Request_FullsyncFetch:
		table = c.FullsyncFetch.Table
		resp, err = s.fullSyncFetch(ctx, c.FullsyncFetch)
	case *zppb.Request_FullsyncEnd:
		table = c.FullsyncEnd.Table
		resp, err = s.fullSyncEnd(c.FullsyncEnd)
	case *zppb.Request_RestorePartition:
		table = c.RestorePartition.Table
		resp, err = s.restorePartition(ctx, c.RestorePartition)
	case *zppb.Request_ExportStart:
		table = c.ExportStart.Table
		resp, err = s.exportStart(c.ExportStart)
	case *zppb.Request_ExportNext:
		table = c.ExportNext.Table
		resp, err = s.exportNext(c.ExportNext)
	case *zppb.Request_ExportEnd:
		table = c.ExportEnd.Table
		resp, err = s.exportEnd(c.ExportEnd)
	case *zppb.Request_BulkStage:
		table = c.BulkStage.Table
		resp, err = s.bulkStage(ctx, c.BulkStage)
	case *zppb.Request_BulkIngest:
		table = c.BulkIngest.Table
		resp, err = s.bulkIngest(ctx, c.BulkIngest)
	case *zppb.Request_BulkFetch:
		table = c.BulkFetch.Table
		resp, err = s.bulkFetch(c.BulkFetch)
	case *zppb.Request_SplitPoint:
		table = c.SplitPoint.Table
		resp, err = s.splitPoint(c.SplitPoint)
	case nil:
		err = status.New(zppb.Code_INVALID_ARGUMENT, "empty request")
	default:
		err = status.New(zppb.Code_INVALID_ARGUMENT, "%T is not a node command", req.Cmd)
	}
	return s.respond(req, table, write, resp, err, start)
}

// respond turns a command's outcome into its response and accounts for it
// (per-table stats, metrics, slow log).
func (s *Server) respond(req *zppb.Request, table string, write bool, resp *zppb.Response, err error, start time.Time) *zppb.Response {
	if table != "" && status.Code(err) != zppb.Code_TABLE_NOT_FOUND && isDataCommand(req) {
		s.stats.record(table, write, err)
	}
	if err != nil {
		resp = status.Response(err)
	} else if resp == nil {
		resp = &zppb.Response{}
	}
	if resp.Epoch == 0 {
		resp.Epoch = s.topo.Load().epoch
	}
	if status.Code(err) == zppb.Code_TABLE_NOT_FOUND {
		table = "" // unknown names must not grow the metrics
	}
	s.observe(req, table, resp.Code, time.Since(start))
	return resp
}

// isDataCommand reports whether req is a client data command, which the
// per-table stats count.
func isDataCommand(req *zppb.Request) bool {
	switch req.Cmd.(type) {
	case *zppb.Request_Info, *zppb.Request_Notify, *zppb.Request_TrySync, *zppb.Request_BinlogPull, *zppb.Request_BinlogWatch,
		*zppb.Request_FullsyncStart, *zppb.Request_FullsyncFetch, *zppb.Request_FullsyncEnd, *zppb.Request_RestorePartition,
		*zppb.Request_ExportStart, *zppb.Request_ExportNext, *zppb.Request_ExportEnd,
		*zppb.Request_BulkStage, *zppb.Request_BulkIngest, *zppb.Request_BulkFetch, *zppb.Request_SplitPoint:
		return false
	}
	return true
}

// route finds the replica serving key of table, which must be its master
// here. MOVE names the master this node knows; WAIT means the replica is
// not open yet.
func (s *Server) route(table string, key []byte) (*replica.Replica, error) {
	topo, lease := s.snapshot()
	tb, p, ok := topo.partition(table, key)
	if !ok {
		return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found", table)
	}
	r, err := s.servePartition(topo, lease, tb, p)
	if err != nil {
		return nil, err
	}
	// Last: a request answered MOVE or WAIT uses no quota.
	if !s.quota.admit(table, len(key)) {
		s.stats.table(table).quotaExceeded.Add(1)
		return nil, status.New(zppb.Code_QUOTA_EXCEEDED, "table %q is over its quota on this node", table)
	}
	return r, nil
}

// routeRead is route for a read. With stale (the connection asked for
// READONLY) a key of a partition this node holds as a slave is read from
// the slave's data instead of answering MOVE: it may lag the master by
// the replication delay, which the caller accepted.
func (s *Server) routeRead(table string, key []byte, stale bool) (*replica.Replica, error) {
	r, err := s.route(table, key)
	if err == nil || !stale || status.Code(err) != zppb.Code_MOVE {
		return r, err
	}
	_, p, _ := s.topo.Load().partition(table, key)
	sl := s.slaveReplica(table, p)
	if sl == nil {
		return nil, err
	}
	if !s.quota.admit(table, len(key)) {
		s.stats.table(table).quotaExceeded.Add(1)
		return nil, status.New(zppb.Code_QUOTA_EXCEEDED, "table %q is over its quota on this node", table)
	}
	return sl, nil
}

// slaveReplica returns this node's replica of p when the topology makes
// it a slave of p and the replica is open as one; nil otherwise.
func (s *Server) slaveReplica(table string, p *zppb.Partition) *replica.Replica {
	if p == nil || !slices.Contains(p.Slaves, s.cfg.Addr) {
		return nil
	}
	r := s.replicas.get(table, p.Id)
	if r == nil {
		return nil
	}
	if role, _ := r.Role(); role != replica.Slave {
		return nil
	}
	return r
}

// leaseState is the master lease as a request saw it.
type leaseState struct {
	valid bool
	until time.Time
}

// snapshot returns the topology and the lease for one request, reading the
// lease first. heartbeat applies the topology a PING revealed before it
// renews the lease, so in this order a renewed lease never goes with an
// older topology: a master replaced while it was paused, whose first PING
// after resuming renews its lease, cannot pair that lease with the
// topology in which it was still master.
func (s *Server) snapshot() (*topology, leaseState) {
	valid, until := s.lease.valid(time.Now())
	return s.topo.Load(), leaseState{valid, until}
}

// servePartition returns the replica of partition p of tb when this node
// is its master and serves it now.
func (s *Server) servePartition(topo *topology, lease leaseState, tb *zppb.Table, p *zppb.Partition) (*replica.Replica, error) {
	if p.Master != s.cfg.Addr {
		if newest := s.newestEpoch.Load(); newest > topo.epoch {
			// Meta has named a newer topology this node has not applied
			// yet: the master it knows may be stale (right after a switch
			// it may even be the node that sent the client here), so the
			// client is asked to retry rather than sent back and forth.
			return nil, status.New(zppb.Code_WAIT, "partition %s/%d: topology epoch %d, catching up with %d", tb.Name, p.Id, topo.epoch, newest)
		}
		return nil, &status.Error{Code: zppb.Code_MOVE, Msg: fmt.Sprintf("partition %s/%d is mastered by %q", tb.Name, p.Id, p.Master), Master: p.Master, Epoch: topo.epoch}
	}
	if !lease.valid {
		return nil, status.New(zppb.Code_WAIT, "master lease of %s ran out at %s: no meta contact", s.cfg.Addr, lease.until.Format(time.RFC3339Nano))
	}
	if p.State == zppb.PartitionState_STUCK {
		// A move is handing the partition over: nothing is served until
		// the new master takes it, so no read sees a value the old master
		// has and the new one might not.
		return nil, status.New(zppb.Code_WAIT, "partition %s/%d is STUCK for a move", tb.Name, p.Id)
	}
	if tb.Restoring {
		// zpctl backup restore is installing the table: a client must
		// not see (or write next to) a partition that is not in yet.
		return nil, status.New(zppb.Code_WAIT, "table %s is being restored (zpctl backup restore): it serves nothing until every partition is in", tb.Name)
	}
	r := s.replicas.get(tb.Name, p.Id)
	if r == nil {
		return nil, status.New(zppb.Code_WAIT, "partition %s/%d is opening", tb.Name, p.Id)
	}
	if role, _ := r.Role(); role != replica.Master {
		return nil, status.New(zppb.Code_WAIT, "partition %s/%d is becoming master", tb.Name, p.Id)
	}
	return r, nil
}

// routePartitionRead is route for a read of a whole partition, named by
// id (SCAN, KEYS): its master here, or with stale its slave here.
func (s *Server) routePartitionRead(table string, id uint32, stale bool) (*replica.Replica, error) {
	topo, lease := s.snapshot()
	tb, p, ok := topo.partitionByID(table, id)
	if !ok {
		if _, known := topo.tables[table]; !known {
			return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found", table)
		}
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "no partition %s/%d", table, id)
	}
	r, err := s.servePartition(topo, lease, tb, p)
	if err != nil && stale && status.Code(err) == zppb.Code_MOVE {
		if sl := s.slaveReplica(table, p); sl != nil {
			return sl, nil
		}
	}
	if err != nil {
		return nil, err
	}
	if !s.quota.admit(table, 0) {
		s.stats.table(table).quotaExceeded.Add(1)
		return nil, status.New(zppb.Code_QUOTA_EXCEEDED, "table %q is over its quota on this node", table)
	}
	return r, nil
}

// slowdownDelay is what each write to a SLOWDOWN partition waits, so that a
// move's target closes in on the master. Writes still succeed: clients see
// latency, not errors.
const slowdownDelay = 2 * time.Millisecond

// routeWrite is route for a write, which a SLOWDOWN partition delays.
func (s *Server) routeWrite(ctx context.Context, table string, key []byte) (*replica.Replica, error) {
	r, err := s.route(table, key)
	if err != nil {
		return nil, err
	}
	if _, p, ok := s.topo.Load().partition(table, key); ok {
		if err := slowDown(ctx, p); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// routePartitionWrite is routeWrite for a whole partition, named by id. It
// takes no quota: it serves FLUSH_TABLE, which frees space rather than
// using it, and an operator must be able to empty a table that is over its
// quota.
func (s *Server) routePartitionWrite(ctx context.Context, table string, id uint32) (*replica.Replica, error) {
	topo, lease := s.snapshot()
	tb, p, ok := topo.partitionByID(table, id)
	if !ok {
		return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "no partition %s/%d", table, id)
	}
	r, err := s.servePartition(topo, lease, tb, p)
	if err != nil {
		return nil, err
	}
	if err := slowDown(ctx, p); err != nil {
		return nil, err
	}
	return r, nil
}

// slowDown delays a write to p while p is SLOWDOWN.
func slowDown(ctx context.Context, p *zppb.Partition) error {
	if p.State != zppb.PartitionState_SLOWDOWN {
		return nil
	}
	t := time.NewTimer(slowdownDelay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return status.New(zppb.Code_TIMEOUT, "deadline passed while the partition is SLOWDOWN")
	}
}

// checkRequestID refuses a request id over replica.MaxRequestIDSize, the
// most a replica remembers (longer ones would escape deduplication).
func checkRequestID(req *zppb.Request) error {
	if len(req.RequestId) > replica.MaxRequestIDSize {
		return status.New(zppb.Code_INVALID_ARGUMENT, "request id of %d bytes is over the %d byte limit", len(req.RequestId), replica.MaxRequestIDSize)
	}
	return nil
}

func checkKey(key []byte) error {
	switch {
	case len(key) == 0:
		return status.New(zppb.Code_EMPTY_KEY, "empty key")
	case len(key) > keyspace.MaxKeySize:
		return status.New(zppb.Code_KEY_TOO_LARGE, "key of %d bytes is over the %d byte limit", len(key), keyspace.MaxKeySize)
	}
	return nil
}

func (s *Server) checkValue(v []byte) error {
	if len(v) > s.cfg.MaxValueSize {
		return status.New(zppb.Code_VALUE_TOO_LARGE, "value of %d bytes is over the %d byte limit", len(v), s.cfg.MaxValueSize)
	}
	return nil
}

func checkTTL(ttlMs int64) error {
	if ttlMs < 0 {
		return status.New(zppb.Code_INVALID_ARGUMENT, "negative ttl %dms", ttlMs)
	}
	return nil
}

// expireAt turns a relative TTL into the absolute expiry the binlog records.
func expireAt(nowMs, ttlMs int64) int64 {
	if ttlMs == 0 {
		return 0
	}
	return nowMs + ttlMs
}

// writeError maps a failed write to a wire error: a closed replica means
// the topology moved it away mid-request, which the client retries.
func writeError(err error) error {
	switch {
	case errors.Is(err, replica.ErrClosed), errors.Is(err, replica.ErrNotMaster), errors.Is(err, replica.ErrSplitting):
		return status.New(zppb.Code_WAIT, "%v", err)
	case errors.Is(err, replica.ErrNotEnoughReplicas):
		return status.New(zppb.Code_NOT_ENOUGH_REPLICAS, "%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(zppb.Code_TIMEOUT, "%v", err)
	}
	return err
}
