package client

import (
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// The admin types below are plain values, safe to keep and to change. Their
// JSON names are part of zpctl's machine-readable output: do not rename
// them.

// Topology is the cluster as a meta server described it.
type Topology struct {
	Epoch  uint64  `json:"epoch"`
	Tables []Table `json:"tables"`
	Nodes  []Node  `json:"nodes"`
}

// Table returns the table named name, nil when t has none.
func (t *Topology) Table(name string) *Table {
	for i := range t.Tables {
		if t.Tables[i].Name == name {
			return &t.Tables[i]
		}
	}
	return nil
}

// Table is one table of the topology.
type Table struct {
	Name            string `json:"name"`
	PartitionCount  uint32 `json:"partition_count"`
	Replicas        uint32 `json:"replicas"`
	MinSyncReplicas uint32 `json:"min_sync_replicas"`
	// CreatedEpoch tells a table from an earlier one of the same name.
	CreatedEpoch uint64      `json:"created_epoch"`
	Partitions   []Partition `json:"partitions"`
	// Quota is the table's cluster-wide limit; zero fields are unlimited.
	Quota Quota `json:"quota"`
	// Protected: the table has passwords, which its data commands need.
	Protected bool `json:"protected"`
	// Restoring: a restore is installing the table (TableSpec.Restoring);
	// nodes answer its data commands WAIT until FinishRestore.
	Restoring bool `json:"restoring"`
	// SplitSize: the scheduler splits a partition whose master holds more
	// bytes than this; 0, never.
	SplitSize uint64 `json:"split_size"`
}

// Quota limits a table's operations (keys) and bytes per second across the
// cluster; 0 is unlimited.
type Quota struct {
	OpsPerSec   uint64 `json:"ops_per_sec"`
	BytesPerSec uint64 `json:"bytes_per_sec"`
}

func (q Quota) pb() *zppb.Quota {
	if q == (Quota{}) {
		return nil
	}
	return &zppb.Quota{OpsPerSec: q.OpsPerSec, BytesPerSec: q.BytesPerSec}
}

// Partition is one slot range of a table.
type Partition struct {
	ID uint32 `json:"id"`
	// SlotBegin and SlotEnd are the half-open slot range [begin, end).
	SlotBegin uint32 `json:"slot_begin"`
	SlotEnd   uint32 `json:"slot_end"`
	// State is ACTIVE, SLOWDOWN or STUCK.
	State  string   `json:"state"`
	Master string   `json:"master"`
	Slaves []string `json:"slaves"`
	// Term is bumped each time the master changes.
	Term uint64 `json:"term"`
}

// Node is a data server as the meta servers know it.
type Node struct {
	Addr string `json:"addr"`
	// State is UP, DOWN or NODE_STATE_UNKNOWN.
	State  string `json:"state"`
	Zone   string `json:"zone"`
	Rack   string `json:"rack"`
	Weight uint32 `json:"weight"`
	// LastHeartbeatUnixMs is the Unix time, in milliseconds, of the last
	// PING the meta leader received; 0 when the leader has not heard from
	// the node yet, or could not be asked (PULL of a follower).
	LastHeartbeatUnixMs int64 `json:"last_heartbeat_unix_ms"`
	// RedisAddr is where the node serves the Redis protocol (RESP); empty
	// when it does not.
	RedisAddr string `json:"redis_addr,omitempty"`
	// Version is the node's version (lib/buildinfo.Version) as its PINGs
	// report it to the meta leader; empty when the leader could not be
	// asked or the node's binary predates version reporting.
	Version string `json:"version"`
	// Features are what the node's release can do that older ones cannot
	// (lib/buildinfo.Features, e.g. "slot-ranges"), as its PINGs report
	// them to the meta leader; empty like Version, and from a node of a
	// release before them. SPLIT needs "slot-ranges" on every UP node of
	// the table (docs/topology.md, "Version gating").
	Features []string `json:"features,omitempty"`
	// Cordoned nodes receive no new replica or master (zpctl node cordon).
	Cordoned bool `json:"cordoned"`
	// DownSinceUnixMs is when the meta leader marked the node DOWN (Unix
	// ms); 0 while it is UP, or when an older leader did not record it.
	DownSinceUnixMs int64 `json:"down_since_unix_ms,omitempty"`
	// Starting is how far the node is in opening its replicas while it
	// starts (before it listens and PINGs), as it last told the meta
	// leader; nil when it is not starting or the leader could not be
	// asked. ListNodes only: a Topology's nodes never have it.
	Starting *StartupProgress `json:"starting,omitempty"`
}

// StartupProgress is how far a starting node is in opening the replicas of
// the topology it saved.
type StartupProgress struct {
	Opened uint32 `json:"opened"`
	Total  uint32 `json:"total"`
	// StartedUnixMs is when the node began opening them (its clock).
	StartedUnixMs int64 `json:"started_unix_ms"`
	// ElapsedMs is how long it had been opening them when it reported.
	ElapsedMs int64 `json:"elapsed_ms"`
}

// PerSecond is how many replicas the node opened per second so far; 0
// before it opened any.
func (p StartupProgress) PerSecond() float64 {
	if p.ElapsedMs <= 0 {
		return 0
	}
	return float64(p.Opened) / (float64(p.ElapsedMs) / 1000)
}

// ETA is how long the rest would take at the rate so far, counted from
// the report; false before the node opened any.
func (p StartupProgress) ETA() (time.Duration, bool) {
	rate := p.PerSecond()
	if rate <= 0 {
		return 0, false
	}
	left := float64(p.Total) - float64(p.Opened)
	return time.Duration(max(left, 0) / rate * float64(time.Second)), true
}

// LastHeartbeat returns LastHeartbeatUnixMs as a time; the zero time when 0.
func (n Node) LastHeartbeat() time.Time {
	if n.LastHeartbeatUnixMs == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n.LastHeartbeatUnixMs)
}

