package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		check   func(Config) bool
	}{
		{name: "defaults", cfg: Config{Addr: "127.0.0.1:9221", DataDir: "d"}, check: func(c Config) bool {
			return c.ID == c.Addr && len(c.Peers) == 1 && c.DownTimeout == DefaultDownTimeout && c.Lease == DefaultLease &&
				c.HeartbeatTimeout == DefaultHeartbeatTimeout && c.LeaderLeaseTimeout == DefaultLeaderLeaseTimeout
		}},
		{name: "lease follows a short down-timeout", cfg: Config{Addr: "a:1", DataDir: "d", DownTimeout: 900 * time.Millisecond, Insecure: true}, check: func(c Config) bool {
			return c.Lease == 600*time.Millisecond
		}},
		{name: "no addr", cfg: Config{DataDir: "d"}, wantErr: "Addr is required"},
		{name: "addr without port", cfg: Config{Addr: "host", DataDir: "d"}, wantErr: "Addr"},
		{name: "no data dir", cfg: Config{Addr: "a:1"}, wantErr: "DataDir"},
		{name: "self not in peers", cfg: Config{Addr: "a:1", DataDir: "d", Peers: []string{"b:1", "c:1"}}, wantErr: "do not include"},
		{name: "peer twice", cfg: Config{Addr: "a:1", DataDir: "d", Peers: []string{"a:1", "a:1"}}, wantErr: "twice"},
		{name: "bad peer", cfg: Config{Addr: "a:1", DataDir: "d", Peers: []string{"a:1", "b"}}, wantErr: "peer"},
		{name: "lease not below down-timeout", cfg: Config{Addr: "a:1", DataDir: "d", DownTimeout: time.Second, Lease: time.Second}, wantErr: "shorter"},
		{name: "negative down-timeout", cfg: Config{Addr: "a:1", DataDir: "d", DownTimeout: -1, Lease: time.Second}, wantErr: "positive"},
		{name: "beyond loopback, unguarded", cfg: Config{Addr: "10.0.0.1:9221", DataDir: "d"}, wantErr: "protected mode"},
		{name: "beyond loopback, admin token", cfg: Config{Addr: "10.0.0.1:9221", DataDir: "d", AdminToken: []byte("t")}, check: func(Config) bool { return true }},
		{name: "beyond loopback, --insecure", cfg: Config{Addr: "10.0.0.1:9221", DataDir: "d", Insecure: true}, check: func(Config) bool { return true }},
		{name: "metrics beyond loopback", cfg: Config{Addr: "127.0.0.1:9221", DataDir: "d", MetricsAddr: ":9240"}, wantErr: "protected mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg
			got.setDefaults()
			err := got.validate()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "zpmeta: ") {
					t.Fatalf("err %v, want one starting zpmeta: and containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(got) {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

// TestPortMux: protocol frames and Raft streams share a port, each reaching
// its side with its bytes intact.
func TestPortMux(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newPortMux(ln, advertiseAddr("meta.example:9221"), slog.New(slog.DiscardHandler))
	done := make(chan struct{})
	go func() { defer close(done); m.serve() }()
	defer func() { m.Close(); <-done }()

	if got := m.raft.Addr().String(); got != "meta.example:9221" {
		t.Errorf("advertised %q", got)
	}

	// A silent connection does not hold up the others.
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	// Protocol side: a frame, first byte included.
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	bw := bufio.NewWriter(client)
	if err := rpc.WriteFrame(bw, []byte("hello"), rpc.DefaultMaxFrameSize); err != nil || bw.Flush() != nil {
		t.Fatal(err)
	}
	got, err := m.rpc.Accept()
	if err != nil {
		t.Fatal(err)
	}
	frame, err := rpc.ReadFrame(bufio.NewReader(got), nil, rpc.DefaultMaxFrameSize)
	if err != nil || string(frame) != "hello" {
		t.Fatalf("rpc side read %q, %v", frame, err)
	}
	got.Close()

	// Raft side: the magic byte is consumed, the rest arrives.
	stream := &raftStream{muxListener: m.raft}
	rc, err := stream.Dial(raft.ServerAddress(ln.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rc.Write([]byte("raft-rpc"))
	rs, err := m.raft.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	buf := make([]byte, 8)
	if _, err := io.ReadFull(rs, buf); err != nil || string(buf) != "raft-rpc" {
		t.Fatalf("raft side read %q, %v", buf, err)
	}

	// Closing the mux ends Accept on both sides and drops the silent one.
	m.Close()
	for _, l := range []*muxListener{m.rpc, m.raft} {
		if _, err := l.Accept(); err == nil {
			t.Error("Accept after Close succeeded")
		}
	}
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(buf); err == nil {
		t.Error("silent connection still open after Close")
	}
}

func TestLivenessGrace(t *testing.T) {
	l := newLiveness()
	t0 := time.Unix(1000, 0)
	const timeout = 3 * time.Second
	if l.expired("n", t0.Add(time.Hour), timeout) {
		t.Fatal("a follower (no grace start) expired a node")
	}
	l.heartbeat(t0, &zppb.PingRequest{Addr: "n", Epoch: 3, Positions: []*zppb.ReplicaPosition{{Table: "t", Lsn: 7}}, Version: "v1"})
	l.reset(t0.Add(10 * time.Second)) // leadership gained later: memory gone
	tests := []struct {
		addr string
		at   time.Duration // after t0
		want bool
	}{
		{"n", 12 * time.Second, false}, // old ping forgotten, but in grace
		{"never", 12 * time.Second, false},
		{"never", 13 * time.Second, true},
	}
	for _, tt := range tests {
		if got := l.expired(tt.addr, t0.Add(tt.at), timeout); got != tt.want {
			t.Errorf("expired(%s, t0+%v) = %v, want %v", tt.addr, tt.at, got, tt.want)
		}
	}
	if _, _, ok := l.position("n", "t", 0); ok || !l.lastHeartbeat("n").IsZero() || l.version("n") != "" {
		t.Error("reset kept the old leader's memory")
	}
	l.heartbeat(t0.Add(12*time.Second), &zppb.PingRequest{Addr: "n", Epoch: 5, Positions: []*zppb.ReplicaPosition{{Table: "t", Lsn: 9}}, Version: "v2"})
	if v := l.version("n"); v != "v2" {
		t.Errorf("version %q, want the last PING's v2", v)
	}
	if l.expired("n", t0.Add(14*time.Second), timeout) || !l.expired("n", t0.Add(15*time.Second), timeout) {
		t.Error("a fresh ping does not count from its own time")
	}
	if p, _, ok := l.position("n", "t", 0); !ok || p.Lsn != 9 {
		t.Errorf("position %v", p)
	}
}

// TestLivenessIgnoresOvertakenPing: a PING that arrives after a later one of
// the same node (an older epoch) neither keeps the node alive nor replaces
// its positions.
func TestLivenessIgnoresOvertakenPing(t *testing.T) {
	l := newLiveness()
	t0 := time.Unix(1000, 0)
	l.reset(t0)
	tests := []struct {
		name   string
		at     time.Duration
		epoch  uint64
		lsn    uint64
		record bool
	}{
		{"first", 1 * time.Second, 5, 10, true},
		{"same epoch, later", 2 * time.Second, 5, 11, true},
		{"newer epoch", 3 * time.Second, 6, 12, true},
		{"older epoch handled late", 4 * time.Second, 5, 11, false},
		{"restarted with no topology", 5 * time.Second, 0, 0, false},
		{"current again", 6 * time.Second, 6, 13, true},
	}
	wantSeen, wantLsn, wantEpoch := time.Time{}, uint64(0), uint64(0)
	for _, tt := range tests {
		at := t0.Add(tt.at)
		got, _ := l.heartbeat(at, &zppb.PingRequest{Addr: "n", Epoch: tt.epoch, Positions: []*zppb.ReplicaPosition{{Table: "t", Lsn: tt.lsn}}, Version: "v1"})
		if got != tt.record {
			t.Errorf("%s: recorded %v, want %v", tt.name, got, tt.record)
		}
		if tt.record {
			wantSeen, wantLsn, wantEpoch = at, tt.lsn, tt.epoch
		}
		pos, epoch, ok := l.position("n", "t", 0)
		if !l.lastHeartbeat("n").Equal(wantSeen) || !ok || pos.Lsn != wantLsn || epoch != wantEpoch {
			t.Errorf("%s: seen %v lsn %d epoch %d, want %v %d %d", tt.name, l.lastHeartbeat("n"), pos.GetLsn(), epoch, wantSeen, wantLsn, wantEpoch)
		}
	}
}

// TestLivenessPositionDeltas: a PING's positions are all of them, or a
// delta on the numbered PING the leader holds; a delta on any other base
// changes no position (they stay as of their own PING's epoch) and the
// answer names what is held, so the node sends them all next.
func TestLivenessPositionDeltas(t *testing.T) {
	l := newLiveness()
	t0 := time.Unix(1000, 0)
	l.reset(t0)
	pos := func(part uint32, lsn uint64) *zppb.ReplicaPosition {
		return &zppb.ReplicaPosition{Table: "t", Partition: part, Lsn: lsn}
	}
	type want struct {
		lsn   uint64 // 0: no position
		epoch uint64
	}
	tests := []struct {
		name   string
		ping   *zppb.PingRequest
		held   uint64
		wanted map[uint32]want // by partition
	}{
		{"all, numbered", &zppb.PingRequest{Epoch: 5, PositionsSeq: 1, Positions: []*zppb.ReplicaPosition{pos(0, 10), pos(1, 20), pos(2, 30)}},
			1, map[uint32]want{0: {10, 5}, 1: {20, 5}, 2: {30, 5}}},
		{"delta on the held PING", &zppb.PingRequest{Epoch: 6, PositionsSeq: 2, PositionsBase: 1,
			Positions: []*zppb.ReplicaPosition{pos(1, 21)}, RemovedPositions: []*zppb.ReplicaPosition{pos(2, 0)}},
			2, map[uint32]want{0: {10, 6}, 1: {21, 6}, 2: {}}},
		{"delta on a PING not held (its answer was lost)", &zppb.PingRequest{Epoch: 7, PositionsSeq: 4, PositionsBase: 3,
			Positions: []*zppb.ReplicaPosition{pos(0, 99)}},
			2, map[uint32]want{0: {10, 6}, 1: {21, 6}, 2: {}}},
		{"all again", &zppb.PingRequest{Epoch: 7, PositionsSeq: 5, Positions: []*zppb.ReplicaPosition{pos(0, 11), pos(3, 1)}},
			5, map[uint32]want{0: {11, 7}, 1: {}, 2: {}, 3: {1, 7}}},
		{"an older node: all, unnumbered", &zppb.PingRequest{Epoch: 8, Positions: []*zppb.ReplicaPosition{pos(0, 12)}},
			0, map[uint32]want{0: {12, 8}, 3: {}}},
		{"a delta after unnumbered positions", &zppb.PingRequest{Epoch: 8, PositionsSeq: 6, PositionsBase: 5, Positions: []*zppb.ReplicaPosition{pos(1, 5)}},
			0, map[uint32]want{0: {12, 8}, 1: {}}},
	}
	for i, tt := range tests {
		tt.ping.Addr = "n"
		recorded, held := l.heartbeat(t0.Add(time.Duration(i+1)*time.Second), tt.ping)
		if !recorded || held != tt.held {
			t.Errorf("%s: recorded %v, held %d; want true, %d", tt.name, recorded, held, tt.held)
		}
		for part, w := range tt.wanted {
			p, epoch, ok := l.position("n", "t", part)
			if ok != (w.lsn != 0) || p.GetLsn() != w.lsn || (ok && epoch != w.epoch) {
				t.Errorf("%s: partition %d: lsn %d epoch %d (known %v), want lsn %d epoch %d", tt.name, part, p.GetLsn(), epoch, ok, w.lsn, w.epoch)
			}
		}
	}
}

func TestHclogAdapter(t *testing.T) {
	var buf bytes.Buffer
	h := newHclog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), "raft")
	h.Named("net").With("peer", "p1").Info("hello", "servers", hclog.Fmt("%d-%s", 3, "x"), "id", hclog.Hex(255))
	h.Debug("hidden")
	out := buf.String()
	for _, want := range []string{"component=raft.net", "peer=p1", "servers=3-x", "id=0xff", "msg=hello"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, "hidden") || h.IsDebug() || !h.IsInfo() || h.GetLevel() != hclog.Info {
		t.Errorf("levels: %q debug=%v", out, h.IsDebug())
	}
}

// TestCloseStopsEveryGoroutine runs a one-member group through requests that
// wait on Raft and checks that Close leaves nothing of the server or of Raft
// running.
func TestCloseStopsEveryGoroutine(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		t.Fatal("port 0 is not an address to advertise; want an error")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err = New(Config{Listener: ln, DataDir: t.TempDir(), MetricsAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool := rpc.NewPool(rpc.PoolOptions{})
	defer pool.Close()
	for _, req := range []*zppb.Request{
		{Cmd: &zppb.Request_Ping{Ping: &zppb.PingRequest{Addr: "n1:1"}}},
		{Cmd: &zppb.Request_CreateTable{CreateTable: &zppb.CreateTableRequest{Name: "t", Partitions: 2, Replicas: 1}}},
		{Cmd: &zppb.Request_ListMeta{ListMeta: &zppb.ListMetaRequest{}}},
	} {
		resp, err := pool.Call(ctx, s.Addr(), req)
		if err != nil || resp.Code != zppb.Code_OK {
			t.Fatalf("%v: %v %v", req, resp, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	pool.Close()

	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var leaked []string
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "hashicorp/raft") || strings.Contains(g, "zpmeta/server.(*") || strings.Contains(g, "lib/rpc.(*") ||
				strings.Contains(g, "lib/promexport") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after Close:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRaftErrorSaysWhenTheOutcomeIsUnknown: a wait for a commit cut short,
// or leadership lost while committing, may still apply the command, and the
// answer says so (clients then treat what a retry meets as possibly their
// own doing); a command Raft refused outright did not apply.
func TestRaftErrorSaysWhenTheOutcomeIsUnknown(t *testing.T) {
	s := &Server{ctx: context.Background(), cfg: Config{Addr: "127.0.0.1:1"}}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	tests := []struct {
		name        string
		ctx         context.Context
		err         error
		code        zppb.Code
		mayHaveDone bool
	}{
		{"deadline while waiting", expired, context.DeadlineExceeded, zppb.Code_TIMEOUT, true},
		{"leadership lost", context.Background(), raft.ErrLeadershipLost, zppb.Code_NO_LEADER, true},
		{"not the leader", context.Background(), raft.ErrNotLeader, zppb.Code_NO_LEADER, false},
		{"enqueue timeout", context.Background(), raft.ErrEnqueueTimeout, zppb.Code_TIMEOUT, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := status.Response(s.raftError(tt.ctx, tt.err))
			if resp.Code != tt.code || resp.OutcomeUnknown != tt.mayHaveDone {
				t.Fatalf("raftError(%v) = %v %q outcome unknown %v; want %v, %v", tt.err, resp.Code, resp.Msg, resp.OutcomeUnknown, tt.code, tt.mayHaveDone)
			}
		})
	}
}

// TestRaftStreamDrain: drain, run once the transport is closed, ends the
// reads of the connections Raft's handlers still hold and returns only
// once every handler let go of its connection, so the store can close
// under none (a heartbeat handled during shutdown panicked raft with
// "failed to save current term: database not open"); a handler that
// never lets go makes it give up after its timeout.
func TestRaftStreamDrain(t *testing.T) {
	for _, letGo := range []bool{true, false} {
		l := newMuxListener(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1})
		s := &raftStream{muxListener: l}
		ours, peer := net.Pipe()
		defer peer.Close()
		go l.deliver(ours)
		c, err := s.Accept()
		if err != nil {
			t.Fatal(err)
		}
		released := make(chan struct{})
		go func() { // the transport's handler of c
			c.Read(make([]byte, 1)) // until drain ends it
			if letGo {
				close(released)
				c.Close()
			}
		}()
		timeout := 5 * time.Second
		if !letGo {
			timeout = 100 * time.Millisecond
		}
		if got := s.drain(timeout); got != letGo {
			t.Fatalf("handler lets go %v: drain returned %v", letGo, got)
		}
		if letGo {
			select {
			case <-released:
			default:
				t.Fatal("drain returned while the handler still held its connection")
			}
		}
		// A connection that reaches Accept after drain is not handed over.
		late, latePeer := net.Pipe()
		defer latePeer.Close()
		go l.deliver(late)
		if _, err := s.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after drain: %v, want net.ErrClosed", err)
		}
	}
}
