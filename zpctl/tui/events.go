package tui

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
)

// Event is one epoch change the TUI saw, with what changed.
type Event struct {
	At       time.Time
	From, To uint64
	// Changes say what differs between the two topologies, one line each.
	Changes []string
}

// maxEvents is how many epoch changes the log keeps.
const maxEvents = 100

// maxChanges is how many change lines one event keeps; a table creation
// changes every partition, which the event names as one line anyway.
const maxChanges = 8

// diffTopology says what changed from prev to next.
func diffTopology(prev, next *client.Topology) []string {
	var out []string
	pn := map[string]client.Node{}
	for _, n := range prev.Nodes {
		pn[n.Addr] = n
	}
	nn := map[string]client.Node{}
	for _, n := range next.Nodes {
		nn[n.Addr] = n
		o, ok := pn[n.Addr]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("node %s joined (%s)", n.Addr, n.State))
		case o.State != n.State:
			out = append(out, fmt.Sprintf("node %s %s → %s", n.Addr, o.State, n.State))
		case o.Zone != n.Zone || o.Rack != n.Rack || o.Weight != n.Weight:
			out = append(out, fmt.Sprintf("node %s now zone %q rack %q weight %d", n.Addr, n.Zone, n.Rack, n.Weight))
		}
	}
	for _, n := range prev.Nodes {
		if _, ok := nn[n.Addr]; !ok {
			out = append(out, fmt.Sprintf("node %s removed", n.Addr))
		}
	}
	pt := map[string]client.Table{}
	for _, t := range prev.Tables {
		pt[t.Name] = t
	}
	nt := map[string]bool{}
	tables := slices.Clone(next.Tables)
	slices.SortFunc(tables, func(a, b client.Table) int { return cmp.Compare(a.Name, b.Name) })
	for _, t := range tables {
		nt[t.Name] = true
		o, ok := pt[t.Name]
		if !ok || o.CreatedEpoch != t.CreatedEpoch {
			out = append(out, fmt.Sprintf("table %s created (%d partitions, %d replicas)", t.Name, t.PartitionCount, t.Replicas))
			continue
		}
		for i, p := range t.Partitions {
			if i >= len(o.Partitions) {
				break
			}
			q := o.Partitions[i]
			where := fmt.Sprintf("%s/%d", t.Name, p.ID)
			if q.Master != p.Master {
				out = append(out, fmt.Sprintf("%s master %s → %s (term %d)", where, dash(q.Master), dash(p.Master), p.Term))
			}
			if q.State != p.State {
				out = append(out, fmt.Sprintf("%s %s → %s", where, q.State, p.State))
			}
			if !slices.Equal(q.Slaves, p.Slaves) && !swapped(q, p) {
				out = append(out, fmt.Sprintf("%s slaves %v → %v", where, q.Slaves, p.Slaves))
			}
		}
	}
	for _, t := range prev.Tables {
		if !nt[t.Name] {
			out = append(out, fmt.Sprintf("table %s dropped", t.Name))
		}
	}
	if len(out) > maxChanges {
		out = append(out[:maxChanges-1], fmt.Sprintf("and %d more changes", len(out)-maxChanges+1))
	}
	return out
}

// swapped reports whether p's replicas are q's with the master changed
// for one of q's slaves, as a failover or setmaster does: the master line
// says it all.
func swapped(q, p client.Partition) bool {
	if q.Master == p.Master || q.Master == "" || p.Master == "" {
		return false
	}
	before := append([]string{q.Master}, q.Slaves...)
	after := append([]string{p.Master}, p.Slaves...)
	slices.Sort(before)
	slices.Sort(after)
	return slices.Equal(before, after)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
