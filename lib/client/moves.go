package client

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Topology changes. Each queues moves on the meta leader, which runs them in
// the background (see docs/topology.md); they return the moves as queued,
// with their ids, which MoveStatus follows. expectedEpoch, when non-zero,
// makes a call fail with status.ErrStaleEpoch unless it is current.

// AddSlave adds node as a slave of (table, partition).
func (c *core) AddSlave(ctx context.Context, table string, partition uint32, node string, expectedEpoch uint64) ([]Move, error) {
	return c.moves(ctx, "add slave", &zppb.Request{Cmd: &zppb.Request_AddSlave{AddSlave: &zppb.AddSlaveRequest{
		Table: table, Partition: partition, Node: node, ExpectedEpoch: expectedEpoch,
	}}})
}

// RemoveSlave removes the slave on node from (table, partition).
func (c *core) RemoveSlave(ctx context.Context, table string, partition uint32, node string, expectedEpoch uint64) ([]Move, error) {
	return c.moves(ctx, "remove slave", &zppb.Request{Cmd: &zppb.Request_RemoveSlave{RemoveSlave: &zppb.RemoveSlaveRequest{
		Table: table, Partition: partition, Node: node, ExpectedEpoch: expectedEpoch,
	}}})
}

// SetMaster hands (table, partition) to its slave on node: a planned
// switchover through SLOWDOWN and a short STUCK.
func (c *core) SetMaster(ctx context.Context, table string, partition uint32, node string, expectedEpoch uint64) ([]Move, error) {
	return c.moves(ctx, "set master", &zppb.Request{Cmd: &zppb.Request_SetMaster{SetMaster: &zppb.SetMasterRequest{
		Table: table, Partition: partition, Node: node, ExpectedEpoch: expectedEpoch,
	}}})
}

// Migrate moves the replica of (table, partition) on from to to, keeping its
// role.
func (c *core) Migrate(ctx context.Context, table string, partition uint32, from, to string, expectedEpoch uint64) ([]Move, error) {
	return c.moves(ctx, "migrate", &zppb.Request{Cmd: &zppb.Request_Migrate{Migrate: &zppb.MigrateRequest{
		Table: table, Partition: partition, From: from, To: to, ExpectedEpoch: expectedEpoch,
	}}})
}

// Split splits (table, partition) in two at slot at (0: the middle of its
// range), or, with all, every partition of the table at its middle: the
// upper part of each range goes to a new partition with the same replicas
// (docs/topology.md, "Split").
func (c *core) Split(ctx context.Context, table string, partition, at uint32, all bool, expectedEpoch uint64) ([]Move, error) {
	return c.moves(ctx, "split", &zppb.Request{Cmd: &zppb.Request_Split{Split: &zppb.SplitRequest{
		Table: table, Partition: partition, At: at, All: all, ExpectedEpoch: expectedEpoch,
	}}})
}

// PlanMoves asks the meta leader for the plan of moves without queueing
// them: it checks them as queueing them would now, against the topology
// and the moves in progress, and returns them as they would be queued
// (without ids; a SETMASTER with the master it takes over from) and the
// epoch it checked them at, to queue them with as the expected epoch; or
// the error queueing them would meet. Only Kind, Table, Partition, From
// and To of moves are read. A meta server of a release before PLAN_MOVES
// fails it with an error for which status.UnknownCommand holds; then
// Topology.PlanMoves checks moves without the moves in progress.
func (c *core) PlanMoves(ctx context.Context, moves []Move) ([]Move, uint64, error) {
	pb, err := movesPB(moves)
	if err != nil {
		return nil, 0, fmt.Errorf("client: plan moves: %w", err)
	}
	// A plan changes nothing: retried like a write only because it needs
	// the leader, which an election leaves missing for a moment.
	req := &zppb.Request{Cmd: &zppb.Request_PlanMoves{PlanMoves: &zppb.PlanMovesRequest{Moves: pb}}}
	resp, _, err := c.callMeta(ctx, "plan moves", func() *zppb.Request { return proto.Clone(req).(*zppb.Request) }, true)
	if err != nil {
		return nil, 0, err
	}
	return movesFromPB(resp.GetMoves().GetMoves()), resp.GetMoves().GetEpoch(), nil
}

