package runner

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/zeppelin-kv/zeppelin/zpbench/target"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// fakeTarget answers in memory. fail, when set, decides the outcome of each
// operation by its sequence number.
type fakeTarget struct {
	mode  target.Pipelining
	fail  func(n int64) error
	calls atomic.Int64
	ops   atomic.Int64
	// batchSizes counts Do calls by number of operations.
	mu         sync.Mutex
	batchSizes map[int]int
	keys       map[string]int
	// onDo, when set, runs at the start of every Do.
	onDo func(s *fakeSession)
}

func newFake(mode target.Pipelining) *fakeTarget {
	return &fakeTarget{mode: mode, batchSizes: map[int]int{}, keys: map[string]int{}}
}

func (f *fakeTarget) Kind() string                  { return "fake" }
func (f *fakeTarget) Name() string                  { return "fake" }
func (f *fakeTarget) Pipelining() target.Pipelining { return f.mode }
func (f *fakeTarget) Close() error                  { return nil }
func (f *fakeTarget) NewSession(context.Context) (target.Session, error) {
	return &fakeSession{f: f}, nil
}

type fakeSession struct {
	f        *fakeTarget
	inflight atomic.Int64
}

func (s *fakeSession) Close() error { return nil }

func (s *fakeSession) Do(ctx context.Context, ops []*workload.Op, out []target.Outcome) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	f := s.f
	f.calls.Add(1)
	if f.onDo != nil {
		f.onDo(s)
	}
	f.mu.Lock()
	f.batchSizes[len(ops)]++
	for _, op := range ops {
		if op.Kind == workload.MSet {
			for _, k := range op.Keys {
				f.keys[string(k)]++
			}
		}
	}
	f.mu.Unlock()
	for i := range ops {
		n := f.ops.Add(1)
		out[i] = target.Outcome{}
		if f.fail != nil {
			out[i].Err = f.fail(n)
		}
	}
}
