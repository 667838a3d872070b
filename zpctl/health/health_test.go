package health

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

var (
	metas = []string{"10.0.0.1:9221", "10.0.0.2:9221", "10.0.0.3:9221"}
	nodes = []string{"10.0.1.1:9231", "10.0.1.2:9231", "10.0.1.3:9231"}
	taken = time.Unix(1_700_000_000, 0)
)

// healthy returns a snapshot of a sound cluster: 3 meta servers, 3 nodes
// in 3 zones, table t with 3 partitions of 3 replicas, partition i
// mastered by node i, every slave streaming at the master's lsn.
func healthy() *survey.Snapshot {
	const epoch = 7
	s := &survey.Snapshot{Taken: taken, Meta: &client.MetaStatus{Leader: metas[0], Epoch: epoch}}
	for i, a := range metas {
		s.Meta.Members = append(s.Meta.Members, client.MetaMember{ID: a, Addr: a, Suffrage: "voter", Leader: i == 0,
			LeaderSeen: metas[0], Reachable: true, State: "Follower", Term: 2, Epoch: epoch})
	}
	tb := client.Table{Name: "t", PartitionCount: 3, Replicas: 3, CreatedEpoch: 4}
	for i := range 3 {
		tb.Partitions = append(tb.Partitions, client.Partition{ID: uint32(i), State: "ACTIVE", Master: nodes[i],
			Slaves: []string{nodes[(i+1)%3], nodes[(i+2)%3]}, Term: 1})
	}
	s.Topology = &client.Topology{Epoch: epoch, Tables: []client.Table{tb}}
	for i, a := range nodes {
		n := client.Node{Addr: a, State: "UP", Zone: fmt.Sprintf("zone-%c", 'a'+i), Weight: 100, LastHeartbeatUnixMs: taken.UnixMilli() - 300}
		s.Topology.Nodes = append(s.Topology.Nodes, n)
		info := client.Info{Server: &client.ServerInfo{Addr: a, Epoch: epoch}}
		for _, p := range tb.Partitions {
			ri := client.ReplicaInfo{Table: "t", Partition: p.ID, Role: "slave", Master: p.Master, State: "streaming", Term: 1, LSN: 100, AppliedLSN: 100}
			if p.Master == a {
				ri.Role, ri.State = "master", "serving"
			}
			info.Replication = append(info.Replication, ri)
		}
		s.Nodes = append(s.Nodes, survey.NodeReport{Node: n, Info: info})
	}
	return s
}

func replicaOf(s *survey.Snapshot, node int, partition uint32) *client.ReplicaInfo {
	return s.ReplicaInfo(nodes[node], "t", partition)
}

func TestHealthy(t *testing.T) {
	r := Check(healthy(), Options{})
	if !r.Healthy || len(r.Problems) != 0 {
		t.Fatalf("healthy cluster reported: %+v", r.Problems)
	}
	want := Summary{MetaMembers: 3, MetaReachable: 3, Nodes: 3, NodesUp: 3, Tables: 1, Partitions: 3, Replicas: 9}
	if r.Summary != want || r.Epoch != 7 || r.Leader != metas[0] {
		t.Fatalf("report %+v", r)
	}
}

