package replica

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// writeWithResult writes key=value under request id and makes result the
// answer a retry of id would get from memory.
func writeWithResult(ctx context.Context, r *Replica, id, key, value string, result int64) (int64, error) {
	return r.Update(ctx, []byte(id), func(View) (*zppb.WriteRecord, error) {
		rec := put(key, value, 0)
		rec.Result = result
		return rec, nil
	})
}

// TestRejoiningMasterCutsItsTail: a master writes records its slave never
// got, the slave is promoted and writes at a newer term, and the old master
// rejoins as its slave. When the old master's tail is only in its binlog
// (writes that waited for min_sync_replicas acknowledgements) it cuts the
// binlog and streams on, with no full sync; when its DB applied the tail,
// no binlog cut can undo that and it full-syncs. Either way it ends with
// exactly the new master's data, and the request ids of the tail are
// forgotten: a retry of such a write is written, not answered from memory.
func TestRejoiningMasterCutsItsTail(t *testing.T) {
	tests := []struct {
		name          string
		tailApplied   bool // the old master wrote its tail with min_sync 0
		wantFullSyncs int64
	}{
		{"tail in the binlog only", false, 0},
		{"tail applied to the DB", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shared := newShared(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			a := openPeer(t, t.TempDir(), shared, "a")
			b := openPeer(t, t.TempDir(), shared, "b")
			defer func() { a.Close(); b.Close() }()

			// Records 1-3 at term 1, on both.
			a.SetRole(Assignment{Role: Master, Master: "a", Term: 1, Slaves: []string{"b"}, MinSync: 1})
			b.SetRole(Assignment{Role: Slave, Master: serveMaster(t, a), Term: 1})
			for i := range 3 {
				if _, err := writeWithResult(ctx, a, fmt.Sprintf("common-%d", i), fmt.Sprintf("c%d", i), "1", int64(10+i)); err != nil {
					t.Fatal(err)
				}
			}
			samePosition(t, a, b)

			// b is promoted (term 2) without a's records 4-5.
			b.SetRole(Assignment{Role: Master, Master: "b", Term: 2, Slaves: []string{"a"}})
			minSync := 1
			if tt.tailApplied {
				minSync = 0
			}
			a.SetRole(Assignment{Role: Master, Master: "a", Term: 1, Slaves: []string{"b"}, MinSync: minSync})
			for i := range 2 {
				wctx, wcancel := context.WithTimeout(ctx, 200*time.Millisecond)
				_, err := writeWithResult(wctx, a, fmt.Sprintf("tail-%d", i), fmt.Sprintf("tail%d", i), "1", int64(100+i))
				wcancel()
				if tt.tailApplied && err != nil {
					t.Fatal(err)
				}
				if !tt.tailApplied && !errors.Is(err, ErrNotEnoughReplicas) {
					t.Fatalf("tail write without slaves: %v, want ErrNotEnoughReplicas", err)
				}
			}
			wantApplied := map[bool]uint64{false: 3, true: 5}[tt.tailApplied]
			if _, lsn, applied := a.Position(); lsn != 5 || applied != wantApplied {
				t.Fatalf("old master at lsn %d applied %d, want 5 and %d", lsn, applied, wantApplied)
			}
			for i := range 3 {
				if err := b.Write(ctx, nil, put(fmt.Sprintf("b%d", i), "2", 0)); err != nil {
					t.Fatal(err)
				}
			}

			addr, fullSyncs := serveMasterWithFullSync(t, b)
			a.SetRole(Assignment{Role: Slave, Master: addr, Term: 2})
			samePosition(t, b, a)
			if got := fullSyncs.Load(); got != tt.wantFullSyncs {
				t.Fatalf("%d full syncs, want %d", got, tt.wantFullSyncs)
			}
			now := time.Now().UnixMilli()
			da, na, err := a.Digest(now)
			if err != nil {
				t.Fatal(err)
			}
			db, nb, err := b.Digest(now)
			if err != nil {
				t.Fatal(err)
			}
			if da != db || na != 6 || nb != 6 {
				t.Fatalf("old master holds %d keys, new master %d (want 6 each); digests equal: %v", na, nb, da == db)
			}
			if _, _, err := a.Get([]byte("tail0")); !errors.Is(err, engine.ErrNotFound) {
				t.Fatalf("tail0 on the rejoined master: %v, want not found", err)
			}

			// Promoted again, a forgets the ids of the records it lost: a
			// retry of a tail write is a new write.
			a.SetRole(Assignment{Role: Master, Master: "a", Term: 3})
			if got, err := writeWithResult(ctx, a, "tail-0", "tail0", "again", 999); err != nil || got != 999 {
				t.Fatalf("retry of a write the log lost answered %d, %v; want a new write answering 999", got, err)
			}
			if v, _, err := a.Get([]byte("tail0")); err != nil || string(v) != "again" {
				t.Fatalf("tail0 = %q, %v after the retry; want again", v, err)
			}
			if !tt.tailApplied {
				// A binlog cut forgets only what it cut (a full sync
				// forgets everything, documented in docs/failover.md).
				if got, err := writeWithResult(ctx, a, "common-1", "c1", "twice", 0); err != nil || got != 11 {
					t.Fatalf("retry of a kept write answered %d, %v; want the first answer 11", got, err)
				}
				if v, _, _ := a.Get([]byte("c1")); string(v) != "1" {
					t.Fatalf("c1 = %q after a retry of the write that kept it; want 1", v)
				}
			}
		})
	}
}
