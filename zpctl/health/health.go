// Package health judges a survey of the cluster: the checks `zpctl
// checkup` runs and the TUI colours by. It is pure (a snapshot in, a
// report out), so every rule is tested on canned snapshots.
package health

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

// Severity says how bad a problem is.
type Severity string

const (
	// Critical problems lose availability or durability now: no meta
	// quorum, a partition without a reachable master, a node down.
	Critical Severity = "critical"
	// Warning problems weaken the cluster without an outage yet: a lagging
	// or missing slave, a partition in SLOWDOWN, a placement that one
	// failure would turn into an outage.
	Warning Severity = "warning"
	// Info findings are expected and harmless in the moment, such as mixed
	// versions while an upgrade runs (Options.Upgrading): reported, but
	// the cluster is still healthy.
	Info Severity = "info"
)

// The checks, as named in a Problem's Check field. Scripts may branch on
// them: never rename one.
const (
	CheckMetaUnreachable = "meta_unreachable" // a meta member did not answer
	CheckMetaQuorum      = "meta_quorum"      // fewer than a majority of voters answered
	CheckMetaLeader      = "meta_leader"      // no leader, or members disagree on it
	CheckMetaEpoch       = "meta_epoch"       // members report different epochs
	CheckTopology        = "topology"         // no meta server answered PULL
	CheckNodeDown        = "node_down"        // meta says the node is DOWN
	CheckNodeUnreachable = "node_unreachable" // meta says UP, but INFO failed
	CheckNodeEpoch       = "node_epoch"       // the node applied another epoch than meta's
	CheckNoMaster        = "no_master"        // partition without master
	CheckMasterDown      = "master_down"      // partition master on a DOWN or unknown node
	CheckReplicaCount    = "replica_count"    // fewer replicas placed than the table wants
	CheckReplicaMissing  = "replica_missing"  // a node does not hold a replica it should
	CheckReplicaRole     = "replica_role"     // a node plays another role than the topology says
	CheckReplicaState    = "replica_state"    // a slave is not streaming
	CheckReplicaLag      = "replica_lag"      // a slave is behind its master beyond the threshold
	CheckPartitionState  = "partition_state"  // SLOWDOWN or STUCK
	CheckPlacement       = "placement"        // replicas share a node, or a zone needlessly
	CheckVersionMixed    = "version_mixed"    // nodes and meta servers run different versions
	CheckNodeCordoned    = "node_cordoned"    // the node receives no new replica or master (info)
	CheckScheduler       = "scheduler"        // under-replication or imbalance the scheduler is not fixing
	CheckSecurity        = "security"         // listening beyond loopback without the admin token, the cluster secret or TLS
	CheckCertificate     = "certificate"      // a server's TLS certificate expires within CertificateWarning
)

// CertificateWarning is how long before its expiry a server's TLS
// certificate is reported.
const CertificateWarning = 14 * 24 * time.Hour

// Problem is one finding. The JSON names are part of `zpctl checkup
// --output json`.
type Problem struct {
	Severity Severity `json:"severity"`
	Check    string   `json:"check"`
	// Node, Table and Partition say where; empty (null) when not
	// applicable.
	Node      string  `json:"node,omitempty"`
	Table     string  `json:"table,omitempty"`
	Partition *uint32 `json:"partition,omitempty"`
	Message   string  `json:"message"`
}

// Where is the problem's location for people: "node 127.0.0.1:9231",
// "table t partition 3 (node ...)".
func (p Problem) Where() string {
	s := ""
	if p.Table != "" {
		s = "table " + p.Table
		if p.Partition != nil {
			s += fmt.Sprintf(" partition %d", *p.Partition)
		}
	}
	if p.Node != "" {
		if s != "" {
			s += " "
		}
		s += "node " + p.Node
	}
	if s == "" {
		return "cluster"
	}
	return s
}

// Options tunes the checks.
type Options struct {
	// MaxLag is how many records a slave may be behind its master before
	// it is reported; default DefaultMaxLag.
	MaxLag uint64
	// SettledEpoch, when not 0, is the epoch every node and meta member
	// must have applied: the meta epoch as it was a grace period before the
	// snapshot. One behind the snapshot's newest epoch but not behind this
	// is still taking up a recent topology change (nodes learn it with
	// their next PING), which is not reported. 0 reports anyone behind the
	// newest epoch.
	SettledEpoch uint64
	// Upgrading says an upgrade is in progress: different versions among
	// the nodes and meta servers are then Info, not a Warning.
	Upgrading bool
}

// DefaultMaxLag tolerates what a busy master writes while INFO is asked
// of its slaves (the two answers are not taken at the same instant).
const DefaultMaxLag = 1000

// Summary counts what was checked.
type Summary struct {
	MetaMembers   int `json:"meta_members"`
	MetaReachable int `json:"meta_reachable"`
	Nodes         int `json:"nodes"`
	NodesUp       int `json:"nodes_up"`
	Tables        int `json:"tables"`
	Partitions    int `json:"partitions"`
	Replicas      int `json:"replicas"`
}

// Report is the verdict.
type Report struct {
	// Healthy is true when no problem is critical or a warning.
	Healthy bool      `json:"healthy"`
	Epoch   uint64    `json:"epoch"`
	Leader  string    `json:"leader"`
	Checked time.Time `json:"checked_at"`
	Summary Summary   `json:"summary"`
	// Problems are sorted: critical first, then warnings, then info,
	// each by check, table, partition and node.
	Problems []Problem `json:"problems"`
}

// Counts returns how many critical and warning problems there are (info
// findings are neither).
func (r Report) Counts() (critical, warning int) {
	for _, p := range r.Problems {
		switch p.Severity {
		case Critical:
			critical++
		case Warning:
			warning++
		}
	}
	return critical, warning
}

// Check judges a snapshot.
func Check(s *survey.Snapshot, opts Options) Report {
	if opts.MaxLag == 0 {
		opts.MaxLag = DefaultMaxLag
	}
	c := &checker{s: s, opts: opts}
	c.meta()
	c.versions()
	if s.Topology == nil {
		msg := "no meta server answered PULL"
		if s.TopologyErr != nil {
			msg = fmt.Sprintf("no topology: %v", s.TopologyErr)
		}
		c.add(Problem{Severity: Critical, Check: CheckTopology, Message: msg})
	} else {
		c.nodes()
		for _, tb := range s.Tables() {
			c.table(tb)
		}
	}
	c.scheduler()
	c.security()
	c.certificates()
	slices.SortStableFunc(c.problems, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(rank(a.Severity), rank(b.Severity)),
			cmp.Compare(a.Check, b.Check),
			cmp.Compare(a.Table, b.Table),
			cmp.Compare(pid(a.Partition), pid(b.Partition)),
			cmp.Compare(a.Node, b.Node),
		)
	})
	r := Report{
		Epoch:    s.Epoch(),
		Checked:  s.Taken,
		Summary:  c.sum,
		Problems: c.problems,
	}
	if r.Problems == nil {
		r.Problems = []Problem{}
	}
	crit, warn := r.Counts()
	r.Healthy = crit == 0 && warn == 0
	if s.Meta != nil {
		r.Leader = s.Meta.Leader
	}
	return r
}

func rank(s Severity) int {
	switch s {
	case Critical:
		return 0
	case Warning:
		return 1
	}
	return 2
}

func pid(p *uint32) int64 {
	if p == nil {
		return -1
	}
	return int64(*p)
}

type checker struct {
	s        *survey.Snapshot
	opts     Options
	sum      Summary
	problems []Problem
}

func (c *checker) add(p Problem) { c.problems = append(c.problems, p) }
