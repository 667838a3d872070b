package server

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// testServer is a node Server in this process, without meta: the test
// gives it a topology and a long master lease, and calls handle directly
// (the command layer every front calls).
type testServer struct {
	t *testing.T
	s *Server
}

func newTestServer(t *testing.T, addr string) *testServer {
	t.Helper()
	s, err := New(Config{Addr: addr, MetaAddrs: []string{"127.0.0.1:1"}, DataDir: t.TempDir(), MaxValueSize: 1 << 10,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if s.shared, err = engine.NewShared(engine.SharedOptions{BlockCacheSize: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	s.replicas = newReplicaSet(s)
	s.lease.renewed(time.Now(), time.Hour, true)
	t.Cleanup(func() {
		s.cancel()
		s.peers.wait()
		s.replicas.closeAll()
		s.shared.Close()
	})
	return &testServer{t: t, s: s}
}

// singleMaster is table "t" with one partition: master (term) and slaves.
func singleMaster(term uint64, master string, slaves ...string) *zppb.Topology {
	return &zppb.Topology{Epoch: term, Tables: []*zppb.Table{{Name: "t", PartitionCount: 1, Replicas: uint32(1 + len(slaves)), CreatedEpoch: 1,
		Partitions: []*zppb.Partition{{Id: 0, Master: master, Slaves: slaves, Term: term}}}}}
}

// newMaster is a Server mastering table "t" (one partition).
func newMaster(t *testing.T) *testServer {
	ts := newTestServer(t, "127.0.0.1:7001")
	ts.s.applyTopology(singleMaster(1, ts.s.cfg.Addr))
	return ts
}

func (ts *testServer) do(req *zppb.Request) *zppb.Response {
	ts.t.Helper()
	return ts.s.handleRequest(context.Background(), req)
}

// ok runs req and fails the test unless it succeeds.
func (ts *testServer) ok(req *zppb.Request) *zppb.Response {
	ts.t.Helper()
	resp := ts.do(req)
	if resp.Code != zppb.Code_OK {
		ts.t.Fatalf("%v: %v %s", req.Cmd, resp.Code, resp.Msg)
	}
	return resp
}

// state is a key as GET and TTL see it: "<value>", "<value> @<expire_at_ms>"
// for the expiries below, "<value> ttl" for any other, "-" when absent.
func (ts *testServer) state(key string) string {
	ts.t.Helper()
	resp := ts.do(getReq(key))
	if resp.Code == zppb.Code_NOT_FOUND {
		return "-"
	}
	v := string(resp.GetGet().GetValue())
	ttl := ts.do(&zppb.Request{Cmd: &zppb.Request_Ttl{Ttl: &zppb.TTLRequest{Table: "t", Key: []byte(key)}}}).GetTtl()
	switch {
	case ttl.GetExpireAtMs() == -1:
		return v
	case ttl.GetExpireAtMs() == farFuture || ttl.GetExpireAtMs() == nearFuture || ttl.GetExpireAtMs() == earlierFuture:
		return fmt.Sprintf("%s @%d", v, ttl.GetExpireAtMs())
	}
	return v + " ttl"
}

// Expiries the tests set, far enough away not to pass during a test.
var (
	nearFuture    = time.Now().Add(time.Hour).UnixMilli()
	earlierFuture = nearFuture - 1000
	farFuture     = time.Now().Add(48 * time.Hour).UnixMilli()
)

func setReq(key, value string, opts ...func(*zppb.SetRequest)) *zppb.Request {
	sr := &zppb.SetRequest{Table: "t", Key: []byte(key), Value: []byte(value)}
	for _, o := range opts {
		o(sr)
	}
	return &zppb.Request{Cmd: &zppb.Request_Set{Set: sr}}
}

func nx(r *zppb.SetRequest)      { r.Condition = zppb.SetRequest_IF_ABSENT }
func xx(r *zppb.SetRequest)      { r.Condition = zppb.SetRequest_IF_PRESENT }
func keepTTL(r *zppb.SetRequest) { r.KeepTtl = true }
func getOld(r *zppb.SetRequest)  { r.ReturnOld = true }
func ttl(ms int64) func(*zppb.SetRequest) {
	return func(r *zppb.SetRequest) { r.TtlMs = ms }
}
func at(ms int64) func(*zppb.SetRequest) {
	return func(r *zppb.SetRequest) { r.ExpireAtMs = ms }
}

func getReq(key string) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: "t", Key: []byte(key)}}}
}

