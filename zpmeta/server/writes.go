package server

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/fsm"
)

// The commands in this file run on the ready leader only (see onLeader).

// ping records a node's heartbeat and positions in the leader's memory, and
// goes through Raft only when the topology must change: an unknown node, new
// zone/rack/weight, or a DOWN node that is back.
//
// A PING may be handled long after it was sent (queued behind other requests
// on a forwarding connection), so when it was handled proves nothing about
// the node. A DOWN node is back only with a PING sent after the decision,
// which the epoch it carries proves (fsm.SentAfterDown); an older one is
// answered, so that a live node pulls the new epoch and comes back with its
// next PING, and otherwise ignored.
//
// Every answer says the leader takes position deltas, and which of the
// node's PINGs the positions it holds are as of (liveness.heartbeat).
func (s *Server) ping(ctx context.Context, req *zppb.PingRequest) (*zppb.Response, error) {
	if err := topo.ValidateNodeAddr(req.GetAddr()); err != nil {
		return nil, err
	}
	resp, held, err := s.pingNode(ctx, req)
	if pr := resp.GetPing(); pr != nil {
		pr.PositionsDelta, pr.PositionsSeq = true, held
	}
	return resp, err
}

// pingNode is ping's work: the answer, and the positions_seq held after it.
func (s *Server) pingNode(ctx context.Context, req *zppb.PingRequest) (*zppb.Response, uint64, error) {
	resp, held := s.pingHeartbeat(req)
	if resp != nil {
		return resp, held, nil
	}
	if awaited := s.failoverAwaited.Load(); awaited != nil && (*awaited)[req.Addr] {
		// This PING may be the position a failover waits for: decide now,
		// so the answer already carries the new epoch. Other nodes' PINGs
		// do not plan again: with a thousand nodes that would be a
		// thousand plans a second.
		s.failover(ctx)
	}

	if !s.pingChangesTopology(req) {
		return s.pingResponse(s.fsm.Epoch()), held, nil
	}
	unlock, err := s.lockProposals(ctx)
	if err != nil {
		return nil, held, err
	}
	defer unlock()
	epoch := s.fsm.Epoch()
	// Checked again under the lock: another PING or the down check may
	// have changed the node meanwhile.
	cmd, err := s.fsm.PrepareRegisterNode(req)
	if err != nil {
		return nil, held, err
	}
	if cmd != nil {
		res, err := s.propose(ctx, cmd)
		if err != nil {
			return nil, held, err
		}
		epoch = res.Epoch
		s.logger.Info("node registered", "node", req.GetAddr(), "zone", req.GetZone(), "rack", req.GetRack(), "weight", req.GetWeight(), "epoch", epoch)
	}
	if n := s.fsm.Node(req.Addr); n != nil && n.State == zppb.NodeState_DOWN {
		if !fsm.SentAfterDown(n, req.Epoch) {
			// Marked DOWN (again) while this PING waited for the lock.
			return s.pingResponse(epoch), held, nil
		}
		res, err := s.propose(ctx, fsm.SetNodeState(req.Addr, zppb.NodeState_UP, time.Now().UnixMilli()))
		if err != nil {
			return nil, held, err
		}
		epoch = res.Epoch
		s.logger.Info("node UP", "node", req.Addr, "epoch", epoch)
	}
	return s.pingResponse(epoch), held, nil
}

// starting records a starting node's progress for LIST_NODES, and
// nothing else: the node does not serve yet, so this is no heartbeat
// (StartingRequest). A node the topology does not know is not listed, so
// its progress is not kept.
func (s *Server) starting(req *zppb.StartingRequest) (*zppb.Response, error) {
	if err := topo.ValidateNodeAddr(req.GetAddr()); err != nil {
		return nil, err
	}
	if req.GetProgress() != nil && s.fsm.Node(req.Addr) != nil {
		s.live.startup(req.Addr, time.Now(), proto.Clone(req.Progress).(*zppb.StartupProgress))
	}
	return &zppb.Response{Result: &zppb.Response_Starting{Starting: &zppb.StartingResponse{Leader: s.cfg.Addr}}}, nil
}

// pingHeartbeat records a PING's heartbeat and positions, and returns the
// positions_seq the leader holds for the node after it; an answer means
// the PING ends there. It is not admitted as node work (admitNodeWork): a
// PING that waited past its deadline for a turn would not count as a
// heartbeat, and a busy leader would mark live nodes DOWN.
func (s *Server) pingHeartbeat(req *zppb.PingRequest) (*zppb.Response, uint64) {
	// A node PINGs once it opened its replicas, whatever this PING proves.
	s.live.started(req.Addr)
	if n := s.fsm.Node(req.Addr); !fsm.SentAfterDown(n, req.Epoch) {
		s.logger.Info("PING sent before the node was marked DOWN; ignored", "node", req.Addr, "ping_epoch", req.Epoch, "down_epoch", n.DownEpoch)
		// Not a base to build on: the node sends all its positions next.
		return s.pingResponse(s.fsm.Epoch()), 0
	}
	recorded, held := s.live.heartbeat(time.Now(), req)
	if !recorded {
		s.logger.Debug("PING overtaken by a later one; ignored", "node", req.Addr, "ping_epoch", req.Epoch)
		return s.pingResponse(s.fsm.Epoch()), held
	}
	return nil, held
}