// Location is where a key lives.
type Location struct {
	Table     string `json:"table"`
	Slot      uint16 `json:"slot"`
	Partition uint32 `json:"partition"`
	// Master is the master the client would send the key to: the cached
	// topology's, or a newer one a MOVE answer named.
	Master string   `json:"master"`
	Slaves []string `json:"slaves"`
	State  string   `json:"state"`
	Term   uint64   `json:"term"`
	// Epoch is the epoch of the cached topology.
	Epoch uint64 `json:"epoch"`
}

func topologyFromPB(t *zppb.Topology) *Topology {
	out := &Topology{Epoch: t.GetEpoch(), Tables: tablesFromPB(t.GetTables()), Nodes: nodesFromPB(t.GetNodes())}
	return out
}

func tablesFromPB(ts []*zppb.Table) []Table {
	out := make([]Table, 0, len(ts))
	for _, t := range ts {
		out = append(out, tableFromPB(t))
	}
	return out
}

func tableFromPB(t *zppb.Table) Table {
	n := t.GetPartitionCount()
	out := Table{
		Name:            t.GetName(),
		PartitionCount:  n,
		Replicas:        t.GetReplicas(),
		MinSyncReplicas: t.GetMinSyncReplicas(),
		CreatedEpoch:    t.GetCreatedEpoch(),
		Partitions:      make([]Partition, 0, len(t.GetPartitions())),
		Quota:           Quota{OpsPerSec: t.GetQuota().GetOpsPerSec(), BytesPerSec: t.GetQuota().GetBytesPerSec()},
		Protected:       tableauth.Protected(t),
		Restoring:       t.GetRestoring(),
		SplitSize:       t.GetSplitSize(),
	}
	for _, p := range t.GetPartitions() {
		begin, end := topo.SlotRange(t, p)
		out.Partitions = append(out.Partitions, Partition{
			ID:        p.GetId(),
			SlotBegin: begin,
			SlotEnd:   end,
			State:     p.GetState().String(),
			Master:    p.GetMaster(),
			Slaves:    nonNil(p.GetSlaves()),
			Term:      p.GetTerm(),
		})
	}
	return out
}

func nodesFromPB(ns []*zppb.Node) []Node {
	out := make([]Node, 0, len(ns))
	for _, n := range ns {
		out = append(out, Node{
			Addr:                n.GetAddr(),
			State:               n.GetState().String(),
			Zone:                n.GetZone(),
			Rack:                n.GetRack(),
			Weight:              n.GetWeight(),
			LastHeartbeatUnixMs: n.GetLastHeartbeatUnixMs(),
			RedisAddr:           n.GetRedisAddr(),
			Version:             n.GetVersion(),
			Features:            n.GetFeatures(),
			Cordoned:            n.GetCordoned(),
			DownSinceUnixMs:     n.GetDownSinceUnixMs(),
			Starting:            startupFromPB(n.GetStarting()),
		})
	}
	return out
}

func startupFromPB(p *zppb.StartupProgress) *StartupProgress {
	if p == nil {
		return nil
	}
	return &StartupProgress{Opened: p.GetOpened(), Total: p.GetTotal(), StartedUnixMs: p.GetStartedUnixMs(), ElapsedMs: p.GetElapsedMs()}
}

// nonNil keeps JSON output a list ([]) rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return append([]string(nil), s...)
}
