package placement

import (
	"cmp"
	"math"
	"slices"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Rebalance plans how to take the layout tables on nodes to one that meets
// the rules of the package comment with the fewest replica moves, then the
// fewest switchovers. Nodes that are DOWN or Draining end with no replicas
// (shrink, replace); nodes without replicas take their share (expand).
//
// It fails with INVALID_ARGUMENT for a malformed input (a node listed twice,
// a table name used twice, a partition without a master, with two replicas
// on one node or with a replica on a node not in nodes, a negative
// Tolerance) and with NOT_ENOUGH_NODES when a partition has more replicas
// than there are eligible (UP, not draining) nodes.
func Rebalance(nodes []Node, tables []Table, opts Options) (Plan, error) {
	pb, err := newProblem(nodes, tables, opts)
	if err != nil {
		return Plan{}, err
	}
	if err := pb.solve(); err != nil {
		return Plan{}, err
	}
	return pb.plan(sortedTables(tables)), nil
}

// newProblem validates the input and indexes it.
func newProblem(nodes []Node, tables []Table, opts Options) (*problem, error) {
	tol := opts.tolerance()
	if tol < 0 || math.IsNaN(tol) || math.IsInf(tol, 0) {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "tolerance %v: want a finite value >= 0", opts.Tolerance)
	}
	if err := validate(nodes, tables); err != nil {
		return nil, err
	}
	cl := newCluster(nodes)
	pb := &problem{cl: cl, tol: tol}
	for _, t := range sortedTables(tables) {
		for pid, p := range t.Partitions {
			if r := 1 + len(p.Slaves); r > len(cl.nodes) {
				return nil, status.New(zppb.Code_NOT_ENOUGH_NODES,
					"table %s partition %d has %d replicas, but only %d nodes are UP and not draining", t.Name, pid, r, len(cl.nodes))
			}
		}
		pb.tables = append(pb.tables, newTableState(cl, t, false))
	}
	return pb, nil
}

// validate checks what Rebalance and Replace need of any input.
func validate(nodes []Node, tables []Table) error {
	known := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		if n.Addr == "" {
			return status.New(zppb.Code_INVALID_ARGUMENT, "a node without an address")
		}
		if known[n.Addr] {
			return status.New(zppb.Code_INVALID_ARGUMENT, "node %s is listed twice", n.Addr)
		}
		known[n.Addr] = true
	}
	names := make(map[string]bool, len(tables))
	for _, t := range tables {
		if names[t.Name] {
			return status.New(zppb.Code_INVALID_ARGUMENT, "table %q is listed twice", t.Name)
		}
		names[t.Name] = true
		for pid, p := range t.Partitions {
			if p.Master == "" {
				return status.New(zppb.Code_INVALID_ARGUMENT, "table %s partition %d has no master", t.Name, pid)
			}
			all := replicasOf(p)
			for k, addr := range all {
				if !known[addr] {
					return status.New(zppb.Code_INVALID_ARGUMENT, "table %s partition %d has a replica on unknown node %q", t.Name, pid, addr)
				}
				if slices.Contains(all[:k], addr) {
					return status.New(zppb.Code_INVALID_ARGUMENT, "table %s partition %d has two replicas on %s", t.Name, pid, addr)
				}
			}
		}
	}
	return nil
}