func getExReq(key string, change any) *zppb.Request {
	r := &zppb.GetExRequest{Table: "t", Key: []byte(key)}
	switch c := change.(type) {
	case *zppb.GetExRequest_TtlMs:
		r.Change = c
	case *zppb.GetExRequest_ExpireAtMs:
		r.Change = c
	case *zppb.GetExRequest_Persist:
		r.Change = c
	case *zppb.GetExRequest_Delete:
		r.Change = c
	}
	return &zppb.Request{Cmd: &zppb.Request_Getex{Getex: r}}
}

func expireReq(key string, cond zppb.ExpireRequest_Condition, change any) *zppb.Request {
	r := &zppb.ExpireRequest{Table: "t", Key: []byte(key), Condition: cond}
	switch c := change.(type) {
	case *zppb.ExpireRequest_TtlMs:
		r.Change = c
	case *zppb.ExpireRequest_ExpireAtMs:
		r.Change = c
	case *zppb.ExpireRequest_Persist:
		r.Change = c
	}
	return &zppb.Request{Cmd: &zppb.Request_Expire{Expire: r}}
}

func setRangeReq(key string, offset int64, value string, appendIt bool) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_SetRange{SetRange: &zppb.SetRangeRequest{Table: "t", Key: []byte(key), Offset: offset, Value: []byte(value), Append: appendIt}}}
}

func incrByFloatReq(key, delta string) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_IncrbyFloat{IncrbyFloat: &zppb.IncrByFloatRequest{Table: "t", Key: []byte(key), Delta: delta}}}
}

func incrByReq(key string, delta int64) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_Incrby{Incrby: &zppb.IncrByRequest{Table: "t", Key: []byte(key), Delta: delta}}}
}

func keysOfStrings(keys []string) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = []byte(k)
	}
	return out
}

func delReq(keys ...string) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_Del{Del: &zppb.DelRequest{Table: "t", Keys: keysOfStrings(keys)}}}
}

func existsReq(keys ...string) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_Exists{Exists: &zppb.ExistsRequest{Table: "t", Keys: keysOfStrings(keys)}}}
}

func msetNXReq(kvs ...string) *zppb.Request {
	r := &zppb.MSetRequest{Table: "t", IfAbsent: true}
	for i := 0; i < len(kvs); i += 2 {
		r.Kvs = append(r.Kvs, &zppb.KeyValue{Key: []byte(kvs[i]), Value: []byte(kvs[i+1])})
	}
	return &zppb.Request{Cmd: &zppb.Request_Mset{Mset: r}}
}

// with returns req carrying request id id.
func with(id string, req *zppb.Request) *zppb.Request {
	req.RequestId = []byte(id)
	return req
}

// seed gives key its starting state: "" absent, "v" without expiry,
// "v ttl" with one (nearFuture).
func (ts *testServer) seed(key, state string) {
	ts.t.Helper()
	switch {
	case state == "":
	case strings.HasSuffix(state, " ttl"):
		ts.ok(setReq(key, strings.TrimSuffix(state, " ttl"), at(nearFuture)))
	default:
		ts.ok(setReq(key, state))
	}
}

