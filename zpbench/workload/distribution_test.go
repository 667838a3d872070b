package workload

import (
	"math"
	"math/rand/v2"
	"testing"
)

// draw returns how often each value came out of n draws, failing the test
// on a value outside [lo, hi).
func draw(t *testing.T, d Distribution, n int, lo, hi uint64) map[uint64]int {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	counts := make(map[uint64]int)
	for range n {
		v := d.Next(r)
		if v < lo || v >= hi {
			t.Fatalf("drew %d, outside [%d, %d)", v, lo, hi)
		}
		counts[v]++
	}
	return counts
}

func TestUniformBounds(t *testing.T) {
	for _, n := range []uint64{1, 2, 7, 1000} {
		counts := draw(t, Uniform{records: NewInserts(n)}, 20_000, 0, n)
		if n <= 1000 && uint64(len(counts)) != n {
			t.Errorf("n=%d: %d distinct values in 20000 draws, want all %d", n, len(counts), n)
		}
	}
}

// TestZipfianSkew checks the generator against the distribution it claims:
// P(i) = (1/(i+1)^theta) / zeta(n). The draws are seeded, so the test is
// deterministic; the tolerances cover the sampling error of 200,000 draws
// and the approximation in Gray's algorithm, which is exact for items 0 and
// 1 and gives item 2 about 17% more than its share (as YCSB's does), while
// the mass of the head (the items a cache or a hot partition sees) stays
// within a few percent.
func TestZipfianSkew(t *testing.T) {
	const n, draws = 1000, 200_000
	z := NewZipfian(n, ZipfianConstant)
	counts := draw(t, z, draws, 0, n)
	zn := zeta(n, ZipfianConstant)
	p := func(i uint64) float64 { return math.Pow(float64(i+1), -ZipfianConstant) / zn }
	for _, i := range []uint64{0, 1} {
		if got := float64(counts[i]) / draws; math.Abs(got-p(i)) > 0.03*p(i) {
			t.Errorf("P(%d) = %.4f, want %.4f", i, got, p(i))
		}
	}
	for _, k := range []uint64{10, 100, 500} {
		var got, want float64
		for i := range k {
			got += float64(counts[i]) / draws
			want += p(i)
		}
		if math.Abs(got-want) > 0.05*want {
			t.Errorf("P(< %d) = %.4f, want %.4f", k, got, want)
		}
	}
	if !(counts[0] > counts[1] && counts[1] > counts[9] && counts[9] > counts[99]) {
		t.Errorf("not decreasing: c0=%d c1=%d c9=%d c99=%d", counts[0], counts[1], counts[9], counts[99])
	}
}

func TestZipfianSmall(t *testing.T) {
	for _, n := range []uint64{1, 2, 3} {
		draw(t, NewZipfian(n, ZipfianConstant), 10_000, 0, n)
	}
}

// TestZetaApproximation compares the integrated tail with the exact sum.
func TestZetaApproximation(t *testing.T) {
	const n = 1_000_000
	var exact float64
	for i := 1; i <= n; i++ {
		exact += math.Pow(float64(i), -ZipfianConstant)
	}
	if got := zeta(n, ZipfianConstant); math.Abs(got-exact)/exact > 1e-12 {
		t.Fatalf("zeta(%d) = %v, exact %v", n, got, exact)
	}
}

// TestScrambledZipfian checks that scrambling keeps the skew but moves the
// hot items away from 0, 1, 2.
func TestScrambledZipfian(t *testing.T) {
	const n, draws = 10_000, 200_000
	counts := draw(t, NewScrambledZipfian(n, ZipfianConstant), draws, 0, n)
	var hottest uint64
	for v, c := range counts {
		if c > counts[hottest] {
			hottest = v
		}
	}
	want := 1 / zeta(n, ZipfianConstant)
	if got := float64(counts[hottest]) / draws; math.Abs(got-want) > 0.1*want {
		t.Errorf("hottest item has %.4f of draws, want about %.4f", got, want)
	}
	if hottest < 3 {
		t.Errorf("hottest item is %d: not scrambled", hottest)
	}
}

func TestLatest(t *testing.T) {
	ins := NewInserts(1000)
	d, err := NewDistribution(DistLatest, ins)
	if err != nil {
		t.Fatal(err)
	}
	counts := draw(t, d, 50_000, 0, 1000)
	if counts[999] <= counts[998] || counts[998] <= counts[900] {
		t.Errorf("newest records not favoured: c999=%d c998=%d c900=%d", counts[999], counts[998], counts[900])
	}
	// New records become the favourites once acknowledged, not before.
	a, _ := ins.Next()
	b, _ := ins.Next()
	ins.Ack(b)
	draw(t, d, 10_000, 0, 1000)
	ins.Ack(a)
	counts = draw(t, d, 50_000, 0, 1002)
	if counts[1001] <= counts[999] {
		t.Errorf("record 1001 not the favourite after its insert: c1001=%d c999=%d", counts[1001], counts[999])
	}
}

func TestInsertsWindow(t *testing.T) {
	ins := NewInserts(0)
	for i := range insertWindow {
		if id, ok := ins.Next(); !ok || id != uint64(i) {
			t.Fatalf("Next = %d, %v; want %d, true", id, ok, i)
		}
	}
	if _, ok := ins.Next(); ok {
		t.Fatal("Next handed out more than the window")
	}
	ins.Ack(0)
	if id, ok := ins.Next(); !ok || id != insertWindow {
		t.Fatalf("after Ack(0): Next = %d, %v", id, ok)
	}
	if ins.Limit() != 1 {
		t.Fatalf("Limit = %d, want 1", ins.Limit())
	}
}

func TestNewDistributionUnknown(t *testing.T) {
	if _, err := NewDistribution("pareto", NewInserts(10)); err == nil {
		t.Fatal("no error for an unknown distribution")
	}
}
