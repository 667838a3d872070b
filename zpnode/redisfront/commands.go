package redisfront

import (
	"bytes"
	"slices"
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
	// noMulti: refused between MULTI and EXEC ("Command not allowed
	// inside a transaction"): it needs more than one request, or is no
	// command on keys.
	noMulti bool
	// txControl: MULTI, EXEC, DISCARD, WATCH, QUIT, RESET run at once
	// inside a transaction, as in Redis (processCommand does not queue
	// them).
	txControl bool
}

var (
	rw   = []string{"write", "denyoom"}
	rwf  = []string{"write", "denyoom", "fast"}
	wr   = []string{"write"}
	wrf  = []string{"write", "fast"}
	ro   = []string{"readonly", "fast"}
	rosl = []string{"readonly"}
	adm  = []string{"loading", "stale"}
)

// commands is the command table, filled in init (it refers to itself
// through COMMAND).
var commands map[string]*command

func init() {
	key := func(name string, arity int, flags []string, run func(*conn, [][]byte) entry) *command {
		return &command{name: name, arity: arity, flags: flags, first: 1, last: 1, step: 1, run: run}
	}
	keys := func(name string, arity int, flags []string, step int, run func(*conn, [][]byte) entry) *command {
		return &command{name: name, arity: arity, flags: flags, first: 1, last: -1, step: step, run: run}
	}
	list := []*command{
		key("get", 2, ro, cmdGet),
		key("set", -3, rw, cmdSet),
		key("setnx", 3, rwf, cmdSetNX),
		key("setex", 4, rw, cmdSetEx),
		key("psetex", 4, rw, cmdSetEx),
		key("getset", 3, rwf, cmdGetSet),
		key("getdel", 2, wrf, cmdGetDel),
		key("getex", -2, wrf, cmdGetEx),
		keys("mget", -2, ro, 1, cmdMGet),
		keys("mset", -3, rw, 2, cmdMSet),
		keys("msetnx", -3, rw, 2, cmdMSetNX),
		key("incr", 2, rwf, cmdIncr),
		key("decr", 2, rwf, cmdIncr),
		key("incrby", 3, rwf, cmdIncr),
		key("decrby", 3, rwf, cmdIncr),
		key("incrbyfloat", 3, rwf, cmdIncrByFloat),
		key("append", 3, rwf, cmdAppend),
		key("strlen", 2, ro, cmdStrlen),
		key("getrange", 4, rosl, cmdGetRange),
		key("substr", 4, rosl, cmdGetRange),
		key("setrange", 4, rw, cmdSetRange),
		keys("del", -2, wr, 1, cmdDel),
		keys("unlink", -2, wrf, 1, cmdDel),
		keys("exists", -2, ro, 1, cmdExists),
		keys("touch", -2, ro, 1, cmdExists),
		key("type", 2, ro, cmdType),
		key("expire", -3, wrf, cmdExpire),
		key("pexpire", -3, wrf, cmdExpire),
		key("expireat", -3, wrf, cmdExpire),
		key("pexpireat", -3, wrf, cmdExpire),
		key("persist", 2, wrf, cmdPersist),
		key("ttl", 2, ro, cmdTTL),
		key("pttl", 2, ro, cmdTTL),
		key("expiretime", 2, ro, cmdTTL),
		key("pexpiretime", 2, ro, cmdTTL),
		{name: "scan", arity: -2, flags: rosl, run: cmdScan, noMulti: true},
		{name: "keys", arity: 2, flags: rosl, run: cmdKeys, noMulti: true},
		{name: "randomkey", arity: 1, flags: rosl, run: cmdRandomKey, noMulti: true},
		{name: "dbsize", arity: 1, flags: ro, run: cmdDBSize},
		{name: "flushdb", arity: -1, flags: wr, run: cmdFlush, noMulti: true},
		{name: "flushall", arity: -1, flags: wr, run: cmdFlush, noMulti: true},
		{name: "wait", arity: 3, flags: []string{"noscript"}, run: cmdWait, noMulti: true},
		{name: "multi", arity: 1, flags: []string{"noscript", "loading", "stale", "fast"}, run: cmdMulti, txControl: true},
		{name: "exec", arity: 1, flags: []string{"noscript", "loading", "stale", "skip_slowlog"}, run: cmdExec, txControl: true},
		{name: "discard", arity: 1, flags: []string{"noscript", "loading", "stale", "fast"}, run: cmdDiscard, txControl: true},
		{name: "watch", arity: -2, flags: []string{"noscript", "loading", "stale", "fast"}, first: 1, last: -1, step: 1, run: cmdWatch, txControl: true},
		{name: "unwatch", arity: 1, flags: []string{"noscript", "loading", "stale", "fast"}, run: cmdUnwatch},

		{name: "ping", arity: -1, flags: []string{"fast"}, run: cmdPing},
		{name: "echo", arity: 2, flags: []string{"fast"}, run: cmdEcho},
		{name: "hello", arity: -1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, run: cmdHello},
		{name: "auth", arity: -2, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, run: cmdAuth},
		{name: "select", arity: 2, flags: []string{"loading", "stale", "fast"}, run: cmdSelect},
		{name: "quit", arity: -1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, run: cmdQuit, txControl: true},
		{name: "reset", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, run: cmdReset, txControl: true},
		{name: "client", arity: -2, flags: adm, run: cmdClient},
		{name: "command", arity: -1, flags: adm, run: cmdCommand},
		{name: "config", arity: -2, flags: adm, run: cmdConfig},
		{name: "info", arity: -1, flags: adm, run: cmdInfo, noMulti: true},
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

// command translates one command; between MULTI and EXEC it queues it
// instead (see transaction).
func (c *conn) command(args [][]byte) entry {
	cmd := commands[strings.ToLower(string(args[0]))]
	var msg string
	switch {
	case cmd == nil:
		c.setLastCmd(string(args[0]))
		msg = errUnknownCommand(args)
	case (cmd.arity > 0 && len(args) != cmd.arity) || len(args) < -cmd.arity:
		c.setLastCmd(cmd.name)
		msg = errArity(cmd.name)
	default:
		c.setLastCmd(cmd.name)
		// As Redis: after the name and arity checks, before anything
		// else; only the no_auth commands (AUTH, HELLO, QUIT, RESET) run
		// on a table with passwords before one of them is given.
		if !cmd.noAuth() && !c.authorized() {
			msg = errNoAuth
		}
	}
	if c.tx != nil && (cmd == nil || !cmd.txControl) {
		return c.tx.queue(c, cmd, args, msg)
	}
	if msg != "" {
		return fail(msg)
	}
	return cmd.run(c, args)
}

// noAuth reports whether cmd runs before authentication.
func (cmd *command) noAuth() bool { return slices.Contains(cmd.flags, "no_auth") }

// local is a command the front answers itself, at its turn.
func local(fn func(c *conn)) entry {
	return entry{slot: -1, reply: func(c *conn, _ []*zppb.Response) { fn(c) }}
}

func fail(msg string) entry {
	e := local(func(c *conn) { c.w.WriteError(msg) })
	e.err = msg
	return e
}

func ok() entry { return local(func(c *conn) { c.w.WriteSimpleString("OK") }) }

// clone copies an argument out of the read buffer: requests outlive it
// (a replica keeps a queued write's record until it is applied).
func clone(b []byte) []byte { return bytes.Clone(b) }

func cloneAll(bs [][]byte) [][]byte {
	out := make([][]byte, len(bs))
	for i, b := range bs {
		out[i] = clone(b)
	}
	return out
}

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

// one is a command on keys of slot run as the one request req: it replies
// with fn when req succeeds (NOT_FOUND included), or the mapped error.
// After READONLY a read may be served by a slave here (allow_stale).
func (c *conn) one(req *zppb.Request, slot int, fn func(c *conn, r *zppb.Response)) entry {
	if c.readonly && !isWrite(req) {
		req.AllowStale = true
	}
	return entry{reqs: []*zppb.Request{req}, keyed: slot >= 0, slot: slot, reply: func(c *conn, rs []*zppb.Response) {
		if r := rs[0]; r.Code == zppb.Code_OK || r.Code == zppb.Code_NOT_FOUND {
			fn(c, r)
		} else {
			c.writeStatus(r.Code, r.Msg, r.Master, slot)
		}
	}}
}

// isWrite reports whether req changes data: it gets a request id, and is
// never served by a slave.
func isWrite(req *zppb.Request) bool {
	switch c := req.Cmd.(type) {
	case *zppb.Request_Get, *zppb.Request_Mget, *zppb.Request_Exists, *zppb.Request_Ttl, *zppb.Request_Scan, *zppb.Request_Info:
		return false
	case *zppb.Request_Getex:
		return c.Getex.Change != nil
	}
	return true
}

// wrote records the connection's last write, for WAIT.
func (c *conn) wrote(key []byte) {
	c.lastWriteTable, c.lastWriteKey = c.table, key
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