// Rebalance plans and (unless dryRun) queues the moves of an EXPAND onto
// every UP node, a SHRINK that drains nodes, or a REPLACE of nodes[0] by
// nodes[1].
func (c *core) Rebalance(ctx context.Context, mode RebalanceMode, nodes []string, dryRun bool, expectedEpoch uint64) ([]Move, error) {
	pm, ok := mode.pb()
	if !ok {
		return nil, fmt.Errorf("client: rebalance: %w", status.New(zppb.Code_INVALID_ARGUMENT, "unknown rebalance mode %q", mode))
	}
	return c.moves(ctx, "rebalance", &zppb.Request{Cmd: &zppb.Request_Rebalance{Rebalance: &zppb.RebalanceRequest{
		Mode: pm, Nodes: nodes, DryRun: dryRun, ExpectedEpoch: expectedEpoch,
	}}})
}

// CancelResult is what CancelMoves did.
type CancelResult struct {
	// Cancelled are the moves cancelled and rolled back.
	Cancelled []Move `json:"cancelled"`
	// NotCancelled are the moves named that were left as they are: past
	// their handover (REMOVING: they will finish) or already ended.
	NotCancelled []Move `json:"not_cancelled"`
}

// CancelMoves cancels the moves ids, or with none every move not yet past
// its handover, rolling back what each did. The meta leader decides on all
// of them in one Raft entry, so a move that changes state meanwhile is
// reported in NotCancelled rather than failing the others.
func (c *core) CancelMoves(ctx context.Context, ids []uint64) (CancelResult, error) {
	req := &zppb.CancelMoveRequest{Ids: ids}
	if len(ids) > 0 {
		// What a meta older than batch cancel reads.
		req.Id = ids[0]
	}
	resp, err := c.cancelMoves(ctx, req)
	if err != nil {
		return CancelResult{}, err
	}
	res := CancelResult{Cancelled: movesFromPB(resp.GetMoves()), NotCancelled: movesFromPB(resp.GetNotCancelled())}
	if resp.GetCancelledAsBatch() || len(ids) <= 1 {
		return res, nil
	}
	// An older meta cancelled ids[0] only: one call for each of the rest.
	for _, id := range ids[1:] {
		r, err := c.cancelMoves(ctx, &zppb.CancelMoveRequest{Id: id})
		switch {
		case status.Code(err) == zppb.Code_INVALID_ARGUMENT:
			res.NotCancelled = append(res.NotCancelled, Move{ID: id, Error: err.Error()})
		case err != nil:
			return res, err
		default:
			res.Cancelled = append(res.Cancelled, movesFromPB(r.GetMoves())...)
		}
	}
	return res, nil
}

func (c *core) cancelMoves(ctx context.Context, req *zppb.CancelMoveRequest) (*zppb.MovesResponse, error) {
	resp, ambiguous, err := c.callMeta(ctx, "cancel moves", func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_CancelMove{CancelMove: proto.Clone(req).(*zppb.CancelMoveRequest)}}
	}, true)
	if err != nil {
		if ambiguous && !isStatus(err) {
			err = fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		}
		return nil, err
	}
	return resp.GetMoves(), nil
}

// MoveStatus lists the moves in progress (and with all, the last finished
// ones) with their progress: bytes copied, records behind, rate and ETA.
func (c *core) MoveStatus(ctx context.Context, all bool) ([]Move, error) {
	resp, _, err := c.callMeta(ctx, "move status", func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_MoveStatus{MoveStatus: &zppb.MoveStatusRequest{All: all}}}
	}, false)
	if err != nil {
		return nil, err
	}
	return movesFromPB(resp.GetMoves().GetMoves()), nil
}

