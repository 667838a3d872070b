package workload

import (
	"fmt"
	"math/rand/v2"
)

// Distribution names, as --distribution takes them.
const (
	DistUniform = "uniform"
	DistZipfian = "zipfian"
	DistLatest  = "latest"
)

// Distribution chooses the record an operation touches. Implementations are
// immutable or atomic and so safe for concurrent use; randomness comes from
// the caller's source.
type Distribution interface {
	// Next returns a record number below the number of records that exist.
	Next(r *rand.Rand) uint64
}

// Uniform picks every existing record with the same probability.
type Uniform struct {
	records *Inserts
}

// Next implements Distribution.
func (u Uniform) Next(r *rand.Rand) uint64 {
	return r.Uint64N(max(u.records.Limit(), 1))
}

// Latest favours the records inserted last, as YCSB's "latest"
// (SkewedLatestGenerator): the newest acknowledged record is the most
// popular, the one before it next, and so on, with a Zipfian over the
// initial record count. YCSB's Zipfian grows with every insert; this one
// keeps the initial count, which differs only once inserts are a sizable
// fraction of the records.
type Latest struct {
	records *Inserts
	z       *Zipfian
}

// Next implements Distribution.
func (l Latest) Next(r *rand.Rand) uint64 {
	limit := max(l.records.Limit(), 1)
	back := l.z.Next(r)
	if back >= limit {
		back = limit - 1
	}
	return limit - 1 - back
}

// Scrambled is YCSB's "zipfian" request distribution over the records
// loaded at start. Records inserted during the run are not chosen, as in
// YCSB, whose zipfian chooser keeps the initial record count.
type Scrambled struct {
	z *ScrambledZipfian
}

// Next implements Distribution.
func (s Scrambled) Next(r *rand.Rand) uint64 { return s.z.Next(r) }

// NewDistribution returns the named distribution over records.
func NewDistribution(name string, records *Inserts) (Distribution, error) {
	n := records.Limit()
	switch name {
	case DistUniform:
		return Uniform{records: records}, nil
	case DistZipfian:
		return Scrambled{z: NewScrambledZipfian(n, ZipfianConstant)}, nil
	case DistLatest:
		return Latest{records: records, z: NewZipfian(n, ZipfianConstant)}, nil
	}
	return nil, fmt.Errorf("unknown distribution %q (want %s, %s or %s)", name, DistUniform, DistZipfian, DistLatest)
}
