package replica

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestRetryIsNotAppliedTwice: a write retried with the same request id after
// later writes does not overwrite them, on the master that took it and on a
// slave promoted after replicating it; the first answer is given again.
func TestRetryIsNotAppliedTwice(t *testing.T) {
	shared := newShared(t)
	ctx := context.Background()
	m := openReplica(t, t.TempDir(), shared, nil)
	defer m.Close()
	m.SetRole(Assignment{Role: Master, Master: "m", Term: 1})

	incr := func(r *Replica, id string) (int64, error) {
		return r.Update(ctx, []byte(id), func(v View) (*zppb.WriteRecord, error) {
			rec := put("n", "", 0)
			n := int64(0)
			if cur, _, err := v.Get([]byte("n")); err == nil {
				n = int64(len(cur))
			}
			rec.Mutations[0].Value = make([]byte, n+1) // the value's length is the count
			rec.Result = n + 1
			return rec, nil
		})
	}
	if got, err := incr(m, "req-1"); err != nil || got != 1 {
		t.Fatalf("first increment: %d, %v", got, err)
	}
	if got, err := incr(m, "req-2"); err != nil || got != 2 {
		t.Fatalf("second increment: %d, %v", got, err)
	}
	// The answer to req-1 was lost; the client retries it.
	if got, err := incr(m, "req-1"); err != nil || got != 1 {
		t.Fatalf("retried increment answered %d, %v; want the first answer, 1", got, err)
	}
	if v, _, _ := m.Get([]byte("n")); len(v) != 2 {
		t.Fatalf("count %d after a retry, want 2", len(v))
	}

	// A slave that replicated the records recognises the retry once promoted.
	s := openReplica(t, t.TempDir(), shared, nil)
	defer s.Close()
	pr, err := m.Pull(ctx, &zppb.BinlogPullRequest{Slave: "s", FromLsn: 1, PrevTerm: 0})
	if err != nil || len(pr.Records) != 2 {
		t.Fatalf("pull: %v, %v", pr, err)
	}
	s.SetRole(Assignment{Role: Slave, Term: 1}) // no master to dial: the test feeds it
	if err := s.applyReplicated(context.Background(), nil, pr.Records); err != nil {
		t.Fatal(err)
	}
	s.SetRole(Assignment{Role: Master, Master: "s", Term: 2})
	if got, err := incr(s, "req-2"); err != nil || got != 2 {
		t.Fatalf("retry on the promoted slave answered %d, %v; want 2", got, err)
	}
	if got, err := incr(s, "req-3"); err != nil || got != 3 {
		t.Fatalf("new increment on the promoted slave: %d, %v", got, err)
	}
}

// getSet is a GETSET: it stores value and answers the old one.
func getSet(key, value string) func(View) (*zppb.WriteRecord, error) {
	return func(v View) (*zppb.WriteRecord, error) {
		rec := put(key, value, 0)
		if old, _, err := v.Get([]byte(key)); err == nil {
			rec.Result, rec.ResultValue = 1, old
		}
		return rec, nil
	}
}