// found is a problem as the tests name it: check@where.
func found(r Report) []string {
	var out []string
	for _, p := range r.Problems {
		s := string(p.Severity[0]) + ":" + p.Check
		if p.Partition != nil {
			s += fmt.Sprintf("@%d", *p.Partition)
		}
		if p.Node != "" {
			s += "@" + p.Node
		}
		out = append(out, s)
	}
	return out
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *survey.Snapshot)
		opts   Options
		want   []string
	}{
		{
			name: "meta member down",
			mutate: func(s *survey.Snapshot) {
				m := &s.Meta.Members[2]
				m.Reachable, m.Error = false, "connection refused"
			},
			want: []string{"w:meta_unreachable@" + metas[2]},
		},
		{
			name: "meta quorum lost",
			mutate: func(s *survey.Snapshot) {
				for i := 1; i < 3; i++ {
					s.Meta.Members[i].Reachable = false
				}
			},
			want: []string{"c:meta_quorum", "w:meta_unreachable@" + metas[1], "w:meta_unreachable@" + metas[2]},
		},
		{
			name: "no meta answers",
			mutate: func(s *survey.Snapshot) {
				for i := range s.Meta.Members {
					s.Meta.Members[i].Reachable = false
				}
				s.Topology, s.TopologyErr, s.Nodes = nil, errors.New("no meta server answered"), nil
			},
			want: []string{"c:meta_quorum", "c:topology", "w:meta_unreachable@" + metas[0], "w:meta_unreachable@" + metas[1], "w:meta_unreachable@" + metas[2]},
		},
		{
			name:   "leader split",
			mutate: func(s *survey.Snapshot) { s.Meta.Members[2].LeaderSeen = metas[2] },
			want:   []string{"c:meta_leader"},
		},
		{
			name: "no leader",
			mutate: func(s *survey.Snapshot) {
				s.Meta.Leader = ""
				for i := range s.Meta.Members {
					s.Meta.Members[i].LeaderSeen = ""
				}
			},
			want: []string{"c:meta_leader"},
		},
		{
			name:   "meta epochs differ",
			mutate: func(s *survey.Snapshot) { s.Meta.Members[1].Epoch = 6 },
			want:   []string{"w:meta_epoch"},
		},
		{
			name: "node down",
			mutate: func(s *survey.Snapshot) {
				s.Nodes[1].State = "DOWN"
				s.Nodes[1].Err = errors.New("connection refused")
				// The slaves of its partition cannot reach it: that is
				// the master's problem, not reported again per slave.
				replicaOf(s, 0, 1).State = "error: connection refused"
				replicaOf(s, 2, 1).State = "connecting"
			},
			// Node 1 masters partition 1 and is a slave of 0 and 2.
			want: []string{"c:master_down@1@" + nodes[1], "c:node_down@" + nodes[1],
				"w:replica_missing@0@" + nodes[1], "w:replica_missing@2@" + nodes[1]},
		},
		{
			name: "node not answering",
			mutate: func(s *survey.Snapshot) {
				s.Nodes[2].Err, s.Nodes[2].Info = errors.New("i/o timeout"), client.Info{}
			},
			want: []string{"c:node_unreachable@" + nodes[2]},
		},
		{
			name:   "node behind on epoch",
			mutate: func(s *survey.Snapshot) { s.Nodes[0].Info.Server.Epoch = 6 },
			want:   []string{"w:node_epoch@" + nodes[0]},
		},
		{
			name:   "node behind a change younger than the grace",
			mutate: func(s *survey.Snapshot) { advance(s, 8); s.Nodes[0].Info.Server.Epoch = 7 },
			opts:   Options{SettledEpoch: 7},
		},
		{
			name: "node behind the settled epoch",
			mutate: func(s *survey.Snapshot) {
				advance(s, 8)
				s.Nodes[0].Info.Server.Epoch = 6
				s.Nodes[1].Info.Server.Epoch = 7
			},
			opts: Options{SettledEpoch: 7},
			want: []string{"w:node_epoch@" + nodes[0]},
		},
		{
			name:   "node ahead of the survey's meta answer",
			mutate: func(s *survey.Snapshot) { s.Nodes[0].Info.Server.Epoch = 8 },
			opts:   Options{SettledEpoch: 7},
		},
		{
			name:   "node ahead, strict",
			mutate: func(s *survey.Snapshot) { s.Nodes[0].Info.Server.Epoch = 8 },
			want:   []string{"w:node_epoch@" + nodes[0]},
		},
		{
			name:   "meta member behind a change younger than the grace",
			mutate: func(s *survey.Snapshot) { advance(s, 8); s.Meta.Members[1].Epoch = 7 },
			opts:   Options{SettledEpoch: 7},
		},
		{
			name:   "meta member behind the settled epoch",
			mutate: func(s *survey.Snapshot) { advance(s, 8); s.Meta.Members[1].Epoch = 6 },
			opts:   Options{SettledEpoch: 7},
			want:   []string{"w:meta_epoch"},
		},
		{
			name:   "a cordoned node is information",
			mutate: func(s *survey.Snapshot) { s.Nodes[1].Cordoned = true },
			want:   []string{"i:node_cordoned@" + nodes[1]},
		},
		{
			name: "the scheduler repairing is no finding",
			mutate: func(s *survey.Snapshot) {
				s.Schedule = sched(false, true, 2, 0, "repairing: 2 replica(s) rebuilt")
			},
		},
		{
			name: "the scheduler cannot repair",
			mutate: func(s *survey.Snapshot) {
				s.Schedule = sched(false, true, 1, 0, "1 partition(s) under-replicated, not repairable: table t wants 3 replicas, 2 nodes receive")
			},
			want: []string{"w:scheduler"},
		},
		{
			name:   "paused with work to do",
			mutate: func(s *survey.Snapshot) { s.Schedule = sched(true, true, 1, 0, "paused") },
			want:   []string{"w:scheduler"},
		},
		{
			name:   "paused with masters imbalanced: the play's choice",
			mutate: func(s *survey.Snapshot) { s.Schedule = sched(true, true, 0, 4, "paused") },
			want:   []string{"i:scheduler"},
		},
		{
			name:   "paused, nothing to do",
			mutate: func(s *survey.Snapshot) { s.Schedule = sched(true, true, 0, 0, "paused") },
			want:   []string{"i:scheduler"},
		},
		{
			name:   "imbalance with master balance off",
			mutate: func(s *survey.Snapshot) { s.Schedule = sched(false, false, 0, 3, "masters imbalanced") },
			want:   []string{"w:scheduler"},
		},
		{
			// The canned cluster listens on 10.0.x.x.
			name:   "beyond loopback without the cluster secret",
			mutate: func(s *survey.Snapshot) { s.Security = &client.Security{AdminToken: true} },
			want:   []string{"w:security"},
		},
		{
			name:   "beyond loopback with both secrets, without TLS",
			mutate: func(s *survey.Snapshot) { s.Security = &client.Security{AdminToken: true, ClusterSecret: true} },
			want:   []string{"w:security"},
		},
		{
			name: "beyond loopback with both secrets and TLS",
			mutate: func(s *survey.Snapshot) {
				s.Security = &client.Security{AdminToken: true, ClusterSecret: true, TLS: true}
			},
		},
		{
			name: "a certificate expiring in a week",
			mutate: func(s *survey.Snapshot) {
				s.Certificates = []client.Certificate{
					{Addr: "10.0.0.1:9221", Subject: "CN=meta", NotAfter: s.Taken.Add(7 * 24 * time.Hour)},
					{Addr: "10.0.0.2:9221", Subject: "CN=meta", NotAfter: s.Taken.Add(90 * 24 * time.Hour)},
				}
			},
			want: []string{"w:certificate@10.0.0.1:9221"},
		},
		{
			name:   "one version everywhere",
			mutate: func(s *survey.Snapshot) { setVersions(s, "v1", "v1") },
		},
		{
			name:   "versions differ",
			mutate: func(s *survey.Snapshot) { setVersions(s, "v1", "v2") },
			want:   []string{"w:version_mixed"},
		},
		{
			name:   "versions differ during an upgrade",
			mutate: func(s *survey.Snapshot) { setVersions(s, "v1", "v2") },
			opts:   Options{Upgrading: true},
			want:   []string{"i:version_mixed"},
		},
		{
			name: "version of a node not answering, from its heartbeats",
			mutate: func(s *survey.Snapshot) {
				setVersions(s, "v1", "v1")
				s.Nodes[2].Err, s.Nodes[2].Info, s.Nodes[2].Version = errors.New("i/o timeout"), client.Info{}, "v0"
			},
			want: []string{"c:node_unreachable@" + nodes[2], "w:version_mixed"},
		},
		{
			name: "unknown versions are left out",
			mutate: func(s *survey.Snapshot) {
				setVersions(s, "v1", "v1")
				s.Meta.Members[0].Version = ""
				s.Nodes[1].Info.Server.Version = ""
			},
		},
		{
			name:   "no master",
			mutate: func(s *survey.Snapshot) { s.Topology.Tables[0].Partitions[2].Master = "" },
			want:   []string{"c:no_master@2", "w:replica_count@2"},
		},
		{
			name: "stuck and slowdown",
			mutate: func(s *survey.Snapshot) {
				s.Topology.Tables[0].Partitions[0].State = "STUCK"
				s.Topology.Tables[0].Partitions[1].State = "SLOWDOWN"
			},
			want: []string{"c:partition_state@0", "w:partition_state@1"},
		},
		{
			name: "replica missing on its node",
			mutate: func(s *survey.Snapshot) {
				s.Nodes[2].Info.Replication = slices.DeleteFunc(s.Nodes[2].Info.Replication, func(ri client.ReplicaInfo) bool { return ri.Partition == 0 })
			},
			want: []string{"w:replica_missing@0@" + nodes[2]},
		},
		{
			name:   "slave not streaming",
			mutate: func(s *survey.Snapshot) { replicaOf(s, 1, 0).State = "trysync" },
			want:   []string{"w:replica_state@0@" + nodes[1]},
		},
		{
			name:   "slave lagging",
			mutate: func(s *survey.Snapshot) { replicaOf(s, 0, 0).LSN = 2000 },
			want:   []string{"w:replica_lag@0@" + nodes[1], "w:replica_lag@0@" + nodes[2]},
		},
		{
			name:   "lag within a custom threshold",
			mutate: func(s *survey.Snapshot) { replicaOf(s, 0, 0).LSN = 2000 },
			opts:   Options{MaxLag: 5000},
		},
		{
			name:   "role mismatch",
			mutate: func(s *survey.Snapshot) { replicaOf(s, 2, 0).Role = "master" },
			want:   []string{"w:replica_role@0@" + nodes[2]},
		},
		{
			name:   "two replicas on one node",
			mutate: func(s *survey.Snapshot) { s.Topology.Tables[0].Partitions[0].Slaves[1] = nodes[0] },
			// The node holds one replica, the master: the slave's role
			// is wrong too.
			want: []string{"c:placement@0@" + nodes[0], "w:replica_role@0@" + nodes[0]},
		},
		{
			name:   "replicas share a zone needlessly",
			mutate: func(s *survey.Snapshot) { s.Nodes[2].Zone = "zone-b"; s.Nodes = append(s.Nodes, zoneNode("zone-c")) },
			want:   []string{"w:placement@0", "w:placement@1", "w:placement@2"},
		},
		{
			name: "shared zone is fine when zones are fewer than replicas",
			mutate: func(s *survey.Snapshot) {
				s.Nodes[2].Zone = "zone-b"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := healthy()
			tt.mutate(s)
			r := Check(s, tt.opts)
			got := found(r)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("problems:\n  %s\nwant:\n  %s\n%+v", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "), r.Problems)
			}
			healthy := !slices.ContainsFunc(tt.want, func(p string) bool { return !strings.HasPrefix(p, "i:") })
			if r.Healthy != healthy {
				t.Fatalf("healthy = %v with problems %v", r.Healthy, got)
			}
			for _, p := range r.Problems {
				if p.Message == "" || (p.Node != "" && !strings.Contains(p.Message, p.Node)) {
					t.Errorf("message %q does not name node %q", p.Message, p.Node)
				}
			}
		})
	}
}

