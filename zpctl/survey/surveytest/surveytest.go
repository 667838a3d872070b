// Package surveytest holds canned surveys of a cluster, for tests of what
// zpctl renders from them: golden files need the same addresses, times
// and positions on every run.
package surveytest

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

// T0 is when the canned surveys are taken.
var T0 = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

// The canned cluster's meta servers and nodes.
var (
	Metas = []string{"127.0.0.1:9221", "127.0.0.1:9222", "127.0.0.1:9223"}
	Nodes = []string{"127.0.0.1:9231", "127.0.0.1:9232", "127.0.0.1:9233"}
)

// Healthy is a sound cluster at epoch 7: 3 meta servers, 3 nodes
// in 3 zones, table default (8 partitions, 3 replicas) and table users
// (4 partitions, 2 replicas, min_sync 1, a quota of 500 ops/s and
// 1 MiB/s, over which each node refused some requests); every slave
// streaming at its master's lsn.
func Healthy() *survey.Snapshot {
	const epoch = 7
	s := &survey.Snapshot{Taken: T0, Meta: &client.MetaStatus{Leader: Metas[0], Epoch: epoch}}
	for i, a := range Metas {
		st := "Follower"
		if i == 0 {
			st = "Leader"
		}
		s.Meta.Members = append(s.Meta.Members, client.MetaMember{ID: a, Addr: a, Suffrage: "voter", Leader: i == 0,
			LeaderSeen: Metas[0], Reachable: true, State: st, Term: 3, CommitIndex: 41, AppliedIndex: 41, Epoch: epoch})
	}
	tables := []client.Table{
		{Name: "default", PartitionCount: 8, Replicas: 3, CreatedEpoch: 4},
		{Name: "users", PartitionCount: 4, Replicas: 2, MinSyncReplicas: 1, CreatedEpoch: 6,
			Quota: client.Quota{OpsPerSec: 500, BytesPerSec: 1 << 20}},
	}
	for ti := range tables {
		tb := &tables[ti]
		for i := range tb.PartitionCount {
			begin, end := keyspace.SlotRange(i, tb.PartitionCount)
			p := client.Partition{ID: i, SlotBegin: begin, SlotEnd: end, State: "ACTIVE", Master: Nodes[int(i)%3],
				Term: 1 + uint64(i%2), Slaves: []string{}}
			for r := 1; r < int(tb.Replicas); r++ {
				p.Slaves = append(p.Slaves, Nodes[(int(i)+r)%3])
			}
			tb.Partitions = append(tb.Partitions, p)
		}
	}
	s.Topology = &client.Topology{Epoch: epoch, Tables: tables}
	for i, a := range Nodes {
		n := client.Node{Addr: a, State: "UP", Zone: fmt.Sprintf("zone-%c", 'a'+i), Rack: fmt.Sprintf("r%d", i+1), Weight: 100,
			LastHeartbeatUnixMs: T0.UnixMilli() - 400, RedisAddr: fmt.Sprintf("127.0.0.1:%d", 9241+i)}
		s.Topology.Nodes = append(s.Topology.Nodes, n)
		info := client.Info{Server: &client.ServerInfo{Addr: a, Epoch: epoch, Version: "dev", UptimeMs: int64(3600_000 * (i + 1)),
			Tables: []string{"default", "users"}, LastPingMs: T0.UnixMilli() - 400, MetaLeader: Metas[0]}}
		for _, tb := range tables {
			held := uint32(0)
			for _, p := range tb.Partitions {
				lsn := 1000 + uint64(p.ID)*10
				role := ""
				switch {
				case p.Master == a:
					role = "master"
				case slices.Contains(p.Slaves, a):
					role = "slave"
				default:
					continue
				}
				held++
				ri := client.ReplicaInfo{Table: tb.Name, Partition: p.ID, Role: role, Master: p.Master, State: "streaming",
					Term: p.Term, LSN: lsn, AppliedLSN: lsn}
				if role == "master" {
					ri.State = "serving"
				}
				info.Replication = append(info.Replication, ri)
			}
			st := client.TableStats{Table: tb.Name, QPS: float64(100*(i+1)) + 0.5, Ops: 5000}
			if tb.Quota != (client.Quota{}) {
				st.QuotaExceeded = uint64(40 * (i + 1))
			}
			info.Stats = append(info.Stats, st)
			info.Capacity = append(info.Capacity, client.TableCapacity{Table: tb.Name, UsedBytes: uint64(held) << 20, Replicas: held})
		}
		s.Nodes = append(s.Nodes, survey.NodeReport{Node: n, Info: info})
	}
	return s
}

