package workload

import (
	"math"
	"math/rand/v2"
)

// ZipfianConstant is YCSB's default skew (theta): with it the most popular
// item of a million gets about 7% of the requests.
const ZipfianConstant = 0.99

// exactZetaLimit is the largest n for which zeta is summed term by term;
// above it the tail is integrated (Euler–Maclaurin), which is exact to far
// more digits than the generator needs and keeps start-up instant for
// keyspaces of billions.
const exactZetaLimit = 1 << 16

// Zipfian draws integers in [0, n) with P(i) proportional to 1/(i+1)^theta:
// item 0 is the most popular, then item 1, and so on. It is the generator
// of Gray et al., "Quickly Generating Billion-Record Synthetic Databases"
// (SIGMOD 1994), as YCSB implements it. A Zipfian is immutable and safe for
// concurrent use; the randomness comes from the caller's source.
type Zipfian struct {
	n                        uint64
	theta, alpha, zetan, eta float64
	halfPowTheta, zeta2theta float64
}

// NewZipfian returns a Zipfian over [0, n) with skew theta (0 < theta < 1;
// ZipfianConstant is YCSB's). n must be at least 1.
func NewZipfian(n uint64, theta float64) *Zipfian {
	if n == 0 {
		n = 1
	}
	z := &Zipfian{n: n, theta: theta}
	z.zeta2theta = zeta(2, theta)
	z.alpha = 1 / (1 - theta)
	z.zetan = zeta(n, theta)
	z.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - z.zeta2theta/z.zetan)
	z.halfPowTheta = 1 + math.Pow(0.5, theta)
	return z
}

// N is the number of items.
func (z *Zipfian) N() uint64 { return z.n }

// Next returns the next item, drawing from r.
func (z *Zipfian) Next(r *rand.Rand) uint64 {
	u := r.Float64()
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < z.halfPowTheta && z.n > 1 {
		return 1
	}
	v := uint64(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(v, z.n-1)
}

// zeta is the generalised harmonic number sum_{i=1..n} 1/i^theta.
func zeta(n uint64, theta float64) float64 {
	m := min(n, exactZetaLimit)
	var sum float64
	for i := uint64(1); i <= m; i++ {
		sum += math.Pow(float64(i), -theta)
	}
	if n == m {
		return sum
	}
	// Euler–Maclaurin for the terms m+1..n of f(x) = x^-theta:
	// integral_m^n f + (f(n) - f(m))/2 + (f'(n) - f'(m))/12.
	f := func(x float64) float64 { return math.Pow(x, -theta) }
	df := func(x float64) float64 { return -theta * math.Pow(x, -theta-1) }
	a, b := float64(m), float64(n)
	integral := (math.Pow(b, 1-theta) - math.Pow(a, 1-theta)) / (1 - theta)
	return sum + integral + (f(b)-f(a))/2 + (df(b)-df(a))/12
}

// ScrambledZipfian is a Zipfian whose popular items are spread over the
// whole range instead of being 0, 1, 2...: YCSB's default request
// distribution ("zipfian" in its workload files). Without the scrambling
// the hot records would be neighbours and, with hashtag groups, share one
// partition, which measures one node rather than the cluster.
type ScrambledZipfian struct {
	z *Zipfian
}

// NewScrambledZipfian returns a scrambled Zipfian over [0, n).
func NewScrambledZipfian(n uint64, theta float64) *ScrambledZipfian {
	return &ScrambledZipfian{z: NewZipfian(n, theta)}
}

// Next returns the next item, drawing from r.
func (s *ScrambledZipfian) Next(r *rand.Rand) uint64 {
	return fnv64(s.z.Next(r)) % s.z.n
}

// fnv64 is FNV-1a over the 8 bytes of v, as YCSB's Utils.fnvhash64.
func fnv64(v uint64) uint64 {
	const (
		offset = 0xcbf29ce484222325
		prime  = 1099511628211
	)
	h := uint64(offset)
	for range 8 {
		h ^= v & 0xff
		h *= prime
		v >>= 8
	}
	return h
}
