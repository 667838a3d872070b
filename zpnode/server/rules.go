package server

import (
	"math"
	"strconv"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Validation rules of the commands in strings.go and keys.go, one function
// per rule. Messages that have a Redis counterpart use Redis's wording
// (without the "ERR " prefix), so that the RESP front passes them through.

// invalidExpire is Redis's error for an expiry that is out of range. cmd is
// the native command; the RESP front names its own command instead (SETEX,
// PEXPIRE ...), as Redis does.
func invalidExpire(cmd string) error {
	return status.New(zppb.Code_INVALID_ARGUMENT, "invalid expire time in '%s' command", cmd)
}

// checkSetOptions checks SET's expiry options and condition: at most one
// way to set the expiry, none negative.
func checkSetOptions(req *zppb.SetRequest) error {
	switch {
	case req.TtlMs < 0 || req.ExpireAtMs < 0:
		return invalidExpire("set")
	case req.TtlMs != 0 && req.ExpireAtMs != 0:
		return status.New(zppb.Code_INVALID_ARGUMENT, "SET takes ttl_ms or expire_at_ms, not both")
	case req.KeepTtl && (req.TtlMs != 0 || req.ExpireAtMs != 0):
		return status.New(zppb.Code_INVALID_ARGUMENT, "SET with keep_ttl takes neither ttl_ms nor expire_at_ms")
	}
	if _, ok := zppb.SetRequest_Condition_name[int32(req.Condition)]; !ok {
		return status.New(zppb.Code_INVALID_ARGUMENT, "unknown SET condition %d", req.Condition)
	}
	return nil
}

// readsOld reports whether a SET has to read the key before it writes (a
// read-modify-write under the replica's write lock) rather than just write.
func readsOld(req *zppb.SetRequest) bool {
	return req.Condition != zppb.SetRequest_ALWAYS || req.KeepTtl || req.ReturnOld
}

// checkGetExChange checks GETEX's change: new expiries must be positive,
// flags true when given.
func checkGetExChange(req *zppb.GetExRequest) error {
	switch c := req.Change.(type) {
	case *zppb.GetExRequest_TtlMs:
		if c.TtlMs <= 0 {
			return invalidExpire("getex")
		}
	case *zppb.GetExRequest_ExpireAtMs:
		if c.ExpireAtMs <= 0 {
			return invalidExpire("getex")
		}
	case *zppb.GetExRequest_Persist:
		if !c.Persist {
			return status.New(zppb.Code_INVALID_ARGUMENT, "GETEX persist given as false")
		}
	case *zppb.GetExRequest_Delete:
		if !c.Delete {
			return status.New(zppb.Code_INVALID_ARGUMENT, "GETEX delete given as false")
		}
	}
	return nil
}

// checkExpireRequest checks an EXPIRE: one change, a known condition, and
// no condition with persist. TTLs may be zero or negative (they delete).
func checkExpireRequest(req *zppb.ExpireRequest) error {
	if _, ok := zppb.ExpireRequest_Condition_name[int32(req.Condition)]; !ok {
		return status.New(zppb.Code_INVALID_ARGUMENT, "unknown EXPIRE condition %d", req.Condition)
	}
	switch c := req.Change.(type) {
	case nil:
		return status.New(zppb.Code_INVALID_ARGUMENT, "EXPIRE needs ttl_ms, expire_at_ms or persist")
	case *zppb.ExpireRequest_Persist:
		if !c.Persist {
			return status.New(zppb.Code_INVALID_ARGUMENT, "EXPIRE persist given as false")
		}
		if req.Condition != zppb.ExpireRequest_ALWAYS {
			return status.New(zppb.Code_INVALID_ARGUMENT, "PERSIST takes no condition")
		}
	}
	return nil
}

// absoluteExpiry turns a relative TTL into the absolute expiry (unix ms)
// the binlog records; 0 stays 0 (no expiry). A TTL whose expiry would
// overflow is Redis's invalid expire time of cmd.
func absoluteExpiry(cmd string, nowMs, ttlMs int64) (int64, error) {
	if ttlMs == 0 {
		return 0, nil
	}
	if ttlMs > math.MaxInt64-nowMs {
		return 0, invalidExpire(cmd)
	}
	return nowMs + ttlMs, nil
}

// setConditionHolds reports whether a SET with cond may write a key that
// exists (found) or not.
func setConditionHolds(cond zppb.SetRequest_Condition, found bool) bool {
	switch cond {
	case zppb.SetRequest_IF_ABSENT:
		return !found
	case zppb.SetRequest_IF_PRESENT:
		return found
	}
	return true
}

// expireConditionHolds reports whether an EXPIRE with cond may replace the
// expiry cur (0: none, which counts as infinite, as in Redis) by when.
func expireConditionHolds(cond zppb.ExpireRequest_Condition, cur, when int64) bool {
	switch cond {
	case zppb.ExpireRequest_IF_NO_EXPIRY:
		return cur == 0
	case zppb.ExpireRequest_IF_EXPIRY:
		return cur != 0
	case zppb.ExpireRequest_IF_LATER:
		return cur != 0 && when > cur
	case zppb.ExpireRequest_IF_EARLIER:
		return cur == 0 || when < cur
	}
	return true
}

// checkOffset is SETRANGE's offset rule (APPEND has none).
func checkOffset(req *zppb.SetRangeRequest) error {
	switch {
	case req.Offset < 0:
		return status.New(zppb.Code_INVALID_ARGUMENT, "offset is out of range")
	case req.Append && req.Offset != 0:
		return status.New(zppb.Code_INVALID_ARGUMENT, "APPEND takes no offset")
	}
	return nil
}

// checkStringLength is Redis's limit on a string that SETRANGE or APPEND
// grows to n more bytes from offset, here the node's value limit.
func (s *Server) checkStringLength(offset int64, n int) error {
	if offset > int64(s.cfg.MaxValueSize)-int64(n) {
		return status.New(zppb.Code_VALUE_TOO_LARGE, "string exceeds maximum allowed size (proto-max-bulk-len)")
	}
	return nil
}

// keysOf returns the keys a request names: key, or keys, not both.
func keysOf(key []byte, keys [][]byte) ([][]byte, error) {
	switch {
	case len(key) != 0 && len(keys) != 0:
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "both key and keys given")
	case len(keys) != 0:
		return keys, nil
	}
	return [][]byte{key}, nil
}

// checkSameSlot is the rule of every atomic multi-key command: its keys
// share one slot (a {hashtag}), so one partition holds them all.
func checkSameSlot(first, key []byte) error {
	if keyspace.Slot(key) != keyspace.Slot(first) {
		return status.New(zppb.Code_CROSS_SLOT, "keys %q and %q are in different slots; use a shared {hashtag}", first, key)
	}
	return nil
}

// checkKeys checks every key of a multi-key command of one slot.
func checkKeys(keys [][]byte) error {
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
		if err := checkSameSlot(keys[0], k); err != nil {
			return err
		}
	}
	return nil
}

// parseInteger parses a stored integer as Redis does (string2ll): decimal,
// an optional '-', no '+', no leading zeros, no spaces, fits in int64.
func parseInteger(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	digits := b
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || digits[0] < '1' || digits[0] > '9' {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}