// advance makes epoch the meta servers' and the topology's, as after a
// topology change; nodes keep theirs.
func advance(s *survey.Snapshot, epoch uint64) {
	s.Meta.Epoch, s.Topology.Epoch = epoch, epoch
	for i := range s.Meta.Members {
		s.Meta.Members[i].Epoch = epoch
	}
	for i := range s.Nodes {
		s.Nodes[i].Info.Server.Epoch = epoch
	}
}

// setVersions gives every meta server and node but the last version v, and
// the last node last.
func setVersions(s *survey.Snapshot, v, last string) {
	for i := range s.Meta.Members {
		s.Meta.Members[i].Version = v
	}
	for i := range s.Nodes {
		s.Nodes[i].Info.Server.Version = v
		s.Nodes[i].Version = v
	}
	s.Nodes[len(s.Nodes)-1].Info.Server.Version = last
}

// zoneNode is an idle UP node in zone, holding nothing.
func zoneNode(zone string) survey.NodeReport {
	n := client.Node{Addr: "10.0.1.9:9231", State: "UP", Zone: zone}
	return survey.NodeReport{Node: n, Info: client.Info{Server: &client.ServerInfo{Addr: n.Addr, Epoch: 7}}}
}

func TestWhere(t *testing.T) {
	id := uint32(3)
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{}, "cluster"},
		{Problem{Node: "n"}, "node n"},
		{Problem{Table: "t"}, "table t"},
		{Problem{Table: "t", Partition: &id, Node: "n"}, "table t partition 3 node n"},
	}
	for _, tt := range tests {
		if got := tt.p.Where(); got != tt.want {
			t.Errorf("Where(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

// sched is a scheduler status with short under-replicated partitions and
// imbalance switchovers of master imbalance.
func sched(paused, masterBalance bool, short int, imbalance uint32, doing string) *client.ScheduleStatus {
	st := &client.ScheduleStatus{Settings: client.ScheduleSettings{Paused: paused, MasterBalance: masterBalance}, Doing: doing, MasterImbalance: imbalance}
	for i := range short {
		st.UnderReplicated = append(st.UnderReplicated, client.Shortfall{Table: "t", Partition: uint32(i), Replicas: 1, Want: 2})
	}
	return st
}

// TestStartingNode: a node that does not answer because it is starting,
// DOWN or not yet, says how far it got.
func TestStartingNode(t *testing.T) {
	for _, state := range []string{"DOWN", "UP"} {
		t.Run(state, func(t *testing.T) {
			s := healthy()
			s.Nodes[1].State, s.Nodes[1].Err, s.Nodes[1].Info = state, errors.New("connection refused"), client.Info{}
			s.Nodes[1].Starting = &client.StartupProgress{Opened: 4512, Total: 10000, ElapsedMs: 5000}
			const want = "; starting: opened 4,512 of 10,000 replicas, 902/s, ETA 6s"
			for _, p := range Check(s, Options{}).Problems {
				if p.Node == nodes[1] && (p.Check == CheckNodeDown || p.Check == CheckNodeUnreachable) {
					if !strings.HasSuffix(p.Message, want) {
						t.Fatalf("%s: %q, want it to end %q", p.Check, p.Message, want)
					}
					return
				}
			}
			t.Fatal("no node_down or node_unreachable problem")
		})
	}
}
