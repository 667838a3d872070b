package server

import (
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
	"github.com/zeppelin-kv/zeppelin/lib/promexport"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// metrics are the meta server's Prometheus metrics, read from Raft and the
// state machine when Prometheus scrapes.
type metrics struct {
	reg          *prometheus.Registry
	failovers    prometheus.Counter
	authFailures prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zeppelin_meta_failovers_total",
			Help: "Partitions failed over by this member while it led.",
		}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zeppelin_meta_auth_failures_total",
			Help: "Requests refused for a missing or wrong secret: the admin token (--admin-token-file) or a node's cluster secret (--cluster-secret-file).",
		}),
	}
	m.reg = promexport.NewRegistry(m.failovers, m.authFailures, &metaCollector{s: s})
	return m
}

var (
	descRaftState = prometheus.NewDesc("zeppelin_meta_raft_state",
		"1 for the Raft state this member is in.", []string{"state"}, nil)
	descRaftTerm     = prometheus.NewDesc("zeppelin_meta_raft_term", "Current Raft term.", nil, nil)
	descRaftCommit   = prometheus.NewDesc("zeppelin_meta_raft_commit_index", "Raft commit index.", nil, nil)
	descRaftApplied  = prometheus.NewDesc("zeppelin_meta_raft_applied_index", "Raft index applied to the topology.", nil, nil)
	descLeader       = prometheus.NewDesc("zeppelin_meta_leader", "1 while this member is the ready leader.", nil, nil)
	descMetaEpoch    = prometheus.NewDesc("zeppelin_meta_epoch", "Topology epoch.", nil, nil)
	descNodeUp       = prometheus.NewDesc("zeppelin_meta_node_up", "1 if the node is UP, 0 if DOWN.", []string{"node", "zone"}, nil)
	descTables       = prometheus.NewDesc("zeppelin_meta_tables", "Tables.", nil, nil)
	descPartitions   = prometheus.NewDesc("zeppelin_meta_partitions", "Partitions by state.", []string{"state"}, nil)
	descNoMaster     = prometheus.NewDesc("zeppelin_meta_partitions_master_down", "Partitions whose master is on a DOWN node.", nil, nil)
	descUnderReplica = prometheus.NewDesc("zeppelin_meta_replicas_down", "Replicas on DOWN nodes.", nil, nil)
	descMoves        = prometheus.NewDesc("zeppelin_meta_moves", "Topology moves not yet finished, by state.", []string{"state"}, nil)
	descHeartbeatAge = prometheus.NewDesc("zeppelin_meta_node_heartbeat_age_seconds",
		"Seconds since the node's last PING reached this leader.", []string{"node"}, nil)
	descBuild = prometheus.NewDesc("zeppelin_meta_build_info",
		"Always 1; the version label is the member's version, as zpmeta --version prints it.",
		nil, prometheus.Labels{"version": buildinfo.Version})
)

type metaCollector struct{ s *Server }

func (c *metaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRaftState, descRaftTerm, descRaftCommit, descRaftApplied, descLeader,
		descMetaEpoch, descNodeUp, descTables, descPartitions, descNoMaster, descUnderReplica, descMoves, descHeartbeatAge, descBuild} {
		ch <- d
	}
}

func (c *metaCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	state := s.raft.State()
	for _, st := range []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown} {
		v := 0.0
		if st == state {
			v = 1
		}
		gauge(descRaftState, v, st.String())
	}
	gauge(descRaftTerm, float64(s.raft.CurrentTerm()))
	gauge(descRaftCommit, float64(s.raft.CommitIndex()))
	gauge(descRaftApplied, float64(s.raft.AppliedIndex()))
	leader := 0.0
	if s.IsLeader() {
		leader = 1
	}
	gauge(descLeader, leader)
	gauge(descBuild, 1)

	nodes, epoch := s.fsm.Nodes()
	gauge(descMetaEpoch, float64(epoch))
	down := make(map[string]bool)
	for _, n := range nodes {
		up := 1.0
		if n.State != zppb.NodeState_UP {
			up = 0
			down[n.Addr] = true
		}
		gauge(descNodeUp, up, n.Addr, n.Zone)
		if s.IsLeader() {
			if t := s.live.lastHeartbeat(n.Addr); !t.IsZero() {
				gauge(descHeartbeatAge, time.Since(t).Seconds(), n.Addr)
			}
		}
	}
	tables, _ := s.fsm.Tables()
	gauge(descTables, float64(len(tables)))
	byState := map[zppb.PartitionState]int{}
	noMaster, replicasDown := 0, 0
	for _, t := range tables {
		for _, p := range t.Partitions {
			byState[p.State]++
			if down[p.Master] {
				noMaster++
			}
			for _, a := range append([]string{p.Master}, p.Slaves...) {
				if down[a] {
					replicasDown++
				}
			}
		}
	}
	for _, st := range []zppb.PartitionState{zppb.PartitionState_ACTIVE, zppb.PartitionState_SLOWDOWN, zppb.PartitionState_STUCK} {
		gauge(descPartitions, float64(byState[st]), st.String())
	}
	gauge(descNoMaster, float64(noMaster))
	gauge(descUnderReplica, float64(replicasDown))
	moves := map[string]int{}
	for _, m := range s.fsm.Moves(false) {
		moves[m.State.String()]++
	}
	for _, st := range []zppb.MoveState{zppb.MoveState_MOVE_PENDING, zppb.MoveState_MOVE_CATCHING_UP,
		zppb.MoveState_MOVE_SLOWDOWN, zppb.MoveState_MOVE_STUCK, zppb.MoveState_MOVE_REMOVING} {
		gauge(descMoves, float64(moves[st.String()]), st.String())
	}
}
