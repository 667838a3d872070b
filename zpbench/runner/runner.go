// Package runner drives a workload against a target: workers, pipelines,
// the rate limit, warm-up, the stop condition, progress, and the
// measurements of each phase. It also loads the records read benchmarks
// need.
package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/zpbench/latency"
	"github.com/zeppelin-kv/zeppelin/zpbench/target"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// Config configures a Runner.
type Config struct {
	// Conns is the number of sessions (connections) opened on the target.
	Conns int
	// Workers is the number of workers, spread round-robin over the
	// sessions. Default Conns.
	Workers int
	// Pipeline is the number of operations each worker keeps in flight
	// on its session. Default 1.
	Pipeline int
	// Rate caps the total operations per second; 0 means no cap. Latency
	// is then measured from each operation's scheduled start (see
	// Limiter).
	Rate float64
	// Timeout bounds each operation; 0 means no bound.
	Timeout time.Duration
	// Progress, when set, is called every ProgressInterval during a phase
	// (from one goroutine).
	Progress         func(Progress)
	ProgressInterval time.Duration
}

// Phase is one measured run: an optional warm-up, then measurement until
// Duration passes or Ops operations were started, whichever comes first.
// At least one of Duration and Ops must be set.
type Phase struct {
	Warmup   time.Duration
	Duration time.Duration
	Ops      int64
}

// Progress is a snapshot of a phase in progress.
type Progress struct {
	// Warmup is true during the warm-up.
	Warmup bool
	// Elapsed is the time since the phase (warm-up included) began.
	Elapsed time.Duration
	// Ops and Errors count the operations measured so far.
	Ops, Errors int64
	// Rate is the operations per second completed over the last interval,
	// warm-up included.
	Rate float64
	// P99 is the 99th percentile latency measured so far.
	P99 time.Duration
}

// Runner runs phases of one workload against one target. Sessions stay
// open across phases, so that alternating phases of two runners compares
// warm connections.
type Runner struct {
	cfg      Config
	target   target.Target
	wl       *workload.Workload
	sessions []target.Session
	workers  []*worker
	limiter  *Limiter
	// completed counts every operation finished, warm-up included, for
	// progress rates.
	completed atomic.Int64
}

type worker struct {
	session target.Session
	rec     *recorder
	streams []*workload.Stream
}

// New opens cfg.Conns sessions on t and prepares the workers.
func New(ctx context.Context, t target.Target, wl *workload.Workload, cfg Config) (*Runner, error) {
	if cfg.Conns < 1 {
		return nil, fmt.Errorf("runner: %d connections", cfg.Conns)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = cfg.Conns
	}
	if cfg.Pipeline <= 0 {
		cfg.Pipeline = 1
	}
	r := &Runner{cfg: cfg, target: t, wl: wl, limiter: NewLimiter(cfg.Rate, nil)}
	for range cfg.Conns {
		s, err := t.NewSession(ctx)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("runner: open session on %s: %w", t.Name(), err)
		}
		r.sessions = append(r.sessions, s)
	}
	// Window targets need a stream per operation in flight; batch targets
	// one per worker.
	perWorker := cfg.Pipeline
	if t.Pipelining() == target.Batch {
		perWorker = 1
	}
	next := uint64(0)
	for i := range cfg.Workers {
		w := &worker{session: r.sessions[i%len(r.sessions)], rec: newRecorder()}
		for range perWorker {
			w.streams = append(w.streams, wl.Stream(next))
			next++
		}
		r.workers = append(r.workers, w)
	}
	return r, nil
}

