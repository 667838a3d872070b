package dbsync

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkRun measures a full sync of a ~100 MB DB over TCP on loopback:
// everything fetched (with and without pipelining), and everything reused
// from the live DB (with the slave's checksum cache warm, as after an
// earlier sync in the same process, and cold, as after a restart).
func BenchmarkRun(b *testing.B) {
	s := newShared(b)
	m := newMaster(b, s, SourceOptions{})
	write(b, m.db, 1, 0, 25000, 64, 4000, 1) // 100 MB of incompressible values
	// Settle the LSM, so that no background compaction rewrites the table
	// files between syncs (which would make "reuse" fetch them all).
	if err := m.db.Compact(); err != nil {
		b.Fatal(err)
	}

	// A slave that has the same DB, for the reuse cases.
	synced := newSlave(b, s)
	if _, err := Run(context.Background(), synced.opts(b, m.dial(b))); err != nil {
		b.Fatal(err)
	}
	synced.install(b)

	for _, bc := range []struct {
		name   string
		slave  *slave
		window int
		cold   bool
	}{
		{"fetch", nil, 0, false},
		{"fetch-window1", nil, 1, false},
		{"reuse", synced, 0, false},
		{"reuse-cold", synced, 0, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			sl := bc.slave
			if sl == nil {
				sl = &slave{dir: b.TempDir()} // no live DB
			}
			conn := m.dial(b)
			var res Result
			for range b.N {
				b.StopTimer()
				if err := os.RemoveAll(filepath.Join(sl.dir, StagingDir)); err != nil {
					b.Fatal(err)
				}
				if bc.cold {
					localSums = newSumCache(defaultCacheEntries)
				}
				b.StartTimer()
				opts := sl.opts(b, conn)
				opts.Window = bc.window
				var err error
				if res, err = Run(context.Background(), opts); err != nil {
					b.Fatal(err)
				}
			}
			if bc.slave != nil && res.BytesFetched*10 > res.BytesTotal {
				b.Fatalf("reuse fetched %d of %d bytes", res.BytesFetched, res.BytesTotal)
			}
			b.SetBytes(int64(res.BytesTotal))
			b.ReportMetric(float64(res.BytesFetched)/(1<<20), "MB-fetched/op")
		})
	}
}
