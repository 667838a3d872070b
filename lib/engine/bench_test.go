package engine

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// BenchmarkApply applies records of one 100-byte PUT each.
func BenchmarkApply(b *testing.B) {
	d := openTestDB(b, filepath.Join(b.TempDir(), "db"), newShared(b))
	value := make([]byte, 100)
	rec := &zppb.WriteRecord{Mutations: []*zppb.Mutation{{Kind: zppb.Mutation_PUT, Value: value}}}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	lsn := uint64(0)
	for b.Loop() {
		lsn++
		rec.Mutations[0].Key = fmt.Appendf(rec.Mutations[0].Key[:0], "{user%d}.key%d", lsn%1000, lsn)
		if err := d.Apply(lsn, 1, rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet reads random keys of 100,000 with 100-byte values, mostly
// from the block cache after the first pass.
func BenchmarkGet(b *testing.B) {
	d := openTestDB(b, filepath.Join(b.TempDir(), "db"), newShared(b))
	const n = 100_000
	value := make([]byte, 100)
	var muts []*zppb.Mutation
	for i := range n {
		muts = append(muts, &zppb.Mutation{Kind: zppb.Mutation_PUT, Key: fmt.Appendf(nil, "{user%d}.key%d", i%1000, i), Value: value})
		if len(muts) == 1000 {
			d.apply(muts...)
			muts = muts[:0]
		}
	}
	if err := d.Flush(); err != nil {
		b.Fatal(err)
	}
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "{user%d}.key%d", i%1000, i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := d.Get(keys[rng.IntN(n)], 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScan reads pages of 100 keys of one hashtag.
func BenchmarkScan(b *testing.B) {
	d := openTestDB(b, filepath.Join(b.TempDir(), "db"), newShared(b))
	value := make([]byte, 100)
	var muts []*zppb.Mutation
	for i := range 10_000 {
		muts = append(muts, &zppb.Mutation{Kind: zppb.Mutation_PUT, Key: fmt.Appendf(nil, "{tag%d}.key%05d", i%10, i), Value: value})
	}
	d.apply(muts...)
	if err := d.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var cursor []byte
	for b.Loop() {
		entries, next, err := d.Scan([]byte("tag3"), cursor, 100, 0)
		if err != nil || len(entries) == 0 {
			b.Fatal(len(entries), err)
		}
		cursor = next
	}
}

// BenchmarkGetRecentlyWritten reads random keys of 100,000 flushed ones
// while the memtable holds 20,000 later overwrites of some of them, as a
// DB taking writes does: most reads look for a key the memtable lacks.
func BenchmarkGetRecentlyWritten(b *testing.B) {
	d := openTestDB(b, filepath.Join(b.TempDir(), "db"), newShared(b))
	const n = 100_000
	value := make([]byte, 100)
	key := func(i int) []byte { return fmt.Appendf(nil, "{user%d}.key%d", i%1000, i) }
	var muts []*zppb.Mutation
	for i := range n {
		muts = append(muts, &zppb.Mutation{Kind: zppb.Mutation_PUT, Key: key(i), Value: value})
		if len(muts) == 1000 {
			d.apply(muts...)
			muts = muts[:0]
		}
	}
	if err := d.Flush(); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		for range 1000 {
			muts = append(muts, &zppb.Mutation{Kind: zppb.Mutation_PUT, Key: key(rng.IntN(n)), Value: value})
		}
		d.apply(muts...)
		muts = muts[:0]
	}
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = key(i)
	}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := d.Get(keys[rng.IntN(n)], 0); err != nil {
			b.Fatal(err)
		}
	}
}
