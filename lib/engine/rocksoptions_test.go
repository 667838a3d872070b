package engine

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// rocksOptions returns the DB-wide options RocksDB recorded in the newest
// OPTIONS file of dir: what it actually runs with, defaults included.
func rocksOptions(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "OPTIONS-*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no OPTIONS file in %s: %v", dir, err)
	}
	sort.Strings(files)
	f, err := os.Open(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && section == "[DBOptions]" {
			opts[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return opts
}

// TestRocksDBOptions checks DB-wide options whose RocksDB defaults cost a
// node hosting many DBs (see BenchmarkIdleCost and docs/architecture.md).
func TestRocksDBOptions(t *testing.T) {
	d := newTestDB(t)
	got := rocksOptions(t, d.Dir())
	for _, tt := range []struct {
		name, want, why string
	}{
		{"stats_persist_period_sec", "0", "an in-memory ticker history per DB that grows for hours and that nothing reads"},
		{"table_cache_numshardbits", "2", "64 table cache shards allocated up front per DB, 50 KB"},
		{"manifest_preallocation_size", "65536", "4 MiB of disk preallocated for each DB's MANIFEST"},
	} {
		if got[tt.name] != tt.want {
			t.Errorf("%s = %q, want %q: %s", tt.name, got[tt.name], tt.want, tt.why)
		}
	}
}