// Degraded is Healthy a moment later at epoch 8: node
// 9232 is DOWN (it masters default/1, default/4, default/7 and users/1),
// users/2's slave lags 1500 records, users/3 is SLOWDOWN.
func Degraded() *survey.Snapshot {
	s := Healthy()
	s.Taken = T0.Add(5 * time.Second)
	s.Topology.Epoch, s.Meta.Epoch = 8, 8
	for i := range s.Meta.Members {
		s.Meta.Members[i].Epoch = 8
	}
	s.Topology.Nodes[1].State = "DOWN"
	s.Nodes[1].State = "DOWN"
	s.Nodes[1].Err = errors.New("connection refused")
	s.Nodes[1].Info = client.Info{}
	for i := range s.Nodes {
		if si := s.Nodes[i].Info.Server; si != nil {
			si.Epoch = 8
		}
	}
	s.ReplicaInfo(Nodes[2], "users", 2).LSN += 1500 // the master, ahead of its slave
	s.Topology.Tables[1].Partitions[3].State = "SLOWDOWN"
	return s
}

// Migrating is Healthy with topology moves (as MOVE_STATUS reports them):
// move 11 migrates default/3's slave from 9231 to a new node 9234 and
// has copied 40% of its full sync; move 12 hands users/1 to 9233 and is
// STUCK; move 10 (a failover of default/0) is DONE and move 9 FAILED.
// Node 9234 is UP and holds only the replica being copied.
func Migrating() *survey.Snapshot {
	s := Healthy()
	const newNode = "127.0.0.1:9234"
	s.Topology.Nodes = append(s.Topology.Nodes, client.Node{Addr: newNode, State: "UP", Zone: "zone-d", Rack: "r4", Weight: 100,
		LastHeartbeatUnixMs: T0.UnixMilli() - 300})
	s.Nodes = append(s.Nodes, survey.NodeReport{Node: s.Topology.Nodes[3], Info: client.Info{
		Server:      &client.ServerInfo{Addr: newNode, Epoch: 7, Version: "dev", UptimeMs: 120_000, LastPingMs: T0.UnixMilli() - 300, MetaLeader: Metas[0]},
		Replication: []client.ReplicaInfo{{Table: "default", Partition: 3, Role: "slave", Master: Nodes[0], State: "fullsync", Term: 2}},
		Capacity:    []client.TableCapacity{{Table: "default", UsedBytes: 100 << 20, Replicas: 1}},
	}})
	ms := func(d time.Duration) int64 { return T0.Add(-d).UnixMilli() }
	s.Moves = []client.Move{
		{ID: 9, Kind: client.MoveMigrate, Table: "users", Partition: 0, From: Nodes[1], To: Nodes[2], State: client.MoveFailed,
			Error: "target 127.0.0.1:9233 went DOWN", Origin: "manual", CreatedMs: ms(9 * time.Minute), UpdatedMs: ms(8 * time.Minute)},
		{ID: 10, Kind: client.MoveSetMaster, Table: "default", Partition: 0, From: Nodes[1], To: Nodes[0], State: client.MoveDone,
			Origin: "manual", CreatedMs: ms(3*time.Minute + 400*time.Millisecond), UpdatedMs: ms(3 * time.Minute), StuckMs: 84},
		{ID: 11, Kind: client.MoveMigrate, Table: "default", Partition: 3, From: Nodes[1], To: newNode, State: client.MoveCatchingUp,
			Origin: "expand", CreatedMs: ms(90 * time.Second), UpdatedMs: ms(21 * time.Second),
			BytesTotal: 256 << 20, BytesCopied: 100 << 20, BytesPerSec: 12 << 20, EtaMs: 13_000, RecordsBehind: 48_211},
		{ID: 12, Kind: client.MoveSetMaster, Table: "users", Partition: 1, From: Nodes[1], To: Nodes[2], State: client.MoveStuck,
			Origin: "manual", CreatedMs: ms(2 * time.Second), UpdatedMs: ms(40 * time.Millisecond), RecordsBehind: 3},
	}
	// The move's target is a slave already, catching up.
	p := &s.Topology.Tables[0].Partitions[3]
	p.Slaves = append(p.Slaves, newNode)
	s.Topology.Tables[1].Partitions[1].State = "STUCK"
	return s
}
