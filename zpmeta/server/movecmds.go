package server

import (
	"context"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/fsm"
)

// The topology commands below run on the ready leader (see onLeader).

// queueMoves checks moves against the state, queues them through Raft and
// answers with them as queued (ids assigned).
func (s *Server) queueMoves(ctx context.Context, moves []*zppb.Move, expectedEpoch uint64) (*zppb.Response, error) {
	return s.queueMovesEvent(ctx, moves, expectedEpoch, nil)
}

// queueMovesEvent is queueMoves recording the scheduler's event ev (nil:
// none) in the same entry.
func (s *Server) queueMovesEvent(ctx context.Context, moves []*zppb.Move, expectedEpoch uint64, ev *zppb.ScheduleEvent) (*zppb.Response, error) {
	unlock, err := s.lockProposals(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := s.fsm.CheckMoves(moves, expectedEpoch); err != nil {
		return nil, err
	}
	if err := s.checkSplitFeatures(moves); err != nil {
		return nil, err
	}
	cmd := fsm.AddMoves(moves, expectedEpoch, time.Now().UnixMilli())
	cmd.GetAddMoves().Event = ev
	res, err := s.propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	for _, m := range res.Moves {
		s.logger.Info("move queued", "id", m.Id, "kind", m.Kind, "table", m.Table, "partition", m.Partition, "from", m.From, "to", m.To, "origin", m.Origin, "reason", m.Reason)
	}
	return movesResponse(res.Moves, res.Epoch), nil
}

// planMoves answers PLAN_MOVES: the moves checked as queueMoves would
// check them now, shown as they would be queued, and the epoch to queue
// them at.
func (s *Server) planMoves(req *zppb.PlanMovesRequest) (*zppb.Response, error) {
	moves := make([]*zppb.Move, len(req.GetMoves()))
	for i, m := range req.GetMoves() {
		moves[i] = manual(m.Kind, m.Table, m.Partition, m.From, m.To)
	}
	epoch, err := s.fsm.PlanMoves(moves)
	if err != nil {
		return nil, err
	}
	return movesResponse(moves, epoch), nil
}

func movesResponse(moves []*zppb.Move, epoch uint64) *zppb.Response {
	return &zppb.Response{Epoch: epoch, Result: &zppb.Response_Moves{Moves: &zppb.MovesResponse{Moves: moves, Epoch: epoch}}}
}

func manual(kind zppb.MoveKind, table string, partition uint32, from, to string) *zppb.Move {
	return &zppb.Move{Kind: kind, Table: table, Partition: partition, From: from, To: to, Origin: "manual"}
}

func (s *Server) addSlave(ctx context.Context, req *zppb.AddSlaveRequest) (*zppb.Response, error) {
	return s.queueMoves(ctx, []*zppb.Move{manual(zppb.MoveKind_ADDSLAVE, req.Table, req.Partition, "", req.Node)}, req.ExpectedEpoch)
}

func (s *Server) removeSlave(ctx context.Context, req *zppb.RemoveSlaveRequest) (*zppb.Response, error) {
	return s.queueMoves(ctx, []*zppb.Move{manual(zppb.MoveKind_REMOVESLAVE, req.Table, req.Partition, req.Node, "")}, req.ExpectedEpoch)
}

func (s *Server) setMaster(ctx context.Context, req *zppb.SetMasterRequest) (*zppb.Response, error) {
	return s.queueMoves(ctx, []*zppb.Move{manual(zppb.MoveKind_SETMASTER, req.Table, req.Partition, "", req.Node)}, req.ExpectedEpoch)
}

func (s *Server) migrate(ctx context.Context, req *zppb.MigrateRequest) (*zppb.Response, error) {
	return s.queueMoves(ctx, []*zppb.Move{manual(zppb.MoveKind_MIGRATE, req.Table, req.Partition, req.From, req.To)}, req.ExpectedEpoch)
}

// cancelMove ends the moves named (ids, or id alone as older clients send
// it), or every move not past its handover, in one Raft entry: no step of
// the move loop can come between what was decided and the rollback. Named
// moves past their handover or already ended are reported, not failed.
func (s *Server) cancelMove(ctx context.Context, req *zppb.CancelMoveRequest) (*zppb.Response, error) {
	ids := req.Ids
	if len(ids) == 0 && req.Id != 0 {
		ids = []uint64{req.Id}
	}
	res, err := s.proposeLocked(ctx, fsm.CancelMoves(ids, len(ids) == 0, "cancelled by operator", time.Now().UnixMilli()))
	if err != nil {
		return nil, err
	}
	for _, m := range res.Moves {
		s.logger.Info("move", "id", m.Id, "kind", m.Kind, "table", m.Table, "partition", m.Partition,
			"from", m.From, "to", m.To, "state", m.State, "epoch", res.Epoch, "error", m.Error)
		if res.Changed {
			s.notifyPartition(m, res.Epoch)
		}
	}
	// An older client named one move and expects an error when it was
	// not cancelled.
	if len(req.Ids) == 0 && req.Id != 0 && len(res.Moves) == 0 && len(res.NotCancelled) == 1 {
		m := res.NotCancelled[0]
		if m.State == zppb.MoveState_MOVE_REMOVING {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "move %d is past its handover and will finish", m.Id)
		}
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "move %d already ended %v", m.Id, m.State)
	}
	return &zppb.Response{Epoch: res.Epoch, Result: &zppb.Response_Moves{Moves: &zppb.MovesResponse{
		Moves: res.Moves, Epoch: res.Epoch, NotCancelled: res.NotCancelled, CancelledAsBatch: true,
	}}}, nil
}

