package placement

import (
	"slices"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// problem is a validated layout in the planner's terms: eligible nodes by
// index, the tables whose replicas may move, and (for PlaceTable) tables
// that only count as load.
type problem struct {
	cl  *cluster
	tol float64
	// tables may change, sorted by name; fixed only weigh on the nodes.
	tables, fixed []*tableState
	// placing: the layout is a new table's; the cluster-wide counts then
	// aim at the core (the share rounded), because placing new replicas
	// costs no moves, so it is the cheapest moment to even the cluster out.
	placing bool
}

type tableState struct {
	name  string
	parts []partState
	// Per eligible node: shares of the table's replicas and masters, and
	// how many it holds now.
	replicaShare, masterShare []float64
	replicasNow, mastersNow   []int
}

type partState struct {
	// replicas is the partition's replica count, which the plan keeps.
	replicas int
	// now are the eligible nodes holding a replica, master the eligible node
	// holding the master (-1: none, or not eligible).
	now    []int
	master int
	// The solution: target holds the eligible nodes, sorted;
	// targetMaster is one of them.
	target       []int
	targetMaster int
}

// newTableState indexes a table's partitions against cl, keeping only
// replicas on eligible nodes as "now". The caller has validated t. The
// shares are of all the table's replicas and masters, or with onlyEligible
// of those on eligible nodes (a table that only weighs as load, whose
// replicas elsewhere are not to be placed).
func newTableState(cl *cluster, t Table, onlyEligible bool) *tableState {
	ts := &tableState{
		name:        t.Name,
		parts:       make([]partState, len(t.Partitions)),
		replicasNow: make([]int, len(cl.nodes)),
		mastersNow:  make([]int, len(cl.nodes)),
	}
	counts := make([]int, len(t.Partitions))
	masters := 0
	for pid, p := range t.Partitions {
		ps := partState{replicas: 1 + len(p.Slaves), master: -1}
		for k, addr := range replicasOf(p) {
			i, ok := cl.index[addr]
			if !ok {
				continue
			}
			ps.now = append(ps.now, i)
			ts.replicasNow[i]++
			if k == 0 {
				ps.master = i
				ts.mastersNow[i]++
			}
		}
		slices.Sort(ps.now)
		ts.parts[pid] = ps
		counts[pid] = min(ps.replicas, len(cl.nodes))
		if onlyEligible {
			counts[pid] = len(ps.now)
		}
		if !onlyEligible || ps.master >= 0 {
			masters++
		}
	}
	ts.replicaShare = cl.replicaShares(counts)
	ts.masterShare = cl.masterShares(masters)
	return ts
}

// replicasOf returns the master then the slaves.
func replicasOf(p Replicas) []string {
	return append([]string{p.Master}, p.Slaves...)
}

// clusterTotals returns, per eligible node, the sum over all tables of the
// replica and master shares and of the counts now, and the counts of the
// fixed tables alone.
func (pb *problem) clusterTotals() (replicaShare, masterShare []float64, replicasNow, mastersNow, fixedReplicas, fixedMasters []int) {
	n := len(pb.cl.nodes)
	replicaShare, masterShare = make([]float64, n), make([]float64, n)
	replicasNow, mastersNow = make([]int, n), make([]int, n)
	fixedReplicas, fixedMasters = make([]int, n), make([]int, n)
	add := func(ts *tableState, fixed bool) {
		for i := range n {
			replicaShare[i] += ts.replicaShare[i]
			masterShare[i] += ts.masterShare[i]
			replicasNow[i] += ts.replicasNow[i]
			mastersNow[i] += ts.mastersNow[i]
			if fixed {
				fixedReplicas[i] += ts.replicasNow[i]
				fixedMasters[i] += ts.mastersNow[i]
			}
		}
	}
	for _, ts := range pb.fixed {
		add(ts, true)
	}
	for _, ts := range pb.tables {
		add(ts, false)
	}
	return
}

// clusterCounter prices a node's count over all tables.
func (pb *problem) clusterCounter(b band, now int) counter {
	if pb.placing {
		return b.core(lvlCluster)
	}
	return b.target(now, lvlCluster)
}

// solveReplicas chooses every partition's target nodes: a min-cost flow
// from each partition (supplying its replica count) through its zone and
// rack caps to (table, node) counters, then node counters, to the sink. An
// arc partition->node costs one move unless the node holds the partition
// now, so the flow keeps the fewest moves among the layouts that best meet
// the load bands (cluster first, then per table), which is exactly the
// priority of the rules; see the package comment.
//
// On a large cluster it first offers each partition a window of the nodes
// only (window.go): a layout that costs no more than the relaxation's
// bound is optimal, and the full network (partitions × nodes arcs: 3.3
// million for a table of 3,334 partitions on 1,000 nodes) is built only
// when it does not.
func (pb *problem) solveReplicas() error {
	if cands := pb.windows(); cands != nil {
		bound := pb.relaxedReplicaCost()
		rf, err := pb.replicaFlow(cands)
		if err == nil && rf.cost == bound {
			rf.setTargets(pb)
			return nil
		}
	}
	rf, err := pb.replicaFlow(nil)
	if err != nil {
		return err
	}
	rf.setTargets(pb)
	return nil
}

// replicaChoice is a partition's arc to a node in a replica flow.
type replicaChoice struct{ node, arc int }

// replicaSolution is a solved replica flow.
type replicaSolution struct {
	g *graph
	// arcs[t][pid] lists the arcs of each node the partition could use.
	arcs [][][]replicaChoice
	cost cost
}

// setTargets records the solution's nodes of every partition.
func (rf replicaSolution) setTargets(pb *problem) {
	for ti, ts := range pb.tables {
		for pid := range ts.parts {
			ps := &ts.parts[pid]
			ps.target = ps.target[:0]
			for _, ch := range rf.arcs[ti][pid] {
				if rf.g.flow(ch.arc) > 0 {
					ps.target = append(ps.target, ch.node)
				}
			}
		}
	}
}

// replicaFlow solves the replica flow with cands[ti][pid] (sorted) as the
// nodes partition pid of table ti may use, or every node when cands is nil.
// It fails when the candidates cannot take every replica.
func (pb *problem) replicaFlow(cands [][][]int) (replicaSolution, error) {
	cl := pb.cl
	n := len(cl.nodes)
	g := newGraph()
	// The arcs of partitions to nodes dominate: reserve them, as growing a
	// slice of millions of arcs copies it again and again (and a copy that
	// long holds up the garbage collector's stop of the world).
	parts, choices := 0, 0
	for ti, ts := range pb.tables {
		parts += len(ts.parts)
		for pid := range ts.parts {
			if cands == nil {
				choices += n
			} else {
				choices += len(cands[ti][pid])
			}
		}
	}
	g.arcs = make([]arc, 0, 2*(choices+parts*(2*len(cl.rackNodes)+2*cl.zones+1))+16*n*(len(pb.tables)+2))
	src, sink := g.vertex(), g.vertex()
	nodeV := g.nVertices(n)
	arcs := make([][][]replicaChoice, len(pb.tables))
	want := 0
	rigidV := pb.rigidCounters(g, nodeV)
	zoneV := make([]int, cl.zones)
	rackV := make([]int, len(cl.rackNodes))
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	zoneUsed, rackUsed := make([]bool, cl.zones), make([]bool, len(cl.rackNodes))
	for ti, ts := range pb.tables {
		tnV := g.nVertices(n)
		arcs[ti] = make([][]replicaChoice, len(ts.parts))
		for pid := range ts.parts {
			ps := &ts.parts[pid]
			want += ps.replicas
			pv := g.vertex()
			g.edge(src, pv, ps.replicas, free)
			caps := cl.capsFor(ps.replicas)
			nodes := all
			if cands != nil {
				nodes = cands[ti][pid]
			}
			// A zone or rack no candidate is in needs no vertex (all of
			// them are in the full network).
			clear(zoneUsed)
			clear(rackUsed)
			for _, i := range nodes {
				zoneUsed[cl.zone[i]], rackUsed[cl.rack[i]] = true, true
			}
			cl.groupVertices(g, pv, caps, zoneUsed, rackUsed, zoneV, rackV)
			arcs[ti][pid] = make([]replicaChoice, 0, len(nodes))
			for _, i := range nodes {
				c := pay(lvlChange)
				if _, ok := slices.BinarySearch(ps.now, i); ok {
					c = free
				}
				e := g.edge(rackV[cl.rack[i]], tnV[i], 1, c)
				arcs[ti][pid] = append(arcs[ti][pid], replicaChoice{i, e})
			}
		}
		pb.tableCounters(g, ti, tnV, nodeV, rigidV)
	}
	pb.nodeCounters(g, nodeV, sink, want)
	if got := g.minCostFlow(src, sink); got != want {
		return replicaSolution{}, status.New(zppb.Code_ERROR, "placement: placed %d of %d replicas", got, want)
	}
	return replicaSolution{g: g, arcs: arcs, cost: g.totalCost()}, nil
}

// groupVertices adds, below a partition's vertex pv, the vertices of the
// zones and racks marked used whose caps or spread its replicas' path must
// pass, and sets zoneV and rackV to the vertex each zone's and rack's
// replicas come through (pv, or the zone's vertex, when none is needed).
func (cl *cluster) groupVertices(g *graph, pv int, caps groupCaps, zoneUsed, rackUsed []bool, zoneV, rackV []int) {
	// A zone or rack needs its own vertex when it has more nodes than its
	// cap (the arc into it enforces the cap), or when it could take two
	// replicas while others are empty (the arc prices the second and
	// further ones at lvlSpread).
	for z := range zoneV {
		zoneV[z] = pv
		if !zoneUsed[z] {
			continue
		}
		if cl.zoneNodes[z] > caps.zone || (caps.zone > 1 && cl.zoneNodes[z] > 1 && cl.zones > 1) {
			zoneV[z] = g.vertex()
			spreadArcs(g, pv, zoneV[z], min(caps.zone, cl.zoneNodes[z]))
		}
	}
	for rk := range rackV {
		z := cl.rackZone[rk]
		rackV[rk] = zoneV[z]
		if !rackUsed[rk] {
			continue
		}
		capped := cl.rackNodes[rk] > caps.rack && (zoneV[z] == pv || caps.rack < caps.zone)
		if capped || (caps.rack > 1 && cl.rackNodes[rk] > 1 && cl.rackNodes[rk] < cl.zoneNodes[z]) {
			rackV[rk] = g.vertex()
			spreadArcs(g, zoneV[z], rackV[rk], min(caps.rack, cl.rackNodes[rk]))
		}
	}
}

// tableCounters adds the counters of table ti's replicas on each node,
// from its (table, node) vertices tnV into nodeV (or the rigid counters).
func (pb *problem) tableCounters(g *graph, ti int, tnV, nodeV, rigidV []int) {
	ts := pb.tables[ti]
	into := nodeV
	if rigidV != nil && ts.rigid() {
		into = rigidV
	}
	for i := range tnV {
		b := bandOf(ts.replicaShare[i], slack(ts.replicaShare[i], pb.tol))
		g.addCounter(tnV[i], into[i], 0, len(ts.parts), b.target(ts.replicasNow[i], lvlTable))
	}
}

// nodeCounters adds the counters of each node's replicas over all tables.
func (pb *problem) nodeCounters(g *graph, nodeV []int, sink, want int) {
	share, _, now, _, fixed, _ := pb.clusterTotals()
	for i := range nodeV {
		b := bandOf(share[i], slack(share[i], pb.tol))
		g.addCounter(nodeV[i], sink, fixed[i], want, pb.clusterCounter(b, now[i]))
	}
}

// rigid reports whether every partition of the table has one replica: its
// masters are its replicas, so they can only be balanced by placing the
// replicas.
func (ts *tableState) rigid() bool {
	for _, ps := range ts.parts {
		if ps.replicas != 1 {
			return false
		}
	}
	return len(ts.parts) > 0
}

// rigidCounters returns, when some tables are rigid and others not (fixed
// ones included), one vertex per node through which the rigid tables'
// replicas (masters) pass on to nodeV, with a counter that keeps their
// number within what lets the node's masters over all tables meet their
// band: the other tables' masters on the node can only be switched within
// their own per-table bands, so the rigid ones must leave room for those.
// Without it the replica stage could fix masters that no switchover can
// balance. (A table mixing one-replica partitions with others counts as
// switchable; such tables only exist while a replica is being added.)
func (pb *problem) rigidCounters(g *graph, nodeV []int) []int {
	rigid, flexible := 0, false
	for _, ts := range pb.tables {
		if ts.rigid() {
			rigid += len(ts.parts)
		} else {
			flexible = true
		}
	}
	for _, ts := range pb.fixed {
		flexible = flexible || !ts.rigid()
	}
	// When every table is rigid, masters are replicas and the replica
	// counters already balance them.
	if rigid == 0 || !flexible {
		return nil
	}
	_, share, _, _, _, fixed := pb.clusterTotals()
	out := make([]int, len(nodeV))
	for i := range nodeV {
		b := bandOf(share[i], slack(share[i], pb.tol))
		if pb.placing {
			b.lo, b.hi = b.coreLo, b.coreHi
		}
		lo, hi := b.lo-fixed[i], b.hi-fixed[i]
		for _, ts := range pb.tables {
			if !ts.rigid() {
				tb := bandOf(ts.masterShare[i], slack(ts.masterShare[i], pb.tol))
				lo -= tb.hi
				hi -= tb.lo
			}
		}
		lo = max(lo, 0)
		hi = max(hi, lo)
		out[i] = g.vertex()
		g.addCounter(out[i], nodeV[i], 0, rigid, counter{lo: lo, aimLo: lo, coreLo: lo, coreHi: hi, aimHi: hi, hi: hi, level: lvlRigid})
	}
	return out
}

// spreadArcs adds the arcs into a zone's or rack's vertex: the first replica
// is free, the others (up to the cap) cost lvlSpread.
func spreadArcs(g *graph, u, v, capacity int) {
	g.edge(u, v, 1, free)
	if capacity > 1 {
		g.edge(u, v, capacity-1, pay(lvlSpread))
	}
}

// solveMasters chooses each partition's master among its target nodes: a
// min-cost flow like solveReplicas with one unit per partition. Keeping the
// master where it is costs nothing, and so does a node that arrives by a
// move when the master's node leaves (the move hands the master role over);
// any other choice costs a switchover.
func (pb *problem) solveMasters() error {
	n := len(pb.cl.nodes)
	g := newGraph()
	src, sink := g.vertex(), g.vertex()
	nodeV := g.nVertices(n)
	type choice struct{ node, arc int }
	arcs := make([][][]choice, len(pb.tables))
	want := 0
	for ti, ts := range pb.tables {
		tnV := g.nVertices(n)
		arcs[ti] = make([][]choice, len(ts.parts))
		for pid := range ts.parts {
			ps := &ts.parts[pid]
			want++
			pv := g.vertex()
			g.edge(src, pv, 1, free)
			stays := slices.Contains(ps.target, ps.master)
			for _, i := range ps.target {
				_, held := slices.BinarySearch(ps.now, i)
				c := pay(lvlChange)
				if i == ps.master || (!stays && !held) {
					c = free
				}
				arcs[ti][pid] = append(arcs[ti][pid], choice{i, g.edge(pv, tnV[i], 1, c)})
			}
		}
		for i := range n {
			b := bandOf(ts.masterShare[i], slack(ts.masterShare[i], pb.tol))
			g.addCounter(tnV[i], nodeV[i], 0, len(ts.parts), b.target(ts.mastersNow[i], lvlTable))
		}
	}
	_, share, _, now, _, fixed := pb.clusterTotals()
	for i := range n {
		g.addCounter(nodeV[i], sink, fixed[i], want, pb.clusterCounter(bandOf(share[i], slack(share[i], pb.tol)), now[i]))
	}
	if got := g.minCostFlow(src, sink); got != want {
		return status.New(zppb.Code_ERROR, "placement: chose %d of %d masters", got, want)
	}
	for ti, ts := range pb.tables {
		for pid := range ts.parts {
			for _, ch := range arcs[ti][pid] {
				if g.flow(ch.arc) > 0 {
					ts.parts[pid].targetMaster = ch.node
				}
			}
		}
	}
	return nil
}

// solve runs both stages.
func (pb *problem) solve() error {
	if err := pb.solveReplicas(); err != nil {
		return err
	}
	return pb.solveMasters()
}