// TestRetryGetsTheValueAnswerBack: a retry of a write whose answer is a
// value (GETSET) is answered with the first attempt's value, read back from
// the binlog, on the master, after a reopen (dedup rebuilt by replay) and
// on a promoted slave; it is not applied again. A refusal (no mutations)
// answers what fn returned and writes nothing.
func TestRetryGetsTheValueAnswerBack(t *testing.T) {
	shared := newShared(t)
	ctx := context.Background()
	dir := t.TempDir()
	m := openReplica(t, dir, shared, nil)
	m.SetRole(Assignment{Role: Master, Master: "m", Term: 1})

	check := func(r *Replica, id, value string, want Answer) {
		t.Helper()
		got, err := r.UpdateAnswer(ctx, []byte(id), getSet("k", value))
		if err != nil || got.Result != want.Result || string(got.Value) != string(want.Value) || got.Wrote != want.Wrote {
			t.Fatalf("%s: answer %+v, %v; want %+v", id, got, err, want)
		}
	}
	check(m, "a", "v1", Answer{Wrote: true})
	check(m, "b", "v2", Answer{Result: 1, Value: []byte("v1"), Wrote: true})
	check(m, "b", "v3", Answer{Result: 1, Value: []byte("v1"), Wrote: true}) // retry: not applied
	check(m, "a", "v4", Answer{Wrote: true})
	if v, _, _ := m.Get([]byte("k")); string(v) != "v2" {
		t.Fatalf("value %q after retries, want v2", v)
	}

	refused, err := m.UpdateAnswer(ctx, []byte("c"), func(View) (*zppb.WriteRecord, error) {
		return &zppb.WriteRecord{Result: 7, ResultValue: []byte("no")}, nil
	})
	if err != nil || refused.Wrote || refused.Result != 7 || string(refused.Value) != "no" {
		t.Fatalf("refusal answered %+v, %v", refused, err)
	}
	if _, last, _ := m.Position(); last != 2 {
		t.Fatalf("last lsn %d, want 2: retries and refusals write nothing", last)
	}

	// Reopened, the dedup is rebuilt from the binlog.
	m.Close()
	m = openReplica(t, dir, shared, nil)
	defer m.Close()
	m.SetRole(Assignment{Role: Master, Master: "m", Term: 2})
	check(m, "b", "v5", Answer{Result: 1, Value: []byte("v1"), Wrote: true})

	// A slave that replicated the records answers the retry once promoted.
	s := openReplica(t, t.TempDir(), shared, nil)
	defer s.Close()
	pr, err := m.Pull(ctx, &zppb.BinlogPullRequest{Slave: "s", FromLsn: 1, PrevTerm: 0})
	if err != nil || len(pr.Records) != 2 {
		t.Fatalf("pull: %v, %v", pr, err)
	}
	s.SetRole(Assignment{Role: Slave, Term: 2})
	if err := s.applyReplicated(context.Background(), nil, pr.Records); err != nil {
		t.Fatal(err)
	}
	s.SetRole(Assignment{Role: Master, Master: "s", Term: 3})
	check(s, "b", "v6", Answer{Result: 1, Value: []byte("v1"), Wrote: true})
	check(s, "d", "v7", Answer{Result: 1, Value: []byte("v2"), Wrote: true})
}

// TestRetryAnsweredAfterReopen: the request ids a replica remembers are
// rebuilt from its binlog when it opens, on the master that took the writes
// and on a slave that replicated them, so a retry after a restart (or a
// failover to a restarted slave) is answered, not written again.
func TestRetryAnsweredAfterReopen(t *testing.T) {
	shared := newShared(t)
	ctx := context.Background()
	mdir, sdir := t.TempDir(), t.TempDir()
	m := openReplica(t, mdir, shared, nil)
	m.SetRole(Assignment{Role: Master, Master: "m", Term: 1})
	for i, id := range []string{"req-1", "req-2"} {
		if got, err := writeWithResult(ctx, m, id, "n", fmt.Sprint(i+1), int64(i+1)); err != nil || got != int64(i+1) {
			t.Fatalf("%s: %d, %v", id, got, err)
		}
	}
	s := openReplica(t, sdir, shared, nil)
	pr, err := m.Pull(ctx, &zppb.BinlogPullRequest{Slave: "s", FromLsn: 1, PrevTerm: 0})
	if err != nil || len(pr.Records) != 2 {
		t.Fatalf("pull: %v, %v", pr, err)
	}
	s.SetRole(Assignment{Role: Slave, Term: 1}) // no master to dial: the test feeds it
	if err := s.applyReplicated(context.Background(), nil, pr.Records); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Replica{m, s} {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}

	for _, dir := range []string{mdir, sdir} {
		r := openReplica(t, dir, shared, nil)
		r.SetRole(Assignment{Role: Master, Master: "self", Term: 2})
		if got, err := writeWithResult(ctx, r, "req-1", "n", "retried", 99); err != nil || got != 1 {
			t.Errorf("%s: retry of req-1 after reopen answered %d, %v; want the first answer 1", dir, got, err)
		}
		if v, _, err := r.Get([]byte("n")); err != nil || string(v) != "2" {
			t.Errorf("%s: n = %q, %v after the retry; want 2", dir, v, err)
		}
		if _, lsn, _ := r.Position(); lsn != 2 {
			t.Errorf("%s: lsn %d after the retry; want 2, nothing written", dir, lsn)
		}
		r.Close()
	}
}