func TestSetOptions(t *testing.T) {
	ts := newMaster(t)
	tests := []struct {
		name    string
		before  string
		opts    []func(*zppb.SetRequest)
		applied bool
		old     string // with getOld: "-" for none
		after   string
	}{
		{"plain replaces the expiry", "a ttl", nil, true, "", "v"},
		{"plain with ttl", "", []func(*zppb.SetRequest){ttl(60_000)}, true, "", "v ttl"},
		{"EXAT", "a", []func(*zppb.SetRequest){at(farFuture)}, true, "", fmt.Sprintf("v @%d", farFuture)},
		{"EXAT in the past deletes", "a", []func(*zppb.SetRequest){at(1000)}, true, "", "-"},
		{"NX on absent", "", []func(*zppb.SetRequest){nx}, true, "", "v"},
		{"NX on present", "a", []func(*zppb.SetRequest){nx}, false, "", "a"},
		{"XX on absent", "", []func(*zppb.SetRequest){xx}, false, "", "-"},
		{"XX on present", "a ttl", []func(*zppb.SetRequest){xx}, true, "", "v"},
		{"KEEPTTL keeps", "a ttl", []func(*zppb.SetRequest){keepTTL}, true, "", fmt.Sprintf("v @%d", nearFuture)},
		{"KEEPTTL on absent", "", []func(*zppb.SetRequest){keepTTL}, true, "", "v"},
		{"GET on absent", "", []func(*zppb.SetRequest){getOld}, true, "-", "v"},
		{"GET on present (GETSET)", "a ttl", []func(*zppb.SetRequest){getOld}, true, "a", "v"},
		{"NX GET on present", "a", []func(*zppb.SetRequest){nx, getOld}, false, "a", "a"},
		{"XX GET KEEPTTL", "a ttl", []func(*zppb.SetRequest){xx, getOld, keepTTL}, true, "a", fmt.Sprintf("v @%d", nearFuture)},
		{"XX GET EXAT past", "a", []func(*zppb.SetRequest){xx, getOld, at(1)}, true, "a", "-"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("set%d", i)
			ts.seed(key, tt.before)
			resp := ts.ok(setReq(key, "v", tt.opts...)).GetSet()
			if resp.GetApplied() != tt.applied {
				t.Errorf("applied %v, want %v", resp.GetApplied(), tt.applied)
			}
			old := ""
			if tt.old != "" {
				old = "-"
				if resp.GetOldFound() {
					old = string(resp.GetOld())
				}
			}
			if old != tt.old {
				t.Errorf("old %q, want %q", old, tt.old)
			}
			if got := ts.state(key); got != tt.after {
				t.Errorf("key is %q, want %q", got, tt.after)
			}
		})
	}
}

func TestPipelinedSetAnswersApplied(t *testing.T) {
	ts := newMaster(t)
	p := ts.s.prepare(context.Background(), setReq("k", "v"))
	if p == nil {
		t.Fatal("a plain SET is not prepared")
	}
	p.Flush()
	if resp := p.Finish(); resp.Code != zppb.Code_OK || !resp.GetSet().GetApplied() {
		t.Fatalf("pipelined SET answered %v", resp)
	}
	if p := ts.s.prepare(context.Background(), setReq("k", "v", nx)); p != nil {
		t.Fatal("SET NX is prepared; it must run under the write lock in handle")
	}
}

