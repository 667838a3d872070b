package server

import (
	"context"
	"fmt"
	"slices"

	"github.com/zeppelin-kv/zeppelin/lib/placement"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/fsm"
)

// rebalance plans EXPAND, SHRINK or REPLACE with lib/placement and queues
// the moves (or only returns them, for a dry run): the replica moves, then
// the switchovers that even out masters, each waiting behind the moves of
// its partition queued before it.
func (s *Server) rebalance(ctx context.Context, req *zppb.RebalanceRequest) (*zppb.Response, error) {
	nodes, epoch := s.fsm.Nodes()
	tables, _ := s.fsm.Tables()
	if req.ExpectedEpoch != 0 && req.ExpectedEpoch != epoch {
		return nil, status.New(zppb.Code_STALE_EPOCH, "epoch is %d, not %d", epoch, req.ExpectedEpoch)
	}
	// A node named that is not registered is a typo, whatever else is
	// going on (zpctl exits 3 on it).
	known := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		known[n.Addr] = true
	}
	for _, a := range req.Nodes {
		if !known[a] {
			return nil, status.New(zppb.Code_NODE_NOT_FOUND, "node %q is not registered", a)
		}
	}
	if len(s.fsm.Moves(false)) > 0 {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "moves are in progress; wait for them (MOVESTATUS) or cancel them first")
	}
	pnodes := make([]placement.Node, len(nodes))
	for i, n := range nodes {
		pnodes[i] = placement.NodeFromProto(n)
		pnodes[i].Draining = req.Mode == zppb.RebalanceRequest_SHRINK && slices.Contains(req.Nodes, n.Addr)
	}
	ptables := make([]placement.Table, len(tables))
	for i, t := range tables {
		ptables[i] = placement.FromProto(t)
	}

	var (
		plan placement.Plan
		err  error
	)
	switch req.Mode {
	case zppb.RebalanceRequest_EXPAND:
		plan, err = placement.Rebalance(pnodes, ptables, placement.Options{})
	case zppb.RebalanceRequest_SHRINK:
		if len(req.Nodes) == 0 {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "SHRINK needs the nodes to drain")
		}
		plan, err = placement.Rebalance(pnodes, ptables, placement.Options{})
	case zppb.RebalanceRequest_REPLACE:
		if len(req.Nodes) != 2 {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "REPLACE needs two nodes: from and to")
		}
		plan, err = placement.Replace(pnodes, ptables, req.Nodes[0], req.Nodes[1])
	default:
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "unknown rebalance mode %v", req.Mode)
	}
	if err != nil {
		return nil, err
	}
	origin := map[zppb.RebalanceRequest_Mode]string{
		zppb.RebalanceRequest_EXPAND: "expand", zppb.RebalanceRequest_SHRINK: "shrink", zppb.RebalanceRequest_REPLACE: "replace",
	}[req.Mode]
	// The planner spreads over every UP node; a cordoned one keeps what it
	// has but receives nothing, so the moves to it are left out (and a
	// switchover to a replica such a move would have added goes with it).
	receives := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		receives[n.Addr] = topo.Receives(n)
	}
	var moves []*zppb.Move
	skipped := 0
	for _, m := range plan.Moves {
		if !receives[m.To] {
			skipped++
			continue
		}
		moves = append(moves, &zppb.Move{Kind: zppb.MoveKind_MIGRATE, Table: m.Table, Partition: m.Partition, From: m.From, To: m.To, Origin: origin})
	}
	for _, m := range plan.MasterMoves {
		if !receives[m.To] {
			skipped++
			continue
		}
		moves = append(moves, &zppb.Move{Kind: zppb.MoveKind_SETMASTER, Table: m.Table, Partition: m.Partition, To: m.To, Origin: origin})
	}
	if skipped > 0 && req.Mode == zppb.RebalanceRequest_REPLACE {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "node %q is cordoned: it receives no new replica (zpctl node uncordon)", req.Nodes[1])
	}
	s.logger.Info("rebalance planned", "mode", req.Mode, "nodes", req.Nodes, "moves", len(plan.Moves), "switchovers", len(plan.MasterMoves), "to_cordoned_left_out", skipped, "queued", len(moves), "dry_run", req.DryRun)
	if req.DryRun {
		return movesResponse(moves, epoch), nil
	}
	if req.Mode == zppb.RebalanceRequest_SHRINK {
		// The drained nodes are cordoned first, so that nothing new lands
		// on them while the moves run (a table created meanwhile, a
		// failover). The cordon changes no layout the plan was made for:
		// the plan stands at the epoch the cordon made, unless something
		// else changed too, which the queueing then refuses.
		res, err := s.proposeLocked(ctx, fsm.CordonNodes(req.Nodes, true))
		if err != nil {
			return nil, fmt.Errorf("cordon: %w", err)
		}
		s.logger.Info("nodes cordoned", "nodes", req.Nodes, "cordoned", true, "changed", res.Changed, "epoch", res.Epoch, "by", "shrink")
		if res.Changed && res.Epoch == epoch+1 {
			epoch = res.Epoch
		}
	}
	if len(moves) == 0 {
		return movesResponse(moves, epoch), nil
	}
	return s.queueMoves(ctx, moves, epoch)
}
