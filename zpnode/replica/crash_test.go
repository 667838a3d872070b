package replica

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/binlog"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
)

// TestMachineCrashCutsBinlogToDurablePoint simulates a machine crash under
// each binlog fsync policy: the binlog keeps only what was fsynced, while
// RocksDB had flushed (and synced) table files holding every write. Under
// interval and none that leaves the binlog behind the DB; the replica must
// then keep every write the DB holds and number new records after the DB's
// applied lsn, durably across a further reopen (docs/durability.md).
func TestMachineCrashCutsBinlogToDurablePoint(t *testing.T) {
	const n = 50
	tests := []struct {
		policy binlog.SyncPolicy
		// wantBehind: the binlog loses a tail the DB holds.
		wantBehind bool
	}{
		{binlog.SyncAlways, false},
		{binlog.SyncInterval, true},
		{binlog.SyncNone, true},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			dir, shared := t.TempDir(), newShared(t)
			// An interval longer than the test: nothing is synced in the
			// background, as in the moments before a crash.
			opts := Options{Dir: dir, Table: "t", ID: 3, Shared: shared, Binlog: binlog.Options{Sync: tt.policy, SyncInterval: time.Hour}}
			r, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			r.SetRole(Assignment{Role: Master, Master: "self", Term: 1})
			ctx := context.Background()
			for i := range n {
				if err := r.Write(ctx, nil, put(fmt.Sprintf("k%d", i), "v", 0)); err != nil {
					t.Fatal(err)
				}
			}
			durable := r.log.Durable()
			if behind := durable < n; behind != tt.wantBehind {
				t.Fatalf("durable lsn %d of %d written", durable, n)
			}
			if err := r.WithDB(func(db *engine.DB) error { return db.Flush() }); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			// The crash: what was not fsynced never reached the disk.
			log, err := binlog.Open(filepath.Join(dir, "binlog"), binlog.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := log.TruncateAfter(durable); err != nil {
				t.Fatal(err)
			}
			if err := log.Close(); err != nil {
				t.Fatal(err)
			}

			r, err = Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			if term, lsn, applied := r.Position(); term != 1 || lsn != n || applied != n {
				t.Fatalf("after the crash at (%d, %d) applied %d; want (1, %d) applied %d", term, lsn, applied, n, n)
			}
			for i := range n {
				if _, _, err := r.Get([]byte(fmt.Sprintf("k%d", i))); err != nil {
					t.Fatalf("k%d after the crash: %v", i, err)
				}
			}
			r.SetRole(Assignment{Role: Master, Master: "self", Term: 2})
			if err := r.Write(ctx, nil, put("next", "v", 0)); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			r, err = Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if term, lsn, applied := r.Position(); term != 2 || lsn != n+1 || applied != n+1 {
				t.Fatalf("after a write and a reopen at (%d, %d) applied %d; want (2, %d) applied %d", term, lsn, applied, n+1, n+1)
			}
			if _, _, err := r.Get([]byte("next")); err != nil {
				t.Fatalf("write after the crash: %v", err)
			}
		})
	}
}
