package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

func TestCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"status", fmt.Errorf("node x: %w", status.New(zppb.Code_NOT_ENOUGH_REPLICAS, "1 of 2")), "NOT_ENOUGH_REPLICAS"},
		{"deadline wins over the last status", fmt.Errorf("%w (last: %w)", context.DeadlineExceeded, status.New(zppb.Code_WAIT, "")), CodeTimeout},
		{"canceled", context.Canceled, CodeCanceled},
		{"unknown outcome", fmt.Errorf("client: incrby: %w: %w", client.ErrUnknownOutcome, rpc.ErrTransport), CodeUnknown},
		{"transport", fmt.Errorf("node x: %w: read: EOF", rpc.ErrTransport), CodeTransport},
		{"closed", rpc.ErrClosed, CodeTransport},
		{"eof", io.ErrUnexpectedEOF, CodeTransport},
		{"net", &net.OpError{Op: "dial", Err: errors.New("refused")}, CodeTransport},
		{"redis", redisError("WRONGTYPE Operation against a key holding the wrong kind of value"), "WRONGTYPE"},
		{"multi-key", &client.MultiError{Op: "mget", Total: 2, Errs: []client.KeyError{{Index: 1, Err: status.New(zppb.Code_MOVE, "")}}}, "MOVE"},
		{"other", errors.New("boom"), CodeError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Code(tt.err); got != tt.want {
				t.Errorf("Code(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// redisError makes a server error as go-redis returns it.
func redisError(msg string) error {
	return redis.Error(proto{msg})
}

type proto struct{ msg string }

func (p proto) Error() string { return p.msg }
func (p proto) RedisError()   {}

// server is an rpc server for tests that records the keys it was sent
// and answers with answer.
type server struct {
	addr   string
	mu     sync.Mutex
	keys   []string
	answer func(req *zppb.Request) *zppb.Response
}

func newServer(t *testing.T, answer func(req *zppb.Request) *zppb.Response) *server {
	t.Helper()
	s := &server{answer: answer}
	srv, err := rpc.NewServer(rpc.ServerConfig{Handler: func(_ context.Context, req *zppb.Request) *zppb.Response {
		s.mu.Lock()
		switch c := req.GetCmd().(type) {
		case *zppb.Request_Get:
			s.keys = append(s.keys, string(c.Get.GetKey()))
		case *zppb.Request_Mget:
			for _, k := range c.Mget.GetKeys() {
				s.keys = append(s.keys, string(k))
			}
		}
		s.mu.Unlock()
		return s.answer(req)
	}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s.addr = ln.Addr().String()
	return s
}

func (s *server) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys)
}

// mapRouter routes each key by a map, for tests.
type mapRouter struct {
	mu    sync.Mutex
	addrs map[string]string
	moves map[uint32]string
}

func (m *mapRouter) route(key []byte) (string, uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addrs[string(key)], uint32(len(key))
}

func (m *mapRouter) moved(p uint32, master string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.moves[p] = master
}

func okMGet(req *zppb.Request) *zppb.Response {
	keys := req.GetMget().GetKeys()
	res := make([]*zppb.KeyResult, len(keys))
	for i, k := range keys {
		res[i] = &zppb.KeyResult{Value: k}
		if string(k) == "missing" {
			res[i].Code = zppb.Code_NOT_FOUND
		}
	}
	return &zppb.Response{Result: &zppb.Response_Mget{Mget: &zppb.MGetResponse{Results: res}}}
}

// TestRawMultiSplitsByMaster sends an MGET whose keys live on two nodes:
// each node gets its keys, and a missing key is a miss.
func TestRawMultiSplitsByMaster(t *testing.T) {
	a, b := newServer(t, okMGet), newServer(t, okMGet)
	r := &mapRouter{addrs: map[string]string{"k1": a.addr, "k2": b.addr, "k3": a.addr, "missing": b.addr}, moves: map[uint32]string{}}
	tg := &rawTarget{kind: "zeppelin", name: "test", table: "t", router: r}
	s, err := tg.NewSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	op := &workload.Op{Kind: workload.MGet, Keys: [][]byte{[]byte("k1"), []byte("k2"), []byte("k3")}}
	out := make([]Outcome, 1)
	s.Do(ctx, []*workload.Op{op}, out)
	if out[0].Err != nil || out[0].Miss {
		t.Fatalf("outcome %+v", out[0])
	}
	if got := a.seen(); !slices.Equal(got, []string{"k1", "k3"}) {
		t.Errorf("node a got %v", got)
	}
	if got := b.seen(); !slices.Equal(got, []string{"k2"}) {
		t.Errorf("node b got %v", got)
	}
	op.Keys = [][]byte{[]byte("k1"), []byte("missing")}
	s.Do(ctx, []*workload.Op{op}, out)
	if out[0].Err != nil || !out[0].Miss {
		t.Fatalf("with a missing key: outcome %+v", out[0])
	}
}

// TestRawMove checks that a MOVE answer is an error and updates the route,
// and that NOT_FOUND on a GET is a miss.
func TestRawMove(t *testing.T) {
	mover := newServer(t, func(*zppb.Request) *zppb.Response {
		return &zppb.Response{Code: zppb.Code_MOVE, Master: "127.0.0.1:1"}
	})
	empty := newServer(t, func(*zppb.Request) *zppb.Response { return &zppb.Response{Code: zppb.Code_NOT_FOUND} })
	r := &mapRouter{addrs: map[string]string{"moved": mover.addr, "gone": empty.addr}, moves: map[uint32]string{}}
	tg := &rawTarget{kind: "zeppelin", name: "test", table: "t", router: r}
	s, _ := tg.NewSession(context.Background())
	defer s.Close()
	ctx := context.Background()
	out := make([]Outcome, 1)
	s.Do(ctx, []*workload.Op{{Kind: workload.Get, Key: []byte("moved")}}, out)
	if Code(out[0].Err) != "MOVE" {
		t.Fatalf("outcome %+v, want a MOVE error", out[0])
	}
	if r.moves[uint32(len("moved"))] != "127.0.0.1:1" {
		t.Errorf("route not updated: %v", r.moves)
	}
	s.Do(ctx, []*workload.Op{{Kind: workload.Get, Key: []byte("gone")}}, out)
	if out[0].Err != nil || !out[0].Miss {
		t.Errorf("GET of a missing key: %+v, want a miss", out[0])
	}
	s.Do(ctx, []*workload.Op{{Kind: workload.Set, Key: []byte("gone")}}, out)
	if Code(out[0].Err) != "NOT_FOUND" {
		t.Errorf("SET answered NOT_FOUND: %+v, want an error", out[0])
	}
}

// TestRawBatch sends one batch of mixed operations over two nodes, one of
// them without a known master: each operation gets its own outcome, in
// order, and the pipelined GETs reach their node in batch order.
func TestRawBatch(t *testing.T) {
	answer := func(req *zppb.Request) *zppb.Response {
		if req.GetMget() != nil {
			return okMGet(req)
		}
		if k := req.GetGet().GetKey(); string(k) == "missing" {
			return &zppb.Response{Code: zppb.Code_NOT_FOUND}
		}
		return &zppb.Response{}
	}
	a, b := newServer(t, answer), newServer(t, answer)
	r := &mapRouter{addrs: map[string]string{"a1": a.addr, "a2": a.addr, "b1": b.addr, "missing": b.addr}, moves: map[uint32]string{}}
	tg := &rawTarget{kind: "zeppelin", name: "test", table: "t", router: r}
	s, err := tg.NewSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ops := []*workload.Op{
		{Kind: workload.Get, Key: []byte("a1")},
		{Kind: workload.Set, Key: []byte("b1"), Value: []byte("v")},
		{Kind: workload.Get, Key: []byte("nomaster")},
		{Kind: workload.MGet, Keys: [][]byte{[]byte("a2"), []byte("b1")}},
		{Kind: workload.Get, Key: []byte("missing")},
		{Kind: workload.Get, Key: []byte("a2")},
	}
	out := make([]Outcome, len(ops))
	s.Do(ctx, ops, out)
	want := []struct {
		miss   bool
		failed bool
	}{{}, {}, {failed: true}, {}, {miss: true}, {}}
	for i, w := range want {
		if (out[i].Err != nil) != w.failed || out[i].Miss != w.miss {
			t.Errorf("op %d (%v %q): outcome %+v, want failed=%v miss=%v", i, ops[i].Kind, ops[i].Key, out[i], w.failed, w.miss)
		}
	}
	if !errors.Is(out[2].Err, ErrNoMaster) {
		t.Errorf("op without a master: %v, want ErrNoMaster", out[2].Err)
	}
	if got := a.seen(); !slices.Equal(got, []string{"a1", "a2", "a2"}) {
		t.Errorf("node a got %v, want the pipelined GETs then the MGET's key", got)
	}
}

func TestTableRouterMoved(t *testing.T) {
	pulls := 0
	r := &tableRouter{table: "t", pull: func(context.Context) (*routes, error) {
		pulls++
		return &routes{masters: []string{"a", "b"}, slots: keyspace.EvenSlotMap(2)}, nil
	}}
	if err := r.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.moved(1, "c")
	if got := r.cur.Load().masters; !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("masters %v after MOVE to c", got)
	}
	if pulls != 1 {
		t.Fatalf("%d pulls for a MOVE that named the master", pulls)
	}
}
