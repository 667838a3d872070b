package redisfront

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/tlsconf"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/resp"
)

// conn is one client connection.
type conn struct {
	s  *Server
	nc net.Conn
	rd *resp.Reader
	w  *resp.Writer

	id      int64
	created time.Time

	// Shared with CLIENT LIST and CLIENT KILL on other connections.
	mu       sync.Mutex
	name     string
	table    string
	password []byte // given with the AUTH that chose table; nil: none
	lastCmd  string
	proto    int
	readonly bool // READONLY: reads may be served by this node's slaves

	quit bool // answer what is pending, then close
	// The key of the connection's last write, for WAIT.
	lastWriteTable string
	lastWriteKey   []byte

	// inBuf is the size of the read buffer, published for CLIENT LIST
	// (qbuf) and tests: the connection's goroutine owns the Reader.
	inBuf atomic.Int64
	// begun is set once the command being read has a deadline
	// (Config.FrameTimeout): it has begun and is not whole yet.
	begun bool

	batch []entry
	base  context.Context // the connection's: names the client (rpc.PeerAddr)
	ctx   context.Context // the current batch's

	tx *transaction // between MULTI and EXEC or DISCARD
}

// entry is one command of a pipeline: the requests it runs and how to
// turn their responses into its reply, or, for a command the front answers
// itself, just the reply.
type entry struct {
	reqs []*zppb.Request // to start, in order (add starts them)
	pend []Pending
	// keyed: a command on keys of slot, with exactly one request, which
	// MULTI can queue and run within its MultiRequest.
	keyed bool
	slot  int
	// err: the command was refused while translated (reply writes it);
	// MULTI queues a syntax error as Redis does, and refuses CROSSSLOT.
	err   string
	reply func(c *conn, resps []*zppb.Response)
}

// queued reports whether every request of e was queued at start, so that
// commands after it may be started before it finishes.
func (e *entry) queued() bool {
	if len(e.pend) == 0 {
		return false
	}
	for _, p := range e.pend {
		if !p.Queued() {
			return false
		}
	}
	return true
}

func (s *Server) newConn(nc net.Conn) *conn {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c := &conn{s: s, nc: nc, id: s.nextID.Add(1), created: time.Now(), table: s.cfg.Table, proto: resp.RESP2,
		base: rpc.WithPeerAddr(s.ctx, nc.RemoteAddr().String())}
	c.rd = resp.NewReader(inputReader{c}, s.limits())
	c.w = resp.NewWriter(deadlineWriter{c})
	return c
}

// inputReader reads the connection for the Reader, publishing the size
// of its buffer before each read.
type inputReader struct{ c *conn }

func (r inputReader) Read(p []byte) (int, error) {
	c := r.c
	c.inBuf.Store(int64(c.rd.BufferSize()))
	// Bytes buffered and more wanted: a command has begun. It gets
	// FrameTimeout to arrive whole, so that a client trickling a byte a
	// second (slowloris) does not hold the connection for ever.
	if t := c.s.cfg.FrameTimeout; t > 0 && !c.begun && c.rd.Buffered() > 0 {
		c.nc.SetReadDeadline(time.Now().Add(t))
		c.begun = true
	}
	return c.nc.Read(p)
}

// deadlineWriter gives every write of replies WriteTimeout to progress.
type deadlineWriter struct{ c *conn }

func (d deadlineWriter) Write(p []byte) (int, error) {
	d.c.nc.SetWriteDeadline(time.Now().Add(d.c.s.cfg.WriteTimeout))
	return d.c.nc.Write(p)
}

