package rpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// maxInflight bounds the calls pipelined on one connection.
const maxInflight = 1024

// Conn is a client connection. Calls from many goroutines are pipelined on
// it: requests are written in call order and responses matched in order.
// One writer goroutine writes whatever calls are queued and flushes once
// per batch, so concurrent callers share write(2) calls.
type Conn struct {
	nc       net.Conn
	maxFrame int

	sendq   chan outFrame // calls to write, in call order
	pending chan *call    // calls written, waiting for their response

	closeOnce sync.Once
	done      chan struct{}
	err       error // why the connection closed; set before done closes

	// token is put in every request sent (SetClusterToken).
	token []byte
	// abandonGrace: see SetAbandonGrace; 0 closes at once.
	abandonGrace time.Duration
	// reads counts the responses read, for an abandoned call's watch.
	reads atomic.Uint64
	// live counts the calls sent whose callers still wait: while one does,
	// silence may be the server working on it.
	live atomic.Int64
}

// SetAbandonGrace keeps the connection open when a call is abandoned (its
// context ended first) as long as responses keep arriving: the late
// response is read and dropped, and later calls go on the same connection.
// It is closed only when grace passes with no response read while the
// abandoned call still waits and no other caller does (a server that
// stopped answering). Without
// it an abandoned call closes the connection at once, and the next call
// dials: for a caller with a short deadline and a busy server (a node's
// PING to a loaded meta leader) every late answer then costs a new
// connection, which the busy server accepts slower still. Set it before
// the first call.
func (c *Conn) SetAbandonGrace(grace time.Duration) { c.abandonGrace = grace }

// SetClusterToken makes every request sent on c carry token as its
// cluster_token (the cluster secret servers of one cluster present to
// one another). Set it before the first call.
func (c *Conn) SetClusterToken(token []byte) { c.token = token }

type outFrame struct {
	payload []byte
	// attach, when set, is written after the frame.
	attach *Attachment
	cl     *call
	// pooled holds payload's buffer when it came from payloadPool, to
	// go back once written.
	pooled *[]byte
}

// Requests of pooledPayload bytes or more (table file chunks of a bulk
// load or restore) are marshalled into buffers reused through
// payloadPool: a fresh buffer per 4 MiB chunk cost a bulk load a tenth of
// its CPU in page faults.
const pooledPayload = 256 << 10

var payloadPool sync.Pool // of *[]byte

func getPayload(n int) *[]byte {
	if b, ok := payloadPool.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, n)
	return &b
}

func putPayload(b *[]byte) { payloadPool.Put(b) }

type call struct {
	resp *zppb.Response
	err  error
	done chan struct{}
}

// Dial connects to addr. maxFrame <= 0 means DefaultMaxFrameSize.
func Dial(ctx context.Context, addr string, maxFrame int) (*Conn, error) {
	return DialTLS(ctx, addr, maxFrame, nil)
}

// DialTLS connects to addr as Dial does, over TLS with cfg when it is not
// nil; the handshake is done (the server's certificate verified) before it
// returns.
func DialTLS(ctx context.Context, addr string, maxFrame int, cfg *tls.Config) (*Conn, error) {
	var (
		nc  net.Conn
		err error
	)
	if cfg == nil {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", addr)
	} else {
		d := tls.Dialer{Config: cfg}
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w: dial %s: %w", ErrNotSent, ErrTransport, addr, err)
	}
	return NewConn(nc, maxFrame), nil
}

// NewConn runs the client side of the protocol on nc, a connection made
// by other means than Dial (a chosen local address, a proxy).
func NewConn(nc net.Conn, maxFrame int) *Conn {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrameSize
	}
	c := &Conn{
		nc:       nc,
		maxFrame: maxFrame,
		sendq:    make(chan outFrame, maxInflight),
		pending:  make(chan *call, maxInflight),
		done:     make(chan struct{}),
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	go c.readLoop()
	go c.writeLoop()
	return c
}

// Call sends req and waits for its response. Errors are transport errors
// only; the response's code says how the request went. When ctx ends first
// the connection is closed (unless SetAbandonGrace), because the stream can
// no longer be trusted to be in step.
func (c *Conn) Call(ctx context.Context, req *zppb.Request) (*zppb.Response, error) {
	p, err := c.Send(ctx, req)
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx)
}

// Pending is a request written (or queued for writing) whose response has
// not been collected yet.
type Pending struct {
	c  *Conn
	cl *call
}

