package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// testWait is the pull and watch wait of these tests, for the production
// 30 s: a slave offers itself to the hub after one empty pull.
const testWait = 200 * time.Millisecond

// dialer dials over TCP and counts the connections the slave side holds.
type dialer struct {
	open, dials atomic.Int64
}

func (d *dialer) dial(ctx context.Context, addr string) (Conn, error) {
	c, err := rpc.Dial(ctx, addr, 0)
	if err != nil {
		return nil, err
	}
	d.open.Add(1)
	d.dials.Add(1)
	return &countedConn{Conn: c, d: d}, nil
}

type countedConn struct {
	*rpc.Conn
	d    *dialer
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.d.open.Add(-1) })
	return c.Conn.Close()
}

// masterNode serves the replication requests of a set of master replicas
// (by partition id) on one address, as a node does, and can restart on
// that address. Without watch it answers BINLOG_WATCH as a node of the
// release before it does: INVALID_ARGUMENT, "empty request" (an unknown
// field of Request's oneof leaves cmd empty).
type masterNode struct {
	t       testing.TB
	watch   bool
	addr    string
	mu      sync.Mutex
	masters map[uint32]*Replica
	srv     *rpc.Server
	ws      *WatchServer
	watches atomic.Int64 // BINLOG_WATCHes received
	listed  atomic.Int64 // partitions they listed
	// relisted counts the partitions listed again within a session (not
	// by the request that starts one); sessions the sessions started.
	relisted atomic.Int64
	sessions atomic.Int64
	pulls    atomic.Int64 // BINLOG_PULLs received
}

func startMasterNode(t testing.TB, watch bool, masters ...*Replica) *masterNode {
	n := &masterNode{t: t, watch: watch, addr: "127.0.0.1:0", masters: make(map[uint32]*Replica)}
	for _, m := range masters {
		n.masters[m.opts.ID] = m
	}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *masterNode) set(m *Replica) {
	n.mu.Lock()
	n.masters[m.opts.ID] = m
	n.mu.Unlock()
}

func (n *masterNode) find(table string, id uint32) (*Replica, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if m := n.masters[id]; m != nil {
		return m, nil
	}
	return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "no partition %s/%d", table, id)
}

func (n *masterNode) handle(ctx context.Context, req *zppb.Request) *zppb.Response {
	switch c := req.Cmd.(type) {
	case *zppb.Request_TrySync:
		m, err := n.find(c.TrySync.Table, c.TrySync.Partition)
		if err != nil {
			return status.Response(err)
		}
		resp, err := m.TrySync(c.TrySync)
		if err != nil {
			return status.Response(err)
		}
		return &zppb.Response{Result: &zppb.Response_TrySync{TrySync: resp}}
	case *zppb.Request_BinlogPull:
		n.pulls.Add(1)
		m, err := n.find(c.BinlogPull.Table, c.BinlogPull.Partition)
		if err != nil {
			return status.Response(err)
		}
		resp, err := m.Pull(ctx, c.BinlogPull)
		if err != nil {
			return status.Response(err)
		}
		return &zppb.Response{Result: &zppb.Response_BinlogPull{BinlogPull: resp}}
	case *zppb.Request_BinlogWatch:
		n.watches.Add(1)
		n.listed.Add(int64(len(c.BinlogWatch.Partitions)))
		if c.BinlogWatch.NewSession {
			n.sessions.Add(1)
		} else {
			n.relisted.Add(int64(len(c.BinlogWatch.Partitions)))
		}
		if n.watch {
			return &zppb.Response{Result: &zppb.Response_BinlogWatch{BinlogWatch: n.ws.Serve(ctx, c.BinlogWatch)}}
		}
	}
	return status.Response(status.New(zppb.Code_INVALID_ARGUMENT, "empty request"))
}

