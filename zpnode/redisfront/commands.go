package redisfront

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// command is one Redis command this front serves, with what COMMAND
// reports of it.
type command struct {
	name  string // lower case
	arity int    // Redis's: n exactly, -n at least n (the name counts)
	flags []string
	// Keys: first, last (-1: the last argument) and step.
	first, last, step int
	run               func(c *conn, args [][]byte) entry
}

var (
	rw  = []string{"write", "denyoom"}
	ro  = []string{"readonly", "fast"}
	adm = []string{"loading", "stale"}
)

// commands is the command table, filled in init (it refers to itself
// through COMMAND).
var commands map[string]*command

func init() {
	list := []*command{
		{name: "get", arity: 2, flags: ro, first: 1, last: 1, step: 1, run: cmdGet},
		{name: "set", arity: -3, flags: rw, first: 1, last: 1, step: 1, run: cmdSet},
		{name: "del", arity: -2, flags: []string{"write"}, first: 1, last: -1, step: 1, run: cmdDel},
		{name: "unlink", arity: -2, flags: []string{"write", "fast"}, first: 1, last: -1, step: 1, run: cmdDel},
		{name: "exists", arity: -2, flags: ro, first: 1, last: -1, step: 1, run: cmdExists},
		{name: "incr", arity: 2, flags: []string{"write", "denyoom", "fast"}, first: 1, last: 1, step: 1, run: cmdIncr},
		{name: "decr", arity: 2, flags: []string{"write", "denyoom", "fast"}, first: 1, last: 1, step: 1, run: cmdIncr},
		{name: "incrby", arity: 3, flags: []string{"write", "denyoom", "fast"}, first: 1, last: 1, step: 1, run: cmdIncr},
		{name: "decrby", arity: 3, flags: []string{"write", "denyoom", "fast"}, first: 1, last: 1, step: 1, run: cmdIncr},
		{name: "mget", arity: -2, flags: ro, first: 1, last: -1, step: 1, run: cmdMGet},
		{name: "mset", arity: -3, flags: rw, first: 1, last: -1, step: 2, run: cmdMSet},
		{name: "ttl", arity: 2, flags: ro, first: 1, last: 1, step: 1, run: cmdTTL},
		{name: "pttl", arity: 2, flags: ro, first: 1, last: 1, step: 1, run: cmdTTL},
		{name: "dbsize", arity: 1, flags: ro, run: cmdDBSize},
		{name: "flushdb", arity: -1, flags: []string{"write"}, run: cmdFlush},
		{name: "flushall", arity: -1, flags: []string{"write"}, run: cmdFlush},
		{name: "wait", arity: 3, flags: []string{"noscript"}, run: cmdWait},

		{name: "ping", arity: -1, flags: []string{"fast"}, run: cmdPing},
		{name: "echo", arity: 2, flags: []string{"fast"}, run: cmdEcho},
		{name: "hello", arity: -1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, run: cmdHello},
		{name: "auth", arity: -2, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, run: cmdAuth},
		{name: "select", arity: 2, flags: []string{"loading", "stale", "fast"}, run: cmdSelect},
		{name: "quit", arity: -1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, run: cmdQuit},
		{name: "reset", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, run: cmdReset},
		{name: "client", arity: -2, flags: adm, run: cmdClient},
		{name: "command", arity: -1, flags: adm, run: cmdCommand},
		{name: "config", arity: -2, flags: adm, run: cmdConfig},
		{name: "info", arity: -1, flags: adm, run: cmdInfo},
		{name: "time", arity: 1, flags: []string{"loading", "stale", "fast"}, run: cmdTime},
		{name: "cluster", arity: -2, flags: adm, run: cmdCluster},
		{name: "readonly", arity: 1, flags: []string{"loading", "stale", "fast"}, run: cmdReadonly},
		{name: "readwrite", arity: 1, flags: []string{"loading", "stale", "fast"}, run: cmdReadonly},
		{name: "asking", arity: 1, flags: []string{"fast"}, run: cmdAsking},
	}
	commands = make(map[string]*command, len(list))
	for _, cmd := range list {
		commands[cmd.name] = cmd
	}
}

