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

// SlotSample is what SampleSlots read: the key and value bytes of the
// sampled keys by slot.
type SlotSample struct {
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
// keys from each, which is a sample of the keys with each slot's share
// of them in proportion (a key's slot is a hash of its name, independent
// of its place in the order). Keys after wide gaps in the key space are
// sampled more often; that is independent of their slots too. Expired
// keys do not count. It reads through the block cache without filling it,
// and about sampleBytes at most: a DB of large values gets fewer keys.
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
	// take adds the key at it to the sample, unless expired.
	take := func() error {
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
	estimate, _ := strconv.ParseUint(d.db.GetProperty("rocksdb.estimate-num-keys"), 10, 64)
	if estimate <= uint64(n) {
		// Probably small: read it whole, giving up past 2n keys.
		read := 0
		for it.Seek(dataRangeStart); it.Valid() && read < 2*n && s.Bytes < sampleBytes; it.Next() {
			if err := take(); err != nil {
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
	for range max(n/sampleRun, 1) {
		it.Seek(keyBetween(first, last, rnd.Float64()))
		for i := 0; i < sampleRun && it.Valid(); i++ {
			if err := take(); err != nil {
				return SlotSample{}, err
			}
			it.Next()
		}
		if err := it.Err(); err != nil {
			return SlotSample{}, fmt.Errorf("engine: sample: %w", err)
		}
		if s.Bytes >= sampleBytes {
			break
		}
	}
	return s, nil
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

// DataSize returns the bytes of the DB's live table files and memtables
// (two property reads, no file system access), and whether the figure is
// settled: not while the compaction after a clear or a trim runs, as the
// table files still hold what was deleted.
func (d *DB) DataSize() (size uint64, settled bool, err error) {
	if err := d.enter(); err != nil {
		return 0, false, err
	}
	defer d.closeMu.RUnlock()
	prop := func(name string) uint64 {
		v, _ := strconv.ParseUint(d.db.GetProperty(name), 10, 64)
		return v
	}
	return prop("rocksdb.live-sst-files-size") + prop("rocksdb.cur-size-all-mem-tables"), !d.reclaim.busy(), nil
}