// Close closes the sessions; it does not close the target.
func (r *Runner) Close() error {
	var errs []error
	for _, s := range r.sessions {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// phaseState is what the goroutines of one phase share.
type phaseState struct {
	// stop ends the issuing of operations; operations in flight complete.
	stop      context.Context
	measuring atomic.Bool
	// budget is the number of operations left to start while measuring;
	// negative means unlimited.
	budget atomic.Int64
	// stopNow cancels stop.
	stopNow context.CancelFunc
}

// take grants up to n operations from the budget.
func (s *phaseState) take(n int64) int64 {
	for {
		b := s.budget.Load()
		if b < 0 {
			return n
		}
		if b == 0 {
			s.stopNow()
			return 0
		}
		g := min(b, n)
		if s.budget.CompareAndSwap(b, b-g) {
			return g
		}
	}
}

// Run runs one phase and returns its measurements. It returns early, with
// ctx's error, when ctx ends; operations cut short by that are not counted.
func (r *Runner) Run(ctx context.Context, p Phase) (*Result, error) {
	if p.Duration <= 0 && p.Ops <= 0 {
		return nil, errors.New("runner: a phase needs a duration or an operation count")
	}
	stop, stopNow := context.WithCancel(ctx)
	defer stopNow()
	st := &phaseState{stop: stop, stopNow: stopNow}
	st.budget.Store(-1)
	if p.Ops > 0 {
		st.budget.Store(p.Ops)
	}
	for _, w := range r.workers {
		w.rec.take()
	}

	// measureStart is only touched by this goroutine: the phase's clock.
	began := time.Now()
	var measureStart time.Time
	startMeasuring := func() {
		for _, w := range r.workers {
			w.rec.take() // drop what the warm-up recorded
		}
		measureStart = time.Now()
		st.measuring.Store(true)
	}
	if p.Warmup <= 0 {
		startMeasuring()
	}

	var wg sync.WaitGroup
	for _, w := range r.workers {
		if r.target.Pipelining() == target.Batch {
			wg.Go(func() { r.batchLoop(ctx, st, w) })
			continue
		}
		for _, s := range w.streams {
			wg.Go(func() { r.windowLoop(ctx, st, w, s) })
		}
	}
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()

	// The phase's clock: warm-up, measurement, progress.
	var warmupEnd, runEnd <-chan time.Time
	if p.Warmup > 0 {
		t := time.NewTimer(p.Warmup)
		defer t.Stop()
		warmupEnd = t.C
	} else if p.Duration > 0 {
		t := time.NewTimer(p.Duration)
		defer t.Stop()
		runEnd = t.C
	}
	var tick <-chan time.Time
	var ticker *time.Ticker
	if r.cfg.Progress != nil && r.cfg.ProgressInterval > 0 {
		ticker = time.NewTicker(r.cfg.ProgressInterval)
		defer ticker.Stop()
		tick = ticker.C
	}
	lastCount, lastTick := r.completed.Load(), began
	for done := false; !done; {
		select {
		case <-finished:
			done = true
		case <-warmupEnd:
			startMeasuring()
			if ticker != nil {
				// The measurement's first report covers a whole
				// interval of it: a tick due now would show the
				// warm-up's rate beside no measured operation.
				ticker.Reset(r.cfg.ProgressInterval)
				lastCount, lastTick = r.completed.Load(), time.Now()
			}
			if p.Duration > 0 {
				t := time.NewTimer(p.Duration)
				defer t.Stop()
				runEnd = t.C
			}
		case <-runEnd:
			stopNow()
		case now := <-tick:
			c := r.completed.Load()
			r.cfg.Progress(r.progress(st, now.Sub(began), float64(c-lastCount)/now.Sub(lastTick).Seconds()))
			lastCount, lastTick = c, now
		}
	}
	end := time.Now()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	res := NewResult()
	for _, w := range r.workers {
		res.Merge(w.rec.take())
	}
	if !measureStart.IsZero() {
		res.Elapsed = end.Sub(measureStart)
	}
	return res, nil
}

func (r *Runner) progress(st *phaseState, elapsed time.Duration, rate float64) Progress {
	p := Progress{Warmup: !st.measuring.Load(), Elapsed: elapsed, Rate: rate}
	h := latency.New()
	for _, w := range r.workers {
		w.rec.mu.Lock()
		p.Ops += w.rec.res.Ops
		p.Errors += w.rec.res.Errors
		w.rec.mu.Unlock()
		w.rec.mergeLatency(h)
	}
	p.P99 = time.Duration(h.ValueAtPercentile(99))
	return p
}

// loopContext gives each loop a context of its own to derive per-operation
// contexts from. Every context.WithTimeout registers with its parent under
// the parent's lock; with all loops deriving from the run's context, that
// one lock and map were contended by every operation (visible in profiles
// as propagateCancel and map assignments).
func loopContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctx)
}

// opContext bounds one operation by the configured timeout.
func (r *Runner) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.cfg.Timeout > 0 {
		return context.WithTimeout(ctx, r.cfg.Timeout)
	}
	return ctx, func() {}
}

// windowLoop is one slot of a worker's pipeline on a window target: it
// sends one operation at a time, sharing the worker's session (and so its
// connection) with the worker's other slots.
func (r *Runner) windowLoop(ctx context.Context, st *phaseState, w *worker, s *workload.Stream) {
	ctx, cancel := loopContext(ctx)
	defer cancel()
	var op workload.Op
	ops := []*workload.Op{&op}
	out := make([]target.Outcome, 1)
	for st.stop.Err() == nil {
		start, err := r.limiter.Wait(st.stop)
		if err != nil {
			return
		}
		measuring := st.measuring.Load()
		if measuring && st.take(1) == 0 {
			return
		}
		s.Next(&op)
		if r.limiter == nil {
			start = time.Now()
		}
		octx, cancel := r.opContext(ctx)
		w.session.Do(octx, ops, out)
		cancel()
		d := time.Since(start)
		s.Done(&op)
		if ctx.Err() != nil {
			return // interrupted: the outcome says nothing about the target
		}
		r.completed.Add(1)
		if measuring {
			w.rec.record(op.Kind, d, out[0])
		}
	}
}

// batchLoop is a worker on a batch target: it sends up to Pipeline
// operations at once and waits for all of them.
func (r *Runner) batchLoop(ctx context.Context, st *phaseState, w *worker) {
	ctx, cancel := loopContext(ctx)
	defer cancel()
	n := r.cfg.Pipeline
	opv := make([]workload.Op, n)
	ops := make([]*workload.Op, n)
	for i := range opv {
		ops[i] = &opv[i]
	}
	out := make([]target.Outcome, n)
	starts := make([]time.Time, n)
	s := w.streams[0]
	for st.stop.Err() == nil {
		k := int64(n)
		for i := range n {
			t, err := r.limiter.Wait(st.stop)
			if err != nil {
				return
			}
			starts[i] = t
		}
		measuring := st.measuring.Load()
		if measuring {
			if k = st.take(k); k == 0 {
				return
			}
		}
		for i := range k {
			s.Next(ops[i])
		}
		if r.limiter == nil {
			now := time.Now()
			for i := range k {
				starts[i] = now
			}
		}
		octx, cancel := r.opContext(ctx)
		w.session.Do(octx, ops[:k], out[:k])
		cancel()
		end := time.Now()
		for i := range k {
			s.Done(ops[i])
		}
		if ctx.Err() != nil {
			return
		}
		r.completed.Add(k)
		if measuring {
			for i := range k {
				w.rec.record(ops[i].Kind, end.Sub(starts[i]), out[i])
			}
		}
	}
}