// TestDedupRemembersTheLatest: the ring keeps the last dedupSize ids, each
// with its own record's lsn; truncate forgets the records the binlog lost
// and their ids can be remembered again; ids that are empty or over
// MaxRequestIDSize are not remembered.
func TestDedupRemembersTheLatest(t *testing.T) {
	id := func(i int) []byte { return []byte(fmt.Sprintf("req-%08d", i)) }
	var d dedup
	const extra = 1000
	for i := 1; i <= dedupSize+extra; i++ {
		d.add(id(i), uint64(i), &zppb.WriteRecord{Result: int64(i)})
	}
	if d.slots != dedupSize || len(d.ring)*dedupChunk != dedupSize || len(d.index) != dedupSize {
		t.Fatalf("ring %d slots in %d chunks, index %d after %d adds; want %d", d.slots, len(d.ring), len(d.index), dedupSize+extra, dedupSize)
	}
	for _, tt := range []struct {
		i    int
		want bool
	}{{1, false}, {extra, false}, {extra + 1, true}, {dedupSize, true}, {dedupSize + extra, true}} {
		e, ok := d.get(id(tt.i))
		if ok != tt.want || (ok && (e.lsn != uint64(tt.i) || e.result != int64(tt.i))) {
			t.Errorf("get(%d) = %+v, %v; want found=%v with lsn and result %d", tt.i, e, ok, tt.want, tt.i)
		}
	}

	last := uint64(dedupSize + extra)
	d.truncate(last - 10)
	if _, ok := d.get(id(int(last))); ok {
		t.Errorf("id of lsn %d still remembered after truncate(%d)", last, last-10)
	}
	if _, ok := d.get(id(int(last - 10))); !ok {
		t.Errorf("id of lsn %d forgotten by truncate(%d)", last-10, last-10)
	}
	d.add(id(int(last)), last-9, &zppb.WriteRecord{Result: 7})
	if e, ok := d.get(id(int(last))); !ok || e.lsn != last-9 || e.result != 7 {
		t.Errorf("id logged again after truncate: %+v, %v; want lsn %d", e, ok, last-9)
	}

	for _, bad := range [][]byte{nil, make([]byte, MaxRequestIDSize+1)} {
		d.add(bad, last, &zppb.WriteRecord{})
		if _, ok := d.get(bad); ok {
			t.Errorf("id of %d bytes remembered", len(bad))
		}
	}
	if _, ok := d.get(id(0)); ok {
		t.Error("an id never added is found")
	}
}

// TestDedupMemory: a full ring costs under 100 bytes per remembered id. A
// node remembers dedupSize ids for each busy replica (a million for 16
// partitions); ids held as strings in a map and a ring cost 135.
func TestDedupMemory(t *testing.T) {
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	var d dedup
	id := make([]byte, 16)
	for i := 1; i <= dedupSize; i++ {
		binary.BigEndian.PutUint64(id[8:], uint64(i))
		d.add(id, uint64(i), &zppb.WriteRecord{})
	}
	after := heap()
	runtime.KeepAlive(&d)
	if per := float64(after-before) / dedupSize; after < before || per >= 100 {
		t.Fatalf("%.0f bytes per remembered id (heap %d -> %d); want under 100", per, before, after)
	} else {
		t.Logf("%.0f bytes per remembered id", per)
	}
}