func TestCommandErrors(t *testing.T) {
	ts := newMaster(t)
	ts.ok(setReq("s", "abc"))
	ts.ok(setReq("{h}a", "1"))
	big := strings.Repeat("x", 1000) // the test server's limit is 1 KiB
	ts.ok(setReq("big", big))
	tests := []struct {
		name string
		req  *zppb.Request
		code zppb.Code
		msg  string
	}{
		{"SET negative ttl", setReq("k", "v", ttl(-1)), zppb.Code_INVALID_ARGUMENT, "invalid expire time in 'set' command"},
		{"SET negative EXAT", setReq("k", "v", at(-5)), zppb.Code_INVALID_ARGUMENT, "invalid expire time in 'set' command"},
		{"SET ttl overflows", setReq("k", "v", ttl(math.MaxInt64)), zppb.Code_INVALID_ARGUMENT, "invalid expire time in 'set' command"},
		{"SET ttl overflows with NX", setReq("k", "v", nx, ttl(math.MaxInt64-1)), zppb.Code_INVALID_ARGUMENT, "invalid expire time in 'set' command"},
		{"SET ttl overflows, NX refused anyway", setReq("s", "v", nx, ttl(math.MaxInt64-1)), zppb.Code_INVALID_ARGUMENT, "invalid expire time in 'set' command"},
		{"GETEX ttl overflows on a missing key", getExReq("nope", &zppb.GetExRequest_TtlMs{TtlMs: math.MaxInt64}), zppb.Code_INVALID_ARGUMENT, "invalid expire time in 'getex' command"},
		{"EXPIRE ttl overflows on a missing key", expireReq("nope", 0, &zppb.ExpireRequest_TtlMs{TtlMs: math.MaxInt64}), zppb.Code_INVALID_ARGUMENT, "invalid expire time in 'expire' command"},
		{"SET ttl and EXAT", setReq("k", "v", ttl(5), at(farFuture)), zppb.Code_INVALID_ARGUMENT, "not both"},
		{"SET KEEPTTL and ttl", setReq("k", "v", keepTTL, ttl(5)), zppb.Code_INVALID_ARGUMENT, "keep_ttl"},
		{"SET unknown condition", setReq("k", "v", func(r *zppb.SetRequest) { r.Condition = 7 }), zppb.Code_INVALID_ARGUMENT, "condition"},
		{"SET value too large", setReq("k", big+big), zppb.Code_VALUE_TOO_LARGE, ""},
		{"GETEX zero ttl", getExReq("s", &zppb.GetExRequest_TtlMs{TtlMs: 0}), zppb.Code_INVALID_ARGUMENT, "invalid expire time in 'getex' command"},
		{"GETEX negative EXAT", getExReq("s", &zppb.GetExRequest_ExpireAtMs{ExpireAtMs: -1}), zppb.Code_INVALID_ARGUMENT, "invalid expire time in 'getex' command"},
		{"GETEX ttl overflows", getExReq("s", &zppb.GetExRequest_TtlMs{TtlMs: math.MaxInt64}), zppb.Code_INVALID_ARGUMENT, "invalid expire time in 'getex' command"},
		{"GETEX missing", getExReq("nope", &zppb.GetExRequest_Delete{Delete: true}), zppb.Code_NOT_FOUND, ""},
		{"EXPIRE ttl overflows", expireReq("s", 0, &zppb.ExpireRequest_TtlMs{TtlMs: math.MaxInt64}), zppb.Code_INVALID_ARGUMENT, "invalid expire time in 'expire' command"},
		{"EXPIRE nothing", expireReq("s", 0, nil), zppb.Code_INVALID_ARGUMENT, "needs"},
		{"PERSIST with condition", expireReq("s", zppb.ExpireRequest_IF_LATER, &zppb.ExpireRequest_Persist{Persist: true}), zppb.Code_INVALID_ARGUMENT, "condition"},
		{"SETRANGE negative offset", setRangeReq("s", -1, "x", false), zppb.Code_INVALID_ARGUMENT, "offset is out of range"},
		{"SETRANGE beyond the limit", setRangeReq("s", 1024, "x", false), zppb.Code_VALUE_TOO_LARGE, "string exceeds maximum allowed size (proto-max-bulk-len)"},
		{"APPEND beyond the limit", setRangeReq("big", 0, big, true), zppb.Code_VALUE_TOO_LARGE, "string exceeds maximum allowed size (proto-max-bulk-len)"},
		{"APPEND with offset", setRangeReq("s", 3, "x", true), zppb.Code_INVALID_ARGUMENT, "offset"},
		{"INCRBYFLOAT bad delta", incrByFloatReq("f", "1x"), zppb.Code_INVALID_ARGUMENT, "value is not a valid float"},
		{"INCRBYFLOAT NaN delta", incrByFloatReq("f", "nan"), zppb.Code_INVALID_ARGUMENT, "value is not a valid float"},
		{"INCRBYFLOAT on a string", incrByFloatReq("s", "1"), zppb.Code_INVALID_ARGUMENT, "value is not a valid float"},
		{"INCRBYFLOAT to infinity", incrByFloatReq("f", "inf"), zppb.Code_INVALID_ARGUMENT, "increment would produce NaN or Infinity"},
		{"INCRBYFLOAT overflow", incrByFloatReq("f", "1e5000"), zppb.Code_INVALID_ARGUMENT, "value is not a valid float"},
		{"INCRBY on a string", incrByReq("s", 1), zppb.Code_NOT_INTEGER, "value is not an integer or out of range"},
		{"DEL across slots", delReq("{h}a", "{g}b"), zppb.Code_CROSS_SLOT, ""},
		{"EXISTS across slots", existsReq("{h}a", "{g}b"), zppb.Code_CROSS_SLOT, ""},
		{"MSETNX across slots", msetNXReq("{h}a", "1", "{g}b", "2"), zppb.Code_CROSS_SLOT, ""},
		{"DEL key and keys", &zppb.Request{Cmd: &zppb.Request_Del{Del: &zppb.DelRequest{Table: "t", Key: []byte("a"), Keys: [][]byte{[]byte("a")}}}}, zppb.Code_INVALID_ARGUMENT, "both"},
		{"DEL empty key", delReq("a", ""), zppb.Code_EMPTY_KEY, ""},
		{"unknown table", &zppb.Request{Cmd: &zppb.Request_Expire{Expire: &zppb.ExpireRequest{Table: "x", Key: []byte("k"), Change: &zppb.ExpireRequest_Persist{Persist: true}}}}, zppb.Code_TABLE_NOT_FOUND, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.do(tt.req)
			if resp.Code != tt.code || !strings.Contains(resp.Msg, tt.msg) {
				t.Fatalf("got %v %q, want %v %q", resp.Code, resp.Msg, tt.code, tt.msg)
			}
		})
	}
	// Nothing was written by any of them.
	for key, want := range map[string]string{"k": "-", "s": "abc", "big": big, "f": "-", "{h}a": "1"} {
		if got := ts.state(key); got != want {
			t.Errorf("%s is %q after refused commands, want %q", key, got, want)
		}
	}
}

