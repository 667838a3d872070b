package suite

import (
	"strings"
	"testing"
)

func TestZeppelinDurability(t *testing.T) {
	tests := []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"binlog_fsync": "interval", "binlog_fsync_interval": "10ms", "rocksdb_wal": "off"},
			"binlog fsync `interval` (every 10ms), RocksDB WAL off"},
		{map[string]string{"binlog_fsync": "always", "binlog_fsync_interval": "10ms", "rocksdb_wal": "off"},
			"binlog fsync `always`, RocksDB WAL off"},
		{map[string]string{"binlog_fsync": "none", "binlog_fsync_interval": "10ms", "rocksdb_wal": "on"},
			"binlog fsync `none`, RocksDB WAL on"},
		{nil, "unknown"},
	}
	for _, tt := range tests {
		if got := zeppelinDurability(tt.labels); got != tt.want {
			t.Errorf("zeppelinDurability(%v) = %q, want %q", tt.labels, got, tt.want)
		}
	}
}

func TestRocksDBString(t *testing.T) {
	var none *RocksDB
	if got := none.String(); !strings.HasPrefix(got, "not run") {
		t.Errorf("nil RocksDB: %q", got)
	}
	r := &RocksDB{Version: "7.8.3", Build: "debian librocksdb-dev 7.8.3-2", BuildFrom: "zpnode's ZP_ROCKSDB_BUILD stamp"}
	if got, want := r.String(), "7.8.3 — debian librocksdb-dev 7.8.3-2 (zpnode's ZP_ROCKSDB_BUILD stamp)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
