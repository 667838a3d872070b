package client

import (
	"fmt"

	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// View returns t as lib/topo's rules read it, for checking a change against
// a topology pulled from the meta servers by the rules they apply.
func (t *Topology) View() topo.View { return topoView{t} }

// PlanMoves checks moves against t by the rules the meta leader applies
// (lib/topo) and returns them as PlanMoves on the meta leader would (a
// SETMASTER with the master it takes over from). t holds no moves in
// progress, so a move that conflicts with one passes here and fails when
// queued: this is for meta servers older than PLAN_MOVES.
func (t *Topology) PlanMoves(moves []Move) ([]Move, error) {
	pb, err := movesPB(moves)
	if err != nil {
		return nil, fmt.Errorf("client: plan moves: %w", err)
	}
	v := t.View()
	if err := topo.CheckMoves(v, pb, nil); err != nil {
		return nil, err
	}
	topo.FillSources(v, pb)
	return movesFromPB(pb), nil
}

// Holds reports whether addr holds a replica of p, as master or slave.
func (p Partition) Holds(addr string) bool { return topo.Holds(p.pb(), addr) }

func (p Partition) pb() *zppb.Partition {
	return &zppb.Partition{Id: p.ID, Master: p.Master, Slaves: p.Slaves, Term: p.Term}
}

type topoView struct{ t *Topology }

func (v topoView) Tables() []string {
	names := make([]string, len(v.t.Tables))
	for i, tb := range v.t.Tables {
		names[i] = tb.Name
	}
	return names
}

// Partitions relies on PULL listing a table's partitions in id order.
func (v topoView) Partitions(table string) ([]*zppb.Partition, bool) {
	for _, tb := range v.t.Tables {
		if tb.Name != table {
			continue
		}
		parts := make([]*zppb.Partition, len(tb.Partitions))
		for i, p := range tb.Partitions {
			parts[i] = p.pb()
		}
		return parts, true
	}
	return nil, false
}

func (v topoView) Node(addr string) *zppb.Node {
	for _, n := range v.t.Nodes {
		if n.Addr == addr {
			return &zppb.Node{Addr: n.Addr, State: zppb.NodeState(zppb.NodeState_value[n.State]), Zone: n.Zone, Rack: n.Rack,
				Weight: n.Weight, Cordoned: n.Cordoned}
		}
	}
	return nil
}
