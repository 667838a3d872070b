package rpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/tlsconf"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/accept"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Handler answers one request. It must not keep req or the response after
// returning. A Handler that panics gets an ERROR response for that request
// only.
type Handler func(ctx context.Context, req *zppb.Request) *zppb.Response

// ServerConfig configures a Server.
type ServerConfig struct {
	Handler Handler
	// MaxFrameSize bounds request frames; default DefaultMaxFrameSize.
	MaxFrameSize int
	Logger       *slog.Logger
	// OnBytes, when set, is told the size of every request and response
	// frame (for metrics).
	OnBytes func(in, out int)
	// Prepare, when set, is offered each request that arrives pipelined
	// behind others (more frames are buffered, or earlier ones are
	// prepared and unanswered). It returns nil to leave the request to
	// Handler, which then runs once every request before it is answered;
	// or it starts the request and returns it Prepared. A connection's
	// prepared requests are started in arrival order, then all flushed,
	// then finished and answered in order: a pipeline of writes shares one
	// group commit and keeps its order.
	Prepare func(ctx context.Context, req *zppb.Request) Prepared
	// Gate, when set, bounds the connections held (accept.Limits): one
	// over a bound is closed as soon as it is accepted.
	Gate *accept.Gate
	// FrameTimeout bounds the reading of one request frame once its first
	// byte has arrived, so that a peer trickling bytes (slowloris) cannot
	// hold a connection and its buffers; 0 means no bound. Waiting for the
	// next request is not bounded: pooled connections sit idle.
	FrameTimeout time.Duration
	// WriteTimeout closes a connection whose answers make no progress for
	// this long (a peer that does not read); 0 means no bound.
	WriteTimeout time.Duration
}

// Prepared is a request that ServerConfig.Prepare started, to be answered
// in its turn.
type Prepared interface {
	// Flush pushes on what the request waits for (its group commit)
	// without waiting for other connections.
	Flush()
	// Finish waits for the outcome and returns the response.
	Finish() *zppb.Response
}

// maxPrepared bounds the requests a connection prepares before answering
// them.
const maxPrepared = 128

// Read-ahead bounds: a connection reads requests as they arrive, so that
// each one's deadline counts from its arrival, while the ones before it are
// handled. Up to readAheadFrames requests and readAheadBytes of their frames
// wait (one frame always may, whatever its size).
const (
	readAheadFrames = maxPrepared
	readAheadBytes  = 4 << 20
)

// Server serves requests on accepted connections, in arrival order per
// connection, so that pipelined writes to one key apply in the order they
// were sent; with ServerConfig.Prepare, requests of a pipeline may be
// started together but still take effect and are answered in that order.
//
// A request's deadline (Request.timeout_ms) counts from when its frame was
// read off the connection, which happens as it arrives, not when the
// requests before it are done: one that waited out its deadline behind them
// is answered TIMEOUT without running, since its caller has given up and
// what it asked for may no longer be true (a node's PING, for one).
type Server struct {
	cfg    ServerConfig
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// NewServer returns a Server; cfg.Handler is required.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Handler == nil {
		return nil, errors.New("rpc: ServerConfig.Handler is required")
	}
	if cfg.MaxFrameSize <= 0 {
		cfg.MaxFrameSize = DefaultMaxFrameSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:       cfg,
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[net.Conn]struct{}),
	}, nil
}

// Serve accepts connections on ln until ln fails or the server is closed. It
// returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	err := accept.Loop(s.ctx, ln, s.cfg.Logger, func(nc net.Conn) bool {
		leave, err := s.cfg.Gate.Enter(nc.RemoteAddr())
		if err != nil {
			s.cfg.Logger.Debug("connection refused", "remote", nc.RemoteAddr().String(), "err", err)
			nc.Close()
			return true
		}
		if !s.track(nc) {
			leave()
			return false
		}
		go func() {
			defer leave()
			s.serveConn(nc)
		}()
		return true
	})
	if err != nil {
		return fmt.Errorf("rpc: %w", err)
	}
	return nil
}

func (s *Server) track(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[nc] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
	s.wg.Done()
}

