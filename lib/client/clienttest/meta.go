package clienttest

import (
	"context"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Meta is a fake meta server. Every member answers every command from the
// cluster's topology, as if the Raft group were always in step; the first
// meta server is the leader. Topology moves are in moves.go.
type Meta struct {
	scripted
	Addr    string
	cluster *Cluster
	srv     *rpc.Server
}

// Stop closes the server: connections drop and new ones are refused.
func (m *Meta) Stop() { m.srv.Close() }

func (m *Meta) handle(_ context.Context, req *zppb.Request) *zppb.Response {
	if resp := m.before(req); resp != nil {
		return resp
	}
	return m.Handle(req)
}

// Handle is the default behaviour, for hooks that add to it.
func (m *Meta) Handle(req *zppb.Request) *zppb.Response {
	c := m.cluster
	switch r := req.GetCmd().(type) {
	case *zppb.Request_Pull:
		topo := c.Topology()
		if name := r.Pull.GetTable(); name != "" {
			tb, _ := c.table(name)
			if tb == nil {
				return &zppb.Response{Code: zppb.Code_TABLE_NOT_FOUND, Msg: name, Epoch: topo.Epoch}
			}
			topo.Tables = []*zppb.Table{tb}
		}
		return &zppb.Response{Epoch: topo.Epoch, Result: &zppb.Response_Pull{Pull: &zppb.PullResponse{Topology: topo}}}
	case *zppb.Request_ListTables:
		topo := c.Topology()
		return &zppb.Response{Epoch: topo.Epoch, Result: &zppb.Response_ListTables{ListTables: &zppb.ListTablesResponse{Tables: topo.Tables, Epoch: topo.Epoch}}}
	case *zppb.Request_ListNodes:
		topo := c.Topology()
		return &zppb.Response{Epoch: topo.Epoch, Result: &zppb.Response_ListNodes{ListNodes: &zppb.ListNodesResponse{Nodes: topo.Nodes, Epoch: topo.Epoch}}}
	case *zppb.Request_ListMeta:
		epoch := c.Epoch()
		lm := &zppb.ListMetaResponse{Leader: c.Metas[0].Addr, Epoch: epoch, Self: m.Addr, State: "Follower", Term: 1, CommitIndex: epoch, AppliedIndex: epoch}
		if m == c.Metas[0] {
			lm.State = "Leader"
		}
		for i, o := range c.Metas {
			lm.Members = append(lm.Members, &zppb.MetaMember{Id: o.Addr, Addr: o.Addr, Suffrage: "voter", Leader: i == 0})
		}
		return &zppb.Response{Epoch: epoch, Result: &zppb.Response_ListMeta{ListMeta: lm}}
	case *zppb.Request_CreateTable:
		ct := r.CreateTable
		if tb, epoch := c.table(ct.GetName()); tb != nil {
			return &zppb.Response{Code: zppb.Code_TABLE_EXISTS, Msg: ct.GetName(), Epoch: epoch}
		}
		if e := ct.GetExpectedEpoch(); e != 0 && e != c.Epoch() {
			return status.Response(status.New(zppb.Code_STALE_EPOCH, "epoch is %d", c.Epoch()))
		}
		if ct.GetPartitions() == 0 || int(ct.GetReplicas()) > len(c.Nodes) {
			return status.Response(status.New(zppb.Code_NOT_ENOUGH_NODES, "%d nodes", len(c.Nodes)))
		}
		tb := c.addTable(ct.GetName(), ct.GetPartitions(), ct.GetReplicas(), ct.GetMinSyncReplicas())
		if q := ct.GetQuota(); q != nil {
			tb = c.setQuotaNoBump(ct.GetName(), q)
		}
		epoch := c.Epoch()
		return &zppb.Response{Epoch: epoch, Result: &zppb.Response_CreateTable{CreateTable: &zppb.CreateTableResponse{Table: tb, Epoch: epoch}}}
	case *zppb.Request_DropTable:
		dt := r.DropTable
		if tb, epoch := c.table(dt.GetName()); tb == nil {
			return &zppb.Response{Code: zppb.Code_TABLE_NOT_FOUND, Msg: dt.GetName(), Epoch: epoch}
		}
		epoch := c.DropTable(dt.GetName())
		return &zppb.Response{Epoch: epoch, Result: &zppb.Response_DropTable{DropTable: &zppb.DropTableResponse{Epoch: epoch}}}
	case *zppb.Request_AddSlave:
		return c.queueMoves([]*zppb.Move{manual(zppb.MoveKind_ADDSLAVE, r.AddSlave.GetTable(), r.AddSlave.GetPartition(), "", r.AddSlave.GetNode())}, r.AddSlave.GetExpectedEpoch())
	case *zppb.Request_RemoveSlave:
		return c.queueMoves([]*zppb.Move{manual(zppb.MoveKind_REMOVESLAVE, r.RemoveSlave.GetTable(), r.RemoveSlave.GetPartition(), r.RemoveSlave.GetNode(), "")}, r.RemoveSlave.GetExpectedEpoch())
	case *zppb.Request_SetMaster:
		return c.queueMoves([]*zppb.Move{manual(zppb.MoveKind_SETMASTER, r.SetMaster.GetTable(), r.SetMaster.GetPartition(), "", r.SetMaster.GetNode())}, r.SetMaster.GetExpectedEpoch())
	case *zppb.Request_Migrate:
		mg := r.Migrate
		return c.queueMoves([]*zppb.Move{manual(zppb.MoveKind_MIGRATE, mg.GetTable(), mg.GetPartition(), mg.GetFrom(), mg.GetTo())}, mg.GetExpectedEpoch())
	case *zppb.Request_Rebalance:
		return c.rebalance(r.Rebalance)
	case *zppb.Request_CancelMove:
		return c.cancelMove(r.CancelMove)
	case *zppb.Request_MoveStatus:
		return c.moveStatus(r.MoveStatus)
	case *zppb.Request_RemoveNodes:
		return c.removeNodes(r.RemoveNodes)
	case *zppb.Request_SetQuota:
		return c.setQuota(r.SetQuota)
	case *zppb.Request_Ping:
		epoch := c.Epoch()
		return &zppb.Response{Epoch: epoch, Result: &zppb.Response_Ping{Ping: &zppb.PingResponse{Epoch: epoch, LeaseMs: 2000}}}
	}
	return &zppb.Response{Code: zppb.Code_INVALID_ARGUMENT, Msg: "not a meta command: " + cmdName(req)}
}

func manual(kind zppb.MoveKind, table string, partition uint32, from, to string) *zppb.Move {
	return &zppb.Move{Kind: kind, Table: table, Partition: partition, From: from, To: to, Origin: "manual"}
}