// RemoveNodes forgets DOWN nodes that hold no replica.
func (c *core) RemoveNodes(ctx context.Context, nodes []string, expectedEpoch uint64) (uint64, error) {
	resp, _, err := c.callMeta(ctx, "remove nodes", func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_RemoveNodes{RemoveNodes: &zppb.RemoveNodesRequest{Nodes: nodes, ExpectedEpoch: expectedEpoch}}}
	}, true)
	if err != nil {
		return 0, err
	}
	epoch := resp.GetRemoveNodes().GetEpoch()
	c.sawEpoch(epoch)
	return epoch, nil
}

// CordonNodes cordons nodes, or with cordoned false uncordons them: a
// cordoned node receives no new replica or master (table creation, expand,
// moves, and failover when another slave is as far along) and keeps what it
// holds. It returns the epoch after the change.
func (c *core) CordonNodes(ctx context.Context, nodes []string, cordoned bool) (uint64, error) {
	resp, _, err := c.callMeta(ctx, "cordon nodes", func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_CordonNodes{CordonNodes: &zppb.CordonNodesRequest{Nodes: nodes, Cordoned: cordoned}}}
	}, true)
	if err != nil {
		return 0, err
	}
	epoch := resp.GetCordonNodes().GetEpoch()
	c.sawEpoch(epoch)
	return epoch, nil
}

func (c *core) moves(ctx context.Context, op string, req *zppb.Request) ([]Move, error) {
	// Each attempt gets a fresh copy: rpc stamps the time left into it.
	resp, ambiguous, err := c.callMeta(ctx, op, func() *zppb.Request { return proto.Clone(req).(*zppb.Request) }, true)
	if err != nil {
		if ambiguous && !isStatus(err) {
			err = fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		}
		return nil, err
	}
	return movesFromPB(resp.GetMoves().GetMoves()), nil
}

// SetSplitSize changes a table's automatic split size (0 turns it off),
// leaving its quota as it is. It returns the epoch that made the change.
func (c *core) SetSplitSize(ctx context.Context, table string, size, expectedEpoch uint64) (uint64, error) {
	if err := topo.ValidateSplitSize(size); err != nil {
		return 0, fmt.Errorf("client: set split size: %w", err)
	}
	return c.changeTable(ctx, "set split size", func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_SetQuota{SetQuota: &zppb.SetQuotaRequest{Table: table, SplitSize: &size, ExpectedEpoch: expectedEpoch}}}
	}, func(r *zppb.Response) uint64 { return r.GetSetQuota().GetEpoch() })
}

// changeTable sends a change of a table's settings to the meta leader and
// returns the epoch that made it, which the cache then catches up to.
func (c *core) changeTable(ctx context.Context, op string, req func() *zppb.Request, epochOf func(*zppb.Response) uint64) (uint64, error) {
	resp, _, err := c.callMeta(ctx, op, req, true)
	if err != nil {
		return 0, err
	}
	epoch := epochOf(resp)
	c.sawEpoch(epoch)
	c.refreshInBackground(epoch)
	return epoch, nil
}

// FinishRestore opens table, created with TableSpec.Restoring, to data
// commands once a restore has filled it; createdEpoch, when non-zero, must
// be the table's (Table.CreatedEpoch). Nodes apply it within a PING (meta
// notifies them at once). It returns the epoch that made the change.
func (c *core) FinishRestore(ctx context.Context, table string, createdEpoch uint64) (uint64, error) {
	return c.changeTable(ctx, "finish restore", func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_FinishRestore{FinishRestore: &zppb.FinishRestoreRequest{Table: table, CreatedEpoch: createdEpoch}}}
	}, func(r *zppb.Response) uint64 { return r.GetFinishRestore().GetEpoch() })
}

// SetQuota changes a table's quota (the zero Quota removes it); nodes apply
// it within a PING. It returns the epoch that made the change.
func (c *core) SetQuota(ctx context.Context, table string, q Quota, expectedEpoch uint64) (uint64, error) {
	return c.changeTable(ctx, "set quota", func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_SetQuota{SetQuota: &zppb.SetQuotaRequest{Table: table, Quota: q.pb(), ExpectedEpoch: expectedEpoch}}}
	}, func(r *zppb.Response) uint64 { return r.GetSetQuota().GetEpoch() })
}
