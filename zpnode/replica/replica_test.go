package replica

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/binlog"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func openReplica(t *testing.T, dir string, shared *engine.Shared, now func() time.Time) *Replica {
	t.Helper()
	r, err := Open(Options{Dir: dir, Table: "t", ID: 3, Shared: shared, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newShared(t testing.TB) *engine.Shared {
	t.Helper()
	s, err := engine.NewShared(engine.SharedOptions{BlockCacheSize: 8 << 20, WriteBufferSize: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put(key, value string, expireAt int64) *zppb.WriteRecord {
	return &zppb.WriteRecord{Mutations: []*zppb.Mutation{{Kind: zppb.Mutation_PUT, Key: []byte(key), Value: []byte(value), ExpireAtMs: expireAt}}}
}

func TestWritesSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	shared := newShared(t)
	r := openReplica(t, dir, shared, nil)
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 7})
	ctx := context.Background()
	for i := range 100 {
		if err := r.Write(ctx, nil, put(fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	term, lsn, applied := r.Position()
	if term != 7 || lsn != 100 || applied != 100 {
		t.Fatalf("position (%d, %d, applied %d), want (7, 100, applied 100)", term, lsn, applied)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	r = openReplica(t, dir, shared, nil)
	defer r.Close()
	if term, lsn, _ := r.Position(); term != 7 || lsn != 100 {
		t.Fatalf("after reopen position (%d, %d), want (7, 100)", term, lsn)
	}
	v, _, err := r.Get([]byte("k42"))
	if err != nil || string(v) != "v42" {
		t.Fatalf("k42 = %q, %v", v, err)
	}
}

// TestReplayAppliesBinlogTail writes records to the binlog only, as a crash
// between the binlog append and the DB apply would leave them, and checks
// that opening the replica applies them: writes, and a flush with the
// writes around it.
func TestReplayAppliesBinlogTail(t *testing.T) {
	tests := []struct {
		name    string
		written []string // keys written through the replica, value "1"
		tail    []*zppb.WriteRecord
		want    map[string]string // every key above, "" for absent
	}{
		{"writes", []string{"a"}, []*zppb.WriteRecord{put("a", "2", 0), put("b", "3", 0)},
			map[string]string{"a": "2", "b": "3"}},
		{"flush", []string{"a", "b", "{h}c"}, []*zppb.WriteRecord{put("a", "2", 0), clearRecord(), put("d", "3", 0)},
			map[string]string{"a": "", "b": "", "{h}c": "", "d": "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			shared := newShared(t)
			r := openReplica(t, dir, shared, nil)
			r.SetRole(Assignment{Role: Master, Master: "self", Term: 1})
			for _, k := range tt.written {
				if err := r.Write(context.Background(), nil, put(k, "1", 0)); err != nil {
					t.Fatal(err)
				}
			}
			r.Close()
			first := uint64(len(tt.written)) + 1
			appendToBinlog(t, dir, 1, first, tt.tail...)

			r = openReplica(t, dir, shared, nil)
			defer r.Close()
			for key, want := range tt.want {
				v, _, err := r.Get([]byte(key))
				if errors.Is(err, engine.ErrNotFound) {
					err = nil
				}
				if err != nil || string(v) != want {
					t.Errorf("%s = %q, %v; want %q", key, v, err, want)
				}
			}
			last := first + uint64(len(tt.tail)) - 1
			if _, lsn, applied := r.Position(); lsn != last || applied != last {
				t.Fatalf("lsn %d applied %d, want %d and %d", lsn, applied, last, last)
			}
		})
	}
}

// appendToBinlog appends recs to the binlog of the closed replica in dir,
// at term and lsns from first on, without applying them: what a crash
// between the binlog append and the DB apply leaves.
func appendToBinlog(t *testing.T, dir string, term, first uint64, recs ...*zppb.WriteRecord) {
	t.Helper()
	log, err := binlog.Open(filepath.Join(dir, "binlog"), binlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	for i, rec := range recs {
		payload, err := proto.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := log.Append(binlog.Record{Term: term, LSN: first + uint64(i), Payload: payload}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUpdateIsAtomicAndRejectsNothingHalfway(t *testing.T) {
	r := openReplica(t, t.TempDir(), newShared(t), nil)
	defer r.Close()
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 1})
	ctx := context.Background()
	boom := errors.New("boom")
	_, err := r.Update(ctx, nil, func(View) (*zppb.WriteRecord, error) { return put("x", "1", 0), boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
	if _, _, err := r.Get([]byte("x")); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("x written by a failed update: %v", err)
	}
	if _, lsn, _ := r.Position(); lsn != 0 {
		t.Fatalf("failed update took lsn %d", lsn)
	}
}

func TestSweepDeletesOnlyExpiredKeys(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	r := openReplica(t, t.TempDir(), newShared(t), func() time.Time { return now })
	defer r.Close()
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 1})
	ctx := context.Background()
	for i := range 10 {
		exp := int64(0)
		if i%2 == 0 {
			exp = now.UnixMilli() + 1000
		}
		if err := r.Write(ctx, nil, put(fmt.Sprintf("k%d", i), "v", exp)); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(2 * time.Second)
	var total int
	var cursor []byte
	for {
		n, next, err := r.SweepExpired(ctx, cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if len(next) == 0 {
			break
		}
		cursor = next
	}
	if total != 5 {
		t.Fatalf("swept %d keys, want 5", total)
	}
	for i := range 10 {
		_, _, err := r.Get([]byte(fmt.Sprintf("k%d", i)))
		if gone := errors.Is(err, engine.ErrNotFound); gone != (i%2 == 0) {
			t.Errorf("k%d gone=%v", i, gone)
		}
	}
}

// TestGroupCommitUnderConcurrency has many writers share flushes: every
// write lands, lsns are consecutive, and read-modify-write through View
// sees the writes queued before it (an increment is never lost).
func TestGroupCommitUnderConcurrency(t *testing.T) {
	for _, minSync := range []int{0, 1} {
		t.Run(fmt.Sprintf("min_sync=%d", minSync), func(t *testing.T) {
			dir := t.TempDir()
			shared := newShared(t)
			r := openReplica(t, dir, shared, nil)
			r.SetRole(Assignment{Role: Master, Master: "self", Term: 1, Slaves: []string{"s"}, MinSync: minSync})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if minSync > 0 {
				// A slave that acknowledges everything as it comes.
				go func() {
					from, prevTerm := uint64(1), uint64(0)
					for ctx.Err() == nil {
						resp, err := r.Pull(ctx, &zppb.BinlogPullRequest{Slave: "s", FromLsn: from, PrevTerm: prevTerm, AckedLsn: from - 1, WaitMs: 100})
						if err != nil || !resp.InSync {
							return
						}
						from += uint64(len(resp.Records))
						if len(resp.Records) > 0 {
							prevTerm = 1
						}
					}
				}()
			}
			const writers, each = 32, 100
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						if err := r.Write(ctx, nil, put(fmt.Sprintf("w%d-%d", w, i), "v", 0)); err != nil {
							errs <- err
							return
						}
						_, err := r.Update(ctx, nil, func(v View) (*zppb.WriteRecord, error) {
							n := 0
							if cur, _, err := v.Get([]byte("counter")); err == nil {
								n, _ = strconv.Atoi(string(cur))
							}
							return put("counter", strconv.Itoa(n+1), 0), nil
						})
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if _, lsn, applied := r.Position(); lsn != 2*writers*each || applied != lsn {
				t.Fatalf("lsn %d applied %d, want %d", lsn, applied, 2*writers*each)
			}
			if v, _, err := r.Get([]byte("counter")); err != nil || string(v) != strconv.Itoa(writers*each) {
				t.Fatalf("counter = %q, %v; want %d", v, err, writers*each)
			}
			cancel()
			r.Close()
			r = openReplica(t, dir, shared, nil)
			defer r.Close()
			if _, _, err := r.Get([]byte(fmt.Sprintf("w%d-%d", writers-1, each-1))); err != nil {
				t.Fatalf("last write after reopen: %v", err)
			}
		})
	}
}

// TestSubmittedPipelines has two callers, each holding the flusher role of
// one replica and queued writes on both, flush all their tickets and then
// wait, as the node does for a pipeline: every write is applied, in each
// caller's submission order, with nothing left queued.
func TestSubmittedPipelines(t *testing.T) {
	shared := newShared(t)
	rs := make([]*Replica, 2)
	for i := range rs {
		rs[i] = openReplica(t, t.TempDir(), shared, nil)
		rs[i].SetRole(Assignment{Role: Master, Master: "self", Term: 1})
		defer rs[i].Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	const n = 50
	submit := func(r *Replica, caller, i int) *Ticket {
		tk, err := r.Submit(nil, put(fmt.Sprintf("c%d", caller), strconv.Itoa(i), 0))
		if err != nil {
			t.Fatalf("Submit: %v", err)
		}
		return tk
	}
	// Caller 0 leads replica 0 and caller 1 leads replica 1; then each
	// queues writes on both.
	tickets := [2][]*Ticket{{submit(rs[0], 0, 0)}, {submit(rs[1], 1, 0)}}
	for i := 1; i < n; i++ {
		for c := range 2 {
			tickets[c] = append(tickets[c], submit(rs[(c+i)%2], c, i))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for c := range 2 {
		wg.Go(func() {
			for _, tk := range tickets[c] {
				tk.Flush()
			}
			for _, tk := range tickets[c] {
				if _, err := tk.Wait(ctx); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for c := range 2 {
		// The last write of caller c went to replica (c+n-1)%2, the one
		// before it to the other.
		for i, want := range map[int]int{(c + n - 1) % 2: n - 1, (c + n - 2) % 2: n - 2} {
			if v, _, err := rs[i].Get([]byte(fmt.Sprintf("c%d", c))); err != nil || string(v) != strconv.Itoa(want) {
				t.Errorf("replica %d: c%d = %q, %v; want %d", i, c, v, err, want)
			}
		}
	}
	for i, r := range rs {
		if _, lsn, applied := r.Position(); lsn != n || applied != n {
			t.Errorf("replica %d: lsn %d applied %d, want %d", i, lsn, applied, n)
		}
	}
}

// TestSubmittedThenClosed closes a replica between a Submit and its flush:
// the write fails with ErrClosed (the node answers WAIT and the client
// retries elsewhere), not with a binlog error, and nothing is logged.
func TestSubmittedThenClosed(t *testing.T) {
	dir, shared := t.TempDir(), newShared(t)
	r := openReplica(t, dir, shared, nil)
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 1})
	tk, err := r.Submit(nil, put("k", "v", 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tk.Wait(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close = %v, want ErrClosed", err)
	}
	r = openReplica(t, dir, shared, nil)
	defer r.Close()
	if _, lsn, _ := r.Position(); lsn != 0 {
		t.Errorf("lsn %d after reopen, want 0: the write reached the binlog", lsn)
	}
}

// A slave opened with SyncAfter does not contact its master until the
// channel is closed (a node opens all its replicas first), and says so in
// INFO meanwhile.
func TestSlaveWaitsForSyncAfter(t *testing.T) {
	var dials atomic.Int64
	start := make(chan struct{})
	r, err := Open(Options{Dir: t.TempDir(), Table: "t", ID: 3, Shared: newShared(t), SyncAfter: start,
		Dial: func(ctx context.Context, addr string) (Conn, error) {
			dials.Add(1)
			return nil, errors.New("no master here")
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.SetRole(Assignment{Role: Slave, Master: "master:1", Term: 1})
	waitUntil(t, "the slave to wait", func() bool { return strings.HasPrefix(r.Info().State, "waiting") })
	if n := dials.Load(); n != 0 {
		t.Fatalf("%d dials before SyncAfter was closed", n)
	}
	close(start)
	waitUntil(t, "the slave to dial its master", func() bool { return dials.Load() > 0 })
}

// waitUntil polls cond until it holds, failing t after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
