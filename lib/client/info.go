package client

import (
	"context"
	"fmt"
	"sync"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// InfoSection is one part of what a node tells about itself.
type InfoSection int

// The INFO sections.
const (
	// InfoServer is the node's address, version, uptime, epoch and last
	// PING.
	InfoServer InfoSection = iota
	// InfoStats is requests per table.
	InfoStats
	// InfoCapacity is bytes on disk per table.
	InfoCapacity
	// InfoReplication is every replica's role, state, position and lag.
	InfoReplication
	// InfoSlowlog is the node's slow log.
	InfoSlowlog
)

// AllInfoSections are the sections InfoNodes asks for when given none: all
// but the slow log.
var AllInfoSections = []InfoSection{InfoServer, InfoStats, InfoCapacity, InfoReplication}

func (s InfoSection) pb() zppb.InfoSection {
	switch s {
	case InfoStats:
		return zppb.InfoSection_INFO_STATS
	case InfoCapacity:
		return zppb.InfoSection_INFO_CAPACITY
	case InfoReplication:
		return zppb.InfoSection_INFO_REPLICATION
	case InfoSlowlog:
		return zppb.InfoSection_INFO_SLOWLOG
	}
	return zppb.InfoSection_INFO_SERVER
}

// Info is what a node answered to INFO: the sections asked for, the others
// empty.
type Info struct {
	// Server is nil unless InfoServer was asked.
	Server      *ServerInfo
	Stats       []TableStats
	Capacity    []TableCapacity
	Replication []ReplicaInfo
	Slowlog     []SlowlogEntry
}

// ServerInfo is the node itself.
type ServerInfo struct {
	Addr    string   `json:"addr"`
	Epoch   uint64   `json:"epoch"`
	Tables  []string `json:"tables"`
	Version string   `json:"version"`
	// UptimeMs is milliseconds since the node started.
	UptimeMs int64 `json:"uptime_ms"`
	// LastPingMs is the Unix time in milliseconds of the last PING the
	// meta leader answered; 0 when none has.
	LastPingMs int64  `json:"last_ping_ms"`
	MetaLeader string `json:"meta_leader"`
	// Replicas is where the node stands with its replicas; nil from a
	// node too old to say.
	Replicas *ReplicaCounts `json:"replicas"`
	// FullSyncRate is the bytes per second the node serves full syncs at
	// (zpctl schedule set fullsync-rate); 0 unlimited.
	FullSyncRate uint64 `json:"fullsync_rate"`
}

// ReplicaCounts is how many replicas a node has and how far it is in
// opening them (a table of thousands of partitions).
type ReplicaCounts struct {
	// Assigned is how many the topology the node runs gives it.
	Assigned uint32 `json:"assigned"`
	// Open serve requests, Parked ones among them with their RocksDB
	// closed until a request needs it.
	Open   uint32 `json:"open"`
	Parked uint32 `json:"parked"`
	// Opening are being opened now.
	Opening uint32 `json:"opening"`
	// Watched are open slave replicas of idle partitions, which hold no
	// connection of their own: the node waits for all of them in one
	// BINLOG_WATCH per master node.
	Watched uint32 `json:"watched"`
}

// TableStats counts one table's requests on one node since it started.
type TableStats struct {
	Table  string `json:"table"`
	Ops    uint64 `json:"ops"`
	Reads  uint64 `json:"reads"`
	Writes uint64 `json:"writes"`
	Errors uint64 `json:"errors"`
	// QPS is operations per second over the last few seconds.
	QPS float64 `json:"qps"`
	// QuotaExceeded counts requests (keys, for MGET and MSET) the node
	// refused with QUOTA_EXCEEDED.
	QuotaExceeded uint64 `json:"quota_exceeded"`
}

// TableCapacity is the bytes one table's replicas hold on one node's disk.
type TableCapacity struct {
	Table    string `json:"table"`
	Replicas uint32 `json:"replicas"`
	// UsedBytes is DBBytes (RocksDB files) plus BinlogBytes.
	UsedBytes   uint64 `json:"used_bytes"`
	DBBytes     uint64 `json:"db_bytes"`
	BinlogBytes uint64 `json:"binlog_bytes"`
}

// ReplicaInfo is one partition replica on a node.
type ReplicaInfo struct {
	Table     string `json:"table"`
	Partition uint32 `json:"partition"`
	// Role is "master" or "slave".
	Role   string `json:"role"`
	Master string `json:"master"`
	// State is the replication state, e.g. "serving", "idle",
	// "connecting", "streaming".
	State string `json:"state"`
	// Term and LSN are the position of the replica's last binlog record;
	// AppliedLSN is the last one applied to its DB, FirstLSN the oldest
	// its binlog keeps.
	Term       uint64 `json:"term"`
	LSN        uint64 `json:"lsn"`
	AppliedLSN uint64 `json:"applied_lsn"`
	FirstLSN   uint64 `json:"first_lsn"`
	// LagRecords is how far a slave is behind its master; LagBytes an
	// estimate of the same in bytes.
	LagRecords      uint64 `json:"lag_records"`
	LagBytes        uint64 `json:"lag_bytes"`
	MinSyncReplicas uint32 `json:"min_sync_replicas"`
	// Peers are the slaves as a master sees them; empty on a slave.
	Peers []PeerPosition `json:"peers"`
	// FullSync is a slave's current or last full sync; nil when it has
	// had none.
	FullSync *FullSyncProgress `json:"fullsync"`
}

// PeerPosition is one slave as its master sees it.
type PeerPosition struct {
	Addr       string `json:"addr"`
	State      string `json:"state"`
	Term       uint64 `json:"term"`
	LSN        uint64 `json:"lsn"`
	LagRecords uint64 `json:"lag_records"`
}

// FullSyncProgress is a slave's copy of its master's checkpoint.
type FullSyncProgress struct {
	// State is "running", "done" or "failed: ...".
	State        string `json:"state"`
	FilesTotal   uint64 `json:"files_total"`
	FilesFetched uint64 `json:"files_fetched"`
	// BytesTotal is the checkpoint's size, BytesFetched what was
	// transferred of it (files the slave already had are not).
	BytesTotal   uint64  `json:"bytes_total"`
	BytesFetched uint64  `json:"bytes_fetched"`
	BytesPerSec  float64 `json:"bytes_per_sec"`
	// StartedMs and FinishedMs are Unix milliseconds; FinishedMs is 0
	// while it runs.
	StartedMs  int64 `json:"started_ms"`
	FinishedMs int64 `json:"finished_ms"`
	// LSN is the checkpoint's position.
	LSN uint64 `json:"lsn"`
}

// SlowlogEntry is one request that took at least the node's slow-log
// threshold.
type SlowlogEntry struct {
	// TimeMs is when it started, in Unix milliseconds.
	TimeMs  int64
	Command string
	Table   string
	// Key is the request's key cut to 64 bytes; empty for commands
	// without one.
	Key        []byte
	DurationUs int64
	// Code is the answer's status code, e.g. "OK", "TIMEOUT".
	Code string
}

func infoFromPB(in *zppb.InfoResponse) Info {
	var out Info
	if s := in.GetServer(); s != nil {
		out.Server = &ServerInfo{Addr: s.GetAddr(), Epoch: s.GetEpoch(), Tables: nonNil(s.GetTables()), Version: s.GetVersion(),
			UptimeMs: s.GetUptimeMs(), LastPingMs: s.GetLastPingMs(), MetaLeader: s.GetMetaLeader(),
			FullSyncRate: s.GetFullsyncRate()}
		if c := s.GetReplicas(); c != nil {
			out.Server.Replicas = &ReplicaCounts{Assigned: c.GetAssigned(), Open: c.GetOpen(), Parked: c.GetParked(),
				Opening: c.GetOpening(), Watched: c.GetWatched()}
		}
	}
	for _, s := range in.GetStats() {
		out.Stats = append(out.Stats, TableStats{Table: s.GetTable(), Ops: s.GetOps(), Reads: s.GetReads(), Writes: s.GetWrites(),
			Errors: s.GetErrors(), QPS: s.GetQps(), QuotaExceeded: s.GetQuotaExceeded()})
	}
	for _, c := range in.GetCapacity() {
		out.Capacity = append(out.Capacity, TableCapacity{Table: c.GetTable(), Replicas: c.GetReplicas(), UsedBytes: c.GetUsedBytes(),
			DBBytes: c.GetDbBytes(), BinlogBytes: c.GetBinlogBytes()})
	}
	for _, r := range in.GetReplication() {
		ri := ReplicaInfo{Table: r.GetTable(), Partition: r.GetPartition(), Role: r.GetRole(), Master: r.GetMaster(),
			State: r.GetState(), Term: r.GetTerm(), LSN: r.GetLsn(), AppliedLSN: r.GetAppliedLsn(), FirstLSN: r.GetFirstLsn(),
			LagRecords: r.GetLagRecords(), LagBytes: r.GetLagBytes(), MinSyncReplicas: r.GetMinSyncReplicas(), Peers: []PeerPosition{}}
		for _, p := range r.GetPeers() {
			ri.Peers = append(ri.Peers, PeerPosition{Addr: p.GetAddr(), State: p.GetState(), Term: p.GetTerm(), LSN: p.GetLsn(), LagRecords: p.GetLagRecords()})
		}
		if f := r.GetFullsync(); f != nil {
			ri.FullSync = &FullSyncProgress{State: f.GetState(), FilesTotal: f.GetFilesTotal(), FilesFetched: f.GetFilesFetched(),
				BytesTotal: f.GetBytesTotal(), BytesFetched: f.GetBytesFetched(), BytesPerSec: f.GetBytesPerSec(),
				StartedMs: f.GetStartedMs(), FinishedMs: f.GetFinishedMs(), LSN: f.GetLsn()}
		}
		out.Replication = append(out.Replication, ri)
	}
	for _, e := range in.GetSlowlog() {
		out.Slowlog = append(out.Slowlog, SlowlogEntry{TimeMs: e.GetTimeMs(), Command: e.GetCommand(), Table: e.GetTable(),
			Key: e.GetKey(), DurationUs: e.GetDurationUs(), Code: e.GetCode()})
	}
	return out
}

// Info asks one node for a section of its state, for one table or, when
// table is empty, for all. One attempt: a diagnostic should show what the
// node says now, not what it says after retries.
func (c *core) Info(ctx context.Context, nodeAddr string, section InfoSection, table string) (Info, error) {
	in, err := c.info(ctx, nodeAddr, &zppb.InfoRequest{Section: section.pb(), Table: table})
	if err != nil {
		return Info{}, err
	}
	return infoFromPB(in), nil
}

// LogLine is one record of a node's log.
type LogLine struct {
	// TimeMs is when it was logged, in Unix milliseconds.
	TimeMs int64 `json:"time_ms"`
	// Level is "INFO", "WARN" or "ERROR".
	Level   string `json:"level"`
	Message string `json:"message"`
	// Attrs are the record's attributes as key=value text.
	Attrs string `json:"attrs"`
}

// NodeLog asks one node for its last lines log records (0: all it keeps)
// at level or above ("debug", "info", "warn", "error"; "" is info),
// oldest first. One attempt, as Info.
func (c *core) NodeLog(ctx context.Context, nodeAddr string, lines int, level string) ([]LogLine, error) {
	if lines < 0 {
		return nil, fmt.Errorf("client: node log: %w", status.New(zppb.Code_INVALID_ARGUMENT, "%d lines", lines))
	}
	in, err := c.info(ctx, nodeAddr, &zppb.InfoRequest{Section: zppb.InfoSection_INFO_LOG, LogLines: uint32(lines), LogLevel: level})
	if err != nil {
		return nil, err
	}
	out := make([]LogLine, 0, len(in.GetLog()))
	for _, l := range in.GetLog() {
		out = append(out, LogLine{TimeMs: l.GetTimeMs(), Level: l.GetLevel(), Message: l.GetMessage(), Attrs: l.GetAttrs()})
	}
	return out, nil
}

// info sends one INFO request to a node, one attempt.
func (c *core) info(ctx context.Context, nodeAddr string, req *zppb.InfoRequest) (*zppb.InfoResponse, error) {
	if c.closed.Load() {
		return nil, fmt.Errorf("client: info: %w", ErrClosed)
	}
	if nodeAddr == "" {
		return nil, fmt.Errorf("client: info: %w", status.New(zppb.Code_INVALID_ARGUMENT, "empty node address"))
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.callNode(ctx, nodeAddr, &zppb.Request{Cmd: &zppb.Request_Info{Info: req}})
	if err == nil {
		err = status.FromResponse(resp)
	}
	if err != nil {
		return nil, fmt.Errorf("client: info %s: %w", nodeAddr, err)
	}
	return resp.GetInfo(), nil
}

// NodeInfo is what one node answered to the INFO sections InfoNodes asked
// for.
type NodeInfo struct {
	Addr string
	// Info holds every section that answered.
	Info Info
	// Err is the failure of the first section (in the order asked) that
	// did not answer; nil when all did.
	Err error
}

// InfoNodes asks each node in addrs for each of sections (AllInfoSections
// when none is given), for one table or, when table is empty, for all. All
// the calls run in parallel with one attempt each, so a survey of the
// cluster takes one round trip, and a dead node costs its dial or ctx's
// deadline, not the sum over nodes. The result has one entry per address,
// in the order given; a node that failed has what it did answer and Err.
func (c *core) InfoNodes(ctx context.Context, addrs []string, table string, sections ...InfoSection) []NodeInfo {
	if len(sections) == 0 {
		sections = AllInfoSections
	}
	out := make([]NodeInfo, len(addrs))
	answers := make([][]Info, len(addrs))
	errs := make([][]error, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		answers[i] = make([]Info, len(sections))
		errs[i] = make([]error, len(sections))
		for j, sec := range sections {
			wg.Go(func() {
				answers[i][j], errs[i][j] = c.Info(ctx, addr, sec, table)
			})
		}
	}
	wg.Wait()
	for i, addr := range addrs {
		ni := NodeInfo{Addr: addr}
		for j := range sections {
			if err := errs[i][j]; err != nil {
				if ni.Err == nil {
					ni.Err = err
				}
				continue
			}
			a := answers[i][j]
			if a.Server != nil {
				ni.Info.Server = a.Server
			}
			ni.Info.Stats = append(ni.Info.Stats, a.Stats...)
			ni.Info.Capacity = append(ni.Info.Capacity, a.Capacity...)
			ni.Info.Replication = append(ni.Info.Replication, a.Replication...)
			ni.Info.Slowlog = append(ni.Info.Slowlog, a.Slowlog...)
		}
		out[i] = ni
	}
	return out
}
