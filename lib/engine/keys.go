package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
)

const (
	dataPrefix = 'd'
	metaPrefix = 'm'
)

// Metadata keys. The applied position is one key rather than one for the
// term and one for the LSN: Apply writes it with every record, and each
// key in the batch costs a memtable insert.
var (
	keyApplied = []byte("m/applied")
	keyFormat  = []byte("m/format")
)

// The bounds of the data key space, [dataRangeStart, dataRangeEnd): every
// data key and no metadata key. A CLEAR deletes this range.
var (
	dataRangeStart = []byte{dataPrefix}
	dataRangeEnd   = []byte{dataPrefix + 1}
)

// layoutVersion is stored under keyFormat; bump it when the key or value
// layout changes incompatibly.
const layoutVersion = 1

// dataKey returns the RocksDB key of a user key.
func dataKey(userKey []byte) []byte {
	return appendDataKey(make([]byte, 0, 1+binary.MaxVarintLen64+len(keyspace.HashTag(userKey))+len(userKey)), userKey)
}

// appendDataKey appends the RocksDB key of a user key to b.
func appendDataKey(b, userKey []byte) []byte {
	return append(appendTagPrefix(b, keyspace.HashTag(userKey)), userKey...)
}

// dataKeyLen returns len(dataKey(userKey)).
func dataKeyLen(userKey []byte) int {
	tag := len(keyspace.HashTag(userKey))
	return 1 + len(binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64), uint64(tag))) + tag + len(userKey)
}

// tagPrefix returns the prefix that every data key with hashtag tag has.
func tagPrefix(tag []byte) []byte {
	return appendTagPrefix(make([]byte, 0, 1+binary.MaxVarintLen64+len(tag)), tag)
}

func appendTagPrefix(b, tag []byte) []byte {
	b = append(b, dataPrefix)
	b = binary.AppendUvarint(b, uint64(len(tag)))
	return append(b, tag...)
}

// userKeyOf returns the user key inside a data key, aliasing k.
func userKeyOf(k []byte) ([]byte, error) {
	if len(k) == 0 || k[0] != dataPrefix {
		return nil, fmt.Errorf("%w: %q is not a data key", ErrCorrupt, k)
	}
	n, w := binary.Uvarint(k[1:])
	if w <= 0 || uint64(len(k)-1-w) < n {
		return nil, fmt.Errorf("%w: bad data key %q", ErrCorrupt, k)
	}
	return k[1+w+int(n):], nil
}

// prefixEnd returns the smallest key above every key that starts with p,
// or nil if there is none (p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// checkKey rejects keys the cluster never stores.
func checkKey(key []byte) error {
	switch {
	case len(key) == 0:
		return fmt.Errorf("%w: empty key", ErrInvalidArgument)
	case len(key) > keyspace.MaxKeySize:
		return fmt.Errorf("%w: key of %d bytes above %d", ErrInvalidArgument, len(key), keyspace.MaxKeySize)
	}
	return nil
}

func encodeUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// encodeApplied returns the value of keyApplied: term and LSN, 8 bytes
// big-endian each.
func encodeApplied(term, lsn uint64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b[:8], term)
	binary.BigEndian.PutUint64(b[8:], lsn)
	return b
}

// decodeApplied decodes the value of keyApplied; nil means (0, 0).
func decodeApplied(b []byte) (term, lsn uint64, err error) {
	if b == nil {
		return 0, 0, nil
	}
	if len(b) != 16 {
		return 0, 0, fmt.Errorf("%w: %s holds %d bytes", ErrCorrupt, keyApplied, len(b))
	}
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), nil
}

func decodeUint64(b []byte, name []byte) (uint64, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: %s holds %d bytes", ErrCorrupt, name, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}