// Close stops accepting, closes every connection and waits for the requests
// in progress to return.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	for ln := range s.listeners {
		ln.Close()
	}
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) serveConn(nc net.Conn) {
	defer s.untrack(nc)
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if err := tlsconf.Handshake(nc); err != nil {
		s.cfg.Logger.Debug("connection closed", "err", err)
		nc.Close()
		return
	}
	c := &serverConn{
		s: s, nc: nc, ctx: context.WithValue(s.ctx, peerKey{}, nc.RemoteAddr().String()), bw: bufio.NewWriterSize(deadlineWriter{nc, s.cfg.WriteTimeout}, 64<<10),
		frames: make(chan arrived, readAheadFrames),
		done:   make(chan struct{}),
	}
	c.budget.cond.L = &c.budget.mu
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		c.readLoop(bufio.NewReaderSize(nc, 64<<10))
	}()
	defer func() {
		close(c.done)
		c.budget.close()
		nc.Close()
		<-readerDone
	}()
	// A prepared request may hold up other connections' writes until it
	// is flushed: whatever ends this connection finishes them.
	defer c.abandon()
	for f := range c.frames {
		c.budget.release(f.inLen)
		c.more = f.more
		var err error
		// A request with an attachment is handled alone: its buffer is
		// given back when the handler returns.
		if f.resp == nil && f.attachment == nil && c.prepare(f) {
			if c.buffered() {
				continue
			}
			err = c.answerPrepared()
		} else {
			err = c.answerPrepared()
			if err == nil {
				resp := f.resp
				if resp == nil && f.attachment != nil {
					resp = s.handleRequest(withAttachment(c.ctx, *f.attachment), f.req, f.at)
					putPayload(f.attachment)
				} else if resp == nil {
					resp = s.handleRequest(c.ctx, f.req, f.at)
				}
				err = c.write(f.inLen, resp)
			}
		}
		if err == nil && !c.buffered() {
			err = c.bw.Flush()
		}
		if err != nil {
			s.cfg.Logger.Debug("connection write failed", "remote", nc.RemoteAddr().String(), "err", err)
			return
		}
	}
}

// readLoop reads and parses the connection's requests as they arrive and
// queues them, stamped with their arrival, for serveConn; it closes frames
// when the connection fails or ends.
func (c *serverConn) readLoop(br *bufio.Reader) {
	defer close(c.frames)
	s := c.s
	var in []byte
	deadline := false
	for {
		var err error
		if t := s.cfg.FrameTimeout; t > 0 && !frameBuffered(br) {
			// Idle between requests as long as the peer likes; once
			// one begins, all of it within t. The previous frame's
			// deadline is left in place while waiting (one deadline
			// to set per request, not two): if it passes with nothing
			// read, it is lifted and the wait goes on.
			for {
				_, err = br.Peek(1)
				var ne net.Error
				if err != nil && deadline && br.Buffered() == 0 && errors.As(err, &ne) && ne.Timeout() {
					c.nc.SetReadDeadline(time.Time{})
					deadline = false
					continue
				}
				break
			}
			if err == nil {
				err = c.nc.SetReadDeadline(time.Now().Add(t))
				deadline = true
			}
		}
		if err == nil {
			in, err = ReadFrame(br, in, s.cfg.MaxFrameSize)
		}
		if err != nil {
			var ne net.Error
			if errors.Is(err, ErrFrameTooLarge) {
				s.cfg.Logger.Warn("closing connection", "remote", c.nc.RemoteAddr().String(), "err", err)
			} else if errors.As(err, &ne) && ne.Timeout() {
				s.cfg.Logger.Debug("closing connection: a request frame took longer than the frame timeout", "remote", c.nc.RemoteAddr().String())
			} else if !errors.Is(err, io.EOF) && s.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.cfg.Logger.Debug("connection read failed", "remote", c.nc.RemoteAddr().String(), "err", err)
			}
			return
		}
		f := arrived{at: time.Now(), inLen: len(in)}
		// The request does not alias in, so in is read into again.
		f.req, f.resp = s.parse(in)
		if n := int(f.req.GetAttachmentSize()); n > 0 {
			// Frame and attachment together are bounded as a frame is.
			if n > s.cfg.MaxFrameSize-len(in) {
				s.cfg.Logger.Warn("closing connection", "remote", c.nc.RemoteAddr().String(),
					"err", fmt.Errorf("%w: request of %d bytes with an attachment of %d, limit %d", ErrFrameTooLarge, len(in), n, s.cfg.MaxFrameSize))
				return
			}
			f.attachment = getPayload(n)
			*f.attachment = (*f.attachment)[:n]
			if _, err := io.ReadFull(br, *f.attachment); err != nil {
				s.cfg.Logger.Debug("connection read failed", "remote", c.nc.RemoteAddr().String(), "err", err)
				return
			}
			f.inLen += n
		}
		f.more = frameBuffered(br)
		in = keepBuffer(in)
		if !c.budget.acquire(f.inLen) {
			return
		}
		select {
		case c.frames <- f:
		case <-c.done:
			return
		}
	}
}

