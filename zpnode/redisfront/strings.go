package redisfront

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// The string commands, each translated to one native request (the table
// of docs/redis.md, "Command layer"). The front parses and checks the
// arguments as Redis 7.0 does (t_string.c) and replies as Redis does; the
// node does the rest.

func cmdGet(c *conn, args [][]byte) entry {
	key := clone(args[1])
	req := &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: c.table, Key: key}}}
	return c.one(req, slotOf(key), func(c *conn, r *zppb.Response) { c.writeValue(r) })
}

func slotOf(key []byte) int { return int(keyspace.Slot(key)) }

// writeValue replies a GET-like answer: the value, or nil for NOT_FOUND.
func (c *conn) writeValue(r *zppb.Response) {
	if r.Code == zppb.Code_NOT_FOUND {
		c.w.WriteNull()
		return
	}
	c.w.WriteBulk(r.GetGet().GetValue())
}

// Expiry units and bases of the SET/GETEX/EXPIRE families.
const (
	unitSeconds = 1000
	unitMillis  = 1
)

// expiry is a parsed EX/PX/EXAT/PXAT option.
type expiry struct {
	set      bool
	abs      bool  // EXAT/PXAT
	unit     int64 // unitSeconds or unitMillis
	arg      []byte
	relative int64 // ms, for EX/PX
	at       int64 // unix ms, for EXAT/PXAT
}

// resolve checks the expiry's number as Redis's getExpireMillisecondsOrReply
// does, naming cmd in its error: an integer, > 0, whose milliseconds (and,
// for EX/PX, now plus them) fit in int64.
func (x *expiry) resolve(cmd string) string {
	n, err := strconv.ParseInt(string(x.arg), 10, 64)
	if err != nil {
		return errNotInteger
	}
	if n <= 0 || (x.unit == unitSeconds && n > math.MaxInt64/1000) {
		return errExpireTime(cmd)
	}
	n *= x.unit
	if x.abs {
		x.at = n
		return ""
	}
	if n > math.MaxInt64-time.Now().UnixMilli() {
		return errExpireTime(cmd)
	}
	x.relative = n
	return ""
}

// String option flags, as Redis's parseExtendedStringArgumentsOrReply
// names them.
const (
	optNX = 1 << iota
	optXX
	optGet
	optKeepTTL
	optPersist
	optEX
	optPX
	optEXAT
	optPXAT
	optExpiry = optEX | optPX | optEXAT | optPXAT
)

// parseStringOptions is parseExtendedStringArgumentsOrReply: the options
// of SET (isSet) or GETEX from args[from:], with Redis's rules on which
// combine; any other is a syntax error.
func parseStringOptions(args [][]byte, from int, isSet bool) (flags int, x expiry, msg string) {
	for j := from; j < len(args); j++ {
		opt := strings.ToUpper(string(args[j]))
		hasNext := j+1 < len(args)
		switch {
		case opt == "NX" && isSet && flags&optXX == 0:
			flags |= optNX
		case opt == "XX" && isSet && flags&optNX == 0:
			flags |= optXX
		case opt == "GET" && isSet:
			flags |= optGet
		case opt == "KEEPTTL" && isSet && flags&(optPersist|optExpiry) == 0:
			flags |= optKeepTTL
		case opt == "PERSIST" && !isSet && flags&(optExpiry|optKeepTTL) == 0:
			flags |= optPersist
		case opt == "EX" && flags&(optKeepTTL|optPersist|optEXAT|optPX|optPXAT) == 0 && hasNext:
			flags |= optEX
			x = expiry{set: true, unit: unitSeconds, arg: args[j+1]}
			j++
		case opt == "PX" && flags&(optKeepTTL|optPersist|optEX|optEXAT|optPXAT) == 0 && hasNext:
			flags |= optPX
			x = expiry{set: true, unit: unitMillis, arg: args[j+1]}
			j++
		case opt == "EXAT" && flags&(optKeepTTL|optPersist|optEX|optPX|optPXAT) == 0 && hasNext:
			flags |= optEXAT
			x = expiry{set: true, abs: true, unit: unitSeconds, arg: args[j+1]}
			j++
		case opt == "PXAT" && flags&(optKeepTTL|optPersist|optEX|optEXAT|optPX) == 0 && hasNext:
			flags |= optPXAT
			x = expiry{set: true, abs: true, unit: unitMillis, arg: args[j+1]}
			j++
		default:
			return 0, expiry{}, errSyntax
		}
	}
	return flags, x, ""
}

