package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// writeHalves writes keys k<i> = "v" to master r until n are below slot
// at (low) and n at or above it (high).
func writeHalves(t *testing.T, ctx context.Context, r *Replica, at uint32, n int) (low, high []string) {
	t.Helper()
	for i := 0; len(low) < n || len(high) < n; i++ {
		k := fmt.Sprintf("k%d", i)
		if uint32(keyspace.Slot([]byte(k))) < at {
			low = append(low, k)
		} else {
			high = append(high, k)
		}
		if err := r.Write(ctx, nil, put(k, "v", 0)); err != nil {
			t.Fatal(err)
		}
	}
	return low, high
}

// TestSplitFence: a master that logs a split's fence stages the child at
// exactly the fence, refuses writes to the child's range from then on and
// takes writes to the range it keeps; the child opens with every key
// written before the fence and none after, a binlog starting after it,
// and a marker naming the split; a replica that crashed between applying
// the fence and staging stages it when it opens again.
func TestSplitFence(t *testing.T) {
	shared := newShared(t)
	tableDir := t.TempDir()
	childDir := filepath.Join(tableDir, "1")
	opts := Options{Dir: filepath.Join(tableDir, "0"), Table: "t", ID: 0, Shared: shared,
		SplitDir: func(sp *zppb.SplitRecord) string { return filepath.Join(tableDir, fmt.Sprint(sp.Child)) }}
	r, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.Close() }()
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 2})
	ctx := context.Background()
	const at = 8192
	low, high := writeHalves(t, ctx, r, at, 20)
	// A write with a request id just before the fence, whose retry may
	// reach the child once it owns the key.
	retried := put(high[2], "once", 0)
	retried.Result = 7
	if err := r.Write(ctx, []byte("req-1"), retried); err != nil {
		t.Fatal(err)
	}
	sp := &zppb.SplitRecord{Child: 1, At: at, End: keyspace.Slots, Epoch: 9}
	if err := r.LogSplit(ctx, sp); err != nil {
		t.Fatal(err)
	}
	_, fence, _ := r.Position()
	m, ok, err := ReadSplitMarker(childDir)
	if err != nil || !ok || m.Parent != 0 || m.Epoch != 9 || m.Term != 2 || m.LSN != fence {
		t.Fatalf("child marker %+v ok %v err %v; fence at lsn %d", m, ok, err, fence)
	}
	if err := r.Write(ctx, nil, put(high[0], "after", 0)); !errors.Is(err, ErrSplitting) {
		t.Fatalf("write to the child's range after the fence: %v", err)
	}
	if err := r.Write(ctx, nil, put(low[0], "after", 0)); err != nil {
		t.Fatalf("write to the kept range after the fence: %v", err)
	}
	child, err := Open(Options{Dir: childDir, Table: "t", ID: 1, Shared: shared})
	if err != nil {
		t.Fatal(err)
	}
	ct, cl, _ := child.Position()
	if ct != 2 || cl != fence {
		t.Fatalf("child at term %d lsn %d, want 2/%d", ct, cl, fence)
	}
	if v, _, err := child.Get([]byte(low[0])); err != nil || string(v) != "v" {
		t.Fatalf("child has %s = %q (%v), want the value before the fence", low[0], v, err)
	}
	if _, _, err := child.Get([]byte(high[1])); err != nil {
		t.Fatalf("child lacks %s: %v", high[1], err)
	}
	// The retry on the child is answered as the first attempt was, not
	// applied again.
	child.SetRole(Assignment{Role: Master, Master: "self", Term: 2})
	res, err := child.Update(ctx, []byte("req-1"), func(View) (*zppb.WriteRecord, error) { return put(high[2], "twice", 0), nil })
	if err != nil || res != 7 {
		t.Fatalf("retry on the child: result %d, %v; want the first attempt's 7", res, err)
	}
	if v, _, _ := child.Get([]byte(high[2])); string(v) != "once" {
		t.Fatalf("retry on the child applied again: %s = %q", high[2], v)
	}
	child.Close()
	r.SetSlots(0, keyspace.Slots, keyspace.Slots)
	if err := r.Write(ctx, nil, put(high[0], "after", 0)); err != nil {
		t.Fatalf("write once the split rolled back: %v", err)
	}

	// A crash after the fence was applied and before the child was
	// staged: the intent is there, the child is not.
	if err := r.LogSplit(ctx, &zppb.SplitRecord{Child: 2, At: at, End: keyspace.Slots, Epoch: 10}); err != nil {
		t.Fatal(err)
	}
	_, fence2, _ := r.Position()
	r.Close()
	if err := os.RemoveAll(filepath.Join(tableDir, "2")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(opts.Dir, pendingSplitFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err = Open(opts); err != nil {
		t.Fatal(err)
	}
	if m, ok, err := ReadSplitMarker(filepath.Join(tableDir, "2")); err != nil || !ok || m.LSN != fence2 || m.Epoch != 10 {
		t.Fatalf("after reopening: child marker %+v ok %v err %v, want lsn %d", m, ok, err, fence2)
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, pendingSplitFile)); !os.IsNotExist(err) {
		t.Fatalf("split intent left after reopening: %v", err)
	}
}