// deadlineWriter gives every write of answers the timeout to progress (0:
// none).
type deadlineWriter struct {
	nc      net.Conn
	timeout time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	if d.timeout > 0 {
		d.nc.SetWriteDeadline(time.Now().Add(d.timeout))
	}
	return d.nc.Write(p)
}

// arrived is a request as read off a connection.
type arrived struct {
	req *zppb.Request
	// resp is the answer already known: the frame did not parse.
	resp  *zppb.Response
	inLen int
	at    time.Time // when it was read
	// more says another whole frame was buffered behind this one.
	more bool
	// attachment holds the bytes that followed the frame (a pooled
	// buffer, given back once the request is handled).
	attachment *[]byte
}

// readBudget bounds the bytes of frames read but not yet taken for handling.
type readBudget struct {
	mu     sync.Mutex
	cond   sync.Cond
	used   int
	closed bool
}

// acquire waits until n more bytes fit, or none are queued; false once
// closed.
func (b *readBudget) acquire(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for !b.closed && b.used > 0 && b.used+n > readAheadBytes {
		b.cond.Wait()
	}
	b.used += n
	return !b.closed
}

func (b *readBudget) release(n int) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
	b.cond.Broadcast()
}

func (b *readBudget) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
}

// serverConn is one accepted connection's state.
type serverConn struct {
	s  *Server
	nc net.Conn
	// ctx is the server's, carrying the peer's address (PeerAddr): the
	// parent of each request's context, made once per connection.
	ctx      context.Context
	bw       *bufio.Writer
	out      []byte
	prepared []preparedReq

	frames chan arrived  // from readLoop, in arrival order
	done   chan struct{} // closed when serveConn returns
	budget readBudget
	// more is the last request's arrived.more.
	more bool
}

// buffered reports whether another request is at hand without waiting on
// the network: answers owed can wait for it to be handled, and a pipeline
// goes on.
func (c *serverConn) buffered() bool {
	return c.more || len(c.frames) > 0
}

type preparedReq struct {
	p      Prepared
	cancel context.CancelFunc
	inLen  int
}

// prepare offers f's request to ServerConfig.Prepare when it is part of a
// pipeline and reports whether it was prepared. A request whose deadline
// passed before it got here is prepared as its TIMEOUT answer.
func (c *serverConn) prepare(f arrived) bool {
	if c.s.cfg.Prepare == nil || len(c.prepared) >= maxPrepared || (len(c.prepared) == 0 && !c.buffered()) {
		return false
	}
	ctx, cancel := c.s.requestContext(c.ctx, f.req, f.at)
	var p Prepared
	if resp := expired(ctx, f.at); resp != nil {
		p = answered{resp}
	} else if p = c.s.safePrepare(ctx, f.req); p == nil {
		cancel()
		return false
	}
	c.prepared = append(c.prepared, preparedReq{p, cancel, f.inLen})
	return true
}

// answerPrepared flushes every prepared request, then finishes and answers
// each in order.
func (c *serverConn) answerPrepared() error {
	if len(c.prepared) == 0 {
		return nil
	}
	for _, pr := range c.prepared {
		c.s.safely(pr.p.Flush)
	}
	var err error
	for i, pr := range c.prepared {
		resp := c.s.safeFinish(pr.p)
		pr.cancel()
		if err == nil {
			err = c.write(pr.inLen, resp)
		}
		c.prepared[i] = preparedReq{}
	}
	c.prepared = c.prepared[:0]
	return err
}

// abandon finishes prepared requests whose answers can no longer be sent.
func (c *serverConn) abandon() {
	for _, pr := range c.prepared {
		c.s.safely(pr.p.Flush)
	}
	for _, pr := range c.prepared {
		c.s.safeFinish(pr.p)
		pr.cancel()
	}
	c.prepared = nil
}

