package rpc

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// echoHandler answers GET with the key as value, panics on key "panic",
// blocks on key "block" until the request context ends, and reports the
// request's timeout on key "timeout".
func echoHandler(ctx context.Context, req *zppb.Request) *zppb.Response {
	get := req.GetGet()
	if get == nil {
		return &zppb.Response{Code: zppb.Code_INVALID_ARGUMENT, Msg: "only GET"}
	}
	switch string(get.Key) {
	case "panic":
		panic("boom")
	case "block":
		<-ctx.Done()
		return &zppb.Response{Code: zppb.Code_TIMEOUT}
	case "timeout":
		dl, ok := ctx.Deadline()
		if !ok {
			return &zppb.Response{Code: zppb.Code_ERROR, Msg: "no deadline"}
		}
		return &zppb.Response{Result: &zppb.Response_Get{Get: &zppb.GetResponse{Value: []byte(time.Until(dl).String())}}}
	}
	return &zppb.Response{Result: &zppb.Response_Get{Get: &zppb.GetResponse{Value: get.Key}}}
}

func startServer(t *testing.T, h Handler, maxFrame int) (*Server, string) {
	t.Helper()
	return startServerConfig(t, ServerConfig{Handler: h, MaxFrameSize: maxFrame})
}

func startServerConfig(t *testing.T, cfg ServerConfig) (*Server, string) {
	t.Helper()
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return s, ln.Addr().String()
}

// dialEcho starts an echoHandler server and dials it; the context ends
// with the test, after at most 10 seconds.
func dialEcho(t *testing.T) (context.Context, *Conn) {
	t.Helper()
	_, addr := startServer(t, echoHandler, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	c, err := Dial(ctx, addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ctx, c
}

func getReq(key string) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: "t", Key: []byte(key)}}}
}