// command translates and starts one command.
func (c *conn) command(args [][]byte) entry {
	cmd := commands[strings.ToLower(string(args[0]))]
	if cmd == nil {
		c.setLastCmd(string(args[0]))
		return fail(errUnknownCommand(args))
	}
	c.setLastCmd(cmd.name)
	if (cmd.arity > 0 && len(args) != cmd.arity) || len(args) < -cmd.arity {
		return fail(errArity(cmd.name))
	}
	return cmd.run(c, args)
}

// local is a command the front answers itself, at its turn.
func local(fn func(c *conn)) entry {
	return entry{reply: func(c *conn, _ []*zppb.Response) { fn(c) }}
}

func fail(msg string) entry {
	return local(func(c *conn) { c.w.WriteError(msg) })
}

func ok() entry { return local(func(c *conn) { c.w.WriteSimpleString("OK") }) }

// keyArgs copies keys out of the read buffer: requests outlive it (a
// replica keeps a queued write's record until it is applied).
func clone(b []byte) []byte { return bytes.Clone(b) }

// sameSlot returns the slot of keys, or -1 when they are not all in one
// (Redis Cluster's rule for multi-key commands).
func sameSlot(keys [][]byte) int {
	slot := int(keyspace.Slot(keys[0]))
	for _, k := range keys[1:] {
		if int(keyspace.Slot(k)) != slot {
			return -1
		}
	}
	return slot
}

// one starts req and replies with fn when it succeeds, or the mapped error.
func (c *conn) one(req *zppb.Request, slot int, fn func(c *conn, r *zppb.Response)) entry {
	return entry{pend: []Pending{c.start(req)}, reply: func(c *conn, rs []*zppb.Response) {
		if r := rs[0]; r.Code == zppb.Code_OK || r.Code == zppb.Code_NOT_FOUND {
			fn(c, r)
		} else {
			c.writeStatus(r.Code, r.Msg, r.Master, slot)
		}
	}}
}

func cmdGet(c *conn, args [][]byte) entry {
	key := clone(args[1])
	req := &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: c.table, Key: key}}}
	return c.one(req, int(keyspace.Slot(key)), func(c *conn, r *zppb.Response) {
		if r.Code == zppb.Code_NOT_FOUND {
			c.w.WriteNull()
			return
		}
		c.w.WriteBulk(r.GetGet().GetValue())
	})
}

// cmdSet is SET key value [EX s | PX ms | EXAT unix-s | PXAT unix-ms].
// NX, XX, GET and KEEPTTL need conditional writes in the command layer
// (a native step of issue 13 adds them); until then they are a syntax
// error rather than ignored.
func cmdSet(c *conn, args [][]byte) entry {
	var ttl int64
	expiry := false
	for i := 3; i < len(args); i++ {
		opt := strings.ToUpper(string(args[i]))
		switch opt {
		case "EX", "PX", "EXAT", "PXAT":
			if expiry || i+1 >= len(args) {
				return fail(errSyntax)
			}
			expiry = true
			i++
			n, err := strconv.ParseInt(string(args[i]), 10, 64)
			if err != nil {
				return fail(errNotInteger)
			}
			if n <= 0 || ((opt == "EX" || opt == "EXAT") && n > math.MaxInt64/1000) {
				return fail(errExpireTime("set"))
			}
			switch opt {
			case "EX":
				ttl = n * 1000
			case "PX":
				ttl = n
			case "EXAT":
				ttl = n*1000 - time.Now().UnixMilli()
			case "PXAT":
				ttl = n - time.Now().UnixMilli()
			}
		default:
			// TODO(issue 13, native conditional writes): NX, XX, GET, KEEPTTL.
			return fail(errSyntax)
		}
	}
	key := clone(args[1])
	slot := int(keyspace.Slot(key))
	if expiry && ttl <= 0 {
		// An absolute expiry in the past: Redis sets the key and it is
		// gone at once; deleting it is the same to every reader.
		req := &zppb.Request{Cmd: &zppb.Request_Del{Del: &zppb.DelRequest{Table: c.table, Key: key}}}
		return c.one(req, slot, func(c *conn, r *zppb.Response) { c.wrote(key); c.w.WriteSimpleString("OK") })
	}
	req := &zppb.Request{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: c.table, Key: key, Value: clone(args[2]), TtlMs: ttl}}}
	return c.one(req, slot, func(c *conn, r *zppb.Response) { c.wrote(key); c.w.WriteSimpleString("OK") })
}

