package engine

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// The tickers-only statistics still count the block cache, which the
// node's hit-rate metrics read, and every DB of a Shared counts into its
// one statistics object: one per DB cost more memory than an idle DB's
// other state (BenchmarkIdleCost).
func TestSharedStatsCountBlockCache(t *testing.T) {
	s := newShared(t)
	root := t.TempDir()
	var dbs []*testDB
	for _, name := range []string{"a", "b"} {
		d := openTestDB(t, filepath.Join(root, name), s)
		var muts []*zppb.Mutation
		for i := range 100 {
			muts = append(muts, &zppb.Mutation{Kind: zppb.Mutation_PUT, Key: fmt.Appendf(nil, "k%03d", i), Value: []byte("v")})
		}
		d.apply(muts...)
		if err := d.Flush(); err != nil {
			t.Fatal(err)
		}
		dbs = append(dbs, d)
	}
	for _, d := range dbs {
		before := s.Stats()
		for range 3 {
			if _, _, err := d.Get([]byte("k042"), 0); err != nil {
				t.Fatal(err)
			}
		}
		after := s.Stats()
		if after.BlockCacheHits <= before.BlockCacheHits || after.BlockCacheHits+after.BlockCacheMisses < before.BlockCacheHits+before.BlockCacheMisses+3 {
			t.Fatalf("%s: block cache hits %d -> %d, misses %d -> %d: reads not counted", d.Dir(),
				before.BlockCacheHits, after.BlockCacheHits, before.BlockCacheMisses, after.BlockCacheMisses)
		}
	}
	// The counts are the process's: closing a DB takes nothing away.
	before := s.Stats()
	if err := dbs[0].Close(); err != nil {
		t.Fatal(err)
	}
	if after := s.Stats(); after.BlockCacheHits < before.BlockCacheHits || after.BlockCacheMisses < before.BlockCacheMisses {
		t.Fatalf("block cache counts went down when a DB closed: %+v -> %+v", before, after)
	}
}
