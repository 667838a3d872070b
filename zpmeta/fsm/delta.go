package fsm

import (
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// touched is what one command changes, if it changes anything: tables and
// nodes by name (one no longer in the state was dropped or removed).
type touched struct {
	tables []string
	nodes  []string
}

// touches names what cmd would change, read from the state before it runs.
// Every command that changes the topology is listed here: a change not
// stamped would be left out of the deltas (TestPullDeltaMatchesFull replays
// every kind of command against whole topologies).
func (s *state) touches(cmd *zppb.MetaCommand) touched {
	switch c := cmd.GetCmd().(type) {
	case *zppb.MetaCommand_RegisterNode:
		return touched{nodes: []string{c.RegisterNode.GetAddr()}}
	case *zppb.MetaCommand_SetNodeState:
		return touched{nodes: []string{c.SetNodeState.GetAddr()}}
	case *zppb.MetaCommand_RemoveNodes:
		return touched{nodes: c.RemoveNodes.GetNodes()}
	case *zppb.MetaCommand_CreateTable:
		return touched{tables: []string{c.CreateTable.GetTable().GetName()}}
	case *zppb.MetaCommand_DropTable:
		return touched{tables: []string{c.DropTable.GetName()}}
	case *zppb.MetaCommand_SetQuota:
		return touched{tables: []string{c.SetQuota.GetTable()}}
	case *zppb.MetaCommand_SetMasters:
		var tt touched
		for _, ch := range c.SetMasters.GetChanges() {
			tt.tables = append(tt.tables, ch.GetTable())
		}
		return tt
	case *zppb.MetaCommand_StepMove:
		if m := s.moves[c.StepMove.GetId()]; m != nil {
			return touched{tables: []string{m.Table}}
		}
	case *zppb.MetaCommand_CordonNodes:
		return touched{nodes: c.CordonNodes.GetNodes()}
	case *zppb.MetaCommand_CancelMoves:
		// The rollbacks change the tables of the moves cancelled.
		var tt touched
		for _, m := range s.moves {
			if !topo.Terminal(m.State) && (c.CancelMoves.GetAll() || slices.Contains(c.CancelMoves.GetIds(), m.Id)) && !slices.Contains(tt.tables, m.Table) {
				tt.tables = append(tt.tables, m.Table)
			}
		}
		return tt
	}
	return touched{}
}

// stamp records that what tt names changed at the current epoch.
func (s *state) stamp(tt touched) {
	for _, name := range tt.tables {
		if s.tables[name] != nil {
			s.tableEpochs[name] = s.epoch
		} else {
			delete(s.tableEpochs, name)
		}
	}
	for _, addr := range tt.nodes {
		if s.nodes[addr] != nil {
			s.nodeEpochs[addr] = s.epoch
		} else {
			delete(s.nodeEpochs, addr)
			s.nodesRemoved = s.epoch
		}
	}
}

// Pull answers a PULL of every table by a caller holding the topology of
// epoch since: a delta carrying only what changed after it, or the whole
// topology when since is 0 or newer than this member's state (the caller
// read a member further ahead; a delta cannot go backwards).
func (f *FSM) Pull(since uint64) *zppb.PullResponse {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := f.st
	tables := st.sortedTables()
	if since == 0 || since > st.epoch {
		return &zppb.PullResponse{Topology: &zppb.Topology{Epoch: st.epoch, Tables: cloneAll(tables), Nodes: cloneAll(st.sortedNodes())}}
	}
	resp := &zppb.PullResponse{Topology: &zppb.Topology{Epoch: st.epoch}, Delta: true, Tables: make([]*zppb.TableStamp, 0, len(tables))}
	for _, t := range tables {
		changed := st.tableEpochs[t.Name]
		if changed == 0 {
			changed = st.epoch // not recorded: assume the newest
		}
		resp.Tables = append(resp.Tables, &zppb.TableStamp{Name: t.Name, CreatedEpoch: t.CreatedEpoch, ChangedEpoch: changed})
		if changed > since {
			resp.Topology.Tables = append(resp.Topology.Tables, proto.Clone(t).(*zppb.Table))
		}
	}
	// Removed nodes cannot be told by the nodes that changed: then the
	// whole list.
	resp.NodesChanged = st.nodesRemoved > since
	for _, n := range st.sortedNodes() {
		if changed := st.nodeEpochs[n.Addr]; resp.NodesChanged || changed == 0 || changed > since {
			resp.Topology.Nodes = append(resp.Topology.Nodes, proto.Clone(n).(*zppb.Node))
		}
	}
	return resp
}
