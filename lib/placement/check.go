package placement

import (
	"fmt"
	"math"
	"slices"
)

// Kind is the rule a Violation breaks.
type Kind int

const (
	// UnknownNode: a replica on a node not in the node list.
	UnknownNode Kind = iota + 1
	// DuplicateReplica: two replicas of one partition on one node.
	DuplicateReplica
	// NoMaster: a partition without a master.
	NoMaster
	// IneligibleNode: a replica on a DOWN or draining node.
	IneligibleNode
	// NotEnoughNodes: a partition has more replicas than there are
	// eligible nodes.
	NotEnoughNodes
	// ZoneSpread: a zone holds more replicas of a partition than the zones
	// make necessary (Node is the zone).
	ZoneSpread
	// RackSpread: the same for a rack (Node is "zone/rack").
	RackSpread
	// ReplicaLoad: a node's replica count over all tables is out of its
	// band.
	ReplicaLoad
	// TableReplicaLoad: a node's replica count in one table is out of its
	// band.
	TableReplicaLoad
	// MasterLoad: a node's master count over all tables is out of its band.
	MasterLoad
	// TableMasterLoad: a node's master count in one table is out of its
	// band.
	TableMasterLoad
)

var kindNames = map[Kind]string{
	UnknownNode: "unknown node", DuplicateReplica: "duplicate replica", NoMaster: "no master",
	IneligibleNode: "ineligible node", NotEnoughNodes: "not enough nodes",
	ZoneSpread: "zone spread", RackSpread: "rack spread",
	ReplicaLoad: "replica load", TableReplicaLoad: "table replica load",
	MasterLoad: "master load", TableMasterLoad: "table master load",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Violation is one way a layout breaks the rules.
type Violation struct {
	Kind Kind
	// Table is empty for cluster-wide loads; Partition is -1 when the
	// violation is not about one partition.
	Table     string
	Partition int
	// Node is the node concerned; the zone or "zone/rack" for spreads.
	Node string
	// Have is the count found, allowed [Min, Max]; Share is the node's
	// share for loads.
	Have, Min, Max int
	Share          float64
}

func (v Violation) String() string {
	where := "cluster"
	if v.Table != "" {
		where = v.Table
		if v.Partition >= 0 {
			where = fmt.Sprintf("%s/%d", v.Table, v.Partition)
		}
	}
	switch v.Kind {
	case ReplicaLoad, TableReplicaLoad, MasterLoad, TableMasterLoad:
		return fmt.Sprintf("%s: %s: %s has %d, want %d..%d (share %.2f)", where, v.Kind, v.Node, v.Have, v.Min, v.Max, v.Share)
	case ZoneSpread, RackSpread, NotEnoughNodes:
		return fmt.Sprintf("%s: %s: %q has %d, want at most %d", where, v.Kind, v.Node, v.Have, v.Max)
	}
	return fmt.Sprintf("%s: %s: %s", where, v.Kind, v.Node)
}

// Check returns what breaks the rules in the layout tables on nodes, in a
// deterministic order: per partition (tables by name), then per table and
// node, then per node. Loads are judged against the same shares and bands
// Rebalance uses (see the package comment), so a layout Rebalance produces
// has no violation except where the rules cannot all hold, and Rebalance
// plans nothing for a layout without violations. Malformed input is
// reported, not refused: a node listed twice counts once, an invalid
// Tolerance counts as DefaultTolerance.
func Check(nodes []Node, tables []Table, opts Options) []Violation {
	byAddr := make(map[string]Node, len(nodes))
	for _, n := range nodes {
		if _, dup := byAddr[n.Addr]; !dup {
			byAddr[n.Addr] = n
		}
	}
	cl := newCluster(slices.Collect(func(yield func(Node) bool) {
		for _, a := range sortedKeys(byAddr) {
			if !yield(byAddr[a]) {
				return
			}
		}
	}))
	tol := opts.tolerance()
	if tol < 0 || math.IsNaN(tol) || math.IsInf(tol, 0) {
		tol = DefaultTolerance
	}
	var out []Violation
	tables = sortedTables(tables)
	for _, t := range tables {
		for pid, p := range t.Partitions {
			out = append(out, checkPartition(cl, byAddr, t.Name, pid, p)...)
		}
	}
	if len(cl.nodes) == 0 {
		return out
	}
	pb := &problem{cl: cl, tol: tol}
	for _, t := range tables {
		pb.tables = append(pb.tables, newTableState(cl, t, false))
	}
	loads := func(kind Kind, table string, share []float64, have []int) {
		for i, n := range cl.nodes {
			b := bandOf(share[i], slack(share[i], tol))
			if !b.contains(have[i]) {
				out = append(out, Violation{Kind: kind, Table: table, Partition: -1, Node: n.Addr,
					Have: have[i], Min: b.lo, Max: b.hi, Share: share[i]})
			}
		}
	}
	for _, ts := range pb.tables {
		loads(TableReplicaLoad, ts.name, ts.replicaShare, ts.replicasNow)
		loads(TableMasterLoad, ts.name, ts.masterShare, ts.mastersNow)
	}
	rs, ms, rn, mn, _, _ := pb.clusterTotals()
	loads(ReplicaLoad, "", rs, rn)
	loads(MasterLoad, "", ms, mn)
	return out
}

// checkPartition returns the violations of one partition's placement.
func checkPartition(cl *cluster, byAddr map[string]Node, table string, pid int, p Replicas) []Violation {
	var out []Violation
	v := func(kind Kind, node string) *Violation {
		out = append(out, Violation{Kind: kind, Table: table, Partition: pid, Node: node})
		return &out[len(out)-1]
	}
	if p.Master == "" {
		v(NoMaster, "")
	}
	all := replicasOf(p)
	if p.Master == "" {
		all = all[1:]
	}
	var placed []int
	for k, addr := range all {
		n, known := byAddr[addr]
		switch {
		case slices.Contains(all[:k], addr):
			v(DuplicateReplica, addr)
		case !known:
			v(UnknownNode, addr)
		case !n.eligible():
			v(IneligibleNode, addr)
		default:
			placed = append(placed, cl.index[addr])
		}
	}
	r := 1 + len(p.Slaves)
	if r > len(cl.nodes) {
		x := v(NotEnoughNodes, "")
		x.Have, x.Max = r, len(cl.nodes)
		return out
	}
	caps := cl.capsFor(r)
	zones := make([]int, cl.zones)
	racks := make([]int, len(cl.rackNodes))
	for _, i := range placed {
		zones[cl.zone[i]]++
		racks[cl.rack[i]]++
	}
	reported := make([]bool, cl.zones)
	for _, i := range placed {
		n := cl.nodes[i]
		if z := cl.zone[i]; zones[z] > caps.zone {
			x := v(ZoneSpread, n.Zone)
			x.Have, x.Max = zones[z], caps.zone
			zones[z] = 0 // report each zone once
			reported[z] = true
		}
		// A zone over its cap has a rack over its cap too, often the same
		// replicas: one violation says it.
		if rk := cl.rack[i]; racks[rk] > caps.rack && !reported[cl.zone[i]] {
			x := v(RackSpread, n.Zone+"/"+n.Rack)
			x.Have, x.Max = racks[rk], caps.rack
			racks[rk] = 0
		}
	}
	return out
}
