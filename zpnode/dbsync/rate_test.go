package dbsync

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestFetchRate: with a rate set, fetches together serve no more than
// the rate allows: a burst of one MaxChunkSize passes, a fetch that would
// have to wait past its deadline fails at once without serving, and
// lifting the limit (rate 0) serves it.
func TestFetchRate(t *testing.T) {
	s := newShared(t)
	m := newMaster(t, s, SourceOptions{})
	write(t, m.db, 2, 0, 3000, 100, 4000, 1) // ~12 MB, flushed to files
	flush(t, m.db)
	ctx := context.Background()
	start, err := m.src.Start(ctx, testTable, testPart, m.db)
	if err != nil {
		t.Fatal(err)
	}
	defer m.src.End(start.Session)
	var big *zppb.SyncFile
	for _, f := range start.Files {
		if big == nil || f.Size > big.Size {
			big = f
		}
	}
	if big.Size < 2*MaxChunkSize {
		t.Fatalf("largest file %d bytes; want at least two chunks", big.Size)
	}
	fetch := func(off uint64, timeout time.Duration) error {
		fctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		_, err := m.src.Fetch(fctx, &zppb.FullSyncFetchRequest{Table: testTable, Partition: testPart, Session: start.Session,
			Name: big.Name, Offset: off, Length: MaxChunkSize})
		return err
	}

	m.src.SetRate(1 << 20)
	if got := m.src.Rate(); got != 1<<20 {
		t.Fatalf("Rate() = %d after SetRate(1 MiB)", got)
	}
	if err := fetch(0, 5*time.Second); err != nil {
		t.Fatalf("first chunk, within the burst: %v", err)
	}
	// The next 4 MiB at 1 MiB/s need about 4 s: more than the deadline.
	err = fetch(MaxChunkSize, time.Second)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, errRateWait) {
		t.Fatalf("second chunk at 1 MiB/s with 1 s left: %v; want the rate limit's refusal", err)
	}
	m.src.SetRate(0)
	if got := m.src.Rate(); got != 0 {
		t.Fatalf("Rate() = %d after SetRate(0)", got)
	}
	if err := fetch(MaxChunkSize, 5*time.Second); err != nil {
		t.Fatalf("second chunk, unlimited: %v", err)
	}
}