func TestGetEx(t *testing.T) {
	ts := newMaster(t)
	tests := []struct {
		name   string
		before string
		change any
		after  string
	}{
		{"no change reads", "a ttl", nil, fmt.Sprintf("a @%d", nearFuture)},
		{"EX", "a", &zppb.GetExRequest_TtlMs{TtlMs: 60_000}, "a ttl"},
		{"EXAT", "a", &zppb.GetExRequest_ExpireAtMs{ExpireAtMs: farFuture}, fmt.Sprintf("a @%d", farFuture)},
		{"EXAT past deletes", "a", &zppb.GetExRequest_ExpireAtMs{ExpireAtMs: 1}, "-"},
		{"PERSIST", "a ttl", &zppb.GetExRequest_Persist{Persist: true}, "a"},
		{"PERSIST without expiry", "a", &zppb.GetExRequest_Persist{Persist: true}, "a"},
		{"GETDEL", "a ttl", &zppb.GetExRequest_Delete{Delete: true}, "-"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("getex%d", i)
			ts.seed(key, tt.before)
			if got := ts.ok(getExReq(key, tt.change)).GetGet().GetValue(); string(got) != "a" {
				t.Errorf("answered %q, want a", got)
			}
			if got := ts.state(key); got != tt.after {
				t.Errorf("key is %q, want %q", got, tt.after)
			}
		})
	}
}

