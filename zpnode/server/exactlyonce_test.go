package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/rpc/rpctest"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// retryCase is a write sent with a request id, then something else
// changing the key (without an id), then the same write again with the
// same id: the retry must be answered as the first attempt and not applied
// again, so the key keeps what the change left.
type retryCase struct {
	name   string
	seed   map[string]string
	req    func() *zppb.Request
	change *zppb.Request // nil: none
	after  map[string]string
}

func retryCases() []retryCase {
	return []retryCase{
		{"GETSET", map[string]string{"k1": "a"}, func() *zppb.Request { return setReq("k1", "b", getOld) }, setReq("k1", "c"), map[string]string{"k1": "c"}},
		{"SET GET on absent", nil, func() *zppb.Request { return setReq("k2", "b", getOld) }, setReq("k2", "c"), map[string]string{"k2": "c"}},
		{"SET NX", nil, func() *zppb.Request { return setReq("k3", "b", nx) }, delReq("k3"), map[string]string{"k3": "-"}},
		{"GETDEL", map[string]string{"k4": "a"}, func() *zppb.Request { return getExReq("k4", &zppb.GetExRequest_Delete{Delete: true}) }, setReq("k4", "c"), map[string]string{"k4": "c"}},
		{"GETDEL of empty value", map[string]string{"k5": ""}, func() *zppb.Request { return getExReq("k5", &zppb.GetExRequest_Delete{Delete: true}) }, setReq("k5", "c"), map[string]string{"k5": "c"}},
		{"GETEX EX", map[string]string{"k6": "a"}, func() *zppb.Request { return getExReq("k6", &zppb.GetExRequest_TtlMs{TtlMs: 60_000}) }, setReq("k6", "c"), map[string]string{"k6": "c"}},
		{"EXPIRE", map[string]string{"k7": "a"}, func() *zppb.Request {
			return expireReq("k7", zppb.ExpireRequest_IF_NO_EXPIRY, &zppb.ExpireRequest_ExpireAtMs{ExpireAtMs: farFuture})
		}, expireReq("k7", 0, &zppb.ExpireRequest_Persist{Persist: true}), map[string]string{"k7": "a"}},
		{"APPEND", map[string]string{"k8": "a"}, func() *zppb.Request { return setRangeReq("k8", 0, "b", true) }, nil, map[string]string{"k8": "ab"}},
		{"SETRANGE", map[string]string{"k9": "abc"}, func() *zppb.Request { return setRangeReq("k9", 1, "X", false) }, setReq("k9", "zzzz"), map[string]string{"k9": "zzzz"}},
		{"INCRBYFLOAT", map[string]string{"k10": "1"}, func() *zppb.Request { return incrByFloatReq("k10", "1.5") }, nil, map[string]string{"k10": "2.5"}},
		{"INCRBY", map[string]string{"k11": "1"}, func() *zppb.Request { return incrByReq("k11", 5) }, nil, map[string]string{"k11": "6"}},
		{"MSETNX", nil, func() *zppb.Request { return msetNXReq("{m}a", "1", "{m}b", "2") }, delReq("{m}a"), map[string]string{"{m}a": "-", "{m}b": "2"}},
		{"DEL of several keys", map[string]string{"{d}a": "1", "{d}b": "2"}, func() *zppb.Request { return delReq("{d}a", "{d}b", "{d}c") }, setReq("{d}a", "3"), map[string]string{"{d}a": "3", "{d}b": "-"}},
	}
}

func TestRetryIsAnsweredOnce(t *testing.T) {
	ts := newMaster(t)
	for i, tc := range retryCases() {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.seed {
				ts.ok(setReq(k, v))
			}
			id := fmt.Sprintf("req-%d", i)
			first := ts.ok(with(id, tc.req()))
			if tc.change != nil {
				ts.ok(tc.change)
			}
			if again := ts.ok(with(id, tc.req())); !proto.Equal(again, first) {
				t.Fatalf("retry answered %v, first attempt %v", again, first)
			}
			for k, want := range tc.after {
				if got := ts.state(k); got != want {
					t.Errorf("%s is %q, want %q: the retry was applied again", k, got, want)
				}
			}
		})
	}
}

// TestSlaveAppliesAndAnswersRetries runs the read-modify-write commands on
// a master whose slave (another Server) replicates over TCP, checks that
// the slave holds the same data, then fails over to the slave and retries
// every command there with its request id: each is answered as on the old
// master and none is applied twice.
func TestSlaveAppliesAndAnswersRetries(t *testing.T) {
	var m *testServer
	addr := rpctest.Serve(t, func(ctx context.Context, req *zppb.Request) *zppb.Response { return m.s.handleRequest(ctx, req) })
	m = newTestServer(t, addr)
	s := newTestServer(t, "127.0.0.1:7002")
	topo := singleMaster(1, m.s.cfg.Addr, s.s.cfg.Addr)
	m.s.applyTopology(topo)
	s.s.applyTopology(topo)

	cases := retryCases()
	answers := make([]*zppb.Response, len(cases))
	for i, tc := range cases {
		for k, v := range tc.seed {
			m.ok(setReq(k, v))
		}
		answers[i] = m.ok(with(fmt.Sprintf("req-%d", i), tc.req()))
	}
	keys := []string{}
	for _, tc := range cases {
		for k := range tc.after {
			keys = append(keys, k)
		}
	}
	want := make(map[string]string)
	for _, k := range keys {
		want[k] = m.state(k)
	}

	// The slave catches up with every record.
	mr, sr := m.s.replicas.get("t", 0), s.s.replicas.get("t", 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mt, ml, _ := mr.Position()
		st, sl, sa := sr.Position()
		if mt == st && ml == sl && sa == sl {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slave at (%d, %d) applied %d; master at (%d, %d)", st, sl, sa, mt, ml)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Failover: the slave becomes master in term 2.
	s.s.applyTopology(singleMaster(2, s.s.cfg.Addr))
	for _, k := range keys {
		if got := s.state(k); got != want[k] {
			t.Errorf("%s on the promoted slave is %q, on the old master %q", k, got, want[k])
		}
	}
	for i, tc := range cases {
		again := s.ok(with(fmt.Sprintf("req-%d", i), tc.req()))
		again.Epoch = answers[i].Epoch // the topology moved on; the answer must not
		if !proto.Equal(again, answers[i]) {
			t.Errorf("%s: retry on the new master answered %v, the old master %v", tc.name, again, answers[i])
		}
	}
	for _, k := range keys {
		if got := s.state(k); got != want[k] {
			t.Errorf("%s is %q after the retries, want %q: a retry was applied again", k, got, want[k])
		}
	}
}
