package redisfront

import (
	"strings"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// MULTI/EXEC: commands between MULTI and EXEC are translated and checked
// as they arrive (answered +QUEUED) and run at EXEC as one native
// MultiRequest: atomically, on keys of one slot, as one binlog record,
// answered exactly once by its request id (see docs/redis.md, MULTI).

const (
	errExecAbort  = "EXECABORT Transaction discarded because of previous errors."
	errNotInMulti = "ERR Command not allowed inside a transaction"
	// WATCH has no optimistic locking to offer: a transaction is atomic by
	// itself, and there is no per-key version to watch.
	errWatch = "ERR WATCH is not supported: MULTI/EXEC runs atomically on its own (keys of one slot, one binlog record)"
)

// transaction is a connection's state between MULTI and EXEC.
type transaction struct {
	queued []entry
	// dirty: a command was refused as it was queued (unknown, wrong
	// arity, not allowed, CROSSSLOT, MOVED): EXEC answers EXECABORT, as
	// Redis's flagTransaction makes it.
	dirty bool
}

// queue translates a command inside MULTI: refusals that Redis makes
// before queueing fail it and the transaction; anything else is kept,
// syntax errors included (Redis finds those when EXEC runs the command),
// and answered +QUEUED.
func (t *transaction) queue(c *conn, cmd *command, args [][]byte, msg string) entry {
	if msg == "" && cmd.noMulti {
		msg = errNotInMulti
	}
	var e entry
	if msg == "" {
		e = cmd.run(c, args)
		switch {
		case strings.HasPrefix(e.err, "CROSSSLOT"):
			msg = e.err
		case e.keyed:
			// Redis Cluster redirects each queued command whose slot is
			// not served here, and flags the transaction.
			msg = c.slotNotServed(e.slot)
		case len(e.reqs) > 0:
			msg = errNotInMulti
		}
	}
	if msg != "" {
		t.dirty = true
		return fail(msg)
	}
	for _, req := range e.reqs {
		req.AllowStale = false // a transaction runs on the master
	}
	t.queued = append(t.queued, e)
	return local(func(c *conn) { c.w.WriteSimpleString("QUEUED") })
}

// slotNotServed is the redirection for slot when this node does not master
// its partition of the connection's table ("" when it does, or when the
// table is unknown: EXEC's request then says why).
func (c *conn) slotNotServed(slot int) string {
	p := c.s.b.SlotOwner(c.table, uint16(slot))
	if p == nil || p.Master == c.s.b.Addr() {
		return ""
	}
	return c.statusError(zppb.Code_MOVE, "", p.Master, slot)
}

func cmdMulti(c *conn, args [][]byte) entry {
	if c.tx != nil {
		return fail("ERR MULTI calls can not be nested")
	}
	c.tx = &transaction{}
	return ok()
}

func cmdDiscard(c *conn, args [][]byte) entry {
	if c.tx == nil {
		return fail("ERR DISCARD without MULTI")
	}
	c.tx = nil
	return ok()
}

func cmdWatch(c *conn, args [][]byte) entry {
	if c.tx != nil {
		return fail("ERR WATCH inside MULTI is not allowed")
	}
	return fail(errWatch)
}

// cmdUnwatch answers OK: nothing is ever watched.
func cmdUnwatch(c *conn, args [][]byte) entry { return ok() }

// cmdExec runs the queued commands: their requests as one MultiRequest,
// the replies in order, each as the command alone would have answered
// (a command's own error among them, the others applied). Keys of several
// slots fail it with CROSSSLOT, as Redis Cluster checks EXEC.
func cmdExec(c *conn, args [][]byte) entry {
	tx := c.tx
	if tx == nil {
		return fail("ERR EXEC without MULTI")
	}
	c.tx = nil
	if tx.dirty {
		return fail(errExecAbort)
	}
	var cmds []*zppb.Request
	slot := -1
	for _, e := range tx.queued {
		if !e.keyed {
			continue
		}
		if slot >= 0 && e.slot != slot {
			return fail(errCrossSlot)
		}
		slot = e.slot
		cmds = append(cmds, e.reqs[0])
	}
	replyAll := func(c *conn, results []*zppb.Response) {
		c.w.WriteArrayLen(len(tx.queued))
		j := 0
		for _, e := range tx.queued {
			if e.keyed {
				e.reply(c, results[j:j+1])
				j++
			} else {
				e.reply(c, nil)
			}
		}
	}
	if len(cmds) == 0 {
		return local(func(c *conn) { replyAll(c, nil) })
	}
	req := &zppb.Request{Cmd: &zppb.Request_Multi{Multi: &zppb.MultiRequest{Table: c.table, Cmds: cmds}}}
	return entry{reqs: []*zppb.Request{req}, slot: slot, reply: func(c *conn, rs []*zppb.Response) {
		r := rs[0]
		results := r.GetMulti().GetResults()
		if r.Code != zppb.Code_OK || len(results) != len(cmds) {
			c.writeStatus(r.Code, r.Msg, r.Master, slot)
			return
		}
		replyAll(c, results)
	}}
}