// wrote records the connection's last write, for WAIT.
func (c *conn) wrote(key []byte) {
	c.lastWriteTable, c.lastWriteKey = c.table, key
}

// perKey starts one request per key (all of one slot, else CROSSSLOT) and
// replies with the sum of what count takes from each response.
func (c *conn) perKey(args [][]byte, write bool, mk func(key []byte) *zppb.Request, count func(r *zppb.Response) int64) entry {
	keys := args[1:]
	slot := sameSlot(keys)
	if slot < 0 {
		return fail(errCrossSlot)
	}
	e := entry{}
	var first []byte
	for _, k := range keys {
		k = clone(k)
		if first == nil {
			first = k
		}
		e.pend = append(e.pend, c.start(mk(k)))
	}
	e.reply = func(c *conn, rs []*zppb.Response) {
		var n int64
		for _, r := range rs {
			switch r.Code {
			case zppb.Code_OK:
				n += count(r)
			case zppb.Code_NOT_FOUND:
			default:
				c.writeStatus(r.Code, r.Msg, r.Master, slot)
				return
			}
		}
		if write {
			c.wrote(first)
		}
		c.w.WriteInt(n)
	}
	return e
}

// cmdDel is DEL and UNLINK. Keys of one slot are deleted one by one, in
// order, not atomically as one Redis command (see docs/redis.md).
func cmdDel(c *conn, args [][]byte) entry {
	table := c.table
	return c.perKey(args, true,
		func(k []byte) *zppb.Request {
			return &zppb.Request{Cmd: &zppb.Request_Del{Del: &zppb.DelRequest{Table: table, Key: k}}}
		},
		func(r *zppb.Response) int64 { return r.GetDel().GetDeleted() })
}

