package workload

import (
	"math/rand/v2"
	"testing"
)

func BenchmarkZipfian(b *testing.B) {
	z := NewZipfian(1_000_000, ZipfianConstant)
	r := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		z.Next(r)
	}
}

func BenchmarkScrambledZipfian(b *testing.B) {
	z := NewScrambledZipfian(1_000_000, ZipfianConstant)
	r := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		z.Next(r)
	}
}

// BenchmarkNewZipfian is the start-up cost of a keyspace of 10M records
// (the zeta sum).
func BenchmarkNewZipfian(b *testing.B) {
	for b.Loop() {
		NewZipfian(10_000_000, ZipfianConstant)
	}
}

// BenchmarkStreamNext is the cost of drawing one operation, key formatted.
func BenchmarkStreamNext(b *testing.B) {
	for _, name := range []string{"get", "ycsb-a", "ycsb-e", "mget"} {
		b.Run(name, func(b *testing.B) {
			w, err := New(Params{Name: name, Records: 1_000_000, ValueSize: 100, Batch: 16, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			s := w.Stream(0)
			var op Op
			b.ReportAllocs()
			for b.Loop() {
				s.Next(&op)
				s.Done(&op)
			}
		})
	}
}
