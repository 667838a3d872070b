package cmd

import (
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// The INFO sections as zpctl prints them in JSON and YAML. They are
// written out rather than the protobuf messages marshalled as they are,
// so that zero values are printed (the generated structs omit them) and
// the names are a stable interface whatever the protocol grows.

type serverJSON struct {
	Addr       string   `json:"addr"`
	Epoch      uint64   `json:"epoch"`
	Tables     []string `json:"tables"`
	Version    string   `json:"version"`
	UptimeMs   int64    `json:"uptime_ms"`
	LastPingMs int64    `json:"last_ping_ms"`
	MetaLeader string   `json:"meta_leader"`
}

type statsJSON struct {
	Table  string  `json:"table"`
	Ops    uint64  `json:"ops"`
	Reads  uint64  `json:"reads"`
	Writes uint64  `json:"writes"`
	Errors uint64  `json:"errors"`
	QPS    float64 `json:"qps"`
	// QuotaExceeded counts requests (keys, for MGET and MSET) the node
	// refused with QUOTA_EXCEEDED.
	QuotaExceeded uint64 `json:"quota_exceeded"`
}

type capacityJSON struct {
	Table       string `json:"table"`
	Replicas    uint32 `json:"replicas"`
	UsedBytes   uint64 `json:"used_bytes"`
	DBBytes     uint64 `json:"db_bytes"`
	BinlogBytes uint64 `json:"binlog_bytes"`
}

type peerJSON struct {
	Addr       string `json:"addr"`
	State      string `json:"state"`
	Term       uint64 `json:"term"`
	LSN        uint64 `json:"lsn"`
	LagRecords uint64 `json:"lag_records"`
}

type fullSyncJSON struct {
	State        string  `json:"state"`
	FilesTotal   uint64  `json:"files_total"`
	FilesFetched uint64  `json:"files_fetched"`
	BytesTotal   uint64  `json:"bytes_total"`
	BytesFetched uint64  `json:"bytes_fetched"`
	BytesPerSec  float64 `json:"bytes_per_sec"`
	StartedMs    int64   `json:"started_ms"`
	FinishedMs   int64   `json:"finished_ms"`
	LSN          uint64  `json:"lsn"`
}

type replicaInfoJSON struct {
	Table           string        `json:"table"`
	Partition       uint32        `json:"partition"`
	Role            string        `json:"role"`
	Master          string        `json:"master"`
	State           string        `json:"state"`
	Term            uint64        `json:"term"`
	LSN             uint64        `json:"lsn"`
	AppliedLSN      uint64        `json:"applied_lsn"`
	FirstLSN        uint64        `json:"first_lsn"`
	LagRecords      uint64        `json:"lag_records"`
	LagBytes        uint64        `json:"lag_bytes"`
	MinSyncReplicas uint32        `json:"min_sync_replicas"`
	Peers           []peerJSON    `json:"peers"`
	FullSync        *fullSyncJSON `json:"fullsync"`
}

func serverFromPB(s *zppb.ServerInfo) *serverJSON {
	if s == nil {
		return nil
	}
	return &serverJSON{Addr: s.GetAddr(), Epoch: s.GetEpoch(), Tables: nonNilStrings(s.GetTables()), Version: s.GetVersion(),
		UptimeMs: s.GetUptimeMs(), LastPingMs: s.GetLastPingMs(), MetaLeader: s.GetMetaLeader()}
}

func statsFromPB(in []*zppb.TableStats) []statsJSON {
	out := []statsJSON{}
	for _, s := range in {
		out = append(out, statsJSON{Table: s.GetTable(), Ops: s.GetOps(), Reads: s.GetReads(), Writes: s.GetWrites(), Errors: s.GetErrors(), QPS: s.GetQps(),
			QuotaExceeded: s.GetQuotaExceeded()})
	}
	return out
}

func capacityFromPB(in []*zppb.TableCapacity) []capacityJSON {
	out := []capacityJSON{}
	for _, c := range in {
		out = append(out, capacityJSON{Table: c.GetTable(), Replicas: c.GetReplicas(), UsedBytes: c.GetUsedBytes(),
			DBBytes: c.GetDbBytes(), BinlogBytes: c.GetBinlogBytes()})
	}
	return out
}

func replicationFromPB(in []*zppb.ReplicaInfo) []replicaInfoJSON {
	out := []replicaInfoJSON{}
	for _, r := range in {
		rj := replicaInfoJSON{Table: r.GetTable(), Partition: r.GetPartition(), Role: r.GetRole(), Master: r.GetMaster(),
			State: r.GetState(), Term: r.GetTerm(), LSN: r.GetLsn(), AppliedLSN: r.GetAppliedLsn(), FirstLSN: r.GetFirstLsn(),
			LagRecords: r.GetLagRecords(), LagBytes: r.GetLagBytes(), MinSyncReplicas: r.GetMinSyncReplicas(), Peers: []peerJSON{}}
		for _, p := range r.GetPeers() {
			rj.Peers = append(rj.Peers, peerJSON{Addr: p.GetAddr(), State: p.GetState(), Term: p.GetTerm(), LSN: p.GetLsn(), LagRecords: p.GetLagRecords()})
		}
		if f := r.GetFullsync(); f != nil {
			rj.FullSync = &fullSyncJSON{State: f.GetState(), FilesTotal: f.GetFilesTotal(), FilesFetched: f.GetFilesFetched(),
				BytesTotal: f.GetBytesTotal(), BytesFetched: f.GetBytesFetched(), BytesPerSec: f.GetBytesPerSec(),
				StartedMs: f.GetStartedMs(), FinishedMs: f.GetFinishedMs(), LSN: f.GetLsn()}
		}
		out = append(out, rj)
	}
	return out
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
