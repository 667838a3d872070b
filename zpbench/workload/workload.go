package workload

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// Share is the fraction of operations of one kind in a workload's mix.
type Share struct {
	Kind   Kind
	Weight float64
}

// spec is a named workload's definition.
type spec struct {
	mix  func(p Params) []Share
	dist string // default request distribution
	doc  string
}

func fixed(shares ...Share) func(Params) []Share {
	return func(Params) []Share { return shares }
}

// specs are the named workloads. YCSB's are its core workloads
// (workloads/workload[a-f] in the YCSB repository) with their standard
// proportions and request distributions.
var specs = map[string]spec{
	"set":   {fixed(Share{Set, 1}), DistUniform, "SET of a value to an existing record"},
	"get":   {fixed(Share{Get, 1}), DistUniform, "GET of a record"},
	"mixed": {mixedShares, DistUniform, "GET with probability --read-ratio, else SET"},
	"mget":  {fixed(Share{MGet, 1}), DistUniform, "MGET of --batch records"},
	"mset":  {fixed(Share{MSet, 1}), DistUniform, "MSET of --batch records"},
	"incr":  {fixed(Share{Incr, 1}), DistUniform, "INCRBY 1 of a counter (separate keys: {zc:N}...)"},
	"ycsb-a": {fixed(Share{Get, 0.5}, Share{Set, 0.5}), DistZipfian,
		"YCSB A, update heavy: 50% read, 50% update"},
	"ycsb-b": {fixed(Share{Get, 0.95}, Share{Set, 0.05}), DistZipfian,
		"YCSB B, read mostly: 95% read, 5% update"},
	"ycsb-c": {fixed(Share{Get, 1}), DistZipfian,
		"YCSB C, read only"},
	"ycsb-d": {fixed(Share{Get, 0.95}, Share{Insert, 0.05}), DistLatest,
		"YCSB D, read latest: 95% read, 5% insert"},
	"ycsb-e": {fixed(Share{Scan, 0.95}, Share{Insert, 0.05}), DistZipfian,
		"YCSB E, short ranges: 95% scan (1..--max-scan records), 5% insert"},
	"ycsb-f": {fixed(Share{Get, 0.5}, Share{ReadModifyWrite, 0.5}), DistZipfian,
		"YCSB F, read-modify-write: 50% read, 50% read-modify-write"},
}

func mixedShares(p Params) []Share {
	return []Share{{Get, p.ReadRatio}, {Set, 1 - p.ReadRatio}}
}

