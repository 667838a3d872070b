package replica

import (
	"context"
	"fmt"
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
	if err := s.applyReplicated(pr.Records); err != nil {
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
	if err := s.applyReplicated(pr.Records); err != nil {
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
	if err := s.applyReplicated(pr.Records); err != nil {
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
