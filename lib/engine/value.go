package engine

import (
	"encoding/binary"
	"fmt"
)

// Value layout; shim.cc's compaction filter mirrors it.
const (
	valueFormat     = 1
	valueHeaderSize = 1 + 8
)

// encodeValue returns the stored form of a user value.
func encodeValue(user []byte, expireAtMs int64) []byte {
	return appendValue(make([]byte, 0, valueHeaderSize+len(user)), user, expireAtMs)
}

// appendValue appends the stored form of a user value to b.
func appendValue(b, user []byte, expireAtMs int64) []byte {
	b = append(b, valueFormat)
	b = binary.BigEndian.AppendUint64(b, uint64(expireAtMs))
	return append(b, user...)
}

// decodeValue splits a stored value, aliasing b.
func decodeValue(b []byte) (user []byte, expireAtMs int64, err error) {
	if len(b) < valueHeaderSize {
		return nil, 0, fmt.Errorf("%w: value of %d bytes", ErrCorrupt, len(b))
	}
	if b[0] != valueFormat {
		return nil, 0, fmt.Errorf("%w: value format %d", ErrCorrupt, b[0])
	}
	return b[valueHeaderSize:], int64(binary.BigEndian.Uint64(b[1:valueHeaderSize])), nil
}

// expired reports whether a value with the given expiry is gone at nowMs.
// A value expires at its expiry time, not after it.
func expired(expireAtMs, nowMs int64) bool {
	return expireAtMs != 0 && expireAtMs <= nowMs
}