// Send queues req and returns without waiting for the response: a caller
// that sends several requests before waiting on any gets them written
// together, as one pipeline, without a goroutine per request. Every
// Pending must be waited on (or the connection closed).
func (c *Conn) Send(ctx context.Context, req *zppb.Request) (*Pending, error) {
	return c.sendAttached(ctx, req, nil)
}

// CallAttached is Call with att sent after the request's frame, as its
// Request.attachment_size says: only to a server that takes attachments.
func (c *Conn) CallAttached(ctx context.Context, req *zppb.Request, att Attachment) (*zppb.Response, error) {
	req.AttachmentSize = uint32(att.len())
	if size := int64(proto.Size(req)) + att.len(); size > int64(c.maxFrame) {
		return nil, fmt.Errorf("%w: request and attachment of %d bytes, limit %d", ErrFrameTooLarge, size, c.maxFrame)
	}
	p, err := c.sendAttached(ctx, req, &att)
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx)
}

func (c *Conn) sendAttached(ctx context.Context, req *zppb.Request, att *Attachment) (*Pending, error) {
	if dl, ok := ctx.Deadline(); ok && req.TimeoutMs == 0 {
		if ms := time.Until(dl).Milliseconds(); ms > 0 {
			req.TimeoutMs = ms
		}
	}
	if c.token != nil {
		req.ClusterToken = c.token
	}
	// One size pass serves both: the buffer's and the marshalling's.
	size := proto.Size(req)
	var pooled *[]byte
	var buf []byte
	if size >= pooledPayload {
		pooled = getPayload(size)
		buf = (*pooled)[:0]
	} else {
		buf = make([]byte, 0, size)
	}
	payload, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf, req)
	if err != nil {
		return nil, fmt.Errorf("rpc: marshal: %w", err)
	}
	return c.send(ctx, outFrame{payload: payload, pooled: pooled, attach: att})
}

// CallRaw sends payload as one request frame, as it is, and waits for the
// response. Tests use it to send what Call never would.
func (c *Conn) CallRaw(ctx context.Context, payload []byte) (*zppb.Response, error) {
	p, err := c.send(ctx, outFrame{payload: payload})
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx)
}

func (c *Conn) send(ctx context.Context, f outFrame) (*Pending, error) {
	if len(f.payload) > c.maxFrame {
		return nil, fmt.Errorf("%w: request of %d bytes, limit %d", ErrFrameTooLarge, len(f.payload), c.maxFrame)
	}
	cl := &call{done: make(chan struct{})}
	f.cl = cl
	select {
	case c.sendq <- f:
		c.live.Add(1)
		return &Pending{c, cl}, nil
	case <-c.done:
		return nil, fmt.Errorf("%w: %w", ErrNotSent, c.err)
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w: call %s: %w", ErrNotSent, ErrTransport, c.nc.RemoteAddr(), ctx.Err())
	}
}

// Wait returns the response of the request. When ctx ends first the
// connection is closed, as with Call (unless SetAbandonGrace).
func (p *Pending) Wait(ctx context.Context) (*zppb.Response, error) {
	c, cl := p.c, p.cl
	defer c.live.Add(-1)
	select {
	case <-cl.done:
		return cl.resp, cl.err
	case <-c.done:
		// The readLoop fails the calls it knows of; one still queued for
		// writing when the connection closed fails here.
		select {
		case <-cl.done:
			return cl.resp, cl.err
		default:
			return nil, c.err
		}
	case <-ctx.Done():
		if c.abandonGrace > 0 {
			c.watchAbandoned(cl, c.reads.Load())
		} else {
			c.closeWith(fmt.Errorf("%w: call abandoned: %w", ErrTransport, ctx.Err()))
		}
		return nil, fmt.Errorf("%w: call %s: %w", ErrTransport, c.nc.RemoteAddr(), ctx.Err())
	}
}

// watchAbandoned closes the connection when, abandonGrace after reads
// responses had been read, no more was read, cl still has no response and
// no other caller waits (a long call ahead of cl explains the silence: a
// meta leader placing a table answers its forwarded create after
// seconds, and the PINGs forwarded behind it time out meanwhile).
func (c *Conn) watchAbandoned(cl *call, reads uint64) {
	time.AfterFunc(c.abandonGrace, func() {
		select {
		case <-cl.done:
			return
		case <-c.done:
			return
		default:
		}
		if now := c.reads.Load(); now != reads || c.live.Load() > 0 {
			c.watchAbandoned(cl, now)
			return
		}
		c.closeWith(fmt.Errorf("%w: no response for %v after a call was abandoned", ErrTransport, c.abandonGrace))
	})
}

