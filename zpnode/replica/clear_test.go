package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/rpc/rpctest"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/dbsync"
)

func clearRecord() *zppb.WriteRecord {
	return &zppb.WriteRecord{Mutations: []*zppb.Mutation{{Kind: zppb.Mutation_CLEAR}}}
}

// serveMaster serves r's side of replication (TRYSYNC, BINLOG_PULL) on
// 127.0.0.1 as a node does, and returns the address.
func serveMaster(t *testing.T, r *Replica) string {
	t.Helper()
	addr, _ := serveMasterWithFullSync(t, r)
	return addr
}

// serveMasterWithFullSync is serveMaster with full sync (FULLSYNC_START,
// _FETCH, _END) served from r's DB by a real dbsync source; it counts the
// full syncs started.
func serveMasterWithFullSync(t *testing.T, r *Replica) (string, *atomic.Int64) {
	t.Helper()
	return serveMasterClaiming(t, r, 0, 0)
}

// serveMasterClaiming is serveMasterWithFullSync whose checkpoints claim
// to hold the keys of slots [begin, end) (end 0: no claim), as a node
// says of its partition's range.
func serveMasterClaiming(t *testing.T, r *Replica, begin, end uint32) (string, *atomic.Int64) {
	t.Helper()
	src, err := dbsync.NewSource(dbsync.SourceOptions{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	starts := new(atomic.Int64)
	return rpctest.Serve(t, func(ctx context.Context, req *zppb.Request) *zppb.Response {
		switch c := req.Cmd.(type) {
		case *zppb.Request_TrySync:
			resp, err := r.TrySync(c.TrySync)
			if err != nil {
				return status.Response(err)
			}
			return &zppb.Response{Result: &zppb.Response_TrySync{TrySync: resp}}
		case *zppb.Request_BinlogPull:
			resp, err := r.Pull(ctx, c.BinlogPull)
			if err != nil {
				return status.Response(err)
			}
			return &zppb.Response{Result: &zppb.Response_BinlogPull{BinlogPull: resp}}
		case *zppb.Request_FullsyncStart:
			starts.Add(1)
			var resp *zppb.FullSyncStartResponse
			err := r.WithDB(func(db *engine.DB) error {
				var err error
				resp, err = src.Start(ctx, c.FullsyncStart.Table, c.FullsyncStart.Partition, db)
				return err
			})
			if err != nil {
				return status.Response(err)
			}
			resp.SlotBegin, resp.SlotEnd = begin, end
			r.PinForFullSync(c.FullsyncStart.Slave, resp.Lsn)
			return &zppb.Response{Result: &zppb.Response_FullsyncStart{FullsyncStart: resp}}
		case *zppb.Request_FullsyncFetch:
			data, err := src.Fetch(ctx, c.FullsyncFetch)
			if err != nil {
				return status.Response(err)
			}
			return &zppb.Response{Result: &zppb.Response_FullsyncFetch{FullsyncFetch: &zppb.FullSyncFetchResponse{Data: data}}}
		case *zppb.Request_FullsyncEnd:
			if err := src.End(c.FullsyncEnd.Session); err != nil {
				return status.Response(err)
			}
			return &zppb.Response{}
		}
		return status.Response(status.New(zppb.Code_INVALID_ARGUMENT, "%T", req.Cmd))
	}), starts
}

// openSlave opens a replica in dir that follows master over TCP.
func openSlave(t *testing.T, dir string, shared *engine.Shared, master string, term uint64) *Replica {
	t.Helper()
	s := openPeer(t, dir, shared, "slave")
	s.SetRole(Assignment{Role: Slave, Master: master, Term: term})
	return s
}

// openPeer opens a replica in dir, named self to its masters, that dials
// them over TCP.
func openPeer(t *testing.T, dir string, shared *engine.Shared, self string) *Replica {
	t.Helper()
	r, err := Open(Options{Dir: dir, Table: "t", ID: 3, Shared: shared, Self: self, Logger: slog.New(slog.DiscardHandler),
		Dial: func(ctx context.Context, addr string) (Conn, error) { return rpc.Dial(ctx, addr, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// liveKeys returns the keys among keys that r serves (Get), plus every key
// a scan of hashtag "h" or "" finds.
func liveKeys(t *testing.T, r *Replica, keys []string) []string {
	t.Helper()
	var got []string
	for _, k := range keys {
		if _, _, err := r.Get([]byte(k)); err == nil {
			got = append(got, k)
		} else if !errors.Is(err, engine.ErrNotFound) {
			t.Fatal(err)
		}
	}
	for _, tag := range []string{"h", ""} {
		kvs, _, err := r.Scan([]byte(tag), nil, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			got = append(got, "scan:"+string(kv.Key))
		}
	}
	return got
}

// samePosition waits until the slave has the master's last record.
func samePosition(t *testing.T, master, slave *Replica) {
	t.Helper()
	testcluster.Poll(t, 10*time.Second, func() error {
		mt, ml, _ := master.Position()
		st, sl, sa := slave.Position()
		if mt != st || ml != sl || sa != sl {
			return fmt.Errorf("master at (%d, %d), slave at (%d, %d) applied %d", mt, ml, st, sl, sa)
		}
		return nil
	})
}

// TestClearReplicates flushes a master that has a slave following it over
// TCP: both end up empty at the same (term, lsn), writes after the flush
// reach both, and reopening both from disk keeps it so.
func TestClearReplicates(t *testing.T) {
	for _, minSync := range []int{0, 1} {
		t.Run(fmt.Sprintf("min_sync=%d", minSync), func(t *testing.T) {
			shared := newShared(t)
			mdir, sdir := t.TempDir(), t.TempDir()
			m := openReplica(t, mdir, shared, nil)
			m.SetRole(Assignment{Role: Master, Master: "self", Term: 4, Slaves: []string{"slave"}, MinSync: minSync})
			addr := serveMaster(t, m)
			s := openSlave(t, sdir, shared, addr, 4)
			defer func() { s.Close(); m.Close() }()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			keys := []string{"a", "b", "{h}1", "{h}2", "ttl", "after"}
			for _, rec := range []*zppb.WriteRecord{put("a", "1", 0), put("b", "2", 0), put("{h}1", "3", 0), put("{h}2", "4", 0),
				put("ttl", "5", time.Now().Add(time.Hour).UnixMilli())} {
				if err := m.Write(ctx, nil, rec); err != nil {
					t.Fatal(err)
				}
			}
			samePosition(t, m, s)
			if got := liveKeys(t, s, keys); len(got) != 10 { // 5 keys by Get, and by Scan
				t.Fatalf("slave before the flush serves %v", got)
			}
			// Some data in table files, some in the memtable.
			if err := s.WithDB(func(db *engine.DB) error { return db.Flush() }); err != nil {
				t.Fatal(err)
			}

			id := []byte("flush-request-id")
			if err := m.Write(ctx, id, clearRecord()); err != nil {
				t.Fatal(err)
			}
			if got := liveKeys(t, m, keys); len(got) != 0 {
				t.Fatalf("master after the flush serves %v", got)
			}
			samePosition(t, m, s)
			if got := liveKeys(t, s, keys); len(got) != 0 {
				t.Fatalf("slave after the flush serves %v", got)
			}
			// A retry of the flush is answered, not logged again.
			_, before, _ := m.Position()
			if err := m.Write(ctx, id, clearRecord()); err != nil {
				t.Fatal(err)
			}
			if _, after, _ := m.Position(); after != before {
				t.Fatalf("retried flush logged again: lsn %d -> %d", before, after)
			}

			if err := m.Write(ctx, nil, put("after", "6", 0)); err != nil {
				t.Fatal(err)
			}
			samePosition(t, m, s)
			want := "[after scan:after]"
			for _, r := range []*Replica{m, s} {
				if got := liveKeys(t, r, keys); fmt.Sprint(got) != want {
					t.Fatalf("after a write that followed the flush: %v, want %s", got, want)
				}
			}

			s.Close()
			m.Close()
			m = openReplica(t, mdir, shared, nil)
			s = openReplica(t, sdir, shared, nil)
			mt, ml, _ := m.Position()
			if st, sl, _ := s.Position(); st != mt || sl != ml {
				t.Fatalf("after reopening: master at (%d, %d), slave at (%d, %d)", mt, ml, st, sl)
			}
			for _, r := range []*Replica{m, s} {
				if got := liveKeys(t, r, keys); fmt.Sprint(got) != want {
					t.Fatalf("after reopening: %v, want %s", got, want)
				}
			}
		})
	}
}

// TestClearHidesPendingWrites checks what a read-modify-write sees while a
// flush waits for slaves: nothing written before the flush, committed or
// not, and what was written after it.
func TestClearHidesPendingWrites(t *testing.T) {
	r := masterWithTerms(t) // k5-0 .. k5-9 committed
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 5, Slaves: []string{"s"}, MinSync: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 3)
	write := func(rec *zppb.WriteRecord) { go func() { done <- r.Write(ctx, nil, rec) }() }
	// read looks through the view and writes nothing: submitted, not
	// waited for, since its answer waits for the writes it read.
	read := func(key string) string {
		t.Helper()
		var got string
		if _, err := r.submit(nil, func(v View) (*zppb.WriteRecord, error) {
			val, _, err := v.Get([]byte(key))
			got = string(val)
			if errors.Is(err, engine.ErrNotFound) {
				got, err = "<nil>", nil
			}
			return nil, err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	// Each write waits in the binlog for the slave; wait for each to be
	// logged so they are in order.
	logged := func(lsn uint64) {
		t.Helper()
		testcluster.Poll(t, 10*time.Second, func() error {
			if _, last, _ := r.Position(); last < lsn {
				return fmt.Errorf("lsn %d, want %d", last, lsn)
			}
			return nil
		})
	}
	write(put("pending", "1", 0))
	logged(31)
	if got := read("pending"); got != "1" {
		t.Fatalf("pending write before the flush reads %q", got)
	}
	write(clearRecord())
	logged(32)
	write(put("later", "2", 0))
	logged(33)
	for key, want := range map[string]string{"pending": "<nil>", "k5-0": "<nil>", "later": "2"} {
		if got := read(key); got != want {
			t.Errorf("while the flush waits for slaves: %s = %q, want %q", key, got, want)
		}
	}
	// Committed reads still see the data until the slave has the flush.
	if _, _, err := r.Get([]byte("k5-0")); err != nil {
		t.Fatalf("k5-0 gone before the flush was acknowledged: %v", err)
	}
	if _, err := r.Pull(ctx, &zppb.BinlogPullRequest{Slave: "s", FromLsn: 34, PrevTerm: 5, AckedLsn: 33}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for key, want := range map[string]string{"pending": "<nil>", "k5-0": "<nil>", "k1-3": "<nil>", "later": "2"} {
		if got := read(key); got != want {
			t.Errorf("after the flush: %s = %q, want %q", key, got, want)
		}
	}
}
