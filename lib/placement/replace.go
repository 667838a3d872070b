package placement

import (
	"fmt"
	"slices"
	"strings"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Replace plans REPLACENODE: every replica on from moves to to, keeping its
// role, so to ends holding exactly what from held. It does not balance
// anything else; Rebalance afterwards evens out the loads if to's weight or
// its other replicas make it over- or underloaded.
//
// It fails with NODE_NOT_FOUND when from or to is not in nodes, and with
// INVALID_ARGUMENT when from == to, when to is DOWN or draining, or when a
// replica cannot go to to without breaking a placement rule: to already
// holds a replica of the partition, or the partition would have more
// replicas in to's zone or rack than the cluster's zones and racks make
// necessary (counting from as gone) while it had no more than that before.
// The message names the partitions concerned. Malformed layouts fail as in
// Rebalance.
func Replace(nodes []Node, tables []Table, from, to string) (Plan, error) {
	if err := validate(nodes, tables); err != nil {
		return Plan{}, err
	}
	var fromNode, toNode *Node
	for i := range nodes {
		switch nodes[i].Addr {
		case from:
			fromNode = &nodes[i]
		case to:
			toNode = &nodes[i]
		}
	}
	switch {
	case from == to:
		return Plan{}, status.New(zppb.Code_INVALID_ARGUMENT, "replace %s by itself", from)
	case fromNode == nil:
		return Plan{}, status.New(zppb.Code_NODE_NOT_FOUND, "node %q is not in the cluster", from)
	case toNode == nil:
		return Plan{}, status.New(zppb.Code_NODE_NOT_FOUND, "node %q is not in the cluster", to)
	case !toNode.Up:
		return Plan{}, status.New(zppb.Code_INVALID_ARGUMENT, "cannot replace %s by %s: %s is DOWN", from, to, to)
	case toNode.Draining:
		return Plan{}, status.New(zppb.Code_INVALID_ARGUMENT, "cannot replace %s by %s: %s is draining", from, to, to)
	}

	// The rules as they will be: from gone.
	after := slices.Clone(nodes)
	for i := range after {
		if after[i].Addr == from {
			after[i].Draining = true
		}
	}
	cl := newCluster(after)
	byAddr := make(map[string]Node, len(nodes))
	for _, n := range after {
		byAddr[n.Addr] = n
	}
	var plan Plan
	var holds, spreads []string
	current := sortedTables(tables)
	for _, t := range current {
		for pid, p := range t.Partitions {
			all := replicasOf(p)
			if !slices.Contains(all, from) {
				continue
			}
			name := fmt.Sprintf("%s/%d", t.Name, pid)
			if slices.Contains(all, to) {
				holds = append(holds, name)
				continue
			}
			moved := p
			moved.Slaves = slices.Clone(p.Slaves)
			if moved.Master == from {
				moved.Master = to
			} else {
				moved.Slaves[slices.Index(moved.Slaves, from)] = to
			}
			before := spreadExcess(cl, byAddr, t.Name, pid, p)
			if now := spreadExcess(cl, byAddr, t.Name, pid, moved); now > before {
				spreads = append(spreads, name)
				continue
			}
			plan.Moves = append(plan.Moves, Move{Table: t.Name, Partition: uint32(pid), From: from, To: to})
		}
	}
	if len(holds)+len(spreads) > 0 {
		var why []string
		if len(holds) > 0 {
			why = append(why, fmt.Sprintf("%s already holds a replica of %s", to, listSome(holds)))
		}
		if len(spreads) > 0 {
			where := fmt.Sprintf("zone %q", toNode.Zone)
			if toNode.Rack != "" {
				where += fmt.Sprintf(" or rack %q", toNode.Rack)
			}
			why = append(why, fmt.Sprintf("%s would put more replicas of %s in its %s than the cluster's zones and racks require", to, listSome(spreads), where))
		}
		return Plan{}, status.New(zppb.Code_INVALID_ARGUMENT, "cannot replace %s by %s: %s", from, to, strings.Join(why, "; "))
	}
	target, err := Apply(current, plan)
	if err != nil {
		panic("placement: replace plan does not apply: " + err.Error())
	}
	plan.Target = target
	return plan, nil
}

// spreadExcess returns by how many replicas a partition exceeds its zone and
// rack caps in total.
func spreadExcess(cl *cluster, byAddr map[string]Node, table string, pid int, p Replicas) int {
	excess := 0
	for _, v := range checkPartition(cl, byAddr, table, pid, p) {
		if v.Kind == ZoneSpread || v.Kind == RackSpread {
			excess += v.Have - v.Max
		}
	}
	return excess
}

// listSome lists up to five names and how many more there are.
func listSome(names []string) string {
	const most = 5
	if len(names) <= most {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:most], ", "), len(names)-most)
}