// cmdSet is SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms-ts|KEEPTTL].
func cmdSet(c *conn, args [][]byte) entry {
	flags, x, msg := parseStringOptions(args, 3, true)
	if msg == "" && x.set {
		msg = x.resolve("set")
	}
	if msg != "" {
		return fail(msg)
	}
	key := clone(args[1])
	set := &zppb.SetRequest{Table: c.table, Key: key, Value: clone(args[2]), TtlMs: x.relative, ExpireAtMs: x.at,
		KeepTtl: flags&optKeepTTL != 0, ReturnOld: flags&optGet != 0}
	switch {
	case flags&optNX != 0:
		set.Condition = zppb.SetRequest_IF_ABSENT
	case flags&optXX != 0:
		set.Condition = zppb.SetRequest_IF_PRESENT
	}
	req := &zppb.Request{Cmd: &zppb.Request_Set{Set: set}}
	return c.one(req, slotOf(key), func(c *conn, r *zppb.Response) {
		sr := r.GetSet()
		if sr.GetApplied() {
			c.wrote(key)
		}
		switch {
		case set.ReturnOld && sr.GetOldFound():
			c.w.WriteBulk(sr.GetOld())
		case set.ReturnOld, !sr.GetApplied():
			c.w.WriteNull()
		default:
			c.w.WriteSimpleString("OK")
		}
	})
}

// cmdSetNX is SETNX key value: 1 when set, 0 when the key exists.
func cmdSetNX(c *conn, args [][]byte) entry {
	key := clone(args[1])
	req := &zppb.Request{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: c.table, Key: key, Value: clone(args[2]), Condition: zppb.SetRequest_IF_ABSENT}}}
	return c.one(req, slotOf(key), func(c *conn, r *zppb.Response) {
		if r.GetSet().GetApplied() {
			c.wrote(key)
			c.w.WriteInt(1)
		} else {
			c.w.WriteInt(0)
		}
	})
}

// cmdSetEx is SETEX key seconds value and PSETEX key ms value.
func cmdSetEx(c *conn, args [][]byte) entry {
	name := strings.ToLower(string(args[0]))
	x := expiry{set: true, unit: unitSeconds, arg: args[2]}
	if name == "psetex" {
		x.unit = unitMillis
	}
	if msg := x.resolve(name); msg != "" {
		return fail(msg)
	}
	key := clone(args[1])
	req := &zppb.Request{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: c.table, Key: key, Value: clone(args[3]), TtlMs: x.relative}}}
	return c.one(req, slotOf(key), func(c *conn, r *zppb.Response) { c.wrote(key); c.w.WriteSimpleString("OK") })
}

// cmdGetSet is GETSET key value: the old value (nil when none).
func cmdGetSet(c *conn, args [][]byte) entry {
	key := clone(args[1])
	req := &zppb.Request{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: c.table, Key: key, Value: clone(args[2]), ReturnOld: true}}}
	return c.one(req, slotOf(key), func(c *conn, r *zppb.Response) {
		c.wrote(key)
		if sr := r.GetSet(); sr.GetOldFound() {
			c.w.WriteBulk(sr.GetOld())
		} else {
			c.w.WriteNull()
		}
	})
}

// cmdGetDel is GETDEL key.
func cmdGetDel(c *conn, args [][]byte) entry {
	key := clone(args[1])
	req := &zppb.Request{Cmd: &zppb.Request_Getex{Getex: &zppb.GetExRequest{Table: c.table, Key: key, Change: &zppb.GetExRequest_Delete{Delete: true}}}}
	return c.one(req, slotOf(key), func(c *conn, r *zppb.Response) {
		if r.Code == zppb.Code_OK {
			c.wrote(key)
		}
		c.writeValue(r)
	})
}

