package engine

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// The tickers-only statistics still count the block cache, which the
// node's hit-rate metrics read.
func TestStatsCountBlockCache(t *testing.T) {
	d := openTestDB(t, filepath.Join(t.TempDir(), "db"), newShared(t))
	var muts []*zppb.Mutation
	for i := range 100 {
		muts = append(muts, &zppb.Mutation{Kind: zppb.Mutation_PUT, Key: fmt.Appendf(nil, "k%03d", i), Value: []byte("v")})
	}
	d.apply(muts...)
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	before, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, _, err := d.Get([]byte("k042"), 0); err != nil {
			t.Fatal(err)
		}
	}
	after, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if after.BlockCacheHits <= before.BlockCacheHits || after.BlockCacheHits+after.BlockCacheMisses < before.BlockCacheHits+before.BlockCacheMisses+3 {
		t.Fatalf("block cache hits %d -> %d, misses %d -> %d: reads not counted",
			before.BlockCacheHits, after.BlockCacheHits, before.BlockCacheMisses, after.BlockCacheMisses)
	}
}
