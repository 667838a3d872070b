package placement

import (
	"math/rand/v2"
	"slices"
)

// On a large cluster the replica flow's network is dominated by one arc per
// partition and node. Every eligible node is a candidate for every
// partition, yet a layout that meets the rules uses a few of them per
// partition. So solveReplicas first offers each partition a window of
// windowSize nodes (plus the nodes holding it now), a sample that puts
// every node in about as many windows. That network's
// layout is optimal for the full one when its cost equals a lower bound:
// the cost of the relaxation that drops the per-partition constraints
// (one replica per node, zone and rack caps, spread) and keeps only how
// many replicas of each table a node can take and what they cost. When the
// costs differ (a skewed cluster, nodes of very different weights, zones
// too small for a window) the full network is solved as before, so the
// result is always a layout of the least cost; among layouts of equal cost
// it may differ from the one the full network would give.

// windowMinNodes is the cluster size from which windows are tried; below
// it the full network is small.
const windowMinNodes = 128

// windowSize is how many nodes a window offers a partition: enough that the
// nodes' counters, not the windows, decide the layout.
const windowSize = 64

// windows returns each partition's candidate nodes (sorted), or nil when
// the cluster is too small for windows to pay. A window is a sample of the
// nodes drawn by a generator seeded with the partition's place, so the
// result depends only on the input; a sample rather than a run of
// consecutive nodes, because nodes in address order often differ in load
// together (those added last are empty) and a run of them could not even
// it out.
func (pb *problem) windows() [][][]int {
	n := len(pb.cl.nodes)
	if n < windowMinNodes {
		return nil
	}
	size := min(n, windowSize)
	out := make([][][]int, len(pb.tables))
	k := uint64(0)
	picked := make(map[int]bool, size)
	for ti, ts := range pb.tables {
		out[ti] = make([][]int, len(ts.parts))
		for pid := range ts.parts {
			rng := rand.New(rand.NewPCG(k, uint64(n)))
			k++
			clear(picked)
			c := make([]int, 0, size+len(ts.parts[pid].now))
			for len(c) < size {
				if i := rng.IntN(n); !picked[i] {
					picked[i] = true
					c = append(c, i)
				}
			}
			c = append(c, ts.parts[pid].now...)
			slices.Sort(c)
			out[ti][pid] = slices.Compact(c)
		}
	}
	return out
}

// relaxedReplicaCost returns a lower bound of the replica flow's cost: the
// least cost of giving each (table, node) counter up to one replica per
// partition of the table, free up to the partitions the node holds now and
// one move each beyond, without the per-partition constraints; plus the
// least spread each partition pays alone (which no layout avoids, and
// which ranks below everything the relaxation prices but lvlCentre, so
// the sum stays a lower bound in the lexicographic order).
func (pb *problem) relaxedReplicaCost() cost {
	n := len(pb.cl.nodes)
	g := newGraph()
	src, sink := g.vertex(), g.vertex()
	nodeV := g.nVertices(n)
	rigidV := pb.rigidCounters(g, nodeV)
	want := 0
	held := make([]int, n)
	for ti, ts := range pb.tables {
		supply := g.vertex()
		tnV := g.nVertices(n)
		clear(held)
		replicas := 0
		for _, ps := range ts.parts {
			replicas += ps.replicas
			for _, i := range ps.now {
				held[i]++
			}
		}
		want += replicas
		g.edge(src, supply, replicas, free)
		for i := range n {
			if held[i] > 0 {
				g.edge(supply, tnV[i], held[i], free)
			}
			if rest := len(ts.parts) - held[i]; rest > 0 {
				g.edge(supply, tnV[i], rest, pay(lvlChange))
			}
		}
		pb.tableCounters(g, ti, tnV, nodeV, rigidV)
	}
	pb.nodeCounters(g, nodeV, sink, want)
	g.minCostFlow(src, sink)
	c := g.totalCost()
	spread := map[int]int32{}
	for _, ts := range pb.tables {
		for _, ps := range ts.parts {
			s, ok := spread[ps.replicas]
			if !ok {
				s = pb.cl.leastSpread(ps.replicas)
				spread[ps.replicas] = s
			}
			c[lvlSpread] += s
		}
	}
	return c
}

// leastSpread returns the least lvlSpread a partition of r replicas pays
// when any eligible node may take one.
func (cl *cluster) leastSpread(r int) int32 {
	g := newGraph()
	src, sink, pv := g.vertex(), g.vertex(), g.vertex()
	g.edge(src, pv, r, free)
	zoneV, rackV := make([]int, cl.zones), make([]int, len(cl.rackNodes))
	zoneUsed, rackUsed := make([]bool, cl.zones), make([]bool, len(cl.rackNodes))
	for i := range zoneUsed {
		zoneUsed[i] = true
	}
	for i := range rackUsed {
		rackUsed[i] = true
	}
	cl.groupVertices(g, pv, cl.capsFor(r), zoneUsed, rackUsed, zoneV, rackV)
	for i := range cl.nodes {
		g.edge(rackV[cl.rack[i]], sink, 1, free)
	}
	g.minCostFlow(src, sink)
	return g.totalCost()[lvlSpread]
}

// totalCost returns the cost of the flow on g's arcs.
func (g *graph) totalCost() cost {
	var c cost
	for e := 0; e < len(g.arcs); e += 2 {
		if f := g.flow(e); f > 0 {
			if p := g.arcs[e].price; p > 0 {
				c[p-1] += int32(f)
			} else if p < 0 {
				c[-p-1] -= int32(f)
			}
		}
	}
	return c
}
