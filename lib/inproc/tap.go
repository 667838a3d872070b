package inproc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Hook scripts a Tap: it sees every request first and returns the answer
// to give in the server's place, or nil to pass the request on, or
// NoAnswer.
type Hook func(req *zppb.Request) *zppb.Response

// NoAnswer, returned by a Hook, hangs the connection: neither this request
// nor any later one on it is answered or passed on, as with a server that
// was SIGSTOPped or a half-open link, until the client closes it.
var NoAnswer = &zppb.Response{Msg: "inproc: no answer"}

// holdPause is how long HoldSlave keeps back its answer to a pull that
// the master answered at once with records, so that a held slave does not
// spin.
const holdPause = 50 * time.Millisecond

// HoldSlave returns a Hook, for the tap of a partition's master, that keeps
// the slave whose address is slave from getting any record while it stays
// connected: its BINLOG_PULLs still reach the master, which records its
// acknowledgement, lists it as streaming and counts it behind by every
// record written since, but the records in the answers are dropped, so the
// slave stays where it is. Other requests and other slaves' pulls pass.
// This holds a move whose target is slave before its handover (the target
// never catches up) without cutting any link. Remove the hook and the
// slave catches up at its next pull.
func (t *Tap) HoldSlave(slave string) Hook {
	return func(req *zppb.Request) *zppb.Response {
		pull := req.GetBinlogPull()
		if pull == nil || pull.Slave != slave {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(pull.WaitMs)*time.Millisecond+5*time.Second)
		defer cancel()
		resp, err := t.Forward(ctx, req)
		if err != nil {
			return status.Response(err)
		}
		if pr := resp.GetBinlogPull(); len(pr.GetRecords()) > 0 {
			pr.Records = nil
			// The master did not wait for new records: pause as it would
			// have.
			time.Sleep(holdPause)
		}
		return resp
	}
}

// Tap is a protocol-aware proxy in front of a real server, for fault
// injection a byte-level proxy cannot do: it counts requests by command,
// lets a hook answer some of them in the server's place (a MOVE, a WAIT,
// a stall), and can drop the connections it accepted. Every request the
// hook leaves alone reaches the server unchanged, on a connection of its
// own per client connection, so pipelining and per-connection order are
// the server's. It is not a second implementation of anything: without a
// hook it only forwards.
type Tap struct {
	addr   string
	target string
	pool   *rpc.Pool // Forward's connections

	mu     sync.Mutex
	ln     net.Listener // nil while down
	hook   Hook
	calls  map[string]int
	conns  map[net.Conn]struct{}
	hung   map[net.Conn]struct{} // client connections hung by NoAnswer
	closed bool
}

// NewTap listens on listen ("127.0.0.1:0" for any port) and forwards to
// target.
func NewTap(listen, target string) (*Tap, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("inproc: tap: %w", err)
	}
	t := &Tap{
		ln:     ln,
		addr:   ln.Addr().String(),
		target: target,
		pool:   rpc.NewPool(rpc.PoolOptions{ConnsPerAddr: 1}),
		calls:  make(map[string]int),
		conns:  make(map[net.Conn]struct{}),
		hung:   make(map[net.Conn]struct{}),
	}
	go t.accept(ln)
	return t, nil
}

// Addr is where the tap listens.
func (t *Tap) Addr() string { return t.addr }

// Hung returns how many client connections hung by NoAnswer are still
// open: the client has not given up on them.
func (t *Tap) Hung() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.hung)
}

// Down closes the tap's listener and connections, so that its address
// refuses connections as a stopped server's does; Up listens again on the
// same address.
func (t *Tap) Down() {
	t.mu.Lock()
	ln := t.ln
	t.ln = nil
	t.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	t.CloseConns()
}

func (t *Tap) Up() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ln != nil || t.closed {
		return nil
	}
	ln, err := net.Listen("tcp", t.addr)
	if err != nil {
		return fmt.Errorf("inproc: tap: %w", err)
	}
	t.ln = ln
	go t.accept(ln)
	return nil
}

// SetHook installs h; nil removes the hook.
func (t *Tap) SetHook(h Hook) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hook = h
}

// Calls returns how many requests of a command the tap received, hooked
// or not, by the command's field name in zppb.Request ("set", "mget",
// "pull", "write_batch" ...).
func (t *Tap) Calls(cmd string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.calls[cmd]
}

