// Package placement decides which nodes hold the replicas of the tables'
// partitions: where a new table goes (PlaceTable), how a running cluster's
// layout should change when nodes join, drain, fail or are replaced
// (Rebalance, Replace), what in a layout breaks the rules (Check), and which
// planned moves may run at once (Runnable). It is pure: the same input, in
// whatever order, gives the same output, which matters because the meta
// leader's plan is replicated through Raft and must be reproducible when
// debugging.
//
// # Rules
//
// In priority order, for a layout on the eligible nodes (UP and not
// Draining):
//
//  1. The replicas of a partition are on distinct eligible nodes. They are
//     in distinct zones when there are at least as many zones as replicas;
//     otherwise no zone holds more of them than the least number that lets
//     the zones take them all (3 replicas over zones of 4 nodes and 1 node:
//     at most 2 in a zone). Racks (qualified by their zone) likewise, within
//     that. A blank zone or rack is one more zone or rack. Within these
//     caps a partition is spread over as many zones and racks as the other
//     rules leave possible.
//  2. A node's share of the replicas is proportional to its weight, except
//     that no node, rack or zone is given more than rule 1 lets it hold (a
//     node holds at most one replica of a partition); what they cannot take
//     goes to the others by weight (weighted max-min fairness). A count is
//     within the rule when |count - share| <= max(Tolerance × share, 1).
//     The "1" means the share rounded down or up is always allowed, which
//     matters when shares are small: a share of 2.5 allows 2 and 3, a share
//     of 10 allows 9..11, whatever the Tolerance; a share of 32 with the
//     default 0.10 allows 29..35. This holds for a node's count over all
//     tables and, as far as that allows, for its count within each table,
//     so each table's partitions are spread too.
//  3. Masters likewise: a node's share of masters is proportional to its
//     weight (partitions × weight / total weight), with the same band, per
//     table and over all tables. (The same band as replicas because a table
//     with one replica per partition has its masters where its replicas are.)
//  4. Among the layouts that meet 1-3 as well as possible, one with the
//     fewest replica moves from the current layout, then the fewest
//     switchovers (MasterMoves).
//
// A count that is within its band now may stay anywhere in it, so a
// balanced layout plans nothing. A count outside its band is brought to its
// share rounded down or up, not merely to the band's edge: after an expand
// the cluster ends even rather than 10% off, and the next small change does
// not cross the edge again. This costs a few moves over the strict minimum
// (doubling 3 nodes to 6 moves half the replicas, not 45%).
//
// # Algorithm
//
// Rebalance solves two min-cost flow problems exactly, with lexicographic
// costs (any amount of a higher-priority cost outweighs any amount of a
// lower one, so the priorities hold whatever the cluster's size):
//
//   - Replicas. Each partition supplies its replica count; it flows through
//     arcs capped by the zone and rack limits of rule 1 and one arc per
//     eligible node (costing one move unless the node holds the partition
//     now), into a counter per (table, node) and one per node, whose convex
//     costs price counts outside the bands of rule 2 and, lower, counts off
//     the rounded share. Every layout that meets rule 1 is a flow and every
//     flow is such a layout, so the result has the fewest moves among the
//     layouts that meet the bands (and aims) as well as possible. Moves can
//     exceed the count changes (sum over nodes of max(0, now - target)) only
//     where zone caps make replicas trade places; the tests check this
//     optimality against brute force on small clusters.
//   - Masters. Each partition sends one unit to one of the nodes chosen
//     above; keeping the master costs nothing, and so does handing it to a
//     node that arrives by a move when the master's node leaves (the move
//     carries the role); anything else costs a switchover. Counters price
//     the bands of rule 3.
//
// Masters are balanced by switchovers and by choosing which arriving node
// takes a leaving master's role; replicas are not moved for master balance,
// with one exception: the masters of a table with one replica per partition
// are its replicas, so the replica flow keeps their number on each node to
// what leaves the other tables' switchovers room to meet rule 3.
//
// On 128 nodes or more, the replica flow first offers each partition a
// sample of 64 nodes (and those holding it now) instead of all of them, and
// keeps that layout when it costs what a relaxation proves no layout can
// beat; otherwise it solves the full network (window.go).
//
// The expand benchmark (12 nodes, 10 tables × 256 partitions × 3 replicas,
// 3 new nodes) plans in about 0.1 s; placing a table of 3,334 partitions ×
// 3 on 1,000 nodes (BenchmarkPlaceTableAtScale) about 0.17 s.
//
// # When the rules cannot all hold
//
// Rule 1 holds whenever no partition has more replicas than there are
// eligible nodes (otherwise Rebalance fails with NOT_ENOUGH_NODES). Rule 2
// then holds too: the shares respect every cap, so a rounding of them that
// meets all caps and bands at once exists (the constraints form a network
// matrix), and the flow finds one. Rule 3 can miss by one master in rare
// layouts where switchovers alone cannot fix a node, such as small tables
// on nodes of very different weights mixed with one-replica tables; Check
// reports what is left, and Rebalance never plans for a layout that Check
// finds fine.
package placement

