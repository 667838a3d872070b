package health

import (
	"fmt"
	"slices"
	"strings"

	"github.com/zeppelin-kv/zeppelin/lib/client"
)

// table checks every partition of tb: its state, its master, its replica
// count and placement, and each replica as its node reports it.
func (c *checker) table(tb client.Table) {
	c.sum.Tables++
	zoneOf := map[string]string{}
	clusterZones := map[string]bool{}
	for _, n := range c.s.Nodes {
		zoneOf[n.Addr] = n.Zone
		if n.Zone != "" {
			clusterZones[n.Zone] = true
		}
	}
	for _, p := range tb.Partitions {
		c.sum.Partitions++
		at := func(sev Severity, check, node, format string, args ...any) {
			id := p.ID
			c.add(Problem{Severity: sev, Check: check, Table: tb.Name, Partition: &id, Node: node,
				Message: fmt.Sprintf("%s/%d: ", tb.Name, p.ID) + fmt.Sprintf(format, args...)})
		}

		switch p.State {
		case "ACTIVE":
		case "STUCK":
			at(Critical, CheckPartitionState, "", "partition is STUCK: every write waits")
		default:
			at(Warning, CheckPartitionState, "", "partition is %s: some writes wait", p.State)
		}

		// masterOK: the master is UP and answers. Otherwise its slaves
		// cannot stream, which says nothing more about them.
		masterOK := false
		if p.Master == "" {
			at(Critical, CheckNoMaster, "", "partition has no master: its keys can be neither read nor written")
		} else if n := c.s.Node(p.Master); n == nil {
			at(Critical, CheckMasterDown, p.Master, "master %s is not a known node", p.Master)
		} else if n.State != "UP" {
			at(Critical, CheckMasterDown, p.Master, "master %s is %s: the partition is unavailable until a slave takes over", p.Master, n.State)
		} else {
			masterOK = n.Err == nil
		}

		holders := slices.Clone(p.Slaves)
		if p.Master != "" {
			holders = append([]string{p.Master}, holders...)
		}
		if uint32(len(holders)) < tb.Replicas {
			at(Warning, CheckReplicaCount, "", "%d of %d replicas placed", len(holders), tb.Replicas)
		}
		seen := map[string]bool{}
		for _, h := range holders {
			if seen[h] {
				at(Critical, CheckPlacement, h, "two replicas on node %s: losing it loses both", h)
			}
			seen[h] = true
		}
		// Same zone is a violation only when the cluster has zones enough
		// to spread the replicas, as the placement planner would have.
		if len(clusterZones) >= len(seen) && len(seen) > 1 {
			byZone := map[string][]string{}
			for h := range seen {
				if z := zoneOf[h]; z != "" {
					byZone[z] = append(byZone[z], h)
				}
			}
			for z, nodes := range byZone {
				if len(nodes) > 1 {
					slices.Sort(nodes)
					at(Warning, CheckPlacement, "", "replicas on %s share zone %s although the cluster has %d zones", strings.Join(nodes, ", "), z, len(clusterZones))
				}
			}
		}

		for _, r := range c.s.Replicas(tb, p) {
			c.sum.Replicas++
			n := c.s.Node(r.Addr)
			if n == nil || n.State != "UP" || (!r.Reported && n.Err != nil) {
				// The node's own problem (down, unknown, not answering)
				// is reported once, for the node or the master.
				if r.Role == "slave" && n != nil && n.State != "UP" {
					at(Warning, CheckReplicaMissing, r.Addr, "slave on %s node %s is unavailable", n.State, r.Addr)
				}
				continue
			}
			if !r.Reported {
				at(Warning, CheckReplicaMissing, r.Addr, "node %s does not hold its %s replica", r.Addr, r.Role)
				continue
			}
			if r.ReportedRole != r.Role {
				at(Warning, CheckReplicaRole, r.Addr, "node %s acts as %s, the topology says %s", r.Addr, r.ReportedRole, r.Role)
				continue
			}
			if r.Role != "slave" || !masterOK {
				continue
			}
			if r.State != "streaming" {
				at(Warning, CheckReplicaState, r.Addr, "slave %s is not streaming: %s", r.Addr, r.State)
			}
			if r.Lag > c.opts.MaxLag {
				at(Warning, CheckReplicaLag, r.Addr, "slave %s is %d records behind its master (at most %d allowed)", r.Addr, r.Lag, c.opts.MaxLag)
			}
		}
	}
}
