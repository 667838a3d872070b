package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/linxGnu/grocksdb"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
)

// sampleRun is how many keys in a row SampleSlots reads from each random
// point: a seek costs about what reading a few dozen keys does.
const sampleRun = 32

// sampleBytes bounds the key and value bytes SampleSlots reads, whatever
// the values' size: past it a whole read gives up for a sample, and a
// sample stops after the run that crossed it. A variable for tests.
var sampleBytes uint64 = 128 << 20

// SlotSample is what SampleSlots read: the weight of the sampled data by
// slot, and the keys and their key and value bytes read.
type SlotSample struct {
	// BySlot is in proportion to the data's bytes by slot: the bytes read
	// when the DB was read whole or its runs placed evenly, shares of
	// runWeight per run when placed by bytes.
	BySlot map[uint32]uint64
	Keys   int
	Bytes  uint64
	// Exact: every live key was read.
	Exact bool
}

// SampleSlots weighs the DB's data by slot, reading about n keys (at most
// 2n): a partition's split point (topo.MedianSlot). Data keys are ordered
// by hashtag and key, not by slot, so no range read gives a slot range's
// size. A DB of at most about n keys is read whole; a larger one from
// n/sampleRun random points between its first and last key, sampleRun
// keys from each: a key's slot is a hash of its name, independent of its
// place in the order, so any stretch of keys has each slot's share of
// them in proportion. The points are drawn by bytes, from RocksDB's
// approximate sizes of sampleBuckets pieces of the key space (one call,
// from the table files' indexes), and each run then weighs the same,
// shared among its slots by their bytes in it: so a stretch of large
// values (blob:*) and one of small ones (idx:*) count by their bytes,
// whatever the gap between their names. With most data still in the
// memtables, which approximate sizes leave out, the points are drawn
// evenly between the first and last key and each key weighs its bytes
// (keys after wide gaps are then sampled more often). Expired keys do not
// count. It reads through the block cache without filling it, and about
// sampleBytes at most: a DB of large values gets fewer keys.
func (d *DB) SampleSlots(n int, rnd *rand.Rand, nowMs int64) (SlotSample, error) {
	if err := d.enter(); err != nil {
		return SlotSample{}, err
	}
	defer d.closeMu.RUnlock()
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	ro.SetFillCache(false)
	ro.SetIterateUpperBound(dataRangeEnd)
	it := d.db.NewIterator(ro)
	defer it.Close()

	if rnd == nil {
		rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	s := SlotSample{BySlot: make(map[uint32]uint64)}
	estimate, _ := strconv.ParseUint(d.db.GetProperty("rocksdb.estimate-num-keys"), 10, 64)
	if estimate <= uint64(n) {
		// Probably small: read it whole, giving up past 2n keys.
		read := 0
		for it.Seek(dataRangeStart); it.Valid() && read < 2*n && s.Bytes < sampleBytes; it.Next() {
			if err := s.take(it, nowMs); err != nil {
				return SlotSample{}, err
			}
			read++
		}
		if err := it.Err(); err != nil {
			return SlotSample{}, fmt.Errorf("engine: sample: %w", err)
		}
		if !it.Valid() {
			s.Exact = true
			return s, nil
		}
		s = SlotSample{BySlot: make(map[uint32]uint64)}
	}
	it.Seek(dataRangeStart)
	if !it.Valid() {
		return s, it.Err()
	}
	first := bytes.Clone(it.Key().Data())
	it.SeekToLast() // the last data key: the upper bound holds
	if !it.Valid() {
		return s, it.Err()
	}
	last := bytes.Clone(it.Key().Data())
	byBytes := d.byBytes(first, last)
	for range max(n/sampleRun, 1) {
		if byBytes {
			it.Seek(d.drawByBytes(first, last, rnd, it))
		} else {
			it.Seek(keyBetween(first, last, rnd.Float64()))
		}
		run := SlotSample{BySlot: make(map[uint32]uint64)}
		into := &s
		if byBytes {
			into = &run
		}
		for i := 0; i < sampleRun && it.Valid(); i++ {
			if err := into.take(it, nowMs); err != nil {
				return SlotSample{}, err
			}
			it.Next()
		}
		if err := it.Err(); err != nil {
			return SlotSample{}, fmt.Errorf("engine: sample: %w", err)
		}
		if byBytes && run.Bytes > 0 {
			// Runs placed by bytes: each weighs the same, shared
			// among its slots by their bytes in it.
			for slot, w := range run.BySlot {
				s.BySlot[slot] += w * runWeight / run.Bytes
			}
			s.Keys += run.Keys
			s.Bytes += run.Bytes
		}
		if s.Bytes >= sampleBytes {
			break
		}
	}
	return s, nil
}

// runWeight is what one run placed by bytes weighs in SlotSample.BySlot.
const runWeight = 1 << 20

// Drawing a point by bytes: the span between two keys is cut in
// drawPieces, weighed by RocksDB's approximate sizes (one call), one piece
// drawn by its bytes, narrowed to the keys in it (two seeks), and cut
// again, until it holds less than drawSettle bytes or drawLevels were
// cut.
const (
	drawPieces = 16
	drawLevels = 8
	drawSettle = 64 << 10
)

// approxBetween returns the approximate bytes of the table files' data
// from lo to each of drawPieces points evenly between lo and hi
// (keyBetween), cumulative and monotone, the last up to hi inclusive.
func (d *DB) approxBetween(lo, hi []byte) ([]uint64, error) {
	ranges := make([]grocksdb.Range, drawPieces)
	for i := range ranges {
		limit := keyBetween(lo, hi, float64(i+1)/drawPieces)
		if i == drawPieces-1 {
			limit = append(bytes.Clone(hi), 0)
		}
		ranges[i] = grocksdb.Range{Start: lo, Limit: limit}
	}
	cum, err := d.db.GetApproximateSizes(ranges)
	if err != nil {
		return nil, err
	}
	if len(cum) != drawPieces {
		return nil, fmt.Errorf("engine: %d approximate sizes for %d ranges", len(cum), drawPieces)
	}
	for i := 1; i < len(cum); i++ {
		cum[i] = max(cum[i], cum[i-1]) // estimates: keep them monotone
	}
	return cum, nil
}

// byBytes reports whether runs can be placed by bytes: the table files,
// which approximate sizes see, hold more than the memtables, which they
// leave out.
func (d *DB) byBytes(first, last []byte) bool {
	cum, err := d.approxBetween(first, last)
	if err != nil {
		return false
	}
	mem, _ := strconv.ParseUint(d.db.GetProperty("rocksdb.cur-size-all-mem-tables"), 10, 64)
	total := cum[len(cum)-1]
	return total > 0 && total >= mem
}

// drawByBytes returns a key between first and last where a byte of the
// table files' data drawn at random lies, about (see the constants); it
// moves it.
func (d *DB) drawByBytes(first, last []byte, rnd *rand.Rand, it *grocksdb.Iterator) []byte {
	lo, hi := first, last
	for range drawLevels {
		cum, err := d.approxBetween(lo, hi)
		if err != nil || cum[len(cum)-1] == 0 {
			break
		}
		target := rnd.Float64() * float64(cum[len(cum)-1])
		i := 0
		for i < len(cum)-1 && float64(cum[i]) <= target {
			i++
		}
		var below uint64
		if i > 0 {
			below = cum[i-1]
		}
		nlo, nhi := lo, hi
		if i > 0 {
			nlo = keyBetween(lo, hi, float64(i)/drawPieces)
		}
		if i < drawPieces-1 {
			nhi = keyBetween(lo, hi, float64(i+1)/drawPieces)
		}
		// The next cut is of the span the piece's keys take, not of the
		// empty key space around them (names share prefixes: the points
		// between two keys are mostly far from either).
		it.Seek(nlo)
		if !it.Valid() || bytes.Compare(it.Key().Data(), nhi) > 0 {
			break
		}
		klo := bytes.Clone(it.Key().Data())
		it.SeekForPrev(nhi)
		if !it.Valid() || bytes.Compare(it.Key().Data(), klo) < 0 {
			break
		}
		lo, hi = klo, bytes.Clone(it.Key().Data())
		if cum[i]-below < drawSettle || bytes.Equal(lo, hi) {
			break
		}
	}
	return keyBetween(lo, hi, rnd.Float64())
}

// take adds the key at it to the sample, unless expired.
func (s *SlotSample) take(it *grocksdb.Iterator, nowMs int64) error {
	k, v := it.Key().Data(), it.Value().Data()
	user, err := userKeyOf(k)
	if err != nil {
		return err
	}
	_, exp, err := decodeValue(v)
	if err != nil {
		return fmt.Errorf("key %q: %w", user, err)
	}
	if expired(exp, nowMs) {
		return nil
	}
	w := uint64(len(k) + len(v))
	s.BySlot[uint32(keyspace.Slot(user))] += w
	s.Keys++
	s.Bytes += w
	return nil
}

// keyBetween returns a key about the fraction f of the way from a to b (a
// <= b), reading the 8 bytes after their common prefix as numbers.
func keyBetween(a, b []byte, f float64) []byte {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	word := func(k []byte) uint64 {
		var w [8]byte
		copy(w[:], k[min(n, len(k)):])
		return binary.BigEndian.Uint64(w[:])
	}
	lo, hi := word(a), word(b)
	at := lo + uint64(f*float64(hi-lo))
	if at < lo || at > hi { // rounding at the top
		at = hi
	}
	return binary.BigEndian.AppendUint64(bytes.Clone(a[:n]), at)
}