// Names returns the workload names, sorted.
func Names() []string {
	names := make([]string, 0, len(specs))
	for n := range specs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Describe returns one line per workload, for --help.
func Describe() string {
	var b strings.Builder
	for _, n := range Names() {
		fmt.Fprintf(&b, "  %-7s %s (default distribution %s)\n", n, specs[n].doc, specs[n].dist)
	}
	return b.String()
}

// Params configures a workload.
type Params struct {
	// Name is one of Names().
	Name string
	// Records is the number of records that exist at start (--keyspace):
	// [0, Records). Inserts add records after them.
	Records uint64
	// ValueSize is the size of written values in bytes.
	ValueSize int
	// Distribution overrides the workload's request distribution when set.
	Distribution string
	// ReadRatio is the fraction of GETs of "mixed", in [0, 1].
	ReadRatio float64
	// Batch is the number of keys of an MGET or MSET.
	Batch int
	// MaxScan is the longest scan in records; lengths are uniform in
	// [1, MaxScan]. Default DefaultGroupSize.
	MaxScan int
	// Seed seeds every Stream; the same seed gives the same operations.
	Seed uint64
}

// Workload is a configured workload. It is safe for concurrent use; each
// goroutine draws operations from its own Stream.
type Workload struct {
	params   Params
	mix      []Share
	cum      []float64 // cumulative weights of mix
	dist     Distribution
	distName string
	inserts  *Inserts
	value    []byte
}

// New returns the workload p describes, or an error saying what is wrong
// with p.
func New(p Params) (*Workload, error) {
	sp, ok := specs[p.Name]
	var errs []error
	if !ok {
		errs = append(errs, fmt.Errorf("unknown workload %q (want one of %s)", p.Name, strings.Join(Names(), ", ")))
	}
	if p.Records == 0 {
		errs = append(errs, errors.New("keyspace must be at least 1 record"))
	}
	if p.ValueSize < 0 {
		errs = append(errs, fmt.Errorf("value size %d is negative", p.ValueSize))
	}
	if p.ReadRatio < 0 || p.ReadRatio > 1 {
		errs = append(errs, fmt.Errorf("read ratio %v not in [0, 1]", p.ReadRatio))
	}
	if p.Batch < 1 {
		errs = append(errs, fmt.Errorf("batch %d below 1", p.Batch))
	}
	if p.MaxScan == 0 {
		p.MaxScan = DefaultGroupSize
	}
	if p.MaxScan < 1 || p.MaxScan > DefaultGroupSize {
		errs = append(errs, fmt.Errorf("max scan %d not in [1, %d] (a scan reads inside one hashtag group)", p.MaxScan, DefaultGroupSize))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	distName := sp.dist
	if p.Distribution != "" {
		distName = p.Distribution
	}
	w := &Workload{params: p, mix: sp.mix(p), distName: distName, inserts: NewInserts(p.Records)}
	var err error
	if w.dist, err = NewDistribution(distName, w.inserts); err != nil {
		return nil, err
	}
	var total float64
	for _, s := range w.mix {
		total += s.Weight
		w.cum = append(w.cum, total)
	}
	w.value = Value(p.ValueSize, p.Seed)
	return w, nil
}

// Name is the workload's name.
func (w *Workload) Name() string { return w.params.Name }

// Params returns the parameters the workload was made with, defaults
// filled in.
func (w *Workload) Params() Params { return w.params }

// DistributionName is the request distribution in use.
func (w *Workload) DistributionName() string { return w.distName }

// Mix returns the workload's operation mix.
func (w *Workload) Mix() []Share { return slices.Clone(w.mix) }

// Records returns the number of records that exist now, inserts included.
func (w *Workload) Records() uint64 { return w.inserts.Limit() }

// pick returns the kind for u in [0, 1).
func (w *Workload) pick(u float64) Kind {
	x := u * w.cum[len(w.cum)-1]
	for i, c := range w.cum {
		if x < c {
			return w.mix[i].Kind
		}
	}
	return w.mix[len(w.mix)-1].Kind
}

// Value returns n printable pseudo-random bytes, the same for a seed.
// Random letters keep RocksDB's block compression from making the stored
// data smaller than what Redis keeps.
func Value(n int, seed uint64) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	r := rand.New(rand.NewPCG(seed, 0x76616c7565))
	v := make([]byte, n)
	for i := range v {
		v[i] = alphabet[r.IntN(len(alphabet))]
	}
	return v
}

// Stream draws operations for one goroutine.
type Stream struct {
	w *Workload
	r *rand.Rand
}

// Stream returns the i-th stream of the workload: a deterministic sequence
// for the workload's seed and i.
func (w *Workload) Stream(i uint64) *Stream {
	return &Stream{w: w, r: rand.New(rand.NewPCG(w.params.Seed, i))}
}

// Next fills op with the next operation.
func (s *Stream) Next(op *Op) {
	w := s.w
	op.Kind = w.pick(s.r.Float64())
	op.Value = w.value
	op.Delta = 0
	op.Count = 0
	op.inserting = false
	op.buf = op.buf[:0]
	op.offs = op.offs[:0]
	op.Key, op.Keys, op.Hashtag, op.Cursor = nil, op.Keys[:0], nil, nil

	switch op.Kind {
	case Get, Set, ReadModifyWrite:
		op.buf = RecordKeys.Append(op.buf, w.dist.Next(s.r))
		op.Key = op.buf
	case Incr:
		op.Delta = 1
		op.buf = CounterKeys.Append(op.buf, w.dist.Next(s.r))
		op.Key = op.buf
	case Insert:
		id, ok := w.inserts.Next()
		if !ok {
			// Too many inserts in flight: write an existing record
			// instead of stalling.
			op.Kind = Set
			id = w.dist.Next(s.r)
		} else {
			op.record, op.inserting = id, true
		}
		op.buf = RecordKeys.Append(op.buf, id)
		op.Key = op.buf
	case MGet, MSet:
		for range w.params.Batch {
			op.offs = append(op.offs, len(op.buf))
			op.buf = RecordKeys.Append(op.buf, w.dist.Next(s.r))
		}
		op.offs = append(op.offs, len(op.buf))
		for i := 0; i+1 < len(op.offs); i++ {
			op.Keys = append(op.Keys, op.buf[op.offs[i]:op.offs[i+1]:op.offs[i+1]])
		}
	case Scan:
		s.scan(op)
	}
}

// scan fills op with a YCSB scan mapped onto a hashtag SCAN. YCSB scans
// read L records in key order from a start record, L uniform in [1,
// MaxScan]. Here the range is cut at the end of the start record's hashtag
// group (and at the last record that exists): a hashtag SCAN never leaves
// its group, which is what keeps it on one partition.
func (s *Stream) scan(op *Op) {
	w := s.w
	start := w.dist.Next(s.r)
	length := uint64(1 + s.r.IntN(w.params.MaxScan))
	gs := RecordKeys.groupSize()
	end := min(start+length, (start/gs+1)*gs, max(w.inserts.Limit(), start+1))
	op.Count = int(end - start)

	// buf: hashtag | cursor | keys of [start, end)
	op.buf = RecordKeys.AppendHashtag(op.buf, RecordKeys.Group(start))
	op.offs = append(op.offs, len(op.buf))
	if start%gs != 0 {
		op.buf = RecordKeys.Append(op.buf, start-1)
	}
	op.offs = append(op.offs, len(op.buf))
	for i := start; i < end; i++ {
		op.buf = RecordKeys.Append(op.buf, i)
		op.offs = append(op.offs, len(op.buf))
	}
	op.Hashtag = op.buf[:op.offs[0]:op.offs[0]]
	if op.offs[1] > op.offs[0] {
		op.Cursor = op.buf[op.offs[0]:op.offs[1]:op.offs[1]]
	}
	for i := 1; i+1 < len(op.offs); i++ {
		op.Keys = append(op.Keys, op.buf[op.offs[i]:op.offs[i+1]:op.offs[i+1]])
	}
	op.Key = op.Keys[0]
}

// Done reports that op finished; it must be called once per operation
// drawn, whatever the outcome, so that inserts are acknowledged.
func (s *Stream) Done(op *Op) {
	if op.inserting {
		s.w.inserts.Ack(op.record)
		op.inserting = false
	}
}