// serve reads and answers commands until the connection ends. Each round
// takes one command, waiting for it, and the rest of the pipeline already
// buffered (up to maxBatch), then starts, flushes and finishes them in
// order (see Backend.Start) and writes the replies.
func (c *conn) serve() {
	defer c.nc.Close()
	log := c.s.cfg.Logger
	if err := tlsconf.Handshake(c.nc); err != nil {
		log.Debug("redis connection closed", "err", err)
		return
	}
	for !c.quit {
		if t := c.s.cfg.IdleTimeout; t > 0 {
			c.nc.SetReadDeadline(time.Now().Add(t))
		}
		c.begun = false
		args, err := c.rd.ReadCommand()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.nc.SetReadDeadline(time.Time{})
		var cancel context.CancelFunc
		c.ctx, cancel = context.WithTimeout(c.base, c.s.cfg.CommandTimeout)
		c.add(args)
		var perr error
		for n := 1; n < maxBatch && !c.quit; n++ {
			args, ok, err := c.rd.TryReadCommand()
			if err != nil {
				perr = err
				break
			}
			if !ok {
				break
			}
			c.add(args)
		}
		c.finish()
		cancel()
		if perr != nil {
			c.readFailed(perr)
			return
		}
		if err := c.w.Flush(); err != nil {
			log.Debug("redis connection write failed", "remote", c.nc.RemoteAddr().String(), "err", err)
			return
		}
	}
}

// readFailed ends the connection after a read error: malformed input is
// answered "-ERR Protocol error: ..." first, as Redis does.
func (c *conn) readFailed(err error) {
	var pe *resp.ProtocolError
	switch {
	case errors.As(err, &pe):
		c.w.WriteError("ERR " + pe.Error())
		c.w.Flush()
		c.s.cfg.Logger.Debug("redis protocol error", "remote", c.nc.RemoteAddr().String(), "err", err)
	case errors.Is(err, resp.ErrQueryBufferLimit):
		c.s.cfg.Logger.Warn("closing redis client that reached the query buffer limit", "remote", c.nc.RemoteAddr().String())
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			what := "idle"
			if c.begun {
				what = "slow (a command took longer than the frame timeout to arrive)"
			}
			c.s.cfg.Logger.Debug("closing "+what+" redis client", "remote", c.nc.RemoteAddr().String())
			return
		}
		c.s.cfg.Logger.Debug("redis connection read failed", "remote", c.nc.RemoteAddr().String(), "err", err)
	}
}

// add translates one command and starts it; a command that is not queued
// ends the batch so far (the barrier of Backend.Start). Every write gets a
// fresh request id (see docs/redis.md, "Exactly once").
func (c *conn) add(args [][]byte) {
	c.s.commands.Add(1)
	e := c.command(args)
	for _, req := range e.reqs {
		if isWrite(req) {
			req.RequestId = c.s.newRequestID()
		}
		e.pend = append(e.pend, c.start(req))
	}
	c.batch = append(c.batch, e)
	if !e.queued() {
		c.finish()
	}
}

// finish flushes every started request of the batch, then finishes them
// in order and writes the replies.
func (c *conn) finish() {
	for _, e := range c.batch {
		for _, p := range e.pend {
			p.Flush()
		}
	}
	var resps []*zppb.Response
	for i, e := range c.batch {
		resps = resps[:0]
		for _, p := range e.pend {
			resps = append(resps, p.Finish())
		}
		e.reply(c, resps)
		c.batch[i] = entry{}
		if c.w.Buffered() >= flushAt {
			// A failed write fails every Flush after it: serve sees it.
			c.w.Flush()
		}
	}
	c.batch = c.batch[:0]
}

// call runs req at once, for a command that is not queued (a barrier, so
// nothing of the connection is in flight) and needs several requests, one
// after another (SCAN, KEYS).
func (c *conn) call(req *zppb.Request) *zppb.Response {
	p := c.start(req)
	p.Flush()
	return p.Finish()
}

// start begins req in the connection's batch, with the password of the
// connection's table: the node checks it again (the native protocol's
// rule, Request.table_password).
func (c *conn) start(req *zppb.Request) Pending {
	c.mu.Lock()
	req.TablePassword = c.password
	c.mu.Unlock()
	return c.s.b.Start(c.ctx, req)
}

// authorized reports whether the connection may use its table now.
func (c *conn) authorized() bool {
	c.mu.Lock()
	table, password := c.table, c.password
	c.mu.Unlock()
	return c.s.cfg.Auth.Authenticate(c.base, table, password) == nil
}

func (c *conn) getTable() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.table
}

func (c *conn) setLastCmd(name string) {
	c.mu.Lock()
	c.lastCmd = strings.ToLower(name)
	c.mu.Unlock()
}
