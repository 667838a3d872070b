package replica

import "github.com/zeppelin-kv/zeppelin/proto/zppb"

// dedupSize is how many recent writes a replica remembers by request id: a
// retry of one of them is answered from memory instead of written again.
// At a few microseconds a write, it covers seconds to minutes of traffic —
// longer than a failover takes.
const dedupSize = 1 << 16

// dedup remembers the request ids of the latest records, oldest evicted
// first. Masters and slaves alike fill it as records reach their binlog, so
// a slave promoted by a failover recognises a retry of a write its old
// master took but never answered. The replica's mu guards it.
type dedup struct {
	ids  map[string]dedupEntry
	ring []string // ids by age, as a ring of dedupSize
	next int
}

// dedupEntry is what a retry is answered from. Values (result_value) are
// not kept: at up to the value limit each, dedupSize of them would not fit
// in memory. A retry of a record with one reads it back from the binlog,
// which holds it as long as the purge policy keeps the record; retries come
// within seconds, purges keep minutes to hours.
type dedupEntry struct {
	lsn      uint64
	result   int64
	hasValue bool // the record carries a non-empty result_value
}

func (d *dedup) add(id []byte, lsn uint64, rec *zppb.WriteRecord) {
	if len(id) == 0 {
		return
	}
	if d.ids == nil {
		d.ids = make(map[string]dedupEntry)
		d.ring = make([]string, dedupSize)
	}
	if old := d.ring[d.next]; old != "" {
		if e, ok := d.ids[old]; ok && e.lsn <= lsn {
			delete(d.ids, old)
		}
	}
	d.ring[d.next] = string(id)
	d.next = (d.next + 1) % dedupSize
	d.ids[string(id)] = dedupEntry{lsn: lsn, result: rec.Result, hasValue: len(rec.ResultValue) > 0}
}

func (d *dedup) get(id []byte) (dedupEntry, bool) {
	if len(id) == 0 || d.ids == nil {
		return dedupEntry{}, false
	}
	e, ok := d.ids[string(id)]
	return e, ok
}

// truncate forgets records after lsn: the binlog lost them.
func (d *dedup) truncate(lsn uint64) {
	for id, e := range d.ids {
		if e.lsn > lsn {
			delete(d.ids, id)
		}
	}
}

// reset forgets everything (a full sync replaced the data).
func (d *dedup) reset() {
	d.ids, d.ring, d.next = nil, nil, 0
}
