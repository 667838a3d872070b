package bulkload

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
)

// benchInput is n TSV lines of 100-byte values, as TestBulkloadThroughput
// (zpctl/cmd) loads them.
func benchInput(n int) []byte {
	var b bytes.Buffer
	rng := rand.New(rand.NewPCG(1, 2))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	v := make([]byte, 100)
	for i := range n {
		for j := range v {
			v[j] = letters[rng.IntN(len(letters))]
		}
		fmt.Fprintf(&b, "key%09d\t%s\n", i, v)
	}
	return b.Bytes()
}

// BenchmarkRead measures a bulk load's read phase (parse, route, sort in
// memory) per input byte.
func BenchmarkRead(b *testing.B) {
	in := benchInput(200_000)
	slots := keyspace.EvenSlotMap(4)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		s := newSorter(b.TempDir(), slots.Len(), 1, DefaultMemory)
		var res Result
		opts := Options{Limits: Limits{MaxValueSize: 1 << 20}}
		opts.ReadBytes = new(atomic.Int64)
		err := readInput(b.Context(), opts, Input{Name: "in.tsv", Open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(in)), nil
		}}, 0, slots, s, &res)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrite measures writing one partition's table file from the
// sorter (merge, encode, compress) per input byte.
func BenchmarkWrite(b *testing.B) {
	in := benchInput(200_000)
	slots := keyspace.EvenSlotMap(1)
	b.SetBytes(int64(len(in)))
	dir := b.TempDir()
	for b.Loop() {
		b.StopTimer()
		s := newSorter(dir, 1, 1, DefaultMemory)
		var res Result
		opts := Options{Limits: Limits{MaxValueSize: 1 << 20}}
		opts.ReadBytes = new(atomic.Int64)
		if err := readInput(b.Context(), opts, Input{Name: "in.tsv", Open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(in)), nil
		}}, 0, slots, s, &res); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		path := filepath.Join(dir, "p.sst")
		w, err := engine.CreateSST(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := writePartition(s, 0, w, func() {}); err != nil {
			b.Fatal(err)
		}
		if fi, err := os.Stat(path); err == nil {
			b.ReportMetric(float64(fi.Size())/float64(len(in)), "file/input")
		}
		os.Remove(path)
	}
}
