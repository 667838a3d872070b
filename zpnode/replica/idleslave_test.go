package replica

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/rpc/rpctest"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestWaitingPullKeepsSlaveConnected: a slave whose BINLOG_PULL waits for
// records counts as connected (INFO, purge) however long the wait, a
// write ends the wait at once, and a slave that stopped asking counts as
// disconnected peerTimeout after its last pull ended.
func TestWaitingPullKeepsSlaveConnected(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	advance := func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	r := masterWithTerms(t, func(o *Options) { o.Now = clock })
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 5, Slaves: []string{"s1"}})
	peerState := func() string {
		info := r.Info()
		if len(info.Peers) != 1 {
			t.Fatalf("peers %v, want s1", info.Peers)
		}
		return info.Peers[0].State
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pulled := make(chan *zppb.BinlogPullResponse, 1)
	go func() {
		resp, err := r.Pull(ctx, &zppb.BinlogPullRequest{Slave: "s1", FromLsn: 31, PrevTerm: 5, AckedLsn: 30, WaitMs: 60_000})
		if err != nil {
			t.Error(err)
		}
		pulled <- resp
	}()
	testcluster.Poll(t, 10*time.Second, func() error {
		if st := peerState(); st != "streaming" {
			return fmt.Errorf("slave %s", st)
		}
		return nil
	})
	advance(3 * peerTimeout)
	if st := peerState(); st != "streaming" {
		t.Errorf("slave with a pull waiting %v: %s, want streaming", 3*peerTimeout, st)
	}
	if err := r.Write(ctx, nil, put("wake", "1", 0)); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-pulled:
		if len(resp.GetRecords()) != 1 || resp.Records[0].Lsn != 31 {
			t.Fatalf("pull answered %v, want record 31", resp.GetRecords())
		}
	case <-ctx.Done():
		t.Fatal("a write did not end the waiting pull")
	}
	if st := peerState(); st != "streaming" {
		t.Errorf("slave whose pull just ended: %s, want streaming", st)
	}
	advance(2 * peerTimeout)
	if st := peerState(); st != "disconnected" {
		t.Errorf("slave silent for %v: %s, want disconnected", 2*peerTimeout, st)
	}
}

// TestIdleSlaveWaitsLong: once a slave has every record, its pulls ask
// the master to wait pullWait (30 s) for the next, not a second: a node
// with thousands of idle slave replicas would otherwise send thousands of
// pulls a second for nothing. Records written then still reach it.
func TestIdleSlaveWaitsLong(t *testing.T) {
	shared := newShared(t)
	m := openReplica(t, t.TempDir(), shared, nil)
	defer m.Close()
	m.SetRole(Assignment{Role: Master, Master: "self", Term: 1, Slaves: []string{"slave"}})
	ctx := context.Background()
	if err := m.Write(ctx, nil, put("a", "1", 0)); err != nil {
		t.Fatal(err)
	}
	var idleWait atomic.Uint32 // WaitMs of a pull for a record not yet written
	addr := rpctest.Serve(t, func(ctx context.Context, req *zppb.Request) *zppb.Response {
		switch c := req.Cmd.(type) {
		case *zppb.Request_TrySync:
			resp, err := m.TrySync(c.TrySync)
			if err != nil {
				return status.Response(err)
			}
			return &zppb.Response{Result: &zppb.Response_TrySync{TrySync: resp}}
		case *zppb.Request_BinlogPull:
			if _, last := m.log.Last(); c.BinlogPull.FromLsn > last {
				idleWait.Store(c.BinlogPull.WaitMs)
			}
			resp, err := m.Pull(ctx, c.BinlogPull)
			if err != nil {
				return status.Response(err)
			}
			return &zppb.Response{Result: &zppb.Response_BinlogPull{BinlogPull: resp}}
		}
		return status.Response(status.New(zppb.Code_INVALID_ARGUMENT, "%T", req.Cmd))
	})
	s := openSlave(t, t.TempDir(), shared, addr, 1)
	defer s.Close()
	samePosition(t, m, s)
	testcluster.Poll(t, 10*time.Second, func() error {
		if w := idleWait.Load(); w == 0 {
			return fmt.Errorf("no idle pull yet")
		}
		return nil
	})
	if w := time.Duration(idleWait.Load()) * time.Millisecond; w < 30*time.Second {
		t.Errorf("an idle slave's pull waits %v, want 30s", w)
	}
	if err := m.Write(ctx, nil, put("b", "2", 0)); err != nil {
		t.Fatal(err)
	}
	samePosition(t, m, s)
}

// TestParkedMasterHoldsNoSlaveReaders: a master keeps a binlog reader (a
// descriptor) per slave it streams to; once the partition parks it holds
// none, idle slaves' pulls open none, and the next write still reaches
// the slave.
func TestParkedMasterHoldsNoSlaveReaders(t *testing.T) {
	shared := newShared(t)
	dir := t.TempDir()
	m := openReplica(t, dir, shared, nil)
	defer m.Close()
	m.SetRole(Assignment{Role: Master, Master: "self", Term: 1, Slaves: []string{"slave"}})
	ctx := context.Background()
	for i := range 10 {
		if err := m.Write(ctx, nil, put(fmt.Sprintf("k%d", i), "v", 0)); err != nil {
			t.Fatal(err)
		}
	}
	s := openSlave(t, t.TempDir(), shared, serveMaster(t, m), 1)
	defer s.Close()
	samePosition(t, m, s)
	binlogDir := filepath.Join(dir, "binlog")
	if n := testcluster.OpenFDs(t, 0, binlogDir); n < 3 {
		t.Fatalf("%d descriptors in the master's binlog while streaming, want its LOCK, segment and a reader: the check below proves nothing", n)
	}
	if parked, err := m.Park(); err != nil || !parked {
		t.Fatalf("Park() = %v, %v", parked, err)
	}
	// The binlog keeps its LOCK (a node locks its data directory instead).
	if n := testcluster.OpenFDs(t, 0, binlogDir); n != 1 {
		t.Errorf("a parked master's binlog holds %d descriptors, want 1 (its LOCK)", n)
	}
	if err := m.Write(ctx, nil, put("after", "v", 0)); err != nil {
		t.Fatal(err)
	}
	samePosition(t, m, s)
}