func cmdExists(c *conn, args [][]byte) entry {
	table := c.table
	return c.perKey(args, false,
		func(k []byte) *zppb.Request {
			return &zppb.Request{Cmd: &zppb.Request_Exists{Exists: &zppb.ExistsRequest{Table: table, Key: k}}}
		},
		func(r *zppb.Response) int64 {
			if r.GetExists().GetExists() {
				return 1
			}
			return 0
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
	return c.one(req, int(keyspace.Slot(key)), func(c *conn, r *zppb.Response) {
		c.wrote(key)
		c.w.WriteInt(r.GetIncrby().GetValue())
	})
}

func cmdMGet(c *conn, args [][]byte) entry {
	slot := sameSlot(args[1:])
	if slot < 0 {
		return fail(errCrossSlot)
	}
	keys := make([][]byte, len(args)-1)
	for i, k := range args[1:] {
		keys[i] = clone(k)
	}
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

// cmdMSet writes keys of one slot as one atomic batch.
func cmdMSet(c *conn, args [][]byte) entry {
	if len(args)%2 != 1 {
		return fail(errArity("mset"))
	}
	keys := make([][]byte, 0, len(args)/2)
	ops := make([]*zppb.BatchOp, 0, len(args)/2)
	for i := 1; i < len(args); i += 2 {
		k := clone(args[i])
		keys = append(keys, k)
		ops = append(ops, &zppb.BatchOp{Kind: zppb.BatchOp_PUT, Key: k, Value: clone(args[i+1])})
	}
	slot := sameSlot(keys)
	if slot < 0 {
		return fail(errCrossSlot)
	}
	req := &zppb.Request{Cmd: &zppb.Request_WriteBatch{WriteBatch: &zppb.WriteBatchRequest{Table: c.table, Ops: ops}}}
	return c.one(req, slot, func(c *conn, r *zppb.Response) { c.wrote(keys[0]); c.w.WriteSimpleString("OK") })
}

// cmdTTL is TTL and PTTL: -2 for a missing key, -1 for one without expiry.
func cmdTTL(c *conn, args [][]byte) entry {
	ms := strings.EqualFold(string(args[0]), "pttl")
	key := clone(args[1])
	req := &zppb.Request{Cmd: &zppb.Request_Ttl{Ttl: &zppb.TTLRequest{Table: c.table, Key: key}}}
	return c.one(req, int(keyspace.Slot(key)), func(c *conn, r *zppb.Response) {
		left := r.GetTtl().GetTtlMs()
		switch {
		case r.Code == zppb.Code_NOT_FOUND:
			c.w.WriteInt(-2)
		case left < 0:
			c.w.WriteInt(-1)
		case ms:
			c.w.WriteInt(left)
		default:
			c.w.WriteInt((left + 500) / 1000) // rounded, as Redis's ttlGenericCommand
		}
	})
}

func cmdDBSize(c *conn, args [][]byte) entry {
	return local(func(c *conn) {
		n, err := c.s.b.DBSize(c.table)
		if err != nil {
			c.w.WriteError("ERR " + err.Error())
			return
		}
		c.w.WriteInt(n)
	})
}

// cmdFlush is FLUSHDB and FLUSHALL [ASYNC|SYNC]: with --redis-allow-flush,
// they empty the partitions of the connection's table that this node
// masters (its slots, as Redis Cluster's FLUSHALL on one node).
func cmdFlush(c *conn, args [][]byte) entry {
	name := strings.ToLower(string(args[0]))
	if len(args) > 2 || (len(args) == 2 && !strings.EqualFold(string(args[1]), "async") && !strings.EqualFold(string(args[1]), "sync")) {
		return fail(errSyntax)
	}
	if !c.s.cfg.AllowFlush {
		return fail("ERR " + strings.ToUpper(name) + " is disabled on this node (start zpnode with --redis-allow-flush)")
	}
	var ids []uint32
	for _, tb := range c.s.b.Topology().GetTables() {
		if tb.Name != c.table {
			continue
		}
		for _, p := range tb.Partitions {
			if p.Master == c.s.b.Addr() {
				ids = append(ids, p.Id)
			}
		}
	}
	if len(ids) == 0 {
		return ok()
	}
	req := &zppb.Request{Cmd: &zppb.Request_FlushTable{FlushTable: &zppb.FlushTableRequest{Table: c.table, Partitions: ids}}}
	return c.one(req, -1, func(c *conn, r *zppb.Response) {
		for _, kr := range r.GetFlushTable().GetResults() {
			if kr.Code != zppb.Code_OK {
				c.writeStatus(kr.Code, kr.Msg, kr.Master, -1)
				return
			}
		}
		c.w.WriteSimpleString("OK")
	})
}

// cmdWait is WAIT numreplicas timeout-ms: how many slaves of the partition
// of the connection's last write have everything its master had logged
// when WAIT ran (so that write, and maybe later ones).
func cmdWait(c *conn, args [][]byte) entry {
	n, err1 := strconv.ParseInt(string(args[1]), 10, 64)
	timeout, err2 := strconv.ParseInt(string(args[2]), 10, 64)
	if err1 != nil || err2 != nil {
		return fail(errNotInteger)
	}
	if timeout < 0 {
		return fail("ERR timeout is negative")
	}
	return local(func(c *conn) {
		if c.lastWriteKey == nil {
			c.w.WriteInt(0)
			return
		}
		ctx := c.s.ctx
		if timeout > 0 {
			var cancel func()
			ctx, cancel = contextWithTimeout(ctx, time.Duration(timeout)*time.Millisecond)
			defer cancel()
		}
		got, err := c.s.b.WaitReplicas(ctx, c.lastWriteTable, c.lastWriteKey, int(max(n, 0)))
		if err != nil {
			c.w.WriteError("ERR " + err.Error())
			return
		}
		c.w.WriteInt(int64(got))
	})
}
