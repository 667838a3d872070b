package replica

import (
	"context"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestWaitMaster: a TRYSYNC that meets a replica without its master role
// yet waits for SetRole to give it, and gives up at its bound, when its
// context ends, when the role given is not master's, or when the replica
// closes.
func TestWaitMaster(t *testing.T) {
	shared := newShared(t)
	for _, tc := range []struct {
		name string
		// then happens 50 ms into the wait (nil: nothing).
		then  func(r *Replica, cancel context.CancelFunc)
		bound time.Duration
		want  bool
	}{
		{"role comes", func(r *Replica, _ context.CancelFunc) {
			r.SetRole(Assignment{Role: Master, Master: "self", Term: 2})
		}, 10 * time.Second, true},
		{"slave role comes, then the bound", func(r *Replica, _ context.CancelFunc) {
			r.SetRole(Assignment{Role: Slave, Master: "other:1", Term: 2})
		}, 300 * time.Millisecond, false},
		{"bound", nil, 100 * time.Millisecond, false},
		{"context ends", func(_ *Replica, cancel context.CancelFunc) { cancel() }, 10 * time.Second, false},
		{"replica closes", func(r *Replica, _ context.CancelFunc) { r.Close() }, 10 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := openReplica(t, t.TempDir(), shared, nil)
			defer r.Close()
			req := &zppb.TrySyncRequest{Table: "t", Partition: 3, Slave: "slave:1"}
			if _, err := r.TrySync(req); err == nil {
				t.Fatal("TRYSYNC answered by a replica without a role")
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.then != nil {
				time.AfterFunc(50*time.Millisecond, func() { tc.then(r, cancel) })
			}
			start := time.Now()
			got := r.WaitMaster(ctx, tc.bound)
			if got != tc.want {
				t.Fatalf("WaitMaster = %v after %v, want %v", got, time.Since(start), tc.want)
			}
			if tc.want {
				if _, err := r.TrySync(req); err != nil {
					t.Fatalf("TRYSYNC after the wait: %v", err)
				}
			}
		})
	}
}