// TestExpireConditions is Redis 7.0's NX/XX/GT/LT matrix: a key without
// expiry counts as an infinite TTL.
func TestExpireConditions(t *testing.T) {
	ts := newMaster(t)
	const (
		A  = zppb.ExpireRequest_ALWAYS
		NX = zppb.ExpireRequest_IF_NO_EXPIRY
		XX = zppb.ExpireRequest_IF_EXPIRY
		GT = zppb.ExpireRequest_IF_LATER
		LT = zppb.ExpireRequest_IF_EARLIER
	)
	later := &zppb.ExpireRequest_ExpireAtMs{ExpireAtMs: farFuture}
	earlier := &zppb.ExpireRequest_ExpireAtMs{ExpireAtMs: earlierFuture}
	withTTL := fmt.Sprintf("a @%d", nearFuture)
	tests := []struct {
		name    string
		before  string
		cond    zppb.ExpireRequest_Condition
		change  any
		changed bool
		after   string
	}{
		{"missing key", "", A, later, false, "-"},
		{"always", "a", A, later, true, fmt.Sprintf("a @%d", farFuture)},
		{"NX no expiry", "a", NX, later, true, fmt.Sprintf("a @%d", farFuture)},
		{"NX has expiry", "a ttl", NX, later, false, withTTL},
		{"XX no expiry", "a", XX, later, false, "a"},
		{"XX has expiry", "a ttl", XX, later, true, fmt.Sprintf("a @%d", farFuture)},
		{"GT no expiry (infinite)", "a", GT, later, false, "a"},
		{"GT later", "a ttl", GT, later, true, fmt.Sprintf("a @%d", farFuture)},
		{"GT earlier", "a ttl", GT, earlier, false, withTTL},
		{"LT no expiry (infinite)", "a", LT, earlier, true, fmt.Sprintf("a @%d", earlierFuture)},
		{"LT earlier", "a ttl", LT, earlier, true, fmt.Sprintf("a @%d", earlierFuture)},
		{"LT later", "a ttl", LT, later, false, withTTL},
		{"relative", "a", A, &zppb.ExpireRequest_TtlMs{TtlMs: 60_000}, true, "a ttl"},
		{"zero ttl deletes", "a", A, &zppb.ExpireRequest_TtlMs{TtlMs: 0}, true, "-"},
		{"negative ttl deletes", "a ttl", A, &zppb.ExpireRequest_TtlMs{TtlMs: -5}, true, "-"},
		{"past EXPIREAT deletes", "a", A, &zppb.ExpireRequest_ExpireAtMs{ExpireAtMs: 0}, true, "-"},
		{"LT past deletes", "a ttl", LT, &zppb.ExpireRequest_ExpireAtMs{ExpireAtMs: 10}, true, "-"},
		{"GT past refused", "a ttl", GT, &zppb.ExpireRequest_ExpireAtMs{ExpireAtMs: 10}, false, withTTL},
		{"PERSIST", "a ttl", A, &zppb.ExpireRequest_Persist{Persist: true}, true, "a"},
		{"PERSIST no expiry", "a", A, &zppb.ExpireRequest_Persist{Persist: true}, false, "a"},
		{"PERSIST missing", "", A, &zppb.ExpireRequest_Persist{Persist: true}, false, "-"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("exp%d", i)
			ts.seed(key, tt.before)
			if got := ts.ok(expireReq(key, tt.cond, tt.change)).GetExpire().GetChanged(); got != tt.changed {
				t.Errorf("changed %v, want %v", got, tt.changed)
			}
			if got := ts.state(key); got != tt.after {
				t.Errorf("key is %q, want %q", got, tt.after)
			}
		})
	}
}

func TestSetRangeAndAppend(t *testing.T) {
	ts := newMaster(t)
	tests := []struct {
		name   string
		before string
		offset int64
		value  string
		append bool
		length int64
		after  string
	}{
		{"SETRANGE overwrites", "Hello World", 6, "Redis", false, 11, "Hello Redis"},
		{"SETRANGE pads with zeros", "", 6, "Redis", false, 11, "\x00\x00\x00\x00\x00\x00Redis"},
		{"SETRANGE grows", "ab", 1, "xyz", false, 4, "axyz"},
		{"SETRANGE keeps the expiry", "ab ttl", 0, "c", false, 2, fmt.Sprintf("cb @%d", nearFuture)},
		{"SETRANGE empty on missing", "", 5, "", false, 0, "-"},
		{"SETRANGE empty on present", "abc", 100000, "", false, 3, "abc"},
		{"APPEND creates", "", 0, "Hello", true, 5, "Hello"},
		{"APPEND appends", "Hello", 0, " World", true, 11, "Hello World"},
		{"APPEND keeps the expiry", "a ttl", 0, "b", true, 2, fmt.Sprintf("ab @%d", nearFuture)},
		{"APPEND empty creates empty", "", 0, "", true, 0, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("range%d", i)
			ts.seed(key, tt.before)
			if got := ts.ok(setRangeReq(key, tt.offset, tt.value, tt.append)).GetSetRange().GetLength(); got != tt.length {
				t.Errorf("length %d, want %d", got, tt.length)
			}
			if got := ts.state(key); got != tt.after {
				t.Errorf("key is %q, want %q", got, tt.after)
			}
		})
	}
}

