package replica

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/binlog"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// masterWithTerms opens a master whose binlog holds records 1-10 at term 1,
// 11-20 at term 2 and 21-30 at term 5.
func masterWithTerms(t *testing.T, opts ...func(*Options)) *Replica {
	t.Helper()
	o := Options{Dir: t.TempDir(), Table: "t", ID: 0, Shared: newShared(t), Binlog: binlog.Options{SegmentSize: binlog.MinSegmentSize}}
	for _, f := range opts {
		f(&o)
	}
	r, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ctx := context.Background()
	for _, run := range []struct {
		term uint64
		n    int
	}{{1, 10}, {2, 10}, {5, 10}} {
		r.SetRole(Assignment{Role: Master, Master: "self", Term: run.term})
		for i := range run.n {
			if err := r.Write(ctx, nil, put(fmt.Sprintf("k%d-%d", run.term, i), "v", 0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return r
}

func terms(pairs ...uint64) []*zppb.TermStart {
	var out []*zppb.TermStart
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, &zppb.TermStart{Term: pairs[i], FirstLsn: pairs[i+1]})
	}
	return out
}

func TestTrySyncFindsLastCommonRecord(t *testing.T) {
	r := masterWithTerms(t)
	tests := []struct {
		name       string
		term, lsn  uint64
		history    []*zppb.TermStart
		wantResult zppb.TrySyncResponse_Result
		wantLSN    uint64
	}{
		{"empty slave", 0, 0, nil, zppb.TrySyncResponse_CONTINUE, 0},
		{"behind, same history", 2, 15, terms(1, 1, 2, 11), zppb.TrySyncResponse_CONTINUE, 15},
		{"up to date", 5, 30, terms(1, 1, 2, 11, 5, 21), zppb.TrySyncResponse_CONTINUE, 30},
		{"ahead in the master's term", 5, 40, terms(1, 1, 2, 11, 5, 21), zppb.TrySyncResponse_TRUNCATE, 30},
		{"wrote in a term the master never had", 3, 18, terms(1, 1, 2, 11, 3, 16), zppb.TrySyncResponse_TRUNCATE, 15},
		{"diverged early", 4, 35, terms(1, 1, 4, 11), zppb.TrySyncResponse_TRUNCATE, 10},
		{"diverged from the start", 9, 5, terms(9, 1), zppb.TrySyncResponse_TRUNCATE, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := r.TrySync(&zppb.TrySyncRequest{Slave: "s", Term: tt.term, Lsn: tt.lsn, Terms: tt.history})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Result != tt.wantResult || resp.Lsn != tt.wantLSN {
				t.Fatalf("got %v at %d, want %v at %d", resp.Result, resp.Lsn, tt.wantResult, tt.wantLSN)
			}
		})
	}
}

func TestTrySyncNeedsFullSyncPastPurge(t *testing.T) {
	r := masterWithTerms(t)
	policy := PurgePolicy{MaxSegments: 1, MinSegments: 1}
	// Records only in the memtable (no RocksDB WAL) keep their segments.
	if n, err := r.Purge(policy); err != nil || n != 0 {
		t.Fatalf("purged %d segments (%v) of records not yet in table files", n, err)
	}
	if err := r.WithDB(func(db *engine.DB) error { return db.Flush() }); err != nil {
		t.Fatal(err)
	}
	// Now everything the policy allows goes: all sealed segments but one.
	if _, err := r.Purge(policy); err != nil {
		t.Fatal(err)
	}
	first := r.FirstLSN()
	if first <= 2 {
		t.Fatalf("nothing purged (first lsn %d); segments too large for the test", first)
	}
	resp, err := r.TrySync(&zppb.TrySyncRequest{Slave: "s", Term: 1, Lsn: 1, Terms: terms(1, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Result != zppb.TrySyncResponse_FULLSYNC {
		t.Fatalf("slave at lsn 1 with master's first lsn %d: %v, want FULLSYNC", first, resp.Result)
	}
}

// TestTrySyncNeedsFullSyncAfterReset: a master whose binlog was reset
// (a restore installed a backup at lsn 30) holds no record yet; a slave
// behind that position must full-sync, not stream from records that are
// not there.
func TestTrySyncNeedsFullSyncAfterReset(t *testing.T) {
	r := masterWithTerms(t)
	if err := r.log.Reset(5, 30); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		term, lsn uint64
		history   []*zppb.TermStart
		want      zppb.TrySyncResponse_Result
	}{
		{"empty slave", 0, 0, nil, zppb.TrySyncResponse_FULLSYNC},
		{"behind", 2, 15, terms(1, 1, 2, 11), zppb.TrySyncResponse_FULLSYNC},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := r.TrySync(&zppb.TrySyncRequest{Slave: "s", Term: tt.term, Lsn: tt.lsn, Terms: tt.history})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Result != tt.want {
				t.Fatalf("got %v at %d, want %v", resp.Result, resp.Lsn, tt.want)
			}
		})
	}
}

func TestPullWaitsForAcksWithMinSync(t *testing.T) {
	r := masterWithTerms(t)
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 5, Slaves: []string{"s1", "s2"}, MinSync: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Write(ctx, nil, put("sync", "1", 0)) }()

	// The write is in the binlog at lsn 31 but not applied until a slave
	// acknowledges it.
	var pulled *zppb.BinlogPullResponse
	for pulled == nil || len(pulled.Records) == 0 {
		var err error
		pulled, err = r.Pull(ctx, &zppb.BinlogPullRequest{Slave: "s1", FromLsn: 31, PrevTerm: 5, AckedLsn: 30, WaitMs: 1000})
		if err != nil {
			t.Fatal(err)
		}
	}
	if pulled.Records[0].Lsn != 31 {
		t.Fatalf("pulled lsn %d, want 31", pulled.Records[0].Lsn)
	}
	if _, _, err := r.Get([]byte("sync")); err == nil {
		t.Fatal("write visible on the master before any slave acknowledged it")
	}
	select {
	case err := <-done:
		t.Fatalf("write returned %v before any slave acknowledged it", err)
	default:
	}
	// An acknowledgement from a node that is not a slave does not count.
	if _, err := r.Pull(ctx, &zppb.BinlogPullRequest{Slave: "stranger", FromLsn: 32, PrevTerm: 5, AckedLsn: 31}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("write returned %v after a stranger's acknowledgement", err)
	default:
	}
	if _, err := r.Pull(ctx, &zppb.BinlogPullRequest{Slave: "s1", FromLsn: 32, PrevTerm: 5, AckedLsn: 31}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("write after acknowledgement: %v", err)
	}
	if v, _, err := r.Get([]byte("sync")); err != nil || string(v) != "1" {
		t.Fatalf("after acknowledgement: %q, %v", v, err)
	}
	cancel()
}

