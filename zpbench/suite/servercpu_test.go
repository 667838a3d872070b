package suite

import (
	"maps"
	"math"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name      string
		stat      string
		wantTicks uint64
		wantPPID  string
		wantOK    bool
	}{
		{"redis", "4242 (redis-server) S 1 4242 4242 0 -1 4194560 1123 0 0 0 150 75 0 0 20 0 5 0 123 0 0\n", 225, "1", true},
		{"command with spaces and parens", "77 (a (b) c) R 12 77 77 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 9 0 0", 7, "12", true},
		{"kernel thread", "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 12 0 0 20 0 1 0 2 0 0", 12, "0", true},
		{"truncated", "5 (x) S 1 5 5 0 -1 0 0 0 0 0 3", 0, "", false},
		{"no command", "garbage", 0, "", false},
		{"not a number", "5 (x) S 1 5 5 0 -1 0 0 0 0 0 u s 0 0", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ticks, ppid, ok := parseProcStat(tt.stat)
			if ticks != tt.wantTicks || ppid != tt.wantPPID || ok != tt.wantOK {
				t.Errorf("parseProcStat = %d, %q, %v; want %d, %q, %v", ticks, ppid, ok, tt.wantTicks, tt.wantPPID, tt.wantOK)
			}
		})
	}
}

func TestCPUPerOp(t *testing.T) {
	tests := []struct {
		secs float64
		ops  int64
		want float64
	}{
		{1.25, 50_000, 25},  // 1.25 CPU-seconds over 50k SETs: 25 µs each
		{0.5, 250_000, 2},   // Redis-like
		{0, 1000, 0},        // no tick in the window
		{1, 0, 0},           // nothing completed
		{-0.01, 1000, 0},    // a counter that went back (restart)
		{3.0, 1_000_000, 3}, // summed over three nodes
	}
	for _, tt := range tests {
		if got := cpuPerOp(tt.secs, tt.ops); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("cpuPerOp(%v, %d) = %v, want %v", tt.secs, tt.ops, got, tt.want)
		}
	}
}

const sampleExposition = `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.34
process_cpu_seconds_total_other 99
# HELP zeppelin_node_rocksdb_memtable_bytes Bytes of a replica's memtables.
zeppelin_node_rocksdb_memtable_bytes{partition="0",table="bench"} 1024
zeppelin_node_rocksdb_memtable_bytes{partition="1",table="bench"} 2048
zeppelin_node_memtable_bytes 3072
go_memstats_heap_inuse_bytes 8.388608e+06
zeppelin_node_build_info{rocksdb_build="debian librocksdb-dev 7.8.3-2",rocksdb_version="7.8.3"} 1
zeppelin_node_durability_info{binlog_fsync="interval",binlog_fsync_interval="10ms",rocksdb_wal="off"} 1
odd_info{a="x\"y\\z",b=""} 1
`

func TestPromSum(t *testing.T) {
	tests := []struct {
		name   string
		want   float64
		wantOK bool
	}{
		{"process_cpu_seconds_total", 12.34, true},
		{"zeppelin_node_rocksdb_memtable_bytes", 3072, true},
		{"zeppelin_node_memtable_bytes", 3072, true},
		{"go_memstats_heap_inuse_bytes", 8 << 20, true},
		{"process_cpu_seconds", 0, false}, // a prefix of a name is not the name
		{"missing_metric", 0, false},
	}
	for _, tt := range tests {
		got, ok := promSum(sampleExposition, tt.name)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("promSum(%s) = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestPromLabels(t *testing.T) {
	tests := []struct {
		name string
		want map[string]string
	}{
		{"zeppelin_node_build_info", map[string]string{"rocksdb_build": "debian librocksdb-dev 7.8.3-2", "rocksdb_version": "7.8.3"}},
		{"zeppelin_node_durability_info", map[string]string{"binlog_fsync": "interval", "binlog_fsync_interval": "10ms", "rocksdb_wal": "off"}},
		{"odd_info", map[string]string{"a": `x"y\z`, "b": ""}},
		{"missing_info", nil},
	}
	for _, tt := range tests {
		if got := promLabels(sampleExposition, tt.name); !maps.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("promLabels(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
