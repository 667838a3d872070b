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
}

// Server serves requests on accepted connections, one request at a time per
// connection in arrival order, so that pipelined writes to one key apply in
// the order they were sent.
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
	br := bufio.NewReaderSize(nc, 64<<10)
	bw := bufio.NewWriterSize(nc, 64<<10)
	var in, out []byte
	for {
		var err error
		in, err = ReadFrame(br, in, s.cfg.MaxFrameSize)
		if err != nil {
			if errors.Is(err, ErrFrameTooLarge) {
				s.cfg.Logger.Warn("closing connection", "remote", nc.RemoteAddr().String(), "err", err)
			} else if !errors.Is(err, io.EOF) && s.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.cfg.Logger.Debug("connection read failed", "remote", nc.RemoteAddr().String(), "err", err)
			}
			return
		}
		resp := s.handle(in)
		out, err = proto.MarshalOptions{}.MarshalAppend(out[:0], resp)
		if s.cfg.OnBytes != nil {
			s.cfg.OnBytes(headerSize+len(in), headerSize+len(out))
		}
		if err == nil {
			err = WriteFrame(bw, out, DefaultMaxFrameSize)
		}
		if err == nil && !frameBuffered(br) {
			err = bw.Flush()
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

func (s *Server) handle(frame []byte) (resp *zppb.Response) {
	req := &zppb.Request{}
	if err := proto.Unmarshal(frame, req); err != nil {
		return &zppb.Response{Code: zppb.Code_MALFORMED, Msg: "request does not parse: " + err.Error()}
	}
	defer func() {
		if r := recover(); r != nil {
			s.cfg.Logger.Error("request panicked", "panic", r, "stack", string(debug.Stack()))
			resp = &zppb.Response{Code: zppb.Code_ERROR, Msg: fmt.Sprintf("internal error: %v", r)}
		}
	}()
	ctx := s.ctx
	if req.TimeoutMs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMs)*time.Millisecond)
		defer cancel()
	}
	resp = s.cfg.Handler(ctx, req)
	if resp == nil {
		resp = &zppb.Response{Code: zppb.Code_ERROR, Msg: "internal error: no response"}
	}
	return resp
}
