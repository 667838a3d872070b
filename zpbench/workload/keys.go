package workload

import (
	"strconv"
)

// DefaultGroupSize is how many consecutive records share a hashtag. It is
// YCSB's default maximum scan length, so a scan of any standard length fits
// in one group unless it starts near the group's end.
const DefaultGroupSize = 100

// recordDigits is the width records are zero-padded to, so that key order
// is record order inside a group (SCAN returns keys in key order).
const recordDigits = 10

// Keys is the key scheme of benchmark records. Record i is stored under
//
//	{<prefix>:<i / GroupSize>}<i, zero-padded to 10 digits>
//
// e.g. record 1234 with prefix "zb" is "{zb:12}0000001234". Records share a
// hashtag in groups of GroupSize consecutive records, which puts a group on
// one partition and lets a YCSB range scan be a single hashtag SCAN (see
// Workload). The prefix is inside the braces so that no other kind of key
// (counters use another prefix) ever shows up in a record scan.
type Keys struct {
	// Prefix tells record keys from counter keys; default "zb".
	Prefix string
	// GroupSize is the number of records per hashtag; default
	// DefaultGroupSize.
	GroupSize uint64
}

// RecordKeys is the scheme for records; CounterKeys the one INCR uses, so
// that counters never land on (and break) 100-byte record values.
var (
	RecordKeys  = Keys{Prefix: "zb", GroupSize: DefaultGroupSize}
	CounterKeys = Keys{Prefix: "zc", GroupSize: DefaultGroupSize}
)

func (k Keys) groupSize() uint64 {
	if k.GroupSize == 0 {
		return DefaultGroupSize
	}
	return k.GroupSize
}

// Group returns the hashtag group of record i.
func (k Keys) Group(i uint64) uint64 { return i / k.groupSize() }

// AppendHashtag appends the hashtag of group g (without braces) to dst.
func (k Keys) AppendHashtag(dst []byte, g uint64) []byte {
	dst = append(dst, k.Prefix...)
	dst = append(dst, ':')
	return strconv.AppendUint(dst, g, 10)
}

// Append appends the key of record i to dst.
func (k Keys) Append(dst []byte, i uint64) []byte {
	dst = append(dst, '{')
	dst = k.AppendHashtag(dst, k.Group(i))
	dst = append(dst, '}')
	var num [20]byte
	digits := strconv.AppendUint(num[:0], i, 10)
	for n := len(digits); n < recordDigits; n++ {
		dst = append(dst, '0')
	}
	return append(dst, digits...)
}

// Key returns the key of record i in a new slice.
func (k Keys) Key(i uint64) []byte { return k.Append(nil, i) }
