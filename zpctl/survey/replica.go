package survey

import (
	"github.com/zeppelin-kv/zeppelin/lib/client"
)

// Replica is one replica of a partition: where the topology puts it, and
// what its node says about it. The JSON names are part of zpctl's
// machine-readable output.
type Replica struct {
	Addr string `json:"addr"`
	// Role is "master" or "slave", as the topology has it.
	Role string `json:"role"`
	// NodeState is the node's state in the topology: UP, DOWN, or "" for
	// a node the topology does not list.
	NodeState string `json:"node_state"`
	// Reported is false when the node did not answer INFO replication or
	// does not hold the replica; the fields below are then zero, and Error
	// says which.
	Reported bool   `json:"reported"`
	Error    string `json:"error,omitempty"`
	// ReportedRole is the role the node plays now ("master", "slave"); it
	// differs from Role while the node has not applied the topology yet.
	ReportedRole string `json:"reported_role,omitempty"`
	// State is the replication state: "serving" on a master; "streaming",
	// "trysync", "connecting", "fullsync" ... on a slave.
	State      string `json:"state,omitempty"`
	Term       uint64 `json:"term"`
	LSN        uint64 `json:"lsn"`
	AppliedLSN uint64 `json:"applied_lsn"`
	// Lag is how many records the replica is behind its master: the
	// master's lsn minus its own when both answered, else what the slave
	// itself reports. 0 for the master.
	Lag uint64 `json:"lag"`
}

// Replicas returns the replicas of partition p of tb, master first, then
// the slaves in topology order.
func (s *Snapshot) Replicas(tb client.Table, p client.Partition) []Replica {
	var out []Replica
	var masterLSN uint64
	masterReported := false
	add := func(addr, role string) {
		r := Replica{Addr: addr, Role: role}
		n := s.Node(addr)
		switch {
		case n == nil:
			r.Error = "node not in the topology"
		case n.Info.Replication == nil && n.Err != nil:
			r.NodeState = n.State
			r.Error = n.Err.Error()
		default:
			r.NodeState = n.State
			ri := s.ReplicaInfo(addr, tb.Name, p.ID)
			if ri == nil {
				r.Error = "node does not report this replica"
				break
			}
			r.Reported = true
			r.ReportedRole, r.State = ri.Role, ri.State
			r.Term, r.LSN, r.AppliedLSN = ri.Term, ri.LSN, ri.AppliedLSN
			r.Lag = ri.LagRecords
		}
		out = append(out, r)
	}
	if p.Master != "" {
		add(p.Master, "master")
		if m := out[0]; m.Reported {
			masterLSN, masterReported = m.LSN, true
		}
		out[0].Lag = 0
	}
	for _, sl := range p.Slaves {
		add(sl, "slave")
		r := &out[len(out)-1]
		if r.Reported && masterReported {
			r.Lag = 0
			if masterLSN > r.LSN {
				r.Lag = masterLSN - r.LSN
			}
		}
	}
	return out
}

// Load is what one node carries.
type Load struct {
	Addr string `json:"addr"`
	// Replicas and Masters count partitions over the tables considered
	// (masters are counted in Replicas too).
	Replicas int `json:"replicas"`
	Masters  int `json:"masters"`
	// QPS and UsedBytes come from the node's INFO, summed over the tables
	// considered; 0 when it did not answer.
	QPS       float64 `json:"qps"`
	UsedBytes uint64  `json:"used_bytes"`
}

// Loads returns, for every node of the topology in address order, what it
// carries of table, or of every table when table is "".
func (s *Snapshot) Loads(table string) []Load {
	out := make([]Load, len(s.Nodes))
	idx := make(map[string]int, len(s.Nodes))
	for i, n := range s.Nodes {
		out[i].Addr = n.Addr
		idx[n.Addr] = i
		for _, st := range n.Info.Stats {
			if table == "" || st.Table == table {
				out[i].QPS += st.QPS
			}
		}
		for _, c := range n.Info.Capacity {
			if table == "" || c.Table == table {
				out[i].UsedBytes += c.UsedBytes
			}
		}
	}
	for _, tb := range s.Tables() {
		if table != "" && tb.Name != table {
			continue
		}
		for _, p := range tb.Partitions {
			if i, ok := idx[p.Master]; ok && p.Master != "" {
				out[i].Masters++
				out[i].Replicas++
			}
			for _, sl := range p.Slaves {
				if i, ok := idx[sl]; ok {
					out[i].Replicas++
				}
			}
		}
	}
	return out
}
