package server

import (
	"cmp"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func (s *Server) info(req *zppb.InfoRequest) (*zppb.Response, error) {
	topo := s.topo.Load()
	if req.Table != "" {
		if _, ok := topo.tables[req.Table]; !ok {
			return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found", req.Table)
		}
	}
	out := &zppb.InfoResponse{}
	switch req.Section {
	case zppb.InfoSection_INFO_SERVER:
		si := &zppb.ServerInfo{
			Addr:       s.cfg.Addr,
			Epoch:      topo.epoch,
			Version:    buildinfo.Version,
			UptimeMs:   time.Since(s.startedAt).Milliseconds(),
			LastPingMs: s.lastPingMs.Load(),
			// Kept apart from the fields above, for a change of them to
			// merge cleanly.
			FullsyncRate: s.fullsync.Rate(),
		}
		if l := s.metaLeader.Load(); l != nil {
			si.MetaLeader = *l
		}
		si.Replicas = s.replicaCounts()
		for name := range topo.tables {
			si.Tables = append(si.Tables, name)
		}
		slices.Sort(si.Tables)
		out.Server = si
	case zppb.InfoSection_INFO_STATS:
		out.Stats = s.stats.snapshot(req.Table)
		slices.SortFunc(out.Stats, func(a, b *zppb.TableStats) int { return cmp.Compare(a.Table, b.Table) })
	case zppb.InfoSection_INFO_CAPACITY:
		byTable := make(map[string]*zppb.TableCapacity)
		for k, r := range s.replicas.snapshot() {
			if req.Table != "" && k.table != req.Table {
				continue
			}
			c := byTable[k.table]
			if c == nil {
				c = &zppb.TableCapacity{Table: k.table}
				byTable[k.table] = c
				out.Capacity = append(out.Capacity, c)
			}
			db, bl := r.Sizes()
			c.DbBytes += uint64(db)
			c.BinlogBytes += uint64(bl)
			c.UsedBytes += uint64(db + bl)
			c.Replicas++
		}
		slices.SortFunc(out.Capacity, func(a, b *zppb.TableCapacity) int { return cmp.Compare(a.Table, b.Table) })
	case zppb.InfoSection_INFO_REPLICATION:
		for k, r := range s.replicas.snapshot() {
			if req.Table == "" || k.table == req.Table {
				out.Replication = append(out.Replication, r.Info())
			}
		}
		slices.SortFunc(out.Replication, func(a, b *zppb.ReplicaInfo) int {
			return cmp.Or(cmp.Compare(a.Table, b.Table), cmp.Compare(a.Partition, b.Partition))
		})
	case zppb.InfoSection_INFO_SLOWLOG:
		out.Slowlog = s.slow.list(req.Table)
		if req.Table == "" && topo.protected {
			// A node-wide slow log, which needs no password, names no
			// key of a table with passwords: its keys are its data.
			for i, e := range out.Slowlog {
				if tableauth.Protected(topo.tables[e.Table]) {
					e = proto.Clone(e).(*zppb.SlowlogEntry)
					e.Key = nil
					out.Slowlog[i] = e
				}
			}
		}
	case zppb.InfoSection_INFO_LOG:
		level := slog.LevelInfo
		if req.LogLevel != "" {
			if err := level.UnmarshalText([]byte(req.LogLevel)); err != nil {
				return nil, status.New(zppb.Code_INVALID_ARGUMENT, "log level %q: want debug, info, warn or error", req.LogLevel)
			}
		}
		out.Log = s.logs.lines(int(req.LogLines), level)
	default:
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "unknown INFO section %d", req.Section)
	}
	return &zppb.Response{Result: &zppb.Response_Info{Info: out}}, nil
}

// replicaCounts is how many replicas the node has, open, parked, watched
// and still to open, for INFO server.
func (s *Server) replicaCounts() *zppb.ReplicaCounts {
	watched, _ := s.watch.Watching()
	c := &zppb.ReplicaCounts{
		Assigned: uint32(s.assigned.Load()),
		Opening:  uint32(s.opening.Load()),
		Watched:  uint32(watched),
	}
	for _, r := range s.replicas.snapshot() {
		c.Open++
		if r.Parked() {
			c.Parked++
		}
	}
	return c
}
