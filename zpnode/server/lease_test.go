package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// The lease rules are the node's; meta is beside them, so a scripted meta
// leader answers PING and PULL. Leases are short so that each rule is seen
// within a second.
const (
	testLease        = 300 * time.Millisecond
	testPingInterval = 50 * time.Millisecond
	// leaseNode is the node's identity in the topology; it listens
	// elsewhere (Config.ListenAddr), on a port the kernel picks.
	leaseNode = "127.0.0.1:1"
)

// fakeMeta is a meta leader whose answers the test scripts.
type fakeMeta struct {
	srv  *rpc.Server
	addr string

	mu        sync.Mutex
	pingEpoch uint64 // the epoch PINGs are answered with
	pullEpoch uint64 // the epoch of the topology PULL returns
	silent    bool   // answer nothing, as behind a network that drops packets
	pings     atomic.Int64
	release   chan struct{}
}

// startFakeMeta serves a meta leader that names epoch 1 and masters table
// "t" (one partition) on leaseNode.
func startFakeMeta(t *testing.T) *fakeMeta {
	t.Helper()
	m := &fakeMeta{pingEpoch: 1, pullEpoch: 1, release: make(chan struct{})}
	srv, err := rpc.NewServer(rpc.ServerConfig{Handler: m.handle, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	m.srv, m.addr = srv, ln.Addr().String()
	t.Cleanup(func() {
		close(m.release)
		srv.Close()
	})
	return m
}

func (m *fakeMeta) set(f func(m *fakeMeta)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}

func (m *fakeMeta) handle(ctx context.Context, req *zppb.Request) *zppb.Response {
	m.mu.Lock()
	silent, pingEpoch, pullEpoch := m.silent, m.pingEpoch, m.pullEpoch
	m.mu.Unlock()
	if _, ok := req.Cmd.(*zppb.Request_Ping); ok {
		m.pings.Add(1)
	}
	if silent {
		select {
		case <-ctx.Done():
		case <-m.release:
		}
		return status.Response(status.New(zppb.Code_TIMEOUT, "silent"))
	}
	switch req.Cmd.(type) {
	case *zppb.Request_Ping:
		return &zppb.Response{Result: &zppb.Response_Ping{Ping: &zppb.PingResponse{Epoch: pingEpoch, LeaseMs: testLease.Milliseconds(), Leader: m.addr}}}
	case *zppb.Request_Pull:
		return &zppb.Response{Result: &zppb.Response_Pull{Pull: &zppb.PullResponse{Topology: masterTopology(pullEpoch)}}}
	}
	return status.Response(status.New(zppb.Code_INVALID_ARGUMENT, "%T", req.Cmd))
}

// masterTopology is epoch's topology: leaseNode masters table "t" alone.
func masterTopology(epoch uint64) *zppb.Topology {
	return &zppb.Topology{
		Epoch: epoch,
		Tables: []*zppb.Table{{Name: "t", PartitionCount: 1, Replicas: 1, CreatedEpoch: 1,
			Partitions: []*zppb.Partition{{Id: 0, Master: leaseNode, Term: 1}}}},
		Nodes: []*zppb.Node{{Addr: leaseNode, State: zppb.NodeState_UP}},
	}
}

// startLeaseNode starts a real node on dir that PINGs meta.
func startLeaseNode(t *testing.T, dir string, meta string) (*Server, *rpc.Conn) {
	t.Helper()
	s, err := New(Config{Addr: leaseNode, ListenAddr: "127.0.0.1:0", MetaAddrs: []string{meta}, DataDir: dir,
		PingInterval: testPingInterval, BlockCacheSize: 8 << 20, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := rpc.Dial(ctx, s.ln.Addr().String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return s, conn
}

// set writes key k on the node and returns the answer's error.
func set(conn *rpc.Conn, k string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := conn.Call(ctx, &zppb.Request{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: "t", Key: []byte(k), Value: []byte("v")}}})
	if err != nil {
		return err
	}
	return status.FromResponse(resp)
}

// fencedByLease says whether err is the WAIT of a lease that ran out.
func fencedByLease(err error) bool {
	return status.Code(err) == zppb.Code_WAIT && strings.Contains(err.Error(), "lease")
}

// waitServes polls until the node takes a write.
func waitServes(t *testing.T, conn *rpc.Conn) {
	t.Helper()
	testcluster.Poll(t, 5*time.Second, func() error { return set(conn, "probe") })
}

// waitFenced polls until the node answers writes with the lease's WAIT.
func waitFenced(t *testing.T, conn *rpc.Conn) {
	t.Helper()
	testcluster.Poll(t, 5*time.Second, func() error {
		if err := set(conn, "probe"); !fencedByLease(err) {
			return fmt.Errorf("write answered %v, want WAIT for the lease", err)
		}
		return nil
	})
}

// waitPings polls until meta has seen n more PINGs than now.
func waitPings(t *testing.T, m *fakeMeta, n int64) {
	t.Helper()
	want := m.pings.Load() + n
	testcluster.Poll(t, 5*time.Second, func() error {
		if got := m.pings.Load(); got < want {
			return fmt.Errorf("%d PINGs, want %d", got, want)
		}
		return nil
	})
}

// TestLeaseRules checks each rule of the master lease (docs/failover.md,
// "Fencing and meta outages") on a real node against a scripted meta.
func TestLeaseRules(t *testing.T) {
	t.Run("newer epoch in PING renews nothing", func(t *testing.T) {
		m := startFakeMeta(t)
		_, conn := startLeaseNode(t, t.TempDir(), m.addr)
		waitServes(t, conn)
		// A lagging follower's PULL still returns epoch 1: the node cannot
		// apply epoch 2, in which it may no longer be master.
		m.set(func(m *fakeMeta) { m.pingEpoch = 2 })
		waitFenced(t, conn)
		waitPings(t, m, 3)
		if err := set(conn, "k"); !fencedByLease(err) {
			t.Fatalf("after successful PINGs naming an epoch the node cannot pull: %v, want the lease's WAIT", err)
		}
		m.set(func(m *fakeMeta) { m.pullEpoch = 2 })
		waitServes(t, conn)
	})

	t.Run("restarted node serves nothing before its first PING", func(t *testing.T) {
		dir := t.TempDir()
		// What it saved before the restart says it masters "t".
		if err := saveTopology(dir, masterTopology(1)); err != nil {
			t.Fatal(err)
		}
		m := startFakeMeta(t)
		m.set(func(m *fakeMeta) { m.silent = true })
		s, conn := startLeaseNode(t, dir, m.addr)
		if s.replicas.get("t", 0) == nil {
			t.Fatal("saved topology not applied at start")
		}
		waitPings(t, m, 3)
		if err := set(conn, "k"); !fencedByLease(err) {
			t.Fatalf("before any PING was answered: %v, want the lease's WAIT", err)
		}
		m.set(func(m *fakeMeta) { m.silent = false })
		waitServes(t, conn)
	})

	t.Run("restarted node with every meta refusing serves nothing", func(t *testing.T) {
		dir := t.TempDir()
		if err := saveTopology(dir, masterTopology(1)); err != nil {
			t.Fatal(err)
		}
		m := startFakeMeta(t)
		m.srv.Close() // nothing listens: every PING is refused
		s, conn := startLeaseNode(t, dir, m.addr)
		// The outage exception is for masters meta confirmed in this
		// process's life; wait until the node has seen the refusals.
		testcluster.Poll(t, 5*time.Second, func() error {
			if s.lastPingMs.Load() != 0 {
				return fmt.Errorf("a PING succeeded")
			}
			if err := set(conn, "k"); !fencedByLease(err) {
				return fmt.Errorf("with meta refusing since the start: %v, want the lease's WAIT", err)
			}
			return nil
		})
		// Several rounds of refusals change nothing.
		for range 5 {
			s.heartbeat(0)
		}
		if err := set(conn, "k"); !fencedByLease(err) {
			t.Fatalf("after rounds of refused PINGs: %v, want the lease's WAIT", err)
		}
	})

	t.Run("meta timeout keeps the fence", func(t *testing.T) {
		m := startFakeMeta(t)
		_, conn := startLeaseNode(t, t.TempDir(), m.addr)
		waitServes(t, conn)
		m.set(func(m *fakeMeta) { m.silent = true })
		waitFenced(t, conn)
		waitPings(t, m, 3)
		if err := set(conn, "k"); !fencedByLease(err) {
			t.Fatalf("with PINGs timing out: %v, want the lease's WAIT", err)
		}
	})

	t.Run("every meta refusing keeps a confirmed master serving", func(t *testing.T) {
		m := startFakeMeta(t)
		s, conn := startLeaseNode(t, t.TempDir(), m.addr)
		waitServes(t, conn)
		m.srv.Close()
		// Past the end of the last lease, with the refusals seen.
		testcluster.Poll(t, 5*time.Second, func() error {
			s.lease.mu.Lock()
			outage, until := s.lease.outage, s.lease.until
			s.lease.mu.Unlock()
			if !outage || !time.Now().After(until) {
				return fmt.Errorf("outage %v, lease until %v", outage, until)
			}
			return nil
		})
		if err := set(conn, "k"); err != nil {
			t.Fatalf("confirmed master with every meta refusing: %v, want OK", err)
		}
	})
}
