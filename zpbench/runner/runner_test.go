package runner

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpbench/target"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

func newWorkload(t *testing.T, name string) *workload.Workload {
	t.Helper()
	w, err := workload.New(workload.Params{Name: name, Records: 1000, ValueSize: 10, Batch: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func run(t *testing.T, tg target.Target, wl *workload.Workload, cfg Config, p Phase) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := New(ctx, tg, wl, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := r.Run(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestOpCount checks that an operation-bounded phase measures exactly that
// many operations, however they are spread over workers and pipelines, and
// that the warm-up's operations are not among them.
func TestOpCount(t *testing.T) {
	tests := []struct {
		name string
		mode target.Pipelining
		cfg  Config
		p    Phase
	}{
		{"one worker", target.Window, Config{Conns: 1}, Phase{Ops: 1000}},
		{"window pipeline", target.Window, Config{Conns: 3, Workers: 7, Pipeline: 4}, Phase{Ops: 1001}},
		{"batch pipeline", target.Batch, Config{Conns: 2, Pipeline: 16}, Phase{Ops: 1001}},
		{"warm-up", target.Window, Config{Conns: 2, Pipeline: 2}, Phase{Warmup: 250 * time.Millisecond, Ops: 500}},
	}
	// The warm-up is long enough for its workers to be scheduled on a
	// loaded machine: at 20 ms, CI once saw a warm-up run no operation.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(tt.mode)
			res := run(t, f, newWorkload(t, "ycsb-a"), tt.cfg, tt.p)
			if res.Ops != tt.p.Ops || res.Errors != 0 {
				t.Fatalf("measured %d operations, %d errors; want %d, 0", res.Ops, res.Errors, tt.p.Ops)
			}
			if got := res.All.TotalCount(); got != tt.p.Ops {
				t.Errorf("histogram holds %d latencies", got)
			}
			byKind := res.ByKind[workload.Get].TotalCount() + res.ByKind[workload.Set].TotalCount()
			if byKind != tt.p.Ops {
				t.Errorf("per-kind histograms hold %d latencies", byKind)
			}
			if tt.p.Warmup > 0 && f.ops.Load() <= tt.p.Ops {
				t.Errorf("target saw %d operations: no warm-up ran", f.ops.Load())
			}
			if res.Elapsed <= 0 || res.Throughput() <= 0 {
				t.Errorf("elapsed %v, throughput %v", res.Elapsed, res.Throughput())
			}
		})
	}
}

// TestBatchSizes checks that a batch target gets Pipeline operations per
// call (the last batch of a bounded run may be short).
func TestBatchSizes(t *testing.T) {
	f := newFake(target.Batch)
	run(t, f, newWorkload(t, "get"), Config{Conns: 1, Pipeline: 8}, Phase{Ops: 8 * 50})
	if f.batchSizes[8] != 50 || len(f.batchSizes) != 1 {
		t.Fatalf("batch sizes %v, want 50 calls of 8", f.batchSizes)
	}
}

// TestWindowKeepsPipelineInFlight makes every call wait until the session
// has Pipeline calls in flight: a runner that did not pipeline would never
// get there, and the calls would time out instead.
func TestWindowKeepsPipelineInFlight(t *testing.T) {
	const depth = 4
	f := newFake(target.Window)
	reached := make(chan struct{})
	var once sync.Once
	f.onDo = func(s *fakeSession) {
		if s.inflight.Load() == depth {
			once.Do(func() { close(reached) })
		}
		select {
		case <-reached:
		case <-time.After(10 * time.Second):
		}
	}
	res := run(t, f, newWorkload(t, "get"), Config{Conns: 1, Pipeline: depth}, Phase{Ops: 100})
	select {
	case <-reached:
	default:
		t.Fatalf("never had %d calls in flight on the session", depth)
	}
	if res.Ops != 100 {
		t.Fatalf("measured %d operations", res.Ops)
	}
}

func TestErrorsByCode(t *testing.T) {
	f := newFake(target.Window)
	f.fail = func(n int64) error {
		switch {
		case n%10 == 0:
			return fmt.Errorf("node x: %w", status.New(zppb.Code_WAIT, "partition busy"))
		case n%25 == 1:
			return context.DeadlineExceeded
		}
		return nil
	}
	res := run(t, f, newWorkload(t, "set"), Config{Conns: 1}, Phase{Ops: 1000})
	want := map[string]int64{"WAIT": 100, target.CodeTimeout: 40}
	for code, n := range want {
		if res.ErrorsByCode[code] != n {
			t.Errorf("%s: %d errors, want %d (all: %v)", code, res.ErrorsByCode[code], n, res.ErrorsByCode)
		}
	}
	if res.Errors != 140 || res.ErrorRate() != 0.14 {
		t.Errorf("errors %d, rate %v", res.Errors, res.ErrorRate())
	}
	if res.All.TotalCount() != 860 {
		t.Errorf("%d latencies recorded, want the 860 successes", res.All.TotalCount())
	}
	if res.ErrorSamples["WAIT"] == "" {
		t.Error("no sample message for WAIT")
	}
}

// TestRateLimitedRun runs against an instant target for a bounded time at
// a fixed rate. However fast or slow the machine, the operations started
// cannot outrun the schedule: at most rate × wall time + 1.
func TestRateLimitedRun(t *testing.T) {
	const rate = 2000
	f := newFake(target.Window)
	began := time.Now()
	res := run(t, f, newWorkload(t, "get"), Config{Conns: 4, Pipeline: 2, Rate: rate}, Phase{Duration: 300 * time.Millisecond})
	wall := time.Since(began)
	limit := int64(rate*wall.Seconds()) + 1
	if got := f.ops.Load(); got > limit || got == 0 {
		t.Fatalf("%d operations in %v at %d/s; want 1..%d", got, wall, rate, limit)
	}
	if res.Ops == 0 || res.Ops > f.ops.Load() {
		t.Fatalf("measured %d of %d operations", res.Ops, f.ops.Load())
	}
}

func TestPhaseNeedsStop(t *testing.T) {
	r, err := New(context.Background(), newFake(target.Window), newWorkload(t, "get"), Config{Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Run(context.Background(), Phase{}); err == nil {
		t.Fatal("a phase without duration or count ran")
	}
}

func TestProgress(t *testing.T) {
	f := newFake(target.Window)
	reported := make(chan struct{})
	var once sync.Once
	var first Progress
	cfg := Config{Conns: 1, ProgressInterval: time.Millisecond, Progress: func(p Progress) {
		once.Do(func() {
			first = p
			close(reported)
		})
	}}
	// The phase cannot end before its operations do, and they wait for
	// the first progress report.
	f.onDo = func(*fakeSession) {
		select {
		case <-reported:
		case <-time.After(10 * time.Second):
		}
	}
	res := run(t, f, newWorkload(t, "get"), cfg, Phase{Duration: 10 * time.Millisecond})
	select {
	case <-reported:
	default:
		t.Fatal("no progress reported")
	}
	if res.Ops == 0 || first.Elapsed <= 0 || first.Warmup {
		t.Fatalf("result %d ops, first progress %+v", res.Ops, first)
	}
}

// TestProgressAfterWarmup: the first report of the measurement covers an
// interval of it, so it never shows the warm-up's rate beside no measured
// operation ("ops 0" at 20k ops/s). The warm-up and the progress interval
// end together, which is when that happened.
func TestProgressAfterWarmup(t *testing.T) {
	f := newFake(target.Window)
	// Operations take a while, as on a network: none completes in the
	// instant between the warm-up's end and a tick due with it.
	f.onDo = func(*fakeSession) { time.Sleep(2 * time.Millisecond) }
	var mu sync.Mutex
	var reports []Progress
	cfg := Config{Conns: 2, ProgressInterval: 30 * time.Millisecond, Progress: func(p Progress) {
		mu.Lock()
		reports = append(reports, p)
		mu.Unlock()
	}}
	ctx := context.Background()
	r, err := New(ctx, f, newWorkload(t, "get"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for range 6 {
		if _, err := r.Run(ctx, Phase{Warmup: 30 * time.Millisecond, Duration: 75 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	measured := 0
	for _, p := range reports {
		if p.Warmup {
			continue
		}
		measured++
		if p.Ops == 0 && p.Rate > 0 {
			t.Errorf("report at %v: ops 0 at %.0f ops/s", p.Elapsed, p.Rate)
		}
	}
	if measured == 0 {
		t.Fatalf("no report of a measurement among %d", len(reports))
	}
}

func TestLoad(t *testing.T) {
	f := newFake(target.Window)
	ctx := context.Background()
	res, err := Load(ctx, f, LoadConfig{Records: 1234, Batch: 100, Conns: 3, ValueSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 1234 || len(f.keys) != 1234 {
		t.Fatalf("loaded %d records, %d distinct keys", res.Records, len(f.keys))
	}
	for i := range uint64(1234) {
		if n := f.keys[string(workload.RecordKeys.Key(i))]; n != 1 {
			t.Fatalf("record %d written %d times", i, n)
		}
	}
}

func TestLoadStopsOnError(t *testing.T) {
	f := newFake(target.Window)
	f.fail = func(n int64) error {
		if n == 3 {
			return status.New(zppb.Code_QUOTA_EXCEEDED, "full")
		}
		return nil
	}
	_, err := Load(context.Background(), f, LoadConfig{Records: 10_000, Batch: 10, Conns: 2})
	if status.Code(err) != zppb.Code_QUOTA_EXCEEDED {
		t.Fatalf("err = %v, want QUOTA_EXCEEDED", err)
	}
}