// write buffers resp as the answer to a request of inLen bytes.
func (c *serverConn) write(inLen int, resp *zppb.Response) error {
	var err error
	c.out, err = proto.MarshalOptions{}.MarshalAppend(c.out[:0], resp)
	if err != nil {
		return err
	}
	if c.s.cfg.OnBytes != nil {
		c.s.cfg.OnBytes(headerSize+inLen, headerSize+len(c.out))
	}
	err = WriteFrame(c.bw, c.out, DefaultMaxFrameSize)
	c.out = keepBuffer(c.out)
	return err
}

// parse decodes a request frame; a frame that does not parse gets its
// response instead.
func (s *Server) parse(frame []byte) (*zppb.Request, *zppb.Response) {
	req := &zppb.Request{}
	if err := proto.Unmarshal(frame, req); err != nil {
		return nil, &zppb.Response{Code: zppb.Code_MALFORMED, Msg: "request does not parse: " + err.Error()}
	}
	return req, nil
}

// requestContext bounds a request's work by the caller's deadline, counted
// from at, when the request arrived.
func (s *Server) requestContext(parent context.Context, req *zppb.Request, at time.Time) (context.Context, context.CancelFunc) {
	if req.TimeoutMs > 0 {
		return withLazyDeadline(parent, at.Add(time.Duration(req.TimeoutMs)*time.Millisecond))
	}
	return parent, func() {}
}

type peerKey struct{}

// PeerAddr returns the remote address of the connection a request came
// on, as handlers get it in their context ("" outside one): what a
// server bounds per client, such as failed authentications.
func PeerAddr(ctx context.Context) string {
	a, _ := ctx.Value(peerKey{}).(string)
	return a
}

// WithPeerAddr returns ctx naming addr as PeerAddr: for another front (the
// RESP one) that runs requests through the same handlers.
func WithPeerAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, peerKey{}, addr)
}

// expired returns the TIMEOUT answer of a request of ctx, which arrived at,
// when its deadline has passed before it started, and nil otherwise.
func expired(ctx context.Context, at time.Time) *zppb.Response {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil
	}
	return &zppb.Response{Code: zppb.Code_TIMEOUT, Msg: fmt.Sprintf(
		"deadline passed before the request was handled: it waited %v behind earlier requests on its connection",
		time.Since(at).Round(time.Millisecond))}
}

func (s *Server) handleRequest(parent context.Context, req *zppb.Request, at time.Time) (resp *zppb.Response) {
	defer s.recoverInto(&resp)
	ctx, cancel := s.requestContext(parent, req, at)
	defer cancel()
	if resp = expired(ctx, at); resp != nil {
		return resp
	}
	resp = s.cfg.Handler(ctx, req)
	if resp == nil {
		resp = &zppb.Response{Code: zppb.Code_ERROR, Msg: "internal error: no response"}
	}
	return resp
}

// safePrepare calls Prepare; a panic becomes a prepared ERROR answer.
func (s *Server) safePrepare(ctx context.Context, req *zppb.Request) (p Prepared) {
	var resp *zppb.Response
	defer func() {
		if resp != nil {
			p = answered{resp}
		}
	}()
	defer s.recoverInto(&resp)
	return s.cfg.Prepare(ctx, req)
}

func (s *Server) safeFinish(p Prepared) (resp *zppb.Response) {
	defer s.recoverInto(&resp)
	resp = p.Finish()
	if resp == nil {
		resp = &zppb.Response{Code: zppb.Code_ERROR, Msg: "internal error: no response"}
	}
	return resp
}

func (s *Server) safely(f func()) {
	var resp *zppb.Response
	defer s.recoverInto(&resp)
	f()
}

// recoverInto turns a panic into an ERROR response: no panic crosses a
// request boundary.
func (s *Server) recoverInto(resp **zppb.Response) {
	if r := recover(); r != nil {
		s.cfg.Logger.Error("request panicked", "panic", r, "stack", string(debug.Stack()))
		*resp = &zppb.Response{Code: zppb.Code_ERROR, Msg: fmt.Sprintf("internal error: %v", r)}
	}
}

// answered is a Prepared with its response already known.
type answered struct{ resp *zppb.Response }

func (a answered) Flush()                 {}
func (a answered) Finish() *zppb.Response { return a.resp }