// ResetCalls sets every count back to zero.
func (t *Tap) ResetCalls() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.calls)
}

// Forward sends req to the server on a connection of the tap's own and
// returns its answer: for a hook that lets the server act and then fails
// the client's connection (with CloseConns) before the answer reaches it.
func (t *Tap) Forward(ctx context.Context, req *zppb.Request) (*zppb.Response, error) {
	return t.pool.Call(ctx, t.target, req)
}

// CloseConns closes every client connection the tap has accepted, and its
// connections to the server: requests in flight are never answered.
func (t *Tap) CloseConns() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for nc := range t.conns {
		nc.Close()
		delete(t.conns, nc)
	}
}

// Close stops accepting and closes every connection.
func (t *Tap) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.Down()
	return t.pool.Close()
}

func (t *Tap) track(nc net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		nc.Close()
		return false
	}
	t.conns[nc] = struct{}{}
	return true
}

func (t *Tap) untrack(ncs ...net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, nc := range ncs {
		nc.Close()
		delete(t.conns, nc)
		delete(t.hung, nc)
	}
}

func (t *Tap) accept(ln net.Listener) {
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		go t.serve(in)
	}
}

// slot is one answer owed to the client, in request order: scripted by
// the hook, or the server's next response when resp is nil.
type slot struct{ resp *zppb.Response }

func (t *Tap) serve(in net.Conn) {
	out, err := net.Dial("tcp", t.target)
	if err != nil {
		in.Close() // as if the server itself refused
		return
	}
	if !t.track(in) || !t.track(out) {
		in.Close()
		out.Close()
		return
	}
	defer t.untrack(in, out)
	slots := make(chan slot, 1024)
	go t.answer(in, out, slots)

	br := bufio.NewReader(in)
	bw := bufio.NewWriter(out)
	var buf []byte
	for {
		buf, err = rpc.ReadFrame(br, buf, rpc.DefaultMaxFrameSize)
		if err != nil {
			break
		}
		req := &zppb.Request{}
		if err := proto.Unmarshal(buf, req); err != nil {
			break
		}
		t.mu.Lock()
		t.calls[cmdName(req)]++
		h := t.hook
		t.mu.Unlock()
		var resp *zppb.Response
		if h != nil {
			resp = h(req)
		}
		if resp == NoAnswer {
			t.hang(in, br)
			break
		}
		if resp == nil {
			if rpc.WriteFrame(bw, buf, rpc.DefaultMaxFrameSize) != nil || bw.Flush() != nil {
				break
			}
		}
		slots <- slot{resp: resp}
	}
	close(slots)
}

// hang reads and drops whatever the client sends until it closes the
// connection.
func (t *Tap) hang(in net.Conn, br *bufio.Reader) {
	t.mu.Lock()
	t.hung[in] = struct{}{}
	t.mu.Unlock()
	io.Copy(io.Discard, br)
}

// answer writes the client's answers in request order. When it fails it
// closes both connections, which ends the reader too; when the reader is
// done (slots closed) it leaves them to it.
func (t *Tap) answer(in, out net.Conn, slots <-chan slot) {
	ok := false
	defer func() {
		if !ok {
			in.Close()
			out.Close()
		}
	}()
	br := bufio.NewReader(out)
	bw := bufio.NewWriter(in)
	var buf []byte
	for s := range slots {
		payload := []byte(nil)
		if s.resp != nil {
			var err error
			if payload, err = proto.Marshal(s.resp); err != nil {
				return
			}
		} else {
			var err error
			if buf, err = rpc.ReadFrame(br, buf, rpc.DefaultMaxFrameSize); err != nil {
				return
			}
			payload = buf
		}
		if rpc.WriteFrame(bw, payload, rpc.DefaultMaxFrameSize) != nil {
			return
		}
		if len(slots) == 0 && bw.Flush() != nil {
			return
		}
	}
	ok = bw.Flush() == nil
}

// cmdName is the field name of req's command: "set", "pull" ...
func cmdName(req *zppb.Request) string {
	m := req.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("cmd")
	if od == nil {
		return "unknown"
	}
	if fd := m.WhichOneof(od); fd != nil {
		return string(fd.Name())
	}
	return "none"
}