func TestPipelinedCallsMatchResponses(t *testing.T) {
	ctx, c := dialEcho(t)

	const goroutines, calls = 16, 500
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				key := fmt.Sprintf("g%d-%d", g, i)
				resp, err := c.Call(ctx, getReq(key))
				if err != nil {
					errs <- err
					return
				}
				if got := string(resp.GetGet().GetValue()); got != key {
					errs <- fmt.Errorf("response %q for request %q", got, key)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestSendThenWait sends a pipeline of requests before collecting any
// response, and collects them out of order.
func TestSendThenWait(t *testing.T) {
	ctx, c := dialEcho(t)

	const n = 64
	pending := make([]*Pending, n)
	for i := range pending {
		var err error
		if pending[i], err = c.Send(ctx, getReq(fmt.Sprint(i))); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	for i := n - 1; i >= 0; i-- {
		resp, err := pending[i].Wait(ctx)
		if err != nil {
			t.Fatalf("Wait %d: %v", i, err)
		}
		if got := string(resp.GetGet().GetValue()); got != fmt.Sprint(i) {
			t.Fatalf("response %q for request %d", got, i)
		}
	}
}

func TestBadInput(t *testing.T) {
	_, addr := startServer(t, echoHandler, 1024)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	tests := []struct {
		name      string
		frame     []byte // raw bytes written after the 4-byte length
		length    uint32 // 0 means len(frame)
		wantCode  zppb.Code
		wantClose bool
	}{
		{name: "malformed protobuf", frame: []byte{0xff, 0xff, 0xff}, wantCode: zppb.Code_MALFORMED},
		{name: "empty request", frame: []byte{}, wantCode: zppb.Code_INVALID_ARGUMENT},
		{name: "frame over limit", frame: []byte{}, length: 4096, wantClose: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			n := tt.length
			if n == 0 {
				n = uint32(len(tt.frame))
			}
			var hdr [4]byte
			binary.BigEndian.PutUint32(hdr[:], n)
			nc.Write(append(hdr[:], tt.frame...))
			br := bufio.NewReader(nc)
			payload, err := ReadFrame(br, nil, DefaultMaxFrameSize)
			if tt.wantClose {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					t.Fatalf("read after oversized frame: %v, want EOF", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp := &zppb.Response{}
			if err := proto.Unmarshal(payload, resp); err != nil {
				t.Fatal(err)
			}
			if resp.Code != tt.wantCode {
				t.Fatalf("code %v (%s), want %v", resp.Code, resp.Msg, tt.wantCode)
			}
			// The connection is still usable after an error response.
			out, _ := proto.Marshal(getReq("after"))
			bw := bufio.NewWriter(nc)
			WriteFrame(bw, out, DefaultMaxFrameSize)
			bw.Flush()
			payload, err = ReadFrame(br, nil, DefaultMaxFrameSize)
			if err != nil {
				t.Fatalf("connection unusable after %s: %v", tt.name, err)
			}
			proto.Unmarshal(payload, resp)
			if string(resp.GetGet().GetValue()) != "after" {
				t.Fatalf("got %v after %s", resp, tt.name)
			}
		})
	}

	t.Run("client refuses oversized request", func(t *testing.T) {
		c, err := Dial(ctx, addr, 1024)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Call(ctx, getReq(string(make([]byte, 2048))))
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("err %v, want ErrFrameTooLarge", err)
		}
		if c.Closed() {
			t.Fatal("connection closed by a refused request")
		}
	})
}

func TestPanicAnswersErrorAndKeepsConnection(t *testing.T) {
	ctx, c := dialEcho(t)
	resp, err := c.Call(ctx, getReq("panic"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != zppb.Code_ERROR {
		t.Fatalf("code %v, want ERROR", resp.Code)
	}
	resp, err = c.Call(ctx, getReq("ok"))
	if err != nil || string(resp.GetGet().GetValue()) != "ok" {
		t.Fatalf("after panic: %v %v", resp, err)
	}
}

func TestDeadline(t *testing.T) {
	ctx, c := dialEcho(t)

	// The deadline travels to the server.
	resp, err := c.Call(ctx, getReq("timeout"))
	if err != nil {
		t.Fatal(err)
	}
	left, err := time.ParseDuration(string(resp.GetGet().GetValue()))
	if err != nil || left <= 0 || left > 10*time.Second {
		t.Fatalf("server saw deadline %q (%v), want within 10s", resp.GetGet().GetValue(), err)
	}

	// A call that outlives its context fails with a transport error.
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	req := getReq("block")
	req.TimeoutMs = 60_000 // the server would wait; the client must not
	_, err = c.Call(short, req)
	if !IsTransport(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want transport error wrapping DeadlineExceeded", err)
	}
	if !c.Closed() {
		t.Fatal("connection open after an abandoned call")
	}
}

// TestAbandonedCallSparesOthers: on a connection with an abandon grace (a
// server's pool to other servers), a call whose context ends before its
// answer does not take the other calls on the connection with it; its
// answer, when it comes, is dropped, and the connection goes on.
func TestAbandonedCallSparesOthers(t *testing.T) {
	ctx, c := dialEcho(t)
	c.SetAbandonGrace(DefaultAbandonGrace)
	other := make(chan error, 1)
	go func() {
		// Answered when its own server-side deadline passes, after the
		// abandoned call's.
		req := getReq("block")
		req.TimeoutMs = 600
		_, err := c.Call(ctx, req)
		other <- err
	}()
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	req := getReq("block")
	req.TimeoutMs = 300
	if _, err := c.Call(short, req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("abandoned call: %v, want DeadlineExceeded", err)
	}
	if err := <-other; err != nil {
		t.Fatalf("a call on the same connection failed with the abandoned one: %v", err)
	}
	if c.Closed() {
		t.Fatal("connection closed by an abandoned call that was answered")
	}
	resp, err := c.Call(ctx, getReq("after"))
	if err != nil || string(resp.GetGet().GetValue()) != "after" {
		t.Fatalf("next call: %v, %v", resp, err)
	}
}

func TestPoolRedialsAfterServerRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	s1, _ := NewServer(ServerConfig{Handler: echoHandler})
	go s1.Serve(ln)

	p := NewPool(PoolOptions{ConnsPerAddr: 1})
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Call(ctx, addr, getReq("a")); err != nil {
		t.Fatal(err)
	}
	s1.Close()

	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s not reusable: %v", addr, err)
	}
	s2, _ := NewServer(ServerConfig{Handler: echoHandler})
	go s2.Serve(ln2)
	defer s2.Close()

	// The first call may fail on the dead connection; a retry must redial.
	var resp *zppb.Response
	for range 3 {
		if resp, err = p.Call(ctx, addr, getReq("b")); err == nil {
			break
		}
		if !IsTransport(err) {
			t.Fatalf("non-transport error %v", err)
		}
	}
	if err != nil || string(resp.GetGet().GetValue()) != "b" {
		t.Fatalf("after restart: %v %v", resp, err)
	}
}

func TestServerCloseFailsCallsInFlight(t *testing.T) {
	s, addr := startServer(t, echoHandler, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, getReq("block"))
		errc <- err
	}()
	// Close must not wait for the blocked handler forever: it cancels it.
	s.Close()
	select {
	case err := <-errc:
		// Either the handler's TIMEOUT answer made it out or the connection
		// closed first; both end the call.
		_ = err
	case <-ctx.Done():
		t.Fatal("call still blocked after server Close")
	}
}

func BenchmarkCall(b *testing.B) {
	s, err := NewServer(ServerConfig{Handler: echoHandler})
	if err != nil {
		b.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go s.Serve(ln)
	defer s.Close()
	c, err := Dial(context.Background(), ln.Addr().String(), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := getReq("benchmark-key-0123456789")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Call(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkFrameRoundTrip(b *testing.B) {
	req := &zppb.Request{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: "t", Key: []byte("key:000001"), Value: make([]byte, 100)}}}
	pr, pw := io.Pipe()
	br := bufio.NewReader(pr)
	bw := bufio.NewWriter(pw)
	go func() {
		var buf []byte
		for {
			var err error
			if buf, err = ReadFrame(br, buf, DefaultMaxFrameSize); err != nil {
				return
			}
		}
	}()
	var out []byte
	for b.Loop() {
		out, _ = proto.MarshalOptions{}.MarshalAppend(out[:0], req)
		WriteFrame(bw, out, DefaultMaxFrameSize)
		bw.Flush()
	}
	pw.Close()
}

// BenchmarkCallPipelined has 32 goroutines share one connection, as a
// loaded client does: requests are batched into shared writes. Each call
// has a deadline, as the client's always do, so the server bounds each
// request by it.
func BenchmarkCallPipelined(b *testing.B) {
	s, err := NewServer(ServerConfig{Handler: echoHandler})
	if err != nil {
		b.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go s.Serve(ln)
	defer s.Close()
	c, err := Dial(context.Background(), ln.Addr().String(), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := getReq("benchmark-key-0123456789")
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Call(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A server of another protocol (a wrong port in --meta) is named as such,
// not as a frame of the length its first four bytes make; a frame over the
// limit is refused all the same.
func TestForeignServer(t *testing.T) {
	tests := []struct {
		name     string
		reply    string
		wantSent string // "" for a plain frame over the limit
	}{
		{name: "http", reply: "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n", wantSent: "HTTP/1.1 400 Bad Request"},
		{name: "redis", reply: "-ERR unknown command\r\n", wantSent: "-ERR unknown command"},
		{name: "binary length over the limit", reply: "\x05\x00\x00\x00junk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				defer nc.Close()
				nc.Read(make([]byte, 512))
				nc.Write([]byte(tt.reply))
				nc.Read(make([]byte, 512)) // until the client hangs up
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Dial(ctx, ln.Addr().String(), 0)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Call(ctx, getReq("k"))
			if !errors.Is(err, ErrFrameTooLarge) || !IsTransport(err) {
				t.Fatalf("err %v, want a transport error matching ErrFrameTooLarge", err)
			}
			if tt.wantSent == "" {
				if errors.Is(err, ErrForeignProtocol) {
					t.Fatalf("err %v: a binary length is not another protocol", err)
				}
				return
			}
			want := fmt.Sprintf("%s is not a Zeppelin server (it sent %q)", ln.Addr(), tt.wantSent)
			if !errors.Is(err, ErrForeignProtocol) || !strings.Contains(err.Error(), want) {
				t.Fatalf("err %v, want ErrForeignProtocol saying %s", err, want)
			}
		})
	}
}

// TestMoreSmallCallsThanInflight: more concurrent calls than a connection
// keeps in flight, each small enough that all of them together fit the
// write buffer, all get their answers: the writer flushes what it holds
// before it waits for room (it used to wait with them unflushed, and the
// connection hung).
func TestMoreSmallCallsThanInflight(t *testing.T) {
	ctx, c := dialEcho(t)
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	const calls = 3 * maxInflight
	errs := make(chan error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprint(i)
			resp, err := c.Call(ctx, getReq(key))
			if err == nil && string(resp.GetGet().GetValue()) != key {
				err = fmt.Errorf("response %q for request %q", resp.GetGet().GetValue(), key)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