// TestSplitFenceUnstaged: a replica that applies a fence and cannot stage
// the child records it, across a reopen, until its node resolves it: a
// split that committed leaves it the trim of the child's slots to run, one
// rolled back nothing.
func TestSplitFenceUnstaged(t *testing.T) {
	shared := newShared(t)
	tableDir := t.TempDir()
	notADir := filepath.Join(tableDir, "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{Dir: filepath.Join(tableDir, "0"), Table: "t", ID: 0, Shared: shared,
		SplitDir: func(sp *zppb.SplitRecord) string { return filepath.Join(notADir, fmt.Sprint(sp.Child)) }}
	r, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.Close() }()
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 2})
	ctx := context.Background()
	if err := r.Write(ctx, nil, put("k", "v", 0)); err != nil {
		t.Fatal(err)
	}
	const at = 8192
	for _, committed := range []bool{true, false} {
		sp := &zppb.SplitRecord{Child: 1, At: at, End: keyspace.Slots, Epoch: 9}
		if !committed {
			sp.Epoch = 11
		}
		if err := r.LogSplit(ctx, sp); err != nil {
			t.Fatal(err)
		}
		r.SetSlots(0, keyspace.Slots, keyspace.Slots)
		if u := r.UnstagedSplit(); u == nil || u.Epoch != sp.Epoch {
			t.Fatalf("after a failed staging: unstaged %v, want epoch %d", u, sp.Epoch)
		}
		r.Close()
		if r, err = Open(opts); err != nil {
			t.Fatal(err)
		}
		r.SetRole(Assignment{Role: Master, Master: "self", Term: 2})
		if u := r.UnstagedSplit(); u == nil || u.Epoch != sp.Epoch || u.At != at {
			t.Fatalf("after reopening: unstaged %v, want epoch %d at %d", u, sp.Epoch, at)
		}
		if err := r.ResolveUnstaged(committed); err != nil {
			t.Fatal(err)
		}
		if u := r.UnstagedSplit(); u != nil {
			t.Fatalf("resolved, still unstaged: %v", u)
		}
		b, e, ok, err := r.PendingTrim()
		if err != nil || ok != committed || ok && (b != 0 || e != at) {
			t.Fatalf("committed %v: pending trim [%d, %d) %v %v", committed, b, e, ok, err)
		}
		if ok {
			if err := r.TrimSlots(ctx, b, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.Close()
	if r, err = Open(opts); err != nil {
		t.Fatal(err)
	}
	if u := r.UnstagedSplit(); u != nil {
		t.Fatalf("resolved, unstaged again after reopening: %v", u)
	}
}

// TestFullSyncInstallsOwnedSlots: a slave that installs a full sync whose
// copy may hold slots its partition no longer owns (the copy claims a
// wider range, or none) records the trim to the owned range before the
// install and has its node run it; one that installs a copy during a
// split's PREPARE records the fence as applied unstaged (the copy may
// hold it, and the slave would then never trim the child's slots). A copy
// claiming no more than the owned range changes nothing.
func TestFullSyncInstallsOwnedSlots(t *testing.T) {
	const at = 8192
	fence := &zppb.SplitRecord{Child: 1, At: at, End: keyspace.Slots, Epoch: 9}
	tests := []struct {
		name                 string
		claimBegin, claimEnd uint32 // the copy's claim
		ownBegin, ownEnd     uint32 // the slave's partition
		preparing            *zppb.SplitRecord
		wantTrim             bool
	}{
		{name: "copy of the whole range, the partition split", claimEnd: keyspace.Slots, ownEnd: at, wantTrim: true},
		{name: "copy without a claim, the partition split", ownEnd: at, wantTrim: true},
		{name: "copy of the owned range", claimEnd: at, ownEnd: at},
		{name: "copy of a partition never split", claimEnd: keyspace.Slots, ownEnd: keyspace.Slots},
		{name: "copy during PREPARE", claimEnd: keyspace.Slots, ownEnd: keyspace.Slots, preparing: fence},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shared := newShared(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			m := openReplica(t, t.TempDir(), shared, nil)
			defer m.Close()
			m.SetRole(Assignment{Role: Master, Master: "self", Term: 2, Slaves: []string{"slave"}})
			low, high := writeHalves(t, ctx, m, at, 10)
			// The master's binlog restarts after its data (as after a
			// restore): the slave must full-sync.
			mt, ml, _ := m.Position()
			if err := m.log.Reset(mt, ml); err != nil {
				t.Fatal(err)
			}
			addr, fullSyncs := serveMasterClaiming(t, m, tt.claimBegin, tt.claimEnd)
			var trims atomic.Int64
			s, err := Open(Options{Dir: t.TempDir(), Table: "t", ID: 3, Shared: shared, Self: "slave", Logger: slog.New(slog.DiscardHandler),
				Dial:      func(ctx context.Context, addr string) (Conn, error) { return rpc.Dial(ctx, addr, 0) },
				Owns:      func() (uint32, uint32, *zppb.SplitRecord) { return tt.ownBegin, tt.ownEnd, tt.preparing },
				SplitTrim: func() { trims.Add(1) },
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.SetRole(Assignment{Role: Slave, Master: addr, Term: 2})
			samePosition(t, m, s)
			if fullSyncs.Load() != 1 {
				t.Fatalf("%d full syncs, want 1", fullSyncs.Load())
			}
			b, e, pending, err := s.PendingTrim()
			if err != nil {
				t.Fatal(err)
			}
			if pending != tt.wantTrim || trims.Load() != map[bool]int64{false: 0, true: 1}[tt.wantTrim] {
				t.Fatalf("trim recorded %v [%d, %d), run %d times; want recorded %v and run once", pending, b, e, trims.Load(), tt.wantTrim)
			}
			if pending {
				if b != tt.ownBegin || e != tt.ownEnd {
					t.Fatalf("trim recorded to [%d, %d), want [%d, %d)", b, e, tt.ownBegin, tt.ownEnd)
				}
				if err := s.TrimSlots(ctx, b, e); err != nil {
					t.Fatal(err)
				}
				if _, _, err := s.Get([]byte(high[0])); !errors.Is(err, engine.ErrNotFound) {
					t.Fatalf("%s after the trim: %v, want not found", high[0], err)
				}
				if _, _, err := s.Get([]byte(low[0])); err != nil {
					t.Fatalf("%s after the trim: %v", low[0], err)
				}
			}
			if u := s.UnstagedSplit(); (u != nil) != (tt.preparing != nil) || u != nil && u.Epoch != tt.preparing.Epoch {
				t.Fatalf("unstaged fence after the install: %v, want %v", u, tt.preparing)
			}
		})
	}
}

// TestSetSlots: a master takes writes only for the slots its node's
// topology gives its partition, less a split's moving range while the
// split is in PREPARE, whatever routed the write: after a split commits,
// a write routed before it to the parent's moving range is refused, not
// stored where the parent's trim would delete it.
func TestSetSlots(t *testing.T) {
	ctx := context.Background()
	shared := newShared(t)
	r := openReplica(t, t.TempDir(), shared, nil)
	defer r.Close()
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 1})
	const at, end = 8192, 12288
	low, high := writeHalves(t, ctx, r, at, 1)
	var beyond string // a key of a slot at or above end
	for i := 0; beyond == ""; i++ {
		if k := fmt.Sprintf("b%d", i); uint32(keyspace.Slot([]byte(k))) >= end {
			beyond = k
		}
	}
	clear := &zppb.WriteRecord{Mutations: []*zppb.Mutation{{Kind: zppb.Mutation_CLEAR}}}
	tests := []struct {
		name                string
		begin, end, fenceAt uint32
		takes               map[string]bool // key -> written
	}{
		{"whole table", 0, keyspace.Slots, keyspace.Slots, map[string]bool{low[0]: true, high[0]: true, beyond: true}},
		{"split in PREPARE", 0, end, at, map[string]bool{low[0]: true, high[0]: false, beyond: false}},
		{"split committed: the parent", 0, at, at, map[string]bool{low[0]: true, high[0]: false, beyond: false}},
		{"split committed: the child", at, end, end, map[string]bool{low[0]: false, high[0]: true, beyond: false}},
		{"split rolled back", 0, end, end, map[string]bool{low[0]: true, high[0]: true, beyond: false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.SetSlots(tt.begin, tt.end, tt.fenceAt)
			for k, takes := range tt.takes {
				_, before, _ := r.Position()
				err := r.Write(ctx, nil, put(k, "v", 0))
				_, after, _ := r.Position()
				switch {
				case takes && err != nil:
					t.Errorf("write to %s (slot %d): %v, want it taken", k, keyspace.Slot([]byte(k)), err)
				case !takes && !errors.Is(err, ErrSplitting):
					t.Errorf("write to %s (slot %d): %v, want ErrSplitting", k, keyspace.Slot([]byte(k)), err)
				case !takes && after != before:
					t.Errorf("refused write to %s logged a record (lsn %d -> %d)", k, before, after)
				}
			}
			// FLUSH_TABLE's keyless CLEAR empties the replica whatever
			// its range.
			if err := r.Write(ctx, nil, clear); err != nil {
				t.Errorf("CLEAR: %v", err)
			}
		})
	}
}
