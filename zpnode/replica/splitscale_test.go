package replica

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestSplitScale measures a split of a replica of a million keys (100-byte
// values): the checkpoint, each half's trim (the walk over the key space
// and its tombstones, which a slot-prefixed key layout would replace by
// one range tombstone) and the compaction that gives the space back, for
// keys without hashtags (a point tombstone per deleted key) and keys in
// hashtag groups of ten (a range tombstone per deleted group). It asserts
// nothing about time. Run it with
//
//	ZP_SCALE=1 go test -run TestSplitScale -v ./zpnode/replica
func TestSplitScale(t *testing.T) {
	if testing.Short() || os.Getenv("ZP_SCALE") != "1" {
		t.Skip("scale measurement: ZP_SCALE=1 go test -run TestSplitScale -v ./zpnode/replica")
	}
	for _, group := range []int{1, 10} {
		t.Run(fmt.Sprintf("group%d", group), func(t *testing.T) { splitScale(t, 1_000_000, 100, group) })
	}
}

func splitScale(t *testing.T, n, size, group int) {
	shared, err := engine.NewShared(engine.SharedOptions{BlockCacheSize: 64 << 20, WriteBufferSize: 128 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	quiet := slog.New(slog.DiscardHandler)
	r, err := Open(Options{Dir: filepath.Join(t.TempDir(), "3"), Table: "t", ID: 3, Shared: shared, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 1})
	rng := rand.New(rand.NewPCG(3, 4))
	keyOf := func(j int) []byte {
		if group > 1 {
			return fmt.Appendf(nil, "{g%d}:%d", j/group, j)
		}
		return fmt.Appendf(nil, "key:%d", j)
	}
	value := func() []byte {
		v := make([]byte, size)
		for b := range v {
			v[b] = byte(rng.Uint32())
		}
		return v
	}
	start := time.Now()
	const perRecord = 1000
	for i := 0; i < n; i += perRecord {
		rec := &zppb.WriteRecord{}
		for j := i; j < min(i+perRecord, n); j++ {
			rec.Mutations = append(rec.Mutations, &zppb.Mutation{Kind: zppb.Mutation_PUT, Key: keyOf(j), Value: value()})
		}
		if err := r.Write(context.Background(), nil, rec); err != nil {
			t.Fatal(err)
		}
	}
	compact := func(r *Replica) time.Duration {
		t0 := time.Now()
		if err := r.WithDB(func(db *engine.DB) error {
			if err := db.Flush(); err != nil {
				return err
			}
			return db.Compact()
		}); err != nil {
			t.Fatal(err)
		}
		return time.Since(t0)
	}
	compact(r)
	t.Logf("wrote %d keys (hashtag groups of %d) in %v", n, group, time.Since(start).Round(time.Millisecond))
	before := sstBytes(t, r)
	// Writes since the last flush (overwrites: the space stays), in the
	// memtable: the checkpoint flushes them with writes held off.
	for range 20 {
		rec := &zppb.WriteRecord{}
		for range perRecord {
			rec.Mutations = append(rec.Mutations, &zppb.Mutation{Kind: zppb.Mutation_PUT, Key: keyOf(rng.IntN(n)), Value: value()})
		}
		if err := r.Write(context.Background(), nil, rec); err != nil {
			t.Fatal(err)
		}
	}

	// Split's two steps, timed apart: the first holds writes off.
	term, lsn, _ := r.Position()
	childOpts := Options{Dir: filepath.Join(filepath.Dir(r.opts.Dir), "4"), Table: "t", ID: 4, Shared: shared, Logger: quiet}
	t0 := time.Now()
	if err := r.stageSplit(term, lsn, childOpts.Dir); err != nil {
		t.Fatal(err)
	}
	tHeld := time.Since(t0)
	t0 = time.Now()
	c, err := Open(childOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tOpen := time.Since(t0)

	trim := func(r *Replica, begin, end uint32) (engine.TrimStats, time.Duration) {
		var st engine.TrimStats
		if err := r.WithDB(func(db *engine.DB) error {
			var err error
			st, err = db.DeleteSlotsOutside(context.Background(), begin, end)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return st, compact(r)
	}
	const mid = keyspace.Slots / 2
	stP, cP := trim(r, 0, mid)
	stC, cC := trim(c, mid, keyspace.Slots)
	after := sstBytes(t, r, c)
	t.Logf("split: writes held off %v (flush of 20,000 writes, checkpoint); the new replica opened in %v", tHeld.Round(time.Microsecond), tOpen.Round(time.Microsecond))
	t.Logf("trim parent: %d keys examined, %d point + %d range tombstones in %v (%.0f keys/s); compaction %v",
		stP.Examined, stP.Keys, stP.Groups, stP.Took.Round(time.Millisecond), float64(stP.Examined)/stP.Took.Seconds(), cP.Round(time.Millisecond))
	t.Logf("trim child: %d keys examined, %d point + %d range tombstones in %v; compaction %v",
		stC.Examined, stC.Keys, stC.Groups, stC.Took.Round(time.Millisecond), cC.Round(time.Millisecond))
	t.Logf("table files: %d bytes before, %d after (%+.1f%%)", before, after, 100*float64(after-before)/float64(before))
}