// writeLoop writes queued calls, as many as are waiting, then flushes.
func (c *Conn) writeLoop() {
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	for {
		var f outFrame
		select {
		case f = <-c.sendq:
		case <-c.done:
			return
		}
		for {
			// Queued before it is written, so its response finds it.
			select {
			case c.pending <- f.cl:
			default:
				// maxInflight calls await responses. Those still in bw
				// must reach the server for any to come back: flush
				// before waiting (small requests would otherwise sit
				// unflushed under the buffer's size, and the connection
				// would hang).
				if err := bw.Flush(); err != nil {
					c.closeWith(fmt.Errorf("%w: write to %s: %w", ErrTransport, c.nc.RemoteAddr(), err))
					return
				}
				select {
				case c.pending <- f.cl:
				case <-c.done:
					return
				}
			}
			if err := WriteFrame(bw, f.payload, c.maxFrame); err != nil {
				c.closeWith(fmt.Errorf("%w: write to %s: %w", ErrTransport, c.nc.RemoteAddr(), err))
				return
			}
			if f.pooled != nil {
				// Written to the connection or copied into bw.
				*f.pooled = f.payload[:0]
				putPayload(f.pooled)
			}
			if f.attach != nil {
				if err := c.writeAttachment(bw, f.attach); err != nil {
					c.closeWith(fmt.Errorf("%w: write to %s: %w", ErrTransport, c.nc.RemoteAddr(), err))
					return
				}
			}
			select {
			case f = <-c.sendq:
				continue
			default:
			}
			break
		}
		if err := bw.Flush(); err != nil {
			c.closeWith(fmt.Errorf("%w: write to %s: %w", ErrTransport, c.nc.RemoteAddr(), err))
			return
		}
	}
}

// writeAttachment writes att after the frame in bw: bytes through bw, a
// file straight to the connection (by sendfile over TCP) once bw is
// flushed.
func (c *Conn) writeAttachment(bw *bufio.Writer, att *Attachment) error {
	if att.File == nil {
		return att.writeTo(bw)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return att.writeTo(c.nc)
}

func (c *Conn) readLoop() {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var buf []byte
	for {
		var err error
		buf, err = ReadFrame(br, buf, c.maxFrame)
		if fe, ok := errors.AsType[*ForeignProtocolError](err); ok {
			fe.Addr = c.nc.RemoteAddr().String()
			c.closeWith(fmt.Errorf("%w: %w", ErrTransport, fe))
			break
		}
		if err != nil {
			c.closeWith(fmt.Errorf("%w: read from %s: %w", ErrTransport, c.nc.RemoteAddr(), err))
			break
		}
		var cl *call
		select {
		case cl = <-c.pending:
		default:
			c.closeWith(fmt.Errorf("%w: unsolicited response from %s", ErrTransport, c.nc.RemoteAddr()))
		}
		if cl == nil {
			break
		}
		resp := &zppb.Response{}
		if err := proto.Unmarshal(buf, resp); err != nil {
			cl.err = fmt.Errorf("%w: response from %s does not parse: %w", ErrTransport, c.nc.RemoteAddr(), err)
		} else {
			cl.resp = resp
		}
		buf = keepBuffer(buf)
		c.reads.Add(1)
		close(cl.done)
	}
	// Fail what is still waiting for a response. The writer stops queueing
	// once done is closed, so after it is gone nothing more arrives.
	for {
		select {
		case cl := <-c.pending:
			cl.err = c.err
			close(cl.done)
		default:
			return
		}
	}
}

func (c *Conn) closeWith(err error) {
	c.closeOnce.Do(func() {
		c.err = err
		close(c.done)
		c.nc.Close()
	})
}

// Close closes the connection; calls in flight fail with ErrClosed.
func (c *Conn) Close() error {
	c.closeWith(ErrClosed)
	return nil
}

// Closed reports whether the connection can no longer be used.
func (c *Conn) Closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Err returns why the connection closed, or nil while it is open.
func (c *Conn) Err() error {
	if c.Closed() {
		return c.err
	}
	return nil
}

// IsTransport reports whether err came from the connection rather than from
// the server's answer: the request may or may not have been applied.
func IsTransport(err error) bool {
	return errors.Is(err, ErrTransport) || errors.Is(err, ErrClosed)
}