// cmdGetEx is GETEX key [EX s|PX ms|EXAT ts|PXAT ms-ts|PERSIST]. Redis
// checks the expiry's number only when the key exists; here a bad number
// fails whether it does or not (docs/redis.md).
func cmdGetEx(c *conn, args [][]byte) entry {
	flags, x, msg := parseStringOptions(args, 2, false)
	if msg == "" && x.set {
		msg = x.resolve("getex")
	}
	if msg != "" {
		return fail(msg)
	}
	key := clone(args[1])
	ge := &zppb.GetExRequest{Table: c.table, Key: key}
	switch {
	case flags&optPersist != 0:
		ge.Change = &zppb.GetExRequest_Persist{Persist: true}
	case x.set && x.abs:
		ge.Change = &zppb.GetExRequest_ExpireAtMs{ExpireAtMs: x.at}
	case x.set:
		ge.Change = &zppb.GetExRequest_TtlMs{TtlMs: x.relative}
	}
	req := &zppb.Request{Cmd: &zppb.Request_Getex{Getex: ge}}
	return c.one(req, slotOf(key), func(c *conn, r *zppb.Response) {
		if ge.Change != nil && r.Code == zppb.Code_OK {
			c.wrote(key)
		}
		c.writeValue(r)
	})
}

func cmdMGet(c *conn, args [][]byte) entry {
	slot := sameSlot(args[1:])
	if slot < 0 {
		return fail(errCrossSlot)
	}
	keys := cloneAll(args[1:])
	req := &zppb.Request{Cmd: &zppb.Request_Mget{Mget: &zppb.MGetRequest{Table: c.table, Keys: keys}}}
	return c.one(req, slot, func(c *conn, r *zppb.Response) {
		results := r.GetMget().GetResults()
		for _, kr := range results {
			if kr.Code != zppb.Code_OK && kr.Code != zppb.Code_NOT_FOUND {
				c.writeStatus(kr.Code, kr.Msg, kr.Master, slot)
				return
			}
		}
		c.w.WriteArrayLen(len(results))
		for _, kr := range results {
			if kr.Code == zppb.Code_NOT_FOUND {
				c.w.WriteNull()
			} else {
				c.w.WriteBulk(kr.Value)
			}
		}
	})
}

// pairs returns the keys and values of MSET-like arguments, and the slot
// they share (-1: several).
func pairs(args [][]byte) (kvs []*zppb.KeyValue, keys [][]byte, slot int) {
	for i := 1; i+1 < len(args); i += 2 {
		kv := &zppb.KeyValue{Key: clone(args[i]), Value: clone(args[i+1])}
		kvs = append(kvs, kv)
		keys = append(keys, kv.Key)
	}
	return kvs, keys, sameSlot(keys)
}

// cmdMSet writes keys of one slot as one atomic batch.
func cmdMSet(c *conn, args [][]byte) entry {
	if len(args)%2 != 1 {
		return fail(errArity("mset"))
	}
	kvs, keys, slot := pairs(args)
	if slot < 0 {
		return fail(errCrossSlot)
	}
	ops := make([]*zppb.BatchOp, len(kvs))
	for i, kv := range kvs {
		ops[i] = &zppb.BatchOp{Kind: zppb.BatchOp_PUT, Key: kv.Key, Value: kv.Value}
	}
	req := &zppb.Request{Cmd: &zppb.Request_WriteBatch{WriteBatch: &zppb.WriteBatchRequest{Table: c.table, Ops: ops}}}
	return c.one(req, slot, func(c *conn, r *zppb.Response) { c.wrote(keys[0]); c.w.WriteSimpleString("OK") })
}

// cmdMSetNX writes keys of one slot only if none exists: 1, else 0.
func cmdMSetNX(c *conn, args [][]byte) entry {
	if len(args)%2 != 1 {
		return fail(errArity("msetnx"))
	}
	kvs, keys, slot := pairs(args)
	if slot < 0 {
		return fail(errCrossSlot)
	}
	req := &zppb.Request{Cmd: &zppb.Request_Mset{Mset: &zppb.MSetRequest{Table: c.table, Kvs: kvs, IfAbsent: true}}}
	return c.one(req, slot, func(c *conn, r *zppb.Response) {
		if r.GetMset().GetApplied() {
			c.wrote(keys[0])
			c.w.WriteInt(1)
		} else {
			c.w.WriteInt(0)
		}
	})
}

