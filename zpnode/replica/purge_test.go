package replica

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/binlog"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// purgeFixture opens a master on a clock the test moves, with records 1-40
// at term 1 spread over a dozen small segments, all in table files, so that
// only the rule under test holds records back.
func purgeFixture(t *testing.T) (r *Replica, dir string, now *time.Time) {
	t.Helper()
	clock := time.Unix(1_000_000, 0)
	now = &clock
	dir = t.TempDir()
	r, err := Open(Options{Dir: dir, Table: "t", ID: 3, Shared: newShared(t), Now: func() time.Time { return *now },
		Binlog: binlog.Options{SegmentSize: binlog.MinSegmentSize}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 1, Slaves: []string{"s"}})
	for i := range 40 {
		if err := r.Write(context.Background(), nil, put(string(rune('a'+i%26))+strings.Repeat("k", i), strings.Repeat("v", 300), 0)); err != nil {
			t.Fatal(err)
		}
	}
	flushDB(t, r)
	return r, dir, now
}

func flushDB(t *testing.T, r *Replica) {
	t.Helper()
	if err := r.WithDB(func(db *engine.DB) error { return db.Flush() }); err != nil {
		t.Fatal(err)
	}
}

// TestPurgeKeepsWhatIsStillNeeded: each rule holds back purging exactly
// while it applies (docs/replication.md, "Binlog purge"): a connected
// slave's acknowledged floor, a full sync's pin, writes waiting for
// min_sync_replicas; and max-age purges old segments the count would keep.
func TestPurgeKeepsWhatIsStillNeeded(t *testing.T) {
	purgeAll := PurgePolicy{MaxSegments: 1, MinSegments: 1}
	tests := []struct {
		name   string
		policy PurgePolicy
		// hold sets the rule up and returns the first lsn it keeps;
		// release ends it.
		hold    func(t *testing.T, r *Replica, dir string, now *time.Time) uint64
		release func(t *testing.T, r *Replica, dir string, now *time.Time)
	}{
		{
			name: "connected slave's acknowledged floor", policy: purgeAll,
			hold: func(t *testing.T, r *Replica, _ string, _ *time.Time) uint64 {
				if _, err := r.Pull(context.Background(), &zppb.BinlogPullRequest{Slave: "s", FromLsn: 6, PrevTerm: 1, AckedLsn: 5}); err != nil {
					t.Fatal(err)
				}
				return 6
			},
			release: func(_ *testing.T, _ *Replica, _ string, now *time.Time) { *now = now.Add(peerTimeout + time.Second) },
		},
		{
			name: "full sync pin", policy: purgeAll,
			hold: func(_ *testing.T, r *Replica, _ string, _ *time.Time) uint64 {
				r.PinForFullSync("s", 5)
				return 6
			},
			release: func(_ *testing.T, _ *Replica, _ string, now *time.Time) { *now = now.Add(fullSyncPin + time.Second) },
		},
		{
			// Such writes are not applied either, so the applied floor
			// keeps them as well: this checks the outcome, whichever rule.
			name: "writes waiting for min_sync_replicas", policy: purgeAll,
			hold: func(t *testing.T, r *Replica, _ string, _ *time.Time) uint64 {
				r.SetRole(Assignment{Role: Master, Master: "self", Term: 1, Slaves: []string{"s"}, MinSync: 1})
				for i := range 40 {
					tk, err := r.Submit(nil, put(strings.Repeat("p", i+1), strings.Repeat("v", 300), 0))
					if err != nil {
						t.Fatal(err)
					}
					tk.Flush()
					t.Cleanup(func() { tk.Wait(context.Background()) })
				}
				return 41
			},
			release: func(t *testing.T, r *Replica, _ string, _ *time.Time) {
				if _, err := r.Pull(context.Background(), &zppb.BinlogPullRequest{Slave: "s", FromLsn: 81, PrevTerm: 1, AckedLsn: 80}); err != nil {
					t.Fatal(err)
				}
				if _, _, applied := r.Position(); applied != 80 {
					t.Fatalf("applied %d after the acknowledgement, want 80", applied)
				}
				flushDB(t, r)
			},
		},
		{
			name: "max age", policy: PurgePolicy{MaxAge: time.Hour, MinSegments: 1},
			hold: func(*testing.T, *Replica, string, *time.Time) uint64 { return 1 },
			release: func(t *testing.T, _ *Replica, dir string, _ *time.Time) {
				old := time.Now().Add(-2 * time.Hour)
				files, err := filepath.Glob(filepath.Join(dir, "binlog", "*"))
				if err != nil || len(files) == 0 {
					t.Fatalf("segment files: %v, %v", files, err)
				}
				for _, f := range files {
					if err := os.Chtimes(f, old, old); err != nil {
						t.Fatal(err)
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, dir, now := purgeFixture(t)
			keep := tt.hold(t, r, dir, now)
			if _, err := r.Purge(tt.policy); err != nil {
				t.Fatal(err)
			}
			if first := r.FirstLSN(); first > keep {
				t.Fatalf("purged up to lsn %d while the rule keeps %d", first, keep)
			}
			tt.release(t, r, dir, now)
			if _, err := r.Purge(tt.policy); err != nil {
				t.Fatal(err)
			}
			if first := r.FirstLSN(); first <= keep {
				t.Fatalf("first lsn %d after the rule ended; want past %d", first, keep)
			}
		})
	}
}
