package engine

import (
	"bytes"
	"fmt"

	"github.com/linxGnu/grocksdb"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
)

// Scan page sizes, as the ScanRequest protocol message documents them.
const (
	DefaultScanCount = 100
	MaxScanCount     = 1000

	// scanBudget bounds the keys one Scan examines, expired ones included,
	// so that a tag with many expired keys cannot make one call unbounded.
	scanBudget = 10 * MaxScanCount
)

// Entry is one live key and its value.
type Entry struct {
	Key        []byte
	Value      []byte
	ExpireAtMs int64 // unix ms; 0 = never
}

// Scan returns live keys whose hashtag is exactly hashtag, in key order,
// starting after cursor (the last key of the previous page; empty to
// start). count is clamped to [1, MaxScanCount], with 0 meaning
// DefaultScanCount. next is the cursor for the following page, empty when
// there are no more keys. A page may hold fewer than count entries (even
// none) while next is non-empty, when the scan skipped many expired keys.
// Keys without a hashtag are listed under the empty hashtag.
func (d *DB) Scan(hashtag, cursor []byte, count int, nowMs int64) (entries []Entry, next []byte, err error) {
	switch {
	case count <= 0:
		count = DefaultScanCount
	case count > MaxScanCount:
		count = MaxScanCount
	}
	if len(cursor) > 0 && !bytes.Equal(keyspace.HashTag(cursor), hashtag) {
		return nil, nil, fmt.Errorf("%w: cursor %q does not have hashtag %q", ErrInvalidArgument, cursor, hashtag)
	}
	prefix := tagPrefix(hashtag)
	start := prefix
	if len(cursor) > 0 {
		// The smallest key after cursor: cursor followed by a zero byte.
		start = append(append(append(make([]byte, 0, len(prefix)+len(cursor)+1), prefix...), cursor...), 0)
	}
	return d.scan(start, prefixEnd(prefix), count, nowMs, false)
}

// ScanAll is Scan over every key of the DB, in the DB's order (hashtag,
// then key): a partition's SCAN, KEYS and RANDOMKEY. cursor is the last
// key of the previous page, or any key to start after it (RANDOMKEY starts
// at a random one); empty starts at the beginning. With keysOnly the
// entries have no values.
func (d *DB) ScanAll(cursor []byte, count int, nowMs int64, keysOnly bool) (entries []Entry, next []byte, err error) {
	switch {
	case count <= 0:
		count = DefaultScanCount
	case count > MaxScanCount:
		count = MaxScanCount
	}
	start := dataRangeStart
	if len(cursor) > 0 {
		start = append(dataKey(cursor), 0)
	}
	return d.scan(start, dataRangeEnd, count, nowMs, keysOnly)
}

// scan returns up to count live entries of the data keys in [start,
// end), examining at most scanBudget keys, and the cursor after the last
// one examined when there is more.
func (d *DB) scan(start, end []byte, count int, nowMs int64, keysOnly bool) (entries []Entry, next []byte, err error) {
	if err := d.enter(); err != nil {
		return nil, nil, err
	}
	defer d.closeMu.RUnlock()

	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	ro.SetIterateUpperBound(end)
	it := d.db.NewIterator(ro)
	defer it.Close()

	var last []byte // user key of the last key examined, when we stop early
	examined := 0
	for it.Seek(start); it.Valid(); it.Next() {
		user, err := userKeyOf(it.Key().Data())
		if err != nil {
			return nil, nil, err
		}
		val, exp, err := decodeValue(it.Value().Data())
		if err != nil {
			return nil, nil, fmt.Errorf("key %q: %w", user, err)
		}
		examined++
		if !expired(exp, nowMs) {
			e := Entry{Key: append([]byte(nil), user...), ExpireAtMs: exp}
			if !keysOnly {
				e.Value = append(make([]byte, 0, len(val)), val...)
			}
			entries = append(entries, e)
		}
		if len(entries) == count || examined == scanBudget {
			last = append([]byte(nil), user...)
			break
		}
	}
	if err := it.Err(); err != nil {
		return nil, nil, fmt.Errorf("engine: scan: %w", err)
	}
	if last != nil {
		// Only hand out a cursor if there is something after it, so that a
		// scan ending exactly on a page boundary does not cost an empty page.
		it.Next()
		if it.Valid() {
			next = last
		}
	}
	return entries, next, nil
}

// ForEach calls fn for every live key at nowMs, in the DB's key order
// (hashtag, then key), until fn returns an error, which ForEach returns.
// The key and value passed to fn are valid only during the call. It reads a
// consistent snapshot.
func (d *DB) ForEach(nowMs int64, fn func(key, value []byte, expireAtMs int64) error) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.closeMu.RUnlock()
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	snap := d.db.NewSnapshot()
	defer d.db.ReleaseSnapshot(snap)
	ro.SetSnapshot(snap)
	ro.SetIterateUpperBound([]byte{dataPrefix + 1})
	it := d.db.NewIterator(ro)
	defer it.Close()
	for it.Seek([]byte{dataPrefix}); it.Valid(); it.Next() {
		user, err := userKeyOf(it.Key().Data())
		if err != nil {
			return err
		}
		val, exp, err := decodeValue(it.Value().Data())
		if err != nil {
			return fmt.Errorf("key %q: %w", user, err)
		}
		if expired(exp, nowMs) {
			continue
		}
		if err := fn(user, val, exp); err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("engine: iterate: %w", err)
	}
	return nil
}
