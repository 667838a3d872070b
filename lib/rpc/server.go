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

	"google.golang.org/protobuf/proto"

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

// Server serves requests on accepted connections, in arrival order per
// connection, so that pipelined writes to one key apply in the order they
// were sent; with ServerConfig.Prepare, requests of a pipeline may be
// started together but still take effect and are answered in that order.
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

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors or similar: wait, like net/http.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.cfg.Logger.Warn("accept failed; retrying", "err", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("rpc: accept: %w", err)
		}
		backoff = 0
		if !s.track(nc) {
			nc.Close()
			return nil
		}
		go s.serveConn(nc)
	}
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
	defer nc.Close()
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c := &serverConn{s: s, nc: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriterSize(nc, 64<<10)}
	// A prepared request may hold up other connections' writes until it
	// is flushed: whatever ends this connection finishes them.
	defer c.abandon()
	var in []byte
	for {
		var err error
		in, err = ReadFrame(c.br, in, s.cfg.MaxFrameSize)
		if err != nil {
			if errors.Is(err, ErrFrameTooLarge) {
				s.cfg.Logger.Warn("closing connection", "remote", nc.RemoteAddr().String(), "err", err)
			} else if !errors.Is(err, io.EOF) && s.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.cfg.Logger.Debug("connection read failed", "remote", nc.RemoteAddr().String(), "err", err)
			}
			return
		}
		req, resp := s.parse(in)
		if resp == nil && c.prepare(req, len(in)) {
			if frameBuffered(c.br) {
				continue
			}
			err = c.answerPrepared()
		} else {
			err = c.answerPrepared()
			if err == nil {
				if resp == nil {
					resp = s.handleRequest(req)
				}
				err = c.write(len(in), resp)
			}
		}
		if err == nil && !frameBuffered(c.br) {
			err = c.bw.Flush()
		}
		if err != nil {
			s.cfg.Logger.Debug("connection write failed", "remote", nc.RemoteAddr().String(), "err", err)
			return
		}
		if cap(in) > 1<<20 {
			in = nil // do not pin a huge buffer to an idle connection
		}
	}
}

// serverConn is one accepted connection's state.
type serverConn struct {
	s        *Server
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	out      []byte
	prepared []preparedReq
}

type preparedReq struct {
	p      Prepared
	cancel context.CancelFunc
	inLen  int
}

// prepare offers req to ServerConfig.Prepare when it is part of a pipeline
// and reports whether it was prepared.
func (c *serverConn) prepare(req *zppb.Request, inLen int) bool {
	if c.s.cfg.Prepare == nil || len(c.prepared) >= maxPrepared || (len(c.prepared) == 0 && !frameBuffered(c.br)) {
		return false
	}
	ctx, cancel := c.s.requestContext(req)
	p := c.s.safePrepare(ctx, req)
	if p == nil {
		cancel()
		return false
	}
	c.prepared = append(c.prepared, preparedReq{p, cancel, inLen})
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
	return WriteFrame(c.bw, c.out, DefaultMaxFrameSize)
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

// requestContext bounds a request's work by the caller's deadline.
func (s *Server) requestContext(req *zppb.Request) (context.Context, context.CancelFunc) {
	if req.TimeoutMs > 0 {
		return context.WithTimeout(s.ctx, time.Duration(req.TimeoutMs)*time.Millisecond)
	}
	return s.ctx, func() {}
}

func (s *Server) handleRequest(req *zppb.Request) (resp *zppb.Response) {
	defer s.recoverInto(&resp)
	ctx, cancel := s.requestContext(req)
	defer cancel()
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
