package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
)

// TrimStats says what DeleteSlotsOutside did.
type TrimStats struct {
	// Examined counts the keys read: one per hashtag group (every key of
	// a group is in the group's slot) and one per key without a hashtag.
	Examined int64
	// Keys counts the keys without a hashtag deleted, one point tombstone
	// each; Groups the hashtag groups deleted, one range tombstone each.
	Keys, Groups int64
	// Took is the time it took, the flush included.
	Took time.Duration
}

// trimBatch bounds the deletes of one write: a write holds the memtable's
// writers back while it lands.
const trimBatch = 4096

// DeleteSlotsOutside deletes every data key whose slot is outside [begin,
// end): after a split, each half drops the keys of the other's range.
// Data keys are ordered by hashtag, not by slot (see the package
// comment), so no single range covers a slot range: it walks the key
// space, deleting a hashtag group with one range tombstone (its keys all
// share the tag's slot, so one key decides for the group) and each key
// without a hashtag with a point tombstone. It then flushes, so that the
// deletes, which are in no binlog, are durable when it returns; the caller
// keeps its own record of the trim until then and runs it again after a
// crash (it is idempotent). Last it starts a compaction of the data key
// space in the background, which gives the disk space back (Close cancels
// it; Flush waits for it).
//
// Writes may go on meanwhile: they are to keys of the kept range, which
// the trim does not touch.
func (d *DB) DeleteSlotsOutside(ctx context.Context, begin, end uint32) (TrimStats, error) {
	if begin >= end || end > keyspace.Slots {
		return TrimStats{}, fmt.Errorf("%w: slot range [%d, %d)", ErrInvalidArgument, begin, end)
	}
	start := time.Now()
	st, err := d.deleteSlotsOutside(ctx, begin, end)
	if err != nil {
		return st, err
	}
	if err := d.Flush(); err != nil {
		return st, err
	}
	if st.Keys+st.Groups > 0 {
		d.reclaim.start(d.compactData)
	}
	st.Took = time.Since(start)
	d.logger.Info("engine: deleted the keys outside a slot range", "begin", begin, "end", end,
		"examined", st.Examined, "keys", st.Keys, "groups", st.Groups, "took", st.Took)
	return st, nil
}

func (d *DB) deleteSlotsOutside(ctx context.Context, begin, end uint32) (st TrimStats, err error) {
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if err := d.enter(); err != nil {
		return st, err
	}
	defer d.closeMu.RUnlock()
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	ro.SetFillCache(false) // the walk must not evict the working set
	ro.SetIterateUpperBound(dataRangeEnd)
	it := d.db.NewIterator(ro)
	defer it.Close()
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	write := func() error {
		if wb.Count() == 0 {
			return nil
		}
		if err := d.db.Write(d.wo, wb); err != nil {
			return fmt.Errorf("engine: trim: %w", err)
		}
		wb.Clear()
		return ctx.Err()
	}
	for it.Seek(dataRangeStart); it.Valid(); {
		k := it.Key().Data()
		user, err := userKeyOf(k)
		if err != nil {
			return st, err
		}
		st.Examined++
		slot := uint32(keyspace.Slot(user))
		drop := slot < begin || slot >= end
		if tagLen, _ := binary.Uvarint(k[1:]); tagLen > 0 {
			prefix := k[:len(k)-len(user)]
			next := prefixEnd(prefix)
			if drop {
				wb.DeleteRange(prefix, next)
				st.Groups++
			}
			it.Seek(next)
		} else {
			if drop {
				wb.Delete(k)
				st.Keys++
			}
			it.Next()
		}
		if wb.Count() >= trimBatch {
			if err := write(); err != nil {
				return st, err
			}
		}
	}
	if err := it.Err(); err != nil {
		return st, fmt.Errorf("engine: trim: %w", err)
	}
	return st, write()
}
