package rpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/accept"
)

// dialFrom connects to addr from the local IP from (127.0.0.x), so that a
// test has several "remote addresses" on loopback.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// closedByServer waits up to 10 s for the server to close nc: a read
// returns EOF (or a reset) rather than a timeout.
func closedByServer(t *testing.T, nc net.Conn) bool {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := nc.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// dialRPC is dialFrom with the client side of the protocol on top.
func dialRPC(t *testing.T, from, addr string) *Conn {
	t.Helper()
	c := NewConn(dialFrom(t, from, addr), 0)
	t.Cleanup(func() { c.Close() })
	return c
}

// callOn sends one GET on c and reads its answer.
func callOn(t *testing.T, c *Conn, key string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Call(ctx, getReq(key))
	return err
}

// TestConnectionLimits: a Gate bounds the connections held, in all and
// per remote address; one over a bound is closed at once, the others
// keep working, and a slot that frees up is taken again.
func TestConnectionLimits(t *testing.T) {
	gate := accept.NewGate(accept.Limits{MaxConns: 3, MaxConnsPerAddr: 2})
	_, addr := startServerConfig(t, ServerConfig{Handler: echoHandler, Gate: gate})

	a1 := dialRPC(t, "127.0.0.1", addr)
	a2 := dialRPC(t, "127.0.0.1", addr)
	for i, nc := range []*Conn{a1, a2} {
		if err := callOn(t, nc, "k"); err != nil {
			t.Fatalf("connection %d within the limits: %v", i, err)
		}
	}
	// A third from 127.0.0.1 is over its address's bound.
	if nc := dialFrom(t, "127.0.0.1", addr); !closedByServer(t, nc) {
		t.Fatal("a third connection from one address was not closed")
	}
	b1 := dialRPC(t, "127.0.0.2", addr)
	if err := callOn(t, b1, "k"); err != nil {
		t.Fatalf("another address within the limits: %v", err)
	}
	// A fourth in all is over the server's bound.
	if nc := dialFrom(t, "127.0.0.3", addr); !closedByServer(t, nc) {
		t.Fatal("a fourth connection was not closed")
	}
	if got := gate.Refused(); got != 2 {
		t.Errorf("Refused() = %d, want 2", got)
	}
	if err := callOn(t, a1, "still"); err != nil {
		t.Fatalf("a held connection after the refusals: %v", err)
	}
	a2.Close()
	deadline := time.Now().Add(10 * time.Second)
	for gate.Held() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("Held() = %d after one closed, want 2", gate.Held())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := callOn(t, dialRPC(t, "127.0.0.3", addr), "k"); err != nil {
		t.Fatalf("a connection in the freed slot: %v", err)
	}
}

// TestFrameTimeout: a peer that starts a request frame and trickles the
// rest (slowloris) is closed after FrameTimeout; one that sits idle
// between requests is not.
func TestFrameTimeout(t *testing.T) {
	_, addr := startServerConfig(t, ServerConfig{Handler: echoHandler, FrameTimeout: 200 * time.Millisecond})

	idle := dialRPC(t, "127.0.0.1", addr)
	slow := dialFrom(t, "127.0.0.1", addr)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 100)
	if _, err := slow.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	// One byte of the body; the other 99 never come in time.
	if _, err := slow.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	if !closedByServer(t, slow) {
		t.Fatal("a frame trickled in was not cut off")
	}
	// The idle connection outlived the frame timeout (the slow one's
	// whole life) and still answers.
	if err := callOn(t, idle, "k"); err != nil {
		t.Fatalf("an idle connection after the frame timeout: %v", err)
	}
}

// TestWriteTimeout: a peer that sends requests and never reads the
// answers is closed once the answers stop making progress for
// WriteTimeout, instead of holding its connection forever.
func TestWriteTimeout(t *testing.T) {
	gate := accept.NewGate(accept.Limits{}) // counts, bounds nothing
	_, addr := startServerConfig(t, ServerConfig{Handler: echoHandler, Gate: gate, WriteTimeout: 200 * time.Millisecond})
	nc := dialFrom(t, "127.0.0.1", addr)
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 10)
	}
	// Requests for large answers (the key comes back as the value), sent
	// until the server stops reading them: its answers fill both sockets'
	// buffers because nothing reads them.
	key := make([]byte, 256<<10)
	payload, err := proto.Marshal(getReq(string(key)))
	if err != nil {
		t.Fatal(err)
	}
	var fb bytes.Buffer
	bw := bufio.NewWriter(&fb)
	if err := WriteFrame(bw, payload, DefaultMaxFrameSize); err != nil || bw.Flush() != nil {
		t.Fatal(err)
	}
	frame := fb.Bytes()
	nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := nc.Write(frame); err != nil {
			break // the server closed it (or stopped reading long enough)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for gate.Held() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the server still holds %d connection(s) of a peer that does not read", gate.Held())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkCallLimits measures what the frame and write timeouts cost one
// request at a time (every frame arrives alone, so each sets deadlines):
//
//	go test -run x -bench CallLimits -count 5 ./lib/rpc
func BenchmarkCallLimits(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  ServerConfig
	}{
		{"none", ServerConfig{Handler: echoHandler}},
		{"timeouts", ServerConfig{Handler: echoHandler, Gate: accept.NewGate(accept.Limits{MaxConns: 100}),
			FrameTimeout: DefaultFrameTimeout, WriteTimeout: DefaultWriteTimeout}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := NewServer(bc.cfg)
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
			for b.Loop() {
				if _, err := c.Call(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFrameTimeoutIdleBetweenFrames: a connection that sends a request,
// waits longer than the frame timeout and sends another is served: the
// bound is on a frame, not on the gaps between frames.
func TestFrameTimeoutIdleBetweenFrames(t *testing.T) {
	_, addr := startServerConfig(t, ServerConfig{Handler: echoHandler, FrameTimeout: 100 * time.Millisecond})
	c := dialRPC(t, "127.0.0.1", addr)
	if err := callOn(t, c, "first"); err != nil {
		t.Fatal(err)
	}
	// Longer than the frame timeout: the deadline the first frame left
	// passes while the connection waits.
	time.Sleep(300 * time.Millisecond)
	if err := callOn(t, c, "second"); err != nil {
		t.Fatalf("a request after an idle gap longer than the frame timeout: %v", err)
	}
}
