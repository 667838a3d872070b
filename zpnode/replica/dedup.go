package replica

import (
	"bytes"
	"hash/maphash"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// dedupSize is how many recent writes a replica remembers by request id: a
// retry of one of them is answered from memory instead of written again.
// At a few microseconds a write, it covers seconds to minutes of traffic —
// longer than a failover takes.
const dedupSize = 1 << 16

// MaxRequestIDSize is the longest request id a write may carry (clients
// send 16 random bytes). Ids are remembered for dedupSize writes per
// replica, so their size is what bounds that memory.
const MaxRequestIDSize = 16

// dedup remembers the request ids of the latest records, oldest evicted
// first. Masters and slaves alike fill it as records reach their binlog, so
// a slave promoted by a failover recognises a retry of a write its old
// master took but never answered. The replica's mu guards it.
//
// Every write of a node passes here and a node remembers up to dedupSize
// ids per replica (a million for 16 busy partitions), so the layout is
// about memory: entries hold the id inline and nothing holds a pointer, so
// the garbage collector never scans them; the ring grows with use, so an
// idle replica costs nothing; the index maps a hash of the id to its slot
// and a lookup compares the id itself, so a hash collision can only forget
// a write (as eviction does), never answer one for another.
type dedup struct {
	index map[uint64]uint32 // hash of an id -> its slot in the ring
	// The ring holds the entries by age, in chunks of dedupChunk: slots are
	// appended up to dedupSize, then reused from next. Chunks, rather than
	// one slice grown by append, leave no garbage behind as the ring grows.
	ring  [][]dedupEntry
	slots int
	next  int
}

// dedupChunk is the ring's unit of growth: 512 entries, 20 KiB, so that a
// replica that took a few writes holds little.
const dedupChunk = 1 << 9

// dedupEntry is what a retry is answered from. Values (result_value) are
// not kept: at up to the value limit each, dedupSize of them would not fit
// in memory. A retry of a record with one reads it back from the binlog,
// which holds it as long as the purge policy keeps the record; retries come
// within seconds, purges keep minutes to hours.
type dedupEntry struct {
	lsn      uint64 // 0: the slot is empty (truncated)
	result   int64
	id       [MaxRequestIDSize]byte
	idLen    uint8
	hasValue bool // the record carries a non-empty result_value
}

// dedupSeed seeds the index's hash; per process, so ids cannot be chosen
// to collide.
var dedupSeed = maphash.MakeSeed()

func (e *dedupEntry) is(id []byte) bool {
	return e.lsn != 0 && bytes.Equal(e.id[:e.idLen], id)
}

// add remembers id as the request of the record at lsn. Ids that are empty
// or longer than MaxRequestIDSize (refused at submit; a binlog written
// before the limit may hold them) are not remembered.
func (d *dedup) add(id []byte, lsn uint64, rec *zppb.WriteRecord) {
	if len(id) == 0 || len(id) > MaxRequestIDSize || lsn == 0 {
		return
	}
	if d.index == nil {
		d.index = make(map[uint64]uint32)
	}
	var slot int
	if d.slots < dedupSize {
		slot = d.slots
		d.slots++
		if slot%dedupChunk == 0 {
			d.ring = append(d.ring, make([]dedupEntry, dedupChunk))
		}
	} else {
		slot = d.next
		d.next = (d.next + 1) % dedupSize
		d.evict(slot)
	}
	e := d.at(slot)
	*e = dedupEntry{lsn: lsn, result: rec.Result, idLen: uint8(len(id)), hasValue: len(rec.ResultValue) > 0}
	copy(e.id[:], id)
	d.index[maphash.Bytes(dedupSeed, id)] = uint32(slot)
}

// evict empties slot, and drops the index's entry when it still points
// there (a later record with the same id, or a colliding one, may own it).
func (d *dedup) evict(slot int) {
	e := d.at(slot)
	if e.lsn == 0 {
		return
	}
	h := maphash.Bytes(dedupSeed, e.id[:e.idLen])
	if s, ok := d.index[h]; ok && int(s) == slot {
		delete(d.index, h)
	}
	e.lsn = 0
}

func (d *dedup) get(id []byte) (dedupEntry, bool) {
	if len(id) == 0 || d.index == nil {
		return dedupEntry{}, false
	}
	slot, ok := d.index[maphash.Bytes(dedupSeed, id)]
	if !ok || !d.at(int(slot)).is(id) {
		return dedupEntry{}, false
	}
	return *d.at(int(slot)), true
}

// at is the entry in slot.
func (d *dedup) at(slot int) *dedupEntry {
	return &d.ring[slot/dedupChunk][slot%dedupChunk]
}

// truncate forgets records after lsn: the binlog lost them.
func (d *dedup) truncate(lsn uint64) {
	for slot := range d.slots {
		if d.at(slot).lsn > lsn {
			d.evict(slot)
		}
	}
}

// reset forgets everything (a full sync replaced the data).
func (d *dedup) reset() {
	*d = dedup{}
}
