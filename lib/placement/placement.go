// Package placement decides which nodes hold the replicas of a table's
// partitions. It is pure: the same input always gives the same plan, which
// matters because the meta leader's plan is replicated through Raft and must
// be reproducible when debugging.
//
// The rules, in order of priority:
//
//   - the replicas of one partition are on distinct nodes;
//   - they are spread over distinct zones, then distinct racks, when nodes
//     carry a zone and rack;
//   - masters are spread evenly over the nodes, counting the masters of the
//     tables that already exist, so that the cluster stays balanced as tables
//     come and go;
//   - replica counts (master or slave) are spread evenly the same way.
//
// Weights are not used yet; the planner for expand/shrink will weigh nodes.
package placement

import (
	"cmp"
	"slices"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// InitialTerm is the term of a partition's first master.
const InitialTerm = 1

// load is what a node already carries.
type load struct {
	masters  int
	replicas int
}

type candidate struct {
	addr string
	zone string
	// rack is qualified by the zone: rack names are only unique within one.
	rack string
	load load
}

// PlaceTable places the replicas of a new table with the given partition and
// replica counts on nodes, which are the candidates (the caller passes the UP
// ones). existing are the tables already placed; only their load on the
// candidates counts. It returns the partitions with ids 0..partitions-1, state
// ACTIVE and term InitialTerm, or an error with code NOT_ENOUGH_NODES when
// there are fewer distinct nodes than replicas, INVALID_ARGUMENT for zero
// counts.
func PlaceTable(nodes []*zppb.Node, existing []*zppb.Table, partitions, replicas uint32) ([]*zppb.Partition, error) {
	if partitions == 0 || replicas == 0 {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "partitions and replicas must be at least 1 (got %d and %d)", partitions, replicas)
	}
	cands := candidates(nodes, existing)
	if int64(replicas) > int64(len(cands)) {
		return nil, status.New(zppb.Code_NOT_ENOUGH_NODES, "%d replicas need %d UP nodes, have %d", replicas, replicas, len(cands))
	}

	out := make([]*zppb.Partition, partitions)
	chosen := make([]*candidate, 0, replicas)
	zoneUsed := make(map[string]int)
	rackUsed := make(map[string]int)
	for id := range partitions {
		chosen = chosen[:0]
		clear(zoneUsed)
		clear(rackUsed)
		take := func(c *candidate) {
			chosen = append(chosen, c)
			zoneUsed[c.zone]++
			rackUsed[c.rack]++
			c.load.replicas++
		}

		// The master first, so that masters stay balanced whatever the
		// zone constraints do to the slaves.
		master := pick(cands, chosen, func(a, b *candidate) int {
			return cmp.Or(
				cmp.Compare(a.load.masters, b.load.masters),
				cmp.Compare(a.load.replicas, b.load.replicas),
			)
		})
		master.load.masters++
		take(master)

		for range replicas - 1 {
			take(pick(cands, chosen, func(a, b *candidate) int {
				return cmp.Or(
					cmp.Compare(zoneUsed[a.zone], zoneUsed[b.zone]),
					cmp.Compare(rackUsed[a.rack], rackUsed[b.rack]),
					cmp.Compare(a.load.replicas, b.load.replicas),
					// Among equals, a node with more masters: the
					// ones with fewer get the next masters, and
					// with them more replicas.
					cmp.Compare(b.load.masters, a.load.masters),
				)
			}))
		}

		p := &zppb.Partition{
			Id:     id,
			State:  zppb.PartitionState_ACTIVE,
			Master: master.addr,
			Term:   InitialTerm,
		}
		for _, c := range chosen[1:] {
			p.Slaves = append(p.Slaves, c.addr)
		}
		out[id] = p
	}
	return out, nil
}

// candidates returns the distinct nodes sorted by address, with the load the
// existing tables put on them.
func candidates(nodes []*zppb.Node, existing []*zppb.Table) []*candidate {
	byAddr := make(map[string]*candidate, len(nodes))
	for _, n := range nodes {
		addr := n.GetAddr()
		if addr == "" || byAddr[addr] != nil {
			continue
		}
		byAddr[addr] = &candidate{addr: addr, zone: n.GetZone(), rack: n.GetZone() + "\x00" + n.GetRack()}
	}
	for _, t := range existing {
		for _, p := range t.GetPartitions() {
			if c := byAddr[p.GetMaster()]; c != nil {
				c.load.masters++
				c.load.replicas++
			}
			for _, s := range p.GetSlaves() {
				if c := byAddr[s]; c != nil {
					c.load.replicas++
				}
			}
		}
	}
	out := make([]*candidate, 0, len(byAddr))
	for _, c := range byAddr {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *candidate) int { return cmp.Compare(a.addr, b.addr) })
	return out
}

// pick returns the best candidate not yet chosen by less, the first in
// address order among equals so that plans are deterministic.
func pick(cands, chosen []*candidate, less func(a, b *candidate) int) *candidate {
	var best *candidate
	for _, c := range cands {
		if slices.Contains(chosen, c) {
			continue
		}
		if best == nil || less(c, best) < 0 {
			best = c
		}
	}
	return best
}
