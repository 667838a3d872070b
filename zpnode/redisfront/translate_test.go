package redisfront

import (
	"math"
	"net"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// testConn is a connection of a front on the fake backend, for translating
// commands without a network.
func testConn(t *testing.T) *conn {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	s := New(Config{}, newFake())
	return s.newConn(a)
}

func words(s string) [][]byte {
	var out [][]byte
	for _, w := range strings.Fields(s) {
		out = append(out, []byte(w))
	}
	return out
}

func set(s *zppb.SetRequest) *zppb.Request {
	s.Table = "default"
	return &zppb.Request{Cmd: &zppb.Request_Set{Set: s}}
}

func getex(g *zppb.GetExRequest) *zppb.Request {
	g.Table = "default"
	return &zppb.Request{Cmd: &zppb.Request_Getex{Getex: g}}
}

func expire(e *zppb.ExpireRequest) *zppb.Request {
	e.Table = "default"
	return &zppb.Request{Cmd: &zppb.Request_Expire{Expire: e}}
}

func bs(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, x := range s {
		out[i] = []byte(x)
	}
	return out
}

// TestTranslate: each command's native request, and the errors the front
// answers itself, with Redis 7.0's words.
func TestTranslate(t *testing.T) {
	k, v := []byte("k"), []byte("v")
	for _, tc := range []struct {
		in   string
		want *zppb.Request
		err  string
	}{
		{in: "SET k v", want: set(&zppb.SetRequest{Key: k, Value: v})},
		{in: "SET k v NX", want: set(&zppb.SetRequest{Key: k, Value: v, Condition: zppb.SetRequest_IF_ABSENT})},
		{in: "set k v xx get", want: set(&zppb.SetRequest{Key: k, Value: v, Condition: zppb.SetRequest_IF_PRESENT, ReturnOld: true})},
		{in: "SET k v GET NX", want: set(&zppb.SetRequest{Key: k, Value: v, Condition: zppb.SetRequest_IF_ABSENT, ReturnOld: true})},
		{in: "SET k v KEEPTTL", want: set(&zppb.SetRequest{Key: k, Value: v, KeepTtl: true})},
		{in: "SET k v EX 10", want: set(&zppb.SetRequest{Key: k, Value: v, TtlMs: 10000})},
		{in: "SET k v PX 10", want: set(&zppb.SetRequest{Key: k, Value: v, TtlMs: 10})},
		{in: "SET k v EXAT 10", want: set(&zppb.SetRequest{Key: k, Value: v, ExpireAtMs: 10000})},
		{in: "SET k v PXAT 10", want: set(&zppb.SetRequest{Key: k, Value: v, ExpireAtMs: 10})},
		{in: "SET k v NX XX", err: errSyntax},
		{in: "SET k v XX NX", err: errSyntax},
		{in: "SET k v EX 1 PX 1", err: errSyntax},
		{in: "SET k v EX 1 KEEPTTL", err: errSyntax},
		{in: "SET k v KEEPTTL EX 1", err: errSyntax},
		{in: "SET k v EX", err: errSyntax},
		{in: "SET k v PERSIST", err: errSyntax},
		{in: "SET k v FOO", err: errSyntax},
		{in: "SET k v EX x", err: errNotInteger},
		{in: "SET k v EX 0", err: "ERR invalid expire time in 'set' command"},
		{in: "SET k v PX -5", err: "ERR invalid expire time in 'set' command"},
		{in: "SET k v EX 9223372036854776", err: "ERR invalid expire time in 'set' command"},
		{in: "SET k v PX 9223372036854775000", err: "ERR invalid expire time in 'set' command"},
		{in: "SET k", err: "ERR wrong number of arguments for 'set' command"},
		{in: "SETNX k v", want: set(&zppb.SetRequest{Key: k, Value: v, Condition: zppb.SetRequest_IF_ABSENT})},
		{in: "SETEX k 5 v", want: set(&zppb.SetRequest{Key: k, Value: v, TtlMs: 5000})},
		{in: "PSETEX k 5 v", want: set(&zppb.SetRequest{Key: k, Value: v, TtlMs: 5})},
		{in: "SETEX k 0 v", err: "ERR invalid expire time in 'setex' command"},
		{in: "PSETEX k -1 v", err: "ERR invalid expire time in 'psetex' command"},
		{in: "SETEX k x v", err: errNotInteger},
		{in: "SETEX k 1", err: "ERR wrong number of arguments for 'setex' command"},
		{in: "GETSET k v", want: set(&zppb.SetRequest{Key: k, Value: v, ReturnOld: true})},
		{in: "GETDEL k", want: getex(&zppb.GetExRequest{Key: k, Change: &zppb.GetExRequest_Delete{Delete: true}})},
		{in: "GETEX k", want: getex(&zppb.GetExRequest{Key: k})},
		{in: "GETEX k PERSIST", want: getex(&zppb.GetExRequest{Key: k, Change: &zppb.GetExRequest_Persist{Persist: true}})},
		{in: "GETEX k EX 2", want: getex(&zppb.GetExRequest{Key: k, Change: &zppb.GetExRequest_TtlMs{TtlMs: 2000}})},
		{in: "GETEX k PXAT 2", want: getex(&zppb.GetExRequest{Key: k, Change: &zppb.GetExRequest_ExpireAtMs{ExpireAtMs: 2}})},
		{in: "GETEX k EX 0", err: "ERR invalid expire time in 'getex' command"},
		{in: "GETEX k PERSIST EX 1", err: errSyntax},
		{in: "GETEX k NX", err: errSyntax},
		{in: "GETEX k KEEPTTL", err: errSyntax},
		{in: "MSETNX {a}1 x {a}2 y", want: &zppb.Request{Cmd: &zppb.Request_Mset{Mset: &zppb.MSetRequest{Table: "default", IfAbsent: true,
			Kvs: []*zppb.KeyValue{{Key: []byte("{a}1"), Value: []byte("x")}, {Key: []byte("{a}2"), Value: []byte("y")}}}}}},
		{in: "MSETNX a 1 b 2", err: errCrossSlot},
		{in: "MSETNX a 1 b", err: "ERR wrong number of arguments for 'msetnx' command"},
		{in: "INCRBYFLOAT k 1.5", want: &zppb.Request{Cmd: &zppb.Request_IncrbyFloat{IncrbyFloat: &zppb.IncrByFloatRequest{Table: "default", Key: k, Delta: "1.5"}}}},
		{in: "DECRBY k -9223372036854775808", err: "ERR decrement would overflow"},
		{in: "APPEND k v", want: &zppb.Request{Cmd: &zppb.Request_SetRange{SetRange: &zppb.SetRangeRequest{Table: "default", Key: k, Value: v, Append: true}}}},
		{in: "SETRANGE k 3 v", want: &zppb.Request{Cmd: &zppb.Request_SetRange{SetRange: &zppb.SetRangeRequest{Table: "default", Key: k, Offset: 3, Value: v}}}},
		{in: "SETRANGE k -1 v", err: "ERR offset is out of range"},
		{in: "SETRANGE k x v", err: errNotInteger},
		{in: "GETRANGE k 0 x", err: errNotInteger},
		{in: "STRLEN k", want: &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: "default", Key: k}}}},
		{in: "DEL {a}1 {a}2", want: &zppb.Request{Cmd: &zppb.Request_Del{Del: &zppb.DelRequest{Table: "default", Keys: bs("{a}1", "{a}2")}}}},
		{in: "UNLINK k", want: &zppb.Request{Cmd: &zppb.Request_Del{Del: &zppb.DelRequest{Table: "default", Keys: bs("k")}}}},
		{in: "DEL a b", err: errCrossSlot},
		{in: "TOUCH k k", want: &zppb.Request{Cmd: &zppb.Request_Exists{Exists: &zppb.ExistsRequest{Table: "default", Keys: bs("k", "k")}}}},
		{in: "TYPE k", want: &zppb.Request{Cmd: &zppb.Request_Exists{Exists: &zppb.ExistsRequest{Table: "default", Key: k}}}},
		{in: "EXPIRE k 10", want: expire(&zppb.ExpireRequest{Key: k, Change: &zppb.ExpireRequest_TtlMs{TtlMs: 10000}})},
		{in: "EXPIRE k -10", want: expire(&zppb.ExpireRequest{Key: k, Change: &zppb.ExpireRequest_TtlMs{TtlMs: -10000}})},
		{in: "PEXPIRE k 10 NX", want: expire(&zppb.ExpireRequest{Key: k, Change: &zppb.ExpireRequest_TtlMs{TtlMs: 10}, Condition: zppb.ExpireRequest_IF_NO_EXPIRY})},
		{in: "EXPIREAT k 10 XX", want: expire(&zppb.ExpireRequest{Key: k, Change: &zppb.ExpireRequest_ExpireAtMs{ExpireAtMs: 10000}, Condition: zppb.ExpireRequest_IF_EXPIRY})},
		{in: "PEXPIREAT k 10 gt", want: expire(&zppb.ExpireRequest{Key: k, Change: &zppb.ExpireRequest_ExpireAtMs{ExpireAtMs: 10}, Condition: zppb.ExpireRequest_IF_LATER})},
		{in: "PEXPIREAT k 0 LT", want: expire(&zppb.ExpireRequest{Key: k, Change: &zppb.ExpireRequest_ExpireAtMs{ExpireAtMs: 0}, Condition: zppb.ExpireRequest_IF_EARLIER})},
		{in: "EXPIRE k 10 XX GT", want: expire(&zppb.ExpireRequest{Key: k, Change: &zppb.ExpireRequest_TtlMs{TtlMs: 10000}, Condition: zppb.ExpireRequest_IF_LATER})},
		{in: "EXPIRE k 10 NX XX", err: "ERR NX and XX, GT or LT options at the same time are not compatible"},
		{in: "EXPIRE k 10 GT LT", err: "ERR GT and LT options at the same time are not compatible"},
		{in: "EXPIRE k 10 FOO", err: "ERR Unsupported option FOO"},
		{in: "EXPIRE k x", err: errNotInteger},
		{in: "EXPIRE k 9223372036854776", err: "ERR invalid expire time in 'expire' command"},
		{in: "EXPIREAT k -9223372036854776", err: "ERR invalid expire time in 'expireat' command"},
		{in: "PEXPIRE k 9223372036854775000", err: "ERR invalid expire time in 'pexpire' command"},
		{in: "PERSIST k", want: expire(&zppb.ExpireRequest{Key: k, Change: &zppb.ExpireRequest_Persist{Persist: true}})},
		{in: "EXPIRETIME k", want: &zppb.Request{Cmd: &zppb.Request_Ttl{Ttl: &zppb.TTLRequest{Table: "default", Key: k}}}},
		{in: "SCAN x", err: errInvalidCursor},
		{in: "SCAN 0 COUNT 0", err: errSyntax},
		{in: "SCAN 0 COUNT x", err: errNotInteger},
		{in: "SCAN 0 MATCH", err: errSyntax},
		{in: "SCAN 0 FOO bar", err: errSyntax},
		{in: "EXEC", err: "ERR EXEC without MULTI"},
		{in: "DISCARD", err: "ERR DISCARD without MULTI"},
		{in: "WATCH k", err: errWatch},
		{in: "FOO", err: "ERR unknown command 'FOO', with args beginning with: "},
	} {
		c := testConn(t)
		e := c.command(words(tc.in))
		switch {
		case tc.err != "":
			if e.err != tc.err {
				t.Errorf("%s: error %q, want %q", tc.in, e.err, tc.err)
			}
		case e.err != "":
			t.Errorf("%s: error %q", tc.in, e.err)
		case len(e.reqs) != 1 || !proto.Equal(e.reqs[0], tc.want):
			t.Errorf("%s: %v, want %v", tc.in, e.reqs, tc.want)
		}
	}
}

func TestGetRange(t *testing.T) {
	v := []byte("Hello World")
	for _, tc := range []struct {
		start, end int64
		want       string
	}{
		{0, 3, "Hell"}, {-3, -1, "rld"}, {0, -1, "Hello World"}, {10, 100, "d"},
		{5, 3, ""}, {-1, -5, ""}, {-100, 2, "Hel"}, {math.MinInt64, math.MaxInt64, "Hello World"},
	} {
		if got := string(getRange(v, tc.start, tc.end)); got != tc.want {
			t.Errorf("GETRANGE %d %d = %q, want %q", tc.start, tc.end, got, tc.want)
		}
	}
	if got := getRange(nil, 0, -1); len(got) != 0 {
		t.Errorf("GETRANGE of nothing = %q", got)
	}
}