// cmdIncr is INCR, DECR, INCRBY and DECRBY.
func cmdIncr(c *conn, args [][]byte) entry {
	var delta int64
	switch strings.ToLower(string(args[0])) {
	case "incr":
		delta = 1
	case "decr":
		delta = -1
	case "incrby", "decrby":
		n, err := strconv.ParseInt(string(args[2]), 10, 64)
		if err != nil {
			return fail(errNotInteger)
		}
		if strings.EqualFold(string(args[0]), "decrby") {
			if n == math.MinInt64 {
				return fail("ERR decrement would overflow")
			}
			n = -n
		}
		delta = n
	}
	key := clone(args[1])
	req := &zppb.Request{Cmd: &zppb.Request_Incrby{Incrby: &zppb.IncrByRequest{Table: c.table, Key: key, Delta: delta}}}
	return c.one(req, slotOf(key), func(c *conn, r *zppb.Response) {
		c.wrote(key)
		c.w.WriteInt(r.GetIncrby().GetValue())
	})
}

// cmdIncrByFloat is INCRBYFLOAT key increment; the node parses the
// increment as Redis does, and answers the new value as stored.
func cmdIncrByFloat(c *conn, args [][]byte) entry {
	key := clone(args[1])
	req := &zppb.Request{Cmd: &zppb.Request_IncrbyFloat{IncrbyFloat: &zppb.IncrByFloatRequest{Table: c.table, Key: key, Delta: string(args[2])}}}
	return c.one(req, slotOf(key), func(c *conn, r *zppb.Response) {
		c.wrote(key)
		c.w.WriteBulkString(r.GetIncrbyFloat().GetValue())
	})
}

// cmdAppend is APPEND key value: the new length.
func cmdAppend(c *conn, args [][]byte) entry {
	key := clone(args[1])
	req := &zppb.Request{Cmd: &zppb.Request_SetRange{SetRange: &zppb.SetRangeRequest{Table: c.table, Key: key, Value: clone(args[2]), Append: true}}}
	return c.one(req, slotOf(key), func(c *conn, r *zppb.Response) {
		c.wrote(key)
		c.w.WriteInt(r.GetSetRange().GetLength())
	})
}

// cmdSetRange is SETRANGE key offset value: the new length.
func cmdSetRange(c *conn, args [][]byte) entry {
	off, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		return fail(errNotInteger)
	}
	if off < 0 {
		return fail("ERR offset is out of range")
	}
	key := clone(args[1])
	req := &zppb.Request{Cmd: &zppb.Request_SetRange{SetRange: &zppb.SetRangeRequest{Table: c.table, Key: key, Offset: off, Value: clone(args[3])}}}
	return c.one(req, slotOf(key), func(c *conn, r *zppb.Response) {
		c.wrote(key)
		c.w.WriteInt(r.GetSetRange().GetLength())
	})
}

// cmdStrlen is STRLEN key: a GET measured here (0 when missing).
func cmdStrlen(c *conn, args [][]byte) entry {
	key := clone(args[1])
	req := &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: c.table, Key: key}}}
	return c.one(req, slotOf(key), func(c *conn, r *zppb.Response) {
		c.w.WriteInt(int64(len(r.GetGet().GetValue())))
	})
}

// cmdGetRange is GETRANGE (and SUBSTR) key start end: a GET cut here as
// Redis's getrangeCommand cuts it.
func cmdGetRange(c *conn, args [][]byte) entry {
	start, err1 := strconv.ParseInt(string(args[2]), 10, 64)
	end, err2 := strconv.ParseInt(string(args[3]), 10, 64)
	if err1 != nil || err2 != nil {
		return fail(errNotInteger)
	}
	key := clone(args[1])
	req := &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: c.table, Key: key}}}
	return c.one(req, slotOf(key), func(c *conn, r *zppb.Response) {
		c.w.WriteBulk(getRange(r.GetGet().GetValue(), start, end))
	})
}

// getRange is the substring GETRANGE answers.
func getRange(v []byte, start, end int64) []byte {
	n := int64(len(v))
	if start < 0 && end < 0 && start > end {
		return []byte{}
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start, end = max(start, 0), max(end, 0)
	if end >= n {
		end = n - 1
	}
	if start > end || n == 0 {
		return []byte{}
	}
	return v[start : end+1]
}
