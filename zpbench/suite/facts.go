package suite

import (
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
)

// RocksDB is the RocksDB the zpnodes ran on.
type RocksDB struct {
	// Version is the linked library's, as zpnode reports it.
	Version string `json:"version"`
	// Build says which build it is: what the binaries were stamped with
	// (the Makefile's ZP_ROCKSDB_BUILD), or else what dpkg says of
	// librocksdb-dev.
	Build string `json:"build"`
	// BuildFrom says where Build comes from.
	BuildFrom string `json:"build_from"`
}

// String is the RocksDB row of the Machine table.
func (r *RocksDB) String() string {
	if r == nil {
		return "not run (no zpnode measured)"
	}
	return fmt.Sprintf("%s — %s (%s)", r.Version, r.Build, r.BuildFrom)
}

// rocksDBOf reads the RocksDB a zpnode runs from its build_info metric;
// when the binary carries no build, it falls back to zpbench's own stamp,
// then to dpkg's librocksdb-dev.
func rocksDBOf(ctx context.Context, metricsAddr string) (*RocksDB, error) {
	text, err := scrape(ctx, metricsAddr)
	if err != nil {
		return nil, err
	}
	l := promLabels(text, "zeppelin_node_build_info")
	if l == nil {
		return nil, fmt.Errorf("%s: no zeppelin_node_build_info", metricsAddr)
	}
	r := &RocksDB{Version: l["rocksdb_version"], Build: l["rocksdb_build"], BuildFrom: "zpnode's ZP_ROCKSDB_BUILD stamp"}
	switch {
	case r.Build != "":
	case buildinfo.RocksDB != "":
		r.Build, r.BuildFrom = buildinfo.RocksDB, "zpbench's ZP_ROCKSDB_BUILD stamp; zpnode has none"
	default:
		r.Build, r.BuildFrom = dpkgRocksDB(ctx), "dpkg; the binaries were built without ZP_ROCKSDB_BUILD"
	}
	return r, nil
}

// dpkgRocksDB describes Debian's librocksdb-dev as installed.
func dpkgRocksDB(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Version}", "librocksdb-dev").Output()
	if v := strings.TrimSpace(string(out)); err == nil && v != "" {
		return "debian librocksdb-dev " + v
	}
	return "unknown (librocksdb-dev not installed by dpkg)"
}

// zeppelinDurability formats the labels of zeppelin_node_durability_info.
func zeppelinDurability(l map[string]string) string {
	if l == nil {
		return "unknown"
	}
	s := "binlog fsync `" + l["binlog_fsync"] + "`"
	if l["binlog_fsync"] == "interval" {
		s += " (every " + l["binlog_fsync_interval"] + ")"
	}
	return s + ", RocksDB WAL " + l["rocksdb_wal"]
}

// durability says what an acknowledged write of sys survives, as the
// system reports it running: zpnode's metrics, Redis's CONFIG GET.
func (s *system) durability(ctx context.Context) (string, error) {
	switch s.kind {
	case "zeppelin":
		var seen []string
		for _, addr := range s.metricsAddrs {
			text, err := scrape(ctx, addr)
			if err != nil {
				return "unknown", err
			}
			d := zeppelinDurability(promLabels(text, "zeppelin_node_durability_info"))
			if len(seen) == 0 || seen[len(seen)-1] != d {
				seen = append(seen, d)
			}
		}
		return strings.Join(seen, "; "), nil
	case "redis", "redis-cluster":
		rdb := redis.NewClient(&redis.Options{Addr: s.addr, DisableIdentity: true, MaxRetries: -1})
		defer rdb.Close()
		cfg, err := rdb.ConfigGet(ctx, "append*").Result()
		if err != nil {
			return "unknown", err
		}
		if cfg["appendonly"] != "yes" {
			return "AOF off (`appendonly " + cfg["appendonly"] + "`)", nil
		}
		return "AOF on, `appendfsync " + cfg["appendfsync"] + "`", nil
	}
	return "none (stores nothing)", nil
}