func (n *masterNode) start() {
	srv, err := rpc.NewServer(rpc.ServerConfig{Handler: n.handle, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		n.t.Fatal(err)
	}
	var ln net.Listener
	testcluster.Poll(n.t, 10*time.Second, func() error {
		ln, err = net.Listen("tcp", n.addr)
		return err
	})
	n.addr = ln.Addr().String()
	n.srv = srv
	n.ws = NewWatchServer(n.find) // a restart forgets the sessions
	go srv.Serve(ln)
}

func (n *masterNode) stop() {
	n.srv.Close()
	n.ws.Close()
}

// openPartition opens replica id of table "t" in dir.
func openPartition(t *testing.T, dir string, shared *engine.Shared, id uint32, self string, d *dialer, hub *WatchHub, now func() time.Time) *Replica {
	t.Helper()
	o := Options{Dir: dir, Table: "t", ID: id, Shared: shared, Self: self, Logger: slog.New(slog.DiscardHandler),
		Watch: hub, PullWait: testWait, Now: now}
	if d != nil {
		o.Dial = d.dial
	}
	r, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// idleCluster is n master replicas (partitions 0..n-1) served by one
// master node, each with one record but partition 0, never written, and
// their slaves on a node whose hub watches them.
type idleCluster struct {
	shared  *engine.Shared
	node    *masterNode
	hub     *WatchHub
	d       *dialer
	masters []*Replica
	slaves  []*Replica
}

func newIdleCluster(t *testing.T, n int, watch bool, now func() time.Time) *idleCluster {
	c := &idleCluster{shared: newShared(t), d: &dialer{}}
	for i := range n {
		m := openPartition(t, filepath.Join(t.TempDir(), "m"), c.shared, uint32(i), "master", nil, nil, now)
		t.Cleanup(func() { m.Close() })
		m.SetRole(Assignment{Role: Master, Master: "master", Term: 1, Slaves: []string{"slave"}})
		c.masters = append(c.masters, m)
		if i == 0 {
			continue
		}
		if err := m.Write(context.Background(), nil, put("k"+strconv.Itoa(i), "v", 0)); err != nil {
			t.Fatal(err)
		}
	}
	c.node = startMasterNode(t, watch, c.masters...)
	c.hub = NewWatchHub(WatchHubOptions{Self: "slave", Dial: c.d.dial, Logger: slog.New(slog.DiscardHandler), Wait: testWait})
	t.Cleanup(c.hub.Close)
	for i := range n {
		s := openPartition(t, filepath.Join(t.TempDir(), "s"), c.shared, uint32(i), "slave", c.d, c.hub, nil)
		t.Cleanup(func() { s.Close() })
		s.SetRole(Assignment{Role: Slave, Master: c.node.addr, Term: 1})
		c.slaves = append(c.slaves, s)
	}
	return c
}

// waitWatched waits until the hub waits for want slaves on one connection
// to one master node, and the slave side holds no other connection.
func (c *idleCluster) waitWatched(t *testing.T, want int) {
	t.Helper()
	testcluster.Poll(t, 20*time.Second, func() error {
		replicas, masters := c.hub.Watching()
		if open := c.d.open.Load(); replicas != want || masters != 1 || open != 1 {
			return fmt.Errorf("hub watches %d slaves on %d master nodes, %d connections open; want %d on 1, 1 connection", replicas, masters, open, want)
		}
		return nil
	})
}

// TestIdleSlavesShareOneWatch: slaves of idle partitions give up their
// own connections and wait in one BINLOG_WATCH on one connection to their
// master node; they report "streaming", and the master counts them as
// connected however long the wait; a write with min_sync_replicas=1 wakes
// its partition's slave, which applies it and acknowledges it, and goes
// back to the watch once idle, listed alone: the master keeps the others
// in the session.
func TestIdleSlavesShareOneWatch(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	c := newIdleCluster(t, 3, true, clock)
	for i := range c.masters {
		samePosition(t, c.masters[i], c.slaves[i])
	}
	c.waitWatched(t, 3)
	for i, s := range c.slaves {
		if st := s.Info().State; st != "streaming" {
			t.Errorf("watched slave %d is %q, want streaming", i, st)
		}
	}
	mu.Lock()
	now = now.Add(3 * peerTimeout)
	mu.Unlock()
	for i, m := range c.masters {
		_, lsn, _ := m.Position()
		if ps := m.Info().Peers; len(ps) != 1 || ps[0].State != "streaming" || ps[0].Lsn != lsn {
			t.Errorf("master %d reports its watched slave as %v, want streaming at lsn %d", i, ps, lsn)
		}
	}

	m := c.masters[1]
	m.SetRole(Assignment{Role: Master, Master: "master", Term: 1, Slaves: []string{"slave"}, MinSync: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	listed, relisted, sessions := c.node.listed.Load(), c.node.relisted.Load(), c.node.sessions.Load()
	if err := m.Write(ctx, nil, put("new", "v", 0)); err != nil {
		t.Fatalf("write with min_sync_replicas=1 to a partition whose slave is watched: %v", err)
	}
	samePosition(t, m, c.slaves[1])
	if v, _, err := c.slaves[1].Get([]byte("new")); err != nil || string(v) != "v" {
		t.Errorf("slave reads the new key as %q, %v", v, err)
	}
	c.waitWatched(t, 3)
	// The hub counts a slave as watched once it builds the request, before
	// the master node receives it: wait for the master to see it.
	testcluster.Poll(t, 10*time.Second, func() error {
		if c.node.listed.Load() == listed {
			return errors.New("the master has not received the watch listing the written partition")
		}
		return nil
	})
	// Within a session only the written partition comes back. A failed
	// call on a loaded machine starts a new session, which lists all.
	newSessions := c.node.sessions.Load() - sessions
	if n := c.node.relisted.Load() - relisted; n > 1 || newSessions == 0 && n != 1 {
		t.Errorf("the watches since the write listed %d partitions within the session, want 1: the one written to, back", n)
	}
	if newSessions > 0 {
		t.Logf("%d new watch sessions since the write (a call failed)", newSessions)
	}
}

// TestWatchServerSessions: a session the master does not know is answered
// unknown_session; a session keeps its partitions between requests until
// an answer names them or a request removes them.
func TestWatchServerSessions(t *testing.T) {
	shared := newShared(t)
	m := openPartition(t, t.TempDir(), shared, 0, "master", nil, nil, nil)
	defer m.Close()
	m.SetRole(Assignment{Role: Master, Master: "master", Term: 1, Slaves: []string{"slave"}})
	ctx := context.Background()
	write := func() {
		t.Helper()
		if err := m.Write(ctx, nil, put("k", "v", 0)); err != nil {
			t.Fatal(err)
		}
	}
	write()
	ws := NewWatchServer(func(table string, id uint32) (*Replica, error) {
		if id == 0 {
			return m, nil
		}
		return nil, status.New(zppb.Code_MOVE, "not here")
	})
	defer ws.Close()
	at := func() []*zppb.WatchedPartition {
		term, lsn, _ := m.Position()
		return []*zppb.WatchedPartition{{Table: "t", Partition: 0, FromLsn: lsn + 1, PrevTerm: term, AckedLsn: lsn}}
	}
	serve := func(req *zppb.BinlogWatchRequest) *zppb.BinlogWatchResponse {
		req.Slave = "slave"
		return ws.Serve(ctx, req)
	}
	if resp := serve(&zppb.BinlogWatchRequest{Session: 7, Partitions: at(), WaitMs: 10}); !resp.UnknownSession {
		t.Fatalf("a session never started: %v, want unknown_session", resp)
	}
	resp := serve(&zppb.BinlogWatchRequest{Session: 7, NewSession: true, WaitMs: 10, Partitions: append(at(),
		&zppb.WatchedPartition{Table: "t", Partition: 1, FromLsn: 1})})
	if len(resp.Ready) != 1 || resp.Ready[0].Partition != 1 {
		t.Fatalf("first request: ready %v, want partition 1, mastered elsewhere", resp.Ready)
	}
	write()
	if resp := serve(&zppb.BinlogWatchRequest{Session: 7, WaitMs: 10_000}); len(resp.Ready) != 1 || resp.Ready[0].Partition != 0 {
		t.Fatalf("after a write: ready %v, want partition 0, kept from the first request", resp.Ready)
	}
	if resp := serve(&zppb.BinlogWatchRequest{Session: 7, WaitMs: 10, Partitions: at()}); len(resp.Ready) != 0 {
		t.Fatalf("watched again at the master's position: ready %v, want none", resp.Ready)
	}
	write()
	if resp := serve(&zppb.BinlogWatchRequest{Session: 7, WaitMs: 10, Removed: []*zppb.PartitionRef{{Table: "t", Partition: 0}}}); len(resp.Ready) != 0 {
		t.Fatalf("removed before its write was answered: ready %v, want none", resp.Ready)
	}
	if ps := m.Info().Peers; len(ps) != 1 || ps[0].State != "streaming" {
		t.Errorf("peers %v, want the slave streaming", ps)
	}
	m.mu.Lock()
	waiting, watches := m.m.peers["slave"].waiting, len(m.m.watches)
	m.mu.Unlock()
	if waiting != 0 || watches != 0 {
		t.Errorf("%d watches, the slave waiting %d times with nothing watched; want 0", watches, waiting)
	}
}

// TestWatchWakesOnChange: a watched slave leaves the watch when its
// master steps down (the master answers the watch), when the topology
// names it a new master (the slave side drops it), and when the master
// node restarts it is still watched on a new connection, and the next
// write reaches it.
func TestWatchWakesOnChange(t *testing.T) {
	t.Run("master steps down", func(t *testing.T) {
		c := newIdleCluster(t, 2, true, nil)
		c.waitWatched(t, 2)
		c.masters[0].SetRole(Assignment{Role: Slave, Master: "elsewhere", Term: 2})
		// The woken slave asks its former master, which answers that it
		// is not the master: it retries on its own and is not watched.
		// The hub lets it go before it has asked: wait for both.
		testcluster.Poll(t, 10*time.Second, func() error {
			if replicas, _ := c.hub.Watching(); replicas != 1 {
				return fmt.Errorf("hub watches %d slaves, want 1: the one whose master stepped down woke", replicas)
			}
			if st := c.slaves[0].Info().State; st == "streaming" {
				return fmt.Errorf("slave of a master that stepped down is %q", st)
			}
			return nil
		})
	})
	t.Run("new master", func(t *testing.T) {
		c := newIdleCluster(t, 2, true, nil)
		c.waitWatched(t, 2)
		other := startMasterNode(t, true)
		c.slaves[0].SetRole(Assignment{Role: Slave, Master: other.addr, Term: 2})
		testcluster.Poll(t, 10*time.Second, func() error {
			if replicas, _ := c.hub.Watching(); replicas != 1 {
				return fmt.Errorf("hub watches %d slaves, want 1", replicas)
			}
			if st := c.slaves[0].Info().State; st == "streaming" {
				return fmt.Errorf("slave with a new master that does not have its partition is %q", st)
			}
			return nil
		})
	})
	t.Run("master node restarts", func(t *testing.T) {
		c := newIdleCluster(t, 2, true, nil)
		c.waitWatched(t, 2)
		dials := c.d.dials.Load()
		m := c.masters[0]
		dir := m.opts.Dir
		c.node.stop()
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		m = openPartition(t, dir, c.shared, 0, "master", nil, nil, nil)
		t.Cleanup(func() { m.Close() })
		m.SetRole(Assignment{Role: Master, Master: "master", Term: 1, Slaves: []string{"slave"}, MinSync: 1})
		c.masters[0] = m
		c.node.set(m)
		c.node.start()
		// The hub finds its connection gone, and watches on a new one
		// (a new session: the node forgot the old).
		testcluster.Poll(t, 10*time.Second, func() error {
			if c.d.dials.Load() == dials {
				return errors.New("the hub has not dialed the restarted node")
			}
			return nil
		})
		c.waitWatched(t, 2)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Write(ctx, nil, put("after", "v", 0)); err != nil {
			t.Fatalf("write with min_sync_replicas=1 after the master node restarted: %v", err)
		}
		samePosition(t, m, c.slaves[0])
	})
}

// TestWatchFallsBackOnOldMaster: a master node of the release before
// BINLOG_WATCH answers it INVALID_ARGUMENT; its slaves then keep pulling
// each on its own connection, the hub does not ask again, and writes
// still reach them.
func TestWatchFallsBackOnOldMaster(t *testing.T) {
	c := newIdleCluster(t, 2, false, nil)
	testcluster.Poll(t, 10*time.Second, func() error {
		if c.node.watches.Load() == 0 {
			return fmt.Errorf("no BINLOG_WATCH yet")
		}
		return nil
	})
	// Every slave goes on pulling: several more empty pulls each.
	pulls := c.node.pulls.Load()
	testcluster.Poll(t, 20*time.Second, func() error {
		if n := c.node.pulls.Load(); n < pulls+10 {
			return fmt.Errorf("%d pulls since the refused watch", n-pulls)
		}
		return nil
	})
	if n := c.node.watches.Load(); n != 1 {
		t.Errorf("%d BINLOG_WATCHes to a node that does not know it, want 1", n)
	}
	if replicas, masters := c.hub.Watching(); replicas != 0 || masters != 0 {
		t.Errorf("hub watches %d slaves on %d master nodes, want none", replicas, masters)
	}
	if open := c.d.open.Load(); open != 2 {
		t.Errorf("%d connections open, want the 2 slaves' own", open)
	}
	for i, m := range c.masters {
		if err := m.Write(context.Background(), nil, put("later", "v", 0)); err != nil {
			t.Fatal(err)
		}
		samePosition(t, m, c.slaves[i])
	}
}