func TestWriteFailsWithoutEnoughSlaves(t *testing.T) {
	r := masterWithTerms(t)
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 5, Slaves: []string{"s1"}, MinSync: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := r.Write(ctx, nil, put("lonely", "1", 0))
	if !errors.Is(err, ErrNotEnoughReplicas) {
		t.Fatalf("err %v, want ErrNotEnoughReplicas", err)
	}
	if _, _, err := r.Get([]byte("lonely")); err == nil {
		t.Fatal("unacknowledged write visible on the master")
	}
}

// TestRejoinedSlaveReportsItsOwnPosition covers a slave removed from a
// partition and added back with a fresh replica while the master stayed
// master (an expand moved the master away from it, a shrink moves it back):
// the master must report where the new replica is, not what the old one
// acknowledged, or the meta hands the partition over to a replica that has
// none of its records (TestExpandAndShrinkUnderLoad lost key:000018 so).
func TestRejoinedSlaveReportsItsOwnPosition(t *testing.T) {
	tests := []struct {
		name    string
		trySync bool // the fresh replica negotiates before pulling
		pull    bool // and pulls from the start
	}{
		{"before it asks", false, false},
		{"after TRYSYNC", true, false},
		{"after TRYSYNC and the first pull", true, true},
		{"after a pull without TRYSYNC", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := masterWithTerms(t)
			ctx := context.Background()
			r.SetRole(Assignment{Role: Master, Master: "self", Term: 5, Slaves: []string{"s1"}})
			// The old replica on s1 follows to the end of the log.
			if _, err := r.Pull(ctx, &zppb.BinlogPullRequest{Slave: "s1", FromLsn: 31, PrevTerm: 5, AckedLsn: 30}); err != nil {
				t.Fatal(err)
			}
			if got := peerPosition(t, r, "s1"); got.Lsn != 30 {
				t.Fatalf("old replica at lsn %d, want 30", got.Lsn)
			}
			// s1 leaves the partition, then comes back empty.
			r.SetRole(Assignment{Role: Master, Master: "self", Term: 5})
			r.SetRole(Assignment{Role: Master, Master: "self", Term: 5, Slaves: []string{"s1"}})
			if tt.trySync {
				resp, err := r.TrySync(&zppb.TrySyncRequest{Slave: "s1"})
				if err != nil {
					t.Fatal(err)
				}
				if resp.Result != zppb.TrySyncResponse_CONTINUE || resp.Lsn != 0 {
					t.Fatalf("TRYSYNC of an empty replica: %v at %d, want CONTINUE at 0", resp.Result, resp.Lsn)
				}
			}
			if tt.pull {
				if _, err := r.Pull(ctx, &zppb.BinlogPullRequest{Slave: "s1", FromLsn: 1, PrevTerm: 0, AckedLsn: 0, MaxBytes: 1}); err != nil {
					t.Fatal(err)
				}
			}
			got := peerPosition(t, r, "s1")
			if got.Lsn != 0 || got.LagRecords != 30 || (!tt.trySync && !tt.pull && got.State != "disconnected") {
				t.Fatalf("fresh replica reported at lsn %d (lag %d, %s), want lsn 0, lag 30", got.Lsn, got.LagRecords, got.State)
			}
		})
	}
}

// peerPosition returns what r's INFO replication says about slave addr.
func peerPosition(t *testing.T, r *Replica, addr string) *zppb.PeerPosition {
	t.Helper()
	for _, p := range r.Info().Peers {
		if p.Addr == addr {
			return p
		}
	}
	t.Fatalf("INFO does not list slave %s", addr)
	return nil
}
