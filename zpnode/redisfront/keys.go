package redisfront

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// The key commands (Redis's db.c and expire.c), each one native request.

// keysArg returns the keys of a multi-key command and their slot, or the
// CROSSSLOT failure.
func keysArg(args [][]byte) ([][]byte, int, bool) {
	slot := sameSlot(args)
	if slot < 0 {
		return nil, -1, false
	}
	return cloneAll(args), slot, true
}

// cmdDel is DEL and UNLINK: the keys of one slot deleted by one atomic
// record (UNLINK frees nothing in the background: deletes are cheap here).
func cmdDel(c *conn, args [][]byte) entry {
	keys, slot, ok := keysArg(args[1:])
	if !ok {
		return fail(errCrossSlot)
	}
	req := &zppb.Request{Cmd: &zppb.Request_Del{Del: &zppb.DelRequest{Table: c.table, Keys: keys}}}
	return c.one(req, slot, func(c *conn, r *zppb.Response) {
		n := r.GetDel().GetDeleted()
		if n > 0 {
			c.wrote(keys[0])
		}
		c.w.WriteInt(n)
	})
}

// cmdExists is EXISTS and TOUCH: how many of the keys exist, a key named
// twice counting twice (no LRU or LFU clock to touch).
func cmdExists(c *conn, args [][]byte) entry {
	keys, slot, ok := keysArg(args[1:])
	if !ok {
		return fail(errCrossSlot)
	}
	req := &zppb.Request{Cmd: &zppb.Request_Exists{Exists: &zppb.ExistsRequest{Table: c.table, Keys: keys}}}
	return c.one(req, slot, func(c *conn, r *zppb.Response) { c.w.WriteInt(r.GetExists().GetCount()) })
}

// cmdType is TYPE key: every value is a string.
func cmdType(c *conn, args [][]byte) entry {
	key := clone(args[1])
	req := &zppb.Request{Cmd: &zppb.Request_Exists{Exists: &zppb.ExistsRequest{Table: c.table, Key: key}}}
	return c.one(req, slotOf(key), func(c *conn, r *zppb.Response) {
		if r.GetExists().GetExists() {
			c.w.WriteSimpleString("string")
		} else {
			c.w.WriteSimpleString("none")
		}
	})
}

// parseExpireOptions is Redis's parseExtendedExpireArgumentsOrReply: NX,
// XX, GT, LT in any order and number, and which may not combine.
func parseExpireOptions(args [][]byte) (zppb.ExpireRequest_Condition, string) {
	var nx, xx, gt, lt bool
	for _, a := range args {
		switch strings.ToLower(string(a)) {
		case "nx":
			nx = true
		case "xx":
			xx = true
		case "gt":
			gt = true
		case "lt":
			lt = true
		default:
			return 0, fmt.Sprintf("ERR Unsupported option %s", a)
		}
	}
	switch {
	case nx && (xx || gt || lt):
		return 0, "ERR NX and XX, GT or LT options at the same time are not compatible"
	case gt && lt:
		return 0, "ERR GT and LT options at the same time are not compatible"
	case nx:
		return zppb.ExpireRequest_IF_NO_EXPIRY, ""
	case gt:
		// GT never applies to a key without expiry, so XX GT is GT.
		return zppb.ExpireRequest_IF_LATER, ""
	case lt && xx:
		// The node has one condition per request, and LT alone applies to
		// a key without expiry (docs/redis.md).
		return 0, "ERR XX and LT options at the same time are not supported"
	case lt:
		return zppb.ExpireRequest_IF_EARLIER, ""
	case xx:
		return zppb.ExpireRequest_IF_EXPIRY, ""
	}
	return zppb.ExpireRequest_ALWAYS, ""
}

// cmdExpire is EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT key n [NX|XX|GT|LT]:
// 1 when the expiry changed (or the key was deleted by a time that has
// passed), 0 otherwise. Checks as Redis's expireGenericCommand: options,
// then the number, then the overflow of its unit and base.
func cmdExpire(c *conn, args [][]byte) entry {
	name := strings.ToLower(string(args[0]))
	cond, msg := parseExpireOptions(args[3:])
	if msg != "" {
		return fail(msg)
	}
	when, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		return fail(errNotInteger)
	}
	if name == "expire" || name == "expireat" {
		if when > math.MaxInt64/1000 || when < math.MinInt64/1000 {
			return fail(errExpireTime(name))
		}
		when *= 1000
	}
	ex := &zppb.ExpireRequest{Table: c.table, Key: clone(args[1]), Condition: cond}
	if name == "expire" || name == "pexpire" {
		if when > math.MaxInt64-time.Now().UnixMilli() {
			return fail(errExpireTime(name))
		}
		ex.Change = &zppb.ExpireRequest_TtlMs{TtlMs: when}
	} else {
		ex.Change = &zppb.ExpireRequest_ExpireAtMs{ExpireAtMs: when}
	}
	return c.expire(ex)
}

// cmdPersist is PERSIST key: 1 when an expiry was removed.
func cmdPersist(c *conn, args [][]byte) entry {
	return c.expire(&zppb.ExpireRequest{Table: c.table, Key: clone(args[1]), Change: &zppb.ExpireRequest_Persist{Persist: true}})
}

func (c *conn) expire(ex *zppb.ExpireRequest) entry {
	req := &zppb.Request{Cmd: &zppb.Request_Expire{Expire: ex}}
	return c.one(req, slotOf(ex.Key), func(c *conn, r *zppb.Response) {
		if r.GetExpire().GetChanged() {
			c.wrote(ex.Key)
			c.w.WriteInt(1)
		} else {
			c.w.WriteInt(0)
		}
	})
}

// cmdTTL is TTL, PTTL, EXPIRETIME and PEXPIRETIME: -2 for a missing key,
// -1 for one without expiry; seconds are rounded as Redis's
// ttlGenericCommand rounds them, (ms+500)/1000, absolute ones included.
func cmdTTL(c *conn, args [][]byte) entry {
	name := strings.ToLower(string(args[0]))
	ms := name == "pttl" || name == "pexpiretime"
	abs := name == "expiretime" || name == "pexpiretime"
	key := clone(args[1])
	req := &zppb.Request{Cmd: &zppb.Request_Ttl{Ttl: &zppb.TTLRequest{Table: c.table, Key: key}}}
	return c.one(req, slotOf(key), func(c *conn, r *zppb.Response) {
		t := r.GetTtl().GetTtlMs()
		if abs {
			t = r.GetTtl().GetExpireAtMs()
		}
		switch {
		case r.Code == zppb.Code_NOT_FOUND:
			c.w.WriteInt(-2)
		case t < 0:
			c.w.WriteInt(-1)
		case ms:
			c.w.WriteInt(t)
		default:
			c.w.WriteInt((t + 500) / 1000)
		}
	})
}
