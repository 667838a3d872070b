package replica

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// delIfPresent is the node's DEL: it deletes key when the view has it and
// writes nothing otherwise, answering how many keys it deleted.
func delIfPresent(key string) func(View) (*zppb.WriteRecord, error) {
	return func(v View) (*zppb.WriteRecord, error) {
		if _, _, err := v.Get([]byte(key)); errors.Is(err, engine.ErrNotFound) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		return &zppb.WriteRecord{Mutations: []*zppb.Mutation{{Kind: zppb.Mutation_DELETE, Key: []byte(key)}}, Result: 1}, nil
	}
}

var errNotInteger = errors.New("not an integer")

// incr adds one to key's integer value, refusing a value that is not one.
func incr(key string) func(View) (*zppb.WriteRecord, error) {
	return func(v View) (*zppb.WriteRecord, error) {
		cur, _, err := v.Get([]byte(key))
		var n int64
		if err == nil {
			if n, err = strconv.ParseInt(string(cur), 10, 64); err != nil {
				return nil, errNotInteger
			}
		} else if !errors.Is(err, engine.ErrNotFound) {
			return nil, err
		}
		return &zppb.WriteRecord{Mutations: []*zppb.Mutation{{Kind: zppb.Mutation_PUT, Key: []byte(key), Value: strconv.AppendInt(nil, n+1, 10)}}, Result: n + 1}, nil
	}
}

// logged waits until the binlog holds lsn.
func logged(t *testing.T, r *Replica, lsn uint64) {
	t.Helper()
	testcluster.Poll(t, 10*time.Second, func() error {
		if _, last, _ := r.Position(); last < lsn {
			return fmt.Errorf("binlog at lsn %d, want %d", last, lsn)
		}
		return nil
	})
}

// TestAnswersWaitForTheWritesTheyRead is the race behind a DEL that said a
// key did not exist while a GET still found it: with min_sync_replicas=1 a
// DELETE waits in the binlog for a slave; a DEL of the same key that writes
// nothing because the DELETE hides the key must not answer before the
// DELETE commits, and must fail when it fails. The same holds for a
// refusal built on an uncommitted value (INCR of a pending non-integer).
func TestAnswersWaitForTheWritesTheyRead(t *testing.T) {
	tests := []struct {
		name    string
		pending *zppb.WriteRecord // written first, waits for a slave
		fn      func(View) (*zppb.WriteRecord, error)
		wantErr error // the answer once the pending write commits
	}{
		{"DEL after a pending DELETE", &zppb.WriteRecord{Mutations: []*zppb.Mutation{{Kind: zppb.Mutation_DELETE, Key: []byte("k5-0")}}}, delIfPresent("k5-0"), nil},
		{"DEL after a pending CLEAR", clearRecord(), delIfPresent("k5-1"), nil},
		{"INCR of a pending non-integer", put("k5-2", "x", 0), incr("k5-2"), errNotInteger},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, outcome := range []string{"committed", "demoted"} {
				t.Run(outcome, func(t *testing.T) {
					r := masterWithTerms(t) // k5-0 .. k5-9 committed at lsn 21-30
					r.SetRole(Assignment{Role: Master, Master: "self", Term: 5, Slaves: []string{"s"}, MinSync: 1})
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					pending := make(chan error, 1)
					go func() { pending <- r.Write(ctx, nil, tt.pending) }()
					logged(t, r, 31)

					// While the slave has not acknowledged lsn 31 the answer
					// cannot be given: the call runs out of time instead.
					short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
					_, err := r.Update(short, nil, tt.fn)
					cancelShort()
					if !errors.Is(err, ErrNotEnoughReplicas) || !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("answer before the pending write committed: %v, want ErrNotEnoughReplicas", err)
					}

					answer := make(chan error, 1)
					go func() {
						_, err := r.Update(ctx, nil, tt.fn)
						answer <- err
					}()
					switch outcome {
					case "committed":
						if _, err := r.Pull(ctx, &zppb.BinlogPullRequest{Slave: "s", FromLsn: 32, PrevTerm: 5, AckedLsn: 31}); err != nil {
							t.Fatal(err)
						}
						if err := <-pending; err != nil {
							t.Fatalf("pending write: %v", err)
						}
						if err := <-answer; !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
							t.Fatalf("answer after the write it read committed: %v, want %v", err, tt.wantErr)
						}
					case "demoted":
						// Another node takes the partition: the pending write
						// fails, and so does the answer that rested on it.
						r.SetRole(Assignment{Role: Slave, Term: 6})
						if err := <-pending; !errors.Is(err, ErrNotMaster) {
							t.Fatalf("pending write after demotion: %v, want ErrNotMaster", err)
						}
						if err := <-answer; !errors.Is(err, ErrNotMaster) {
							t.Fatalf("answer after the write it read failed: %v, want ErrNotMaster", err)
						}
					}
				})
			}
		})
	}
}

// TestAnswersFromCommittedDataDoNotWait: a call that writes nothing and
// read only committed data answers at once, even while other keys' writes
// wait for slaves.
func TestAnswersFromCommittedDataDoNotWait(t *testing.T) {
	r := masterWithTerms(t)
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 5, Slaves: []string{"s"}, MinSync: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go r.Write(ctx, nil, put("other", "1", 0))
	logged(t, r, 31)
	short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
	defer cancelShort()
	n, err := r.Update(short, nil, delIfPresent("absent"))
	if err != nil || n != 0 {
		t.Fatalf("DEL of a key no write touches: %d, %v; want 0, nil at once", n, err)
	}
}