// cordonNodes cordons or uncordons nodes (topo.Receives says what that
// changes).
func (s *Server) cordonNodes(ctx context.Context, req *zppb.CordonNodesRequest) (*zppb.Response, error) {
	res, err := s.proposeLocked(ctx, fsm.CordonNodes(req.Nodes, req.Cordoned))
	if err != nil {
		return nil, err
	}
	s.logger.Info("nodes cordoned", "nodes", req.Nodes, "cordoned", req.Cordoned, "changed", res.Changed, "epoch", res.Epoch)
	return &zppb.Response{Epoch: res.Epoch, Result: &zppb.Response_CordonNodes{CordonNodes: &zppb.CordonNodesResponse{Epoch: res.Epoch}}}, nil
}

func (s *Server) removeNodes(ctx context.Context, req *zppb.RemoveNodesRequest) (*zppb.Response, error) {
	res, err := s.proposeLocked(ctx, fsm.RemoveNodes(req.Nodes, req.ExpectedEpoch))
	if err != nil {
		return nil, err
	}
	s.logger.Info("nodes removed", "nodes", req.Nodes, "epoch", res.Epoch)
	return &zppb.Response{Epoch: res.Epoch, Result: &zppb.Response_RemoveNodes{RemoveNodes: &zppb.RemoveNodesResponse{Epoch: res.Epoch}}}, nil
}

// moveStatus lists moves with their progress: bytes of the target's full
// sync, records behind the master, rate and ETA, asked from the nodes.
func (s *Server) moveStatus(ctx context.Context, req *zppb.MoveStatusRequest) (*zppb.Response, error) {
	moves := s.fsm.Moves(req.All)
	for _, m := range moves {
		if m.Kind == zppb.MoveKind_SPLIT {
			s.splitProgress(m)
			continue
		}
		if topo.Terminal(m.State) || m.State == zppb.MoveState_MOVE_PENDING || m.To == "" {
			continue
		}
		s.fillProgress(ctx, m)
	}
	return movesResponse(moves, s.fsm.Epoch()), nil
}

func (s *Server) fillProgress(ctx context.Context, m *zppb.Move) {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	// Records behind: the master's record of the target's acknowledgements.
	if topo, err := s.fsm.Topology(m.Table); err == nil {
		if pos, err := s.targetPosition(cctx, topo.Tables[0].Partitions[m.Partition].Master, m); err == nil {
			m.RecordsBehind = pos.lag
		}
	}
	// Bytes: the target's full sync, while it runs.
	resp, err := s.pool.Call(cctx, m.To, &zppb.Request{Cmd: &zppb.Request_Info{Info: &zppb.InfoRequest{
		Section: zppb.InfoSection_INFO_REPLICATION, Table: m.Table,
	}}})
	if err != nil || status.FromResponse(resp) != nil {
		return
	}
	for _, ri := range resp.GetInfo().GetReplication() {
		if ri.Partition != m.Partition {
			continue
		}
		if fs := ri.Fullsync; fs != nil && fs.StartedMs >= m.CreatedMs-5_000 {
			m.BytesTotal, m.BytesCopied, m.BytesPerSec = fs.BytesTotal, fs.BytesFetched, fs.BytesPerSec
			if fs.FinishedMs == 0 && fs.BytesPerSec > 0 && fs.BytesTotal > fs.BytesFetched {
				m.EtaMs = int64(float64(fs.BytesTotal-fs.BytesFetched) / fs.BytesPerSec * 1000)
			}
		}
	}
}
