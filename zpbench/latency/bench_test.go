package latency

import (
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkRecord is the per-operation cost of timing a request.
func BenchmarkRecord(b *testing.B) {
	h := New()
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]time.Duration, 1024)
	for i := range vals {
		vals[i] = time.Duration(20_000 + r.IntN(2_000_000))
	}
	i := 0
	for b.Loop() {
		Record(h, vals[i&1023])
		i++
	}
}

// BenchmarkMerge is the cost of folding one worker's histogram into the
// total, which progress lines do for every worker each interval.
func BenchmarkMerge(b *testing.B) {
	src := New()
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		Record(src, time.Duration(20_000+r.IntN(5_000_000)))
	}
	dst := New()
	for b.Loop() {
		dst.Merge(src)
	}
}

// BenchmarkSummarize is the cost of the percentiles of a report.
func BenchmarkSummarize(b *testing.B) {
	h := New()
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		Record(h, time.Duration(20_000+r.IntN(5_000_000)))
	}
	for b.Loop() {
		Summarize(h)
	}
}