// pingChangesTopology is the lock-free fast path of every PING of a known
// node that is UP and unchanged.
func (s *Server) pingChangesTopology(req *zppb.PingRequest) bool {
	n := s.fsm.Node(req.GetAddr())
	if n == nil || n.State != zppb.NodeState_UP {
		return true
	}
	cmd, err := s.fsm.PrepareRegisterNode(req)
	return cmd != nil || err != nil
}

func (s *Server) pingResponse(epoch uint64) *zppb.Response {
	return &zppb.Response{Epoch: epoch, Result: &zppb.Response_Ping{Ping: &zppb.PingResponse{
		Epoch: epoch, LeaseMs: s.cfg.Lease.Milliseconds(), Leader: s.cfg.Addr,
		FullsyncRate: s.fsm.ScheduleSettings().GetFullsyncRate(),
	}}}
}

func (s *Server) createTable(ctx context.Context, req *zppb.CreateTableRequest) (*zppb.Response, error) {
	// Hashed before the lock: tens of milliseconds each.
	creds, err := s.hashPasswords(req.GetPasswords())
	if err != nil {
		return nil, err
	}
	unlock, err := s.lockProposals(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cmd, err := s.fsm.PrepareCreateTable(req)
	if err != nil {
		return nil, err
	}
	cmd.GetCreateTable().Table.Credentials = creds
	res, err := s.propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	s.logger.Info("table created", "table", req.GetName(), "partitions", req.GetPartitions(), "replicas", req.GetReplicas(), "min_sync_replicas", req.GetMinSyncReplicas(), "passwords", len(creds), "epoch", res.Epoch)
	// The nodes open their replicas now, not at their next PING: a
	// client waiting for the table waits for them.
	s.notifyPaced(replicaNodes(res.Table), res.Epoch)
	return &zppb.Response{Epoch: res.Epoch, Result: &zppb.Response_CreateTable{CreateTable: &zppb.CreateTableResponse{
		Table: tableauth.Strip(res.Table), Epoch: res.Epoch,
	}}}, nil
}

func (s *Server) dropTable(ctx context.Context, req *zppb.DropTableRequest) (*zppb.Response, error) {
	unlock, err := s.lockProposals(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cmd, err := s.fsm.PrepareDropTable(req)
	if err != nil {
		return nil, err
	}
	// Who holds the table, read under the proposal lock so that nothing
	// moves its replicas before the drop commits; a move's target may hold
	// a copy it is still catching up.
	var table *zppb.Table
	if topo, err := s.fsm.Topology(req.GetName()); err == nil {
		table = topo.Tables[0]
	}
	holders := replicaNodes(table)
	for _, m := range s.fsm.Moves(false) {
		if m.GetTable() == req.GetName() {
			holders[m.GetTo()] = true
		}
	}
	res, err := s.propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	s.logger.Info("table dropped", "table", req.GetName(), "epoch", res.Epoch)
	// The nodes close the replicas and free their disk now.
	s.notifyPaced(holders, res.Epoch)
	return &zppb.Response{Epoch: res.Epoch, Result: &zppb.Response_DropTable{DropTable: &zppb.DropTableResponse{Epoch: res.Epoch}}}, nil
}

// replicaNodes is the set of nodes holding a replica of t, or to hold one.
func replicaNodes(t *zppb.Table) map[string]bool {
	nodes := make(map[string]bool)
	for _, p := range t.GetPartitions() {
		nodes[p.GetMaster()] = true
		for _, a := range p.GetSlaves() {
			nodes[a] = true
		}
	}
	return nodes
}

// finishRestore opens a table created restoring to data commands.
func (s *Server) finishRestore(ctx context.Context, req *zppb.FinishRestoreRequest) (*zppb.Response, error) {
	unlock, err := s.lockProposals(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res, err := s.propose(ctx, fsm.FinishRestore(req.GetTable(), req.GetCreatedEpoch()))
	if err != nil {
		return nil, err
	}
	s.logger.Info("restore finished", "table", req.GetTable(), "changed", res.Changed, "epoch", res.Epoch)
	if res.Changed {
		s.notifyPaced(s.allNodes(), res.Epoch)
	}
	return &zppb.Response{Epoch: res.Epoch, Result: &zppb.Response_FinishRestore{FinishRestore: &zppb.FinishRestoreResponse{Epoch: res.Epoch}}}, nil
}

func (s *Server) setQuota(ctx context.Context, req *zppb.SetQuotaRequest) (*zppb.Response, error) {
	unlock, err := s.lockProposals(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res, err := s.propose(ctx, fsm.SetQuota(req.GetTable(), req.GetQuota(), req.SplitSize, req.GetExpectedEpoch()))
	if err != nil {
		return nil, err
	}
	s.logger.Info("quota set", "table", req.GetTable(), "ops_per_sec", req.GetQuota().GetOpsPerSec(), "bytes_per_sec", req.GetQuota().GetBytesPerSec(),
		"split_size", req.GetSplitSize(), "epoch", res.Epoch)
	if res.Changed {
		// Every node masters some partition of the table, probably.
		s.notifyPaced(s.allNodes(), res.Epoch)
	}
	return &zppb.Response{Epoch: res.Epoch, Result: &zppb.Response_SetQuota{SetQuota: &zppb.SetQuotaResponse{Epoch: res.Epoch}}}, nil
}

// allNodes is the set of every registered node, for a change that any of
// them may serve (a quota, a table's passwords).
func (s *Server) allNodes() map[string]bool {
	nodes, _ := s.fsm.Nodes()
	all := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		all[n.Addr] = true
	}
	return all
}