import (
	"cmp"
	"slices"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// InitialTerm is the term of a partition's first master.
const InitialTerm = 1

// PlaceTable places the replicas of a new table with the given partition and
// replica counts on nodes, which are the candidates (the caller passes the UP
// ones; their State is not looked at). existing are the tables already
// placed; only their load on the candidates counts. It returns the
// partitions with ids 0..partitions-1, state ACTIVE and term InitialTerm, or
// an error with code NOT_ENOUGH_NODES when there are fewer distinct nodes
// than replicas, INVALID_ARGUMENT for zero counts.
//
// The placement follows the rules of the package comment, with one twist:
// placing a new table moves nothing, so it is the cheapest moment to even
// the cluster out, and each node's count over all tables (existing ones
// included) is aimed at its share rounded down or up first, the new table's
// own spread second. So a table created on a balanced cluster leaves it
// balanced (Rebalance plans nothing), and one created on a skewed cluster
// reduces the skew.
func PlaceTable(nodes []*zppb.Node, existing []*zppb.Table, partitions, replicas uint32) ([]*zppb.Partition, error) {
	if partitions == 0 || replicas == 0 {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "partitions and replicas must be at least 1 (got %d and %d)", partitions, replicas)
	}
	pb, err := placeProblem(nodes, existing, partitions, replicas)
	if err != nil {
		return nil, err
	}
	if err := pb.solve(); err != nil {
		return nil, err
	}
	cl, fresh := pb.cl, pb.tables[0]
	out := make([]*zppb.Partition, partitions)
	for pid, ps := range fresh.parts {
		p := &zppb.Partition{
			Id:     uint32(pid),
			State:  zppb.PartitionState_ACTIVE,
			Master: cl.nodes[ps.targetMaster].Addr,
			Term:   InitialTerm,
		}
		for _, i := range ps.target {
			if i != ps.targetMaster {
				p.Slaves = append(p.Slaves, cl.nodes[i].Addr)
			}
		}
		out[pid] = p
	}
	return out, nil
}

// placeProblem is PlaceTable's problem: the new table, the only one to
// place, and the existing tables as load.
func placeProblem(nodes []*zppb.Node, existing []*zppb.Table, partitions, replicas uint32) (*problem, error) {
	var cands []Node
	seen := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		addr := n.GetAddr()
		if addr == "" || seen[addr] {
			continue // the first record of an address wins
		}
		seen[addr] = true
		cands = append(cands, Node{Addr: addr, Zone: n.GetZone(), Rack: n.GetRack(), Weight: n.GetWeight(), Up: true})
	}
	if int64(replicas) > int64(len(cands)) {
		return nil, status.New(zppb.Code_NOT_ENOUGH_NODES, "%d replicas need %d UP nodes, have %d", replicas, replicas, len(cands))
	}
	cl := newCluster(cands)
	pb := &problem{cl: cl, tol: DefaultTolerance, placing: true}
	old := slices.Clone(existing)
	slices.SortFunc(old, func(a, b *zppb.Table) int { return cmp.Compare(a.GetName(), b.GetName()) })
	for _, t := range old {
		pb.fixed = append(pb.fixed, newTableState(cl, FromProto(t), true))
	}
	fresh := &tableState{
		parts:       make([]partState, partitions),
		replicasNow: make([]int, len(cl.nodes)),
		mastersNow:  make([]int, len(cl.nodes)),
	}
	counts := make([]int, partitions)
	for pid := range fresh.parts {
		fresh.parts[pid] = partState{replicas: int(replicas), master: -1}
		counts[pid] = int(replicas)
	}
	fresh.replicaShare = cl.replicaShares(counts)
	fresh.masterShare = cl.masterShares(int(partitions))
	pb.tables = []*tableState{fresh}
	return pb, nil
}

// NodeFromProto returns a registered node in the planner's terms: Up when
// its state is UP, not Draining; callers that plan a shrink or a repair
// set those as their plan needs.
func NodeFromProto(n *zppb.Node) Node {
	return Node{Addr: n.GetAddr(), Zone: n.GetZone(), Rack: n.GetRack(), Weight: n.GetWeight(), Up: n.GetState() == zppb.NodeState_UP}
}

// FromProto returns a table's layout in the planner's terms. Partitions keep
// their order, which the meta server keeps as the partition id.
func FromProto(t *zppb.Table) Table {
	out := Table{Name: t.GetName(), Partitions: make([]Replicas, len(t.GetPartitions()))}
	for i, p := range t.GetPartitions() {
		out.Partitions[i] = Replicas{Master: p.GetMaster(), Slaves: slices.Clone(p.GetSlaves())}
	}
	return out
}