// TestIncrByFloat uses Redis's documented examples and formatting.
func TestIncrByFloat(t *testing.T) {
	ts := newMaster(t)
	tests := []struct {
		name   string
		before string
		delta  string
		want   string
	}{
		{"doc: 10.50 + 0.1", "10.50", "0.1", "10.6"},
		{"doc: then -5", "10.6", "-5", "5.6"},
		{"doc: exponents", "5.0e3", "2.0e2", "5200"},
		{"missing counts as 0", "", "1.5", "1.5"},
		{"integer", "10", "1", "11"},
		{"to zero", "1.5", "-1.5", "0"},
		{"hex", "", "0x10", "16"},
		{"tiny", "", "1e-20", "0"},
		{"big", "", "1e20", "100000000000000000000"},
		{"keeps the expiry", "1 ttl", "1", "2"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("float%d", i)
			ts.seed(key, tt.before)
			if got := ts.ok(incrByFloatReq(key, tt.delta)).GetIncrbyFloat().GetValue(); got != tt.want {
				t.Errorf("answered %q, want %q", got, tt.want)
			}
			want := tt.want
			if strings.HasSuffix(tt.before, " ttl") {
				want = fmt.Sprintf("%s @%d", tt.want, nearFuture)
			}
			if got := ts.state(key); got != want {
				t.Errorf("key is %q, want %q", got, want)
			}
		})
	}
}

func TestParseLongDouble(t *testing.T) {
	for _, s := range []string{"", " 1", "1 ", "1_0", "0b1", "0o7", "1p3", "nan", "-nan", "1e5000", "1e-5000", "abc", "--1", "0x"} {
		if _, ok := parseLongDouble(s); ok {
			t.Errorf("%q parsed; Redis rejects it", s)
		}
	}
	for _, s := range []string{"1", "-1.5", "+2", ".5", "5.", "1e3", "1E-3", "0x1p3", "inf", "-Infinity"} {
		if _, ok := parseLongDouble(s); !ok {
			t.Errorf("%q did not parse; Redis takes it", s)
		}
	}
}

func TestIncrByParsesAsRedis(t *testing.T) {
	ts := newMaster(t)
	for _, v := range []string{"+1", "01", " 1", "1 ", "-0", "", "99999999999999999999"} {
		ts.ok(setReq("n", v))
		if resp := ts.do(incrByReq("n", 1)); resp.Code != zppb.Code_NOT_INTEGER {
			t.Errorf("INCRBY on %q answered %v, want NOT_INTEGER", v, resp.Code)
		}
	}
	ts.ok(setReq("n", "-7", at(nearFuture)))
	if got := ts.ok(incrByReq("n", 10)).GetIncrby().GetValue(); got != 3 {
		t.Errorf("INCRBY answered %d, want 3", got)
	}
	if got := ts.state("n"); got != fmt.Sprintf("3 @%d", nearFuture) {
		t.Errorf("after INCRBY the key is %q: it must keep its expiry", got)
	}
}

func TestMultiKeyCommands(t *testing.T) {
	ts := newMaster(t)
	ts.ok(setReq("{u}a", "1"))
	if got := ts.ok(msetNXReq("{u}b", "2", "{u}a", "x")).GetMset(); got.GetApplied() {
		t.Fatal("MSETNX applied although {u}a exists")
	}
	if got := ts.state("{u}b"); got != "-" {
		t.Fatalf("refused MSETNX wrote {u}b: %q", got)
	}
	if got := ts.ok(msetNXReq("{u}b", "2", "{u}c", "3", "{u}b", "4")).GetMset(); !got.GetApplied() {
		t.Fatal("MSETNX of new keys not applied")
	}
	if got := ts.state("{u}b"); got != "4" {
		t.Fatalf("{u}b named twice is %q, want the last value", got)
	}
	if got := ts.ok(existsReq("{u}a", "{u}a", "{u}x", "{u}c")).GetExists().GetCount(); got != 3 {
		t.Fatalf("EXISTS counted %d, want 3 (a key named twice counts twice)", got)
	}
	if got := ts.ok(delReq("{u}a", "{u}a", "{u}x", "{u}b")).GetDel().GetDeleted(); got != 2 {
		t.Fatalf("DEL counted %d, want 2", got)
	}
	if got := ts.ok(existsReq("{u}a", "{u}b", "{u}c")).GetExists().GetCount(); got != 1 {
		t.Fatalf("after DEL, %d of the keys exist, want 1", got)
	}
	// The single-key forms answer as before.
	one := ts.ok(&zppb.Request{Cmd: &zppb.Request_Exists{Exists: &zppb.ExistsRequest{Table: "t", Key: []byte("{u}c")}}}).GetExists()
	if !one.GetExists() || one.GetCount() != 1 {
		t.Fatalf("EXISTS of one key: %v", one)
	}
}
