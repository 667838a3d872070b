package resp

import (
	"context"
	"errors"
	"io"
	"math/big"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// miniServer is a tiny RESP server built on Reader and Writer, serving the
// commands the tests below send, the way the node's server will: a batch
// is every command already buffered.
type miniServer struct {
	ln net.Listener
	wg sync.WaitGroup

	mu       sync.Mutex
	received [][]string // test commands, in arrival order
	maxBatch int
}

func startMiniServer(t *testing.T) *miniServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &miniServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *miniServer) serve(c net.Conn) {
	defer c.Close()
	r, w := NewReader(c, Limits{}), NewWriter(c)
	for {
		args, err := r.ReadCommand()
		batch := [][][]byte{}
		for err == nil {
			batch = append(batch, args)
			var ok bool
			if args, ok, err = r.TryReadCommand(); !ok && err == nil {
				break
			}
		}
		s.mu.Lock()
		s.maxBatch = max(s.maxBatch, len(batch))
		s.mu.Unlock()
		for _, args := range batch {
			s.handle(w, args)
		}
		var pe *ProtocolError
		if errors.As(err, &pe) {
			w.WriteError("ERR " + pe.Error())
		}
		if w.Flush() != nil || err != nil {
			return
		}
	}
}

func (s *miniServer) handle(w *Writer, args [][]byte) {
	name := strings.ToUpper(string(args[0]))
	if name != "HELLO" && name != "CLIENT" {
		s.mu.Lock()
		s.received = append(s.received, strs(args))
		s.mu.Unlock()
	}
	switch name {
	case "HELLO":
		if len(args) > 1 {
			p, err := strconv.Atoi(string(args[1]))
			if err != nil || (p != 2 && p != 3) {
				w.WriteError("NOPROTO unsupported protocol version")
				return
			}
			w.SetProtocol(p)
		}
		w.WriteMapLen(3)
		w.WriteBulkString("server")
		w.WriteBulkString("zeppelin")
		w.WriteBulkString("proto")
		w.WriteInt(int64(w.Protocol()))
		w.WriteBulkString("mode")
		w.WriteBulkString("cluster")
	case "ECHOARGS":
		w.WriteArrayLen(len(args) - 1)
		for _, a := range args[1:] {
			w.WriteBulk(a)
		}
	case "SET":
		w.WriteSimpleString("OK")
	case "TYPES":
		w.WriteArrayLen(11)
		w.WriteSimpleString("OK")
		w.WriteInt(-42)
		w.WriteBulk([]byte("bin\r\n\x00"))
		w.WriteNull()
		w.WriteDouble(3.25)
		w.WriteBool(true)
		w.WriteVerbatim("txt", []byte("verbatim"))
		w.WriteBigNumber("1234567890123456789012345678901234567890")
		w.WriteMapLen(1)
		w.WriteBulkString("k")
		w.WriteInt(1)
		w.WriteSetLen(1)
		w.WriteBulkString("m")
		w.WriteError("CROSSSLOT Keys in request don't hash to the same slot")
	case "MOVED":
		w.WriteError("MOVED 3999 127.0.0.1:6381")
	case "NULLARRAY":
		w.WriteNullArray()
	default:
		w.WriteError("ERR unknown command '" + name + "'")
	}
}

func (s *miniServer) take() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.received
	s.received = nil
	return got
}

// TestGoRedisRoundTrip has a real client (go-redis, RESP2 and RESP3) send
// commands to a Reader and decode what a Writer answers.
func TestGoRedisRoundTrip(t *testing.T) {
	s := startMiniServer(t)
	for _, proto := range []int{2, 3} {
		t.Run("RESP"+strconv.Itoa(proto), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := redis.NewClient(&redis.Options{
				Addr: s.ln.Addr().String(), Protocol: proto, DisableIdentity: true,
				PoolSize: 1, MaxRetries: -1,
			})
			defer c.Close()

			// Binary-safe arguments arrive exactly and come back decoded.
			sent := []string{"ECHOARGS", "a\r\nb", "\x00\xff", "", strings.Repeat("v", 100_000), "é"}
			iargs := make([]any, len(sent))
			for i, a := range sent {
				iargs[i] = a
			}
			got, err := c.Do(ctx, iargs...).StringSlice()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, sent[1:]) {
				t.Fatalf("echoed %q", got)
			}
			if rcv := s.take(); !reflect.DeepEqual(rcv, [][]string{sent}) {
				t.Fatalf("server received %q", rcv)
			}

			// Every reply type, as go-redis decodes it in each protocol.
			v, err := c.Do(ctx, "TYPES").Result()
			if err != nil {
				t.Fatal(err)
			}
			want := []any{"OK", int64(-42), "bin\r\n\x00", nil, "3.25", int64(1), "verbatim",
				"1234567890123456789012345678901234567890", []any{"k", int64(1)}, []any{"m"}}
			if proto == 3 {
				n, _ := new(big.Int).SetString("1234567890123456789012345678901234567890", 10)
				want[4], want[5], want[7], want[8] = 3.25, true, n, map[any]any{"k": int64(1)}
			}
			vs, _ := v.([]any)
			if len(vs) != 11 || !reflect.DeepEqual(vs[:10], want) {
				t.Fatalf("decoded %#v\nwant    %#v", v, want)
			}
			if e, ok := vs[10].(error); !ok || e.Error() != "CROSSSLOT Keys in request don't hash to the same slot" {
				t.Fatalf("error element %#v", vs[10])
			}

			if err := c.Do(ctx, "MOVED", "k").Err(); err == nil || err.Error() != "MOVED 3999 127.0.0.1:6381" {
				t.Fatalf("MOVED: %v", err)
			}
			if err := c.Do(ctx, "NULLARRAY").Err(); err != redis.Nil {
				t.Fatalf("null array: %v", err)
			}
			s.take()

			// A pipeline: every command arrives in order and is answered.
			cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := 0; i < 16; i++ {
					p.Set(ctx, "key"+strconv.Itoa(i), strings.Repeat("x", 100), 0)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, cmd := range cmds {
				if cmd.(*redis.StatusCmd).Val() != "OK" {
					t.Fatalf("pipeline reply %v", cmd)
				}
			}
			rcv := s.take()
			if len(rcv) != 16 || rcv[15][1] != "key15" || rcv[15][2] != strings.Repeat("x", 100) {
				t.Fatalf("pipeline received %d commands: %q", len(rcv), rcv)
			}
			s.mu.Lock()
			t.Logf("largest batch read without blocking: %d commands", s.maxBatch)
			s.mu.Unlock()
		})
	}
}

// TestProtocolErrorOnTheWire checks what a raw client sees for malformed
// input: the earlier commands answered, then Redis's error, then EOF.
func TestProtocolErrorOnTheWire(t *testing.T) {
	s := startMiniServer(t)
	c, err := net.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "ECHOARGS a\r\n*1\r\n*1\r\n$1\r\na\r\n"); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := "*1\r\n$1\r\na\r\n-ERR Protocol error: expected '$', got '*'\r\n"; string(out) != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}