// sortedTables returns the tables sorted by name (a shallow copy).
func sortedTables(tables []Table) []Table {
	out := slices.Clone(tables)
	slices.SortFunc(out, func(a, b Table) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// plan turns the solution into moves and switchovers from current, which
// are the tables pb was built from, sorted by name.
func (pb *problem) plan(current []Table) Plan {
	var plan Plan
	for ti, t := range current {
		ts := pb.tables[ti]
		for pid, p := range t.Partitions {
			ps := ts.parts[pid]
			target := make([]string, len(ps.target))
			for k, i := range ps.target {
				target[k] = pb.cl.nodes[i].Addr
			}
			master := pb.cl.nodes[ps.targetMaster].Addr
			moves, mm := partitionMoves(t.Name, uint32(pid), p, target, master)
			plan.Moves = append(plan.Moves, moves...)
			if mm != nil {
				plan.MasterMoves = append(plan.MasterMoves, *mm)
			}
		}
	}
	target, err := Apply(current, plan)
	if err != nil {
		// The moves come from set differences, so they always apply.
		panic("placement: plan does not apply: " + err.Error())
	}
	plan.Target = target
	return plan
}

// partitionMoves returns the moves that take p's replicas to the target
// nodes and, when the master is then not on master, the switchover. The
// leaving master's replica moves to the new master when that one arrives by
// a move, so that the move itself hands the role over; the other leaving
// and arriving nodes pair up in address order.
func partitionMoves(table string, pid uint32, p Replicas, target []string, master string) ([]Move, *MasterMove) {
	var from, to []string
	for _, a := range replicasOf(p) {
		if !slices.Contains(target, a) {
			from = append(from, a)
		}
	}
	for _, a := range target {
		if a != p.Master && !slices.Contains(p.Slaves, a) {
			to = append(to, a)
		}
	}
	slices.Sort(from)
	slices.Sort(to)
	var moves []Move
	if k, j := slices.Index(from, p.Master), slices.Index(to, master); k >= 0 && j >= 0 {
		moves = append(moves, Move{Table: table, Partition: pid, From: p.Master, To: master})
		from = slices.Delete(from, k, k+1)
		to = slices.Delete(to, j, j+1)
	}
	for k := range from {
		moves = append(moves, Move{Table: table, Partition: pid, From: from[k], To: to[k]})
	}
	slices.SortFunc(moves, func(a, b Move) int { return cmp.Compare(a.From, b.From) })
	// The master after the moves: the leaving master's role went to its
	// replacement.
	after := p.Master
	for _, m := range moves {
		if m.From == p.Master {
			after = m.To
		}
	}
	if after == master {
		return moves, nil
	}
	return moves, &MasterMove{Table: table, Partition: pid, To: master}
}

// Apply returns the layout after plan: tables sorted by name, with each Move
// replacing From by To in the same role (the slave keeps its position among
// the slaves) and then each MasterMove making To the master and the old
// master a slave in To's position. Plan.Target is Apply(current, plan).
//
// It fails with INVALID_ARGUMENT when an entry does not fit: an unknown
// table or partition, a From that holds no replica, a To that already holds
// one, a MasterMove to a node without a replica.
func Apply(tables []Table, plan Plan) ([]Table, error) {
	out := sortedTables(tables)
	byName := make(map[string]int, len(out))
	for i := range out {
		byName[out[i].Name] = i
		parts := slices.Clone(out[i].Partitions)
		for pid := range parts {
			parts[pid].Slaves = slices.Clone(parts[pid].Slaves)
		}
		out[i].Partitions = parts
	}
	find := func(table string, pid uint32) (*Replicas, error) {
		i, ok := byName[table]
		if !ok || int(pid) >= len(out[i].Partitions) {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "no partition %s/%d", table, pid)
		}
		return &out[i].Partitions[pid], nil
	}
	for _, m := range plan.Moves {
		p, err := find(m.Table, m.Partition)
		if err != nil {
			return nil, err
		}
		if m.To == "" || m.To == p.Master || slices.Contains(p.Slaves, m.To) {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "move %v: %q already holds a replica", m, m.To)
		}
		switch k := slices.Index(p.Slaves, m.From); {
		case m.From == p.Master:
			p.Master = m.To
		case k >= 0:
			p.Slaves[k] = m.To
		default:
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "move %v: %s holds no replica", m, m.From)
		}
	}
	for _, m := range plan.MasterMoves {
		p, err := find(m.Table, m.Partition)
		if err != nil {
			return nil, err
		}
		k := slices.Index(p.Slaves, m.To)
		if k < 0 {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "master move %v: %s holds no slave replica", m, m.To)
		}
		p.Slaves[k], p.Master = p.Master, m.To
	}
	return out, nil
}
