package runner

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/zpbench/target"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// LoadConfig configures Load.
type LoadConfig struct {
	// Records are written: [0, Records), with workload.RecordKeys.
	Records uint64
	// Batch is the number of records per MSET.
	Batch int
	// Conns is the number of sessions, each with one loading goroutine.
	Conns int
	// ValueSize and Seed make the value, as workload.Value does.
	ValueSize int
	Seed      uint64
	// Timeout bounds each MSET; 0 means no bound.
	Timeout time.Duration
	// Progress, when set, is called every ProgressInterval with the
	// records written so far.
	Progress         func(written uint64)
	ProgressInterval time.Duration
}

// LoadResult is what Load did.
type LoadResult struct {
	Records uint64
	Elapsed time.Duration
}

// Rate is records written per second.
func (r LoadResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

// Load writes every record of the keyspace with MSETs of cfg.Batch
// consecutive records, from cfg.Conns sessions in parallel, so that read
// workloads find what they read. It stops at the first failed batch: a
// partial load would make a read benchmark measure misses.
func Load(ctx context.Context, t target.Target, cfg LoadConfig) (LoadResult, error) {
	if cfg.Batch < 1 || cfg.Conns < 1 {
		return LoadResult{}, fmt.Errorf("load: batch %d and connections %d must be at least 1", cfg.Batch, cfg.Conns)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	value := workload.Value(cfg.ValueSize, cfg.Seed)
	batches := (cfg.Records + uint64(cfg.Batch) - 1) / uint64(cfg.Batch)
	var (
		next    atomic.Uint64
		written atomic.Uint64
		wg      sync.WaitGroup
	)
	start := time.Now()
	for range cfg.Conns {
		s, err := t.NewSession(ctx)
		if err != nil {
			cancel(err)
			break
		}
		wg.Go(func() {
			defer s.Close()
			op := workload.Op{Kind: workload.MSet, Value: value}
			ops := []*workload.Op{&op}
			out := make([]target.Outcome, 1)
			var buf []byte
			offs := make([]int, 0, cfg.Batch+1)
			for ctx.Err() == nil {
				b := next.Add(1) - 1
				if b >= batches {
					return
				}
				first := b * uint64(cfg.Batch)
				last := min(first+uint64(cfg.Batch), cfg.Records)
				buf, offs = buf[:0], offs[:0]
				for i := first; i < last; i++ {
					offs = append(offs, len(buf))
					buf = workload.RecordKeys.Append(buf, i)
				}
				offs = append(offs, len(buf))
				op.Keys = op.Keys[:0]
				for i := 0; i+1 < len(offs); i++ {
					op.Keys = append(op.Keys, buf[offs[i]:offs[i+1]])
				}
				octx, ocancel := ctx, context.CancelFunc(func() {})
				if cfg.Timeout > 0 {
					octx, ocancel = context.WithTimeout(ctx, cfg.Timeout)
				}
				s.Do(octx, ops, out)
				ocancel()
				if out[0].Err != nil {
					cancel(fmt.Errorf("load: records %d..%d: %w", first, last-1, out[0].Err))
					return
				}
				written.Add(last - first)
			}
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	var tick <-chan time.Time
	if cfg.Progress != nil && cfg.ProgressInterval > 0 {
		tk := time.NewTicker(cfg.ProgressInterval)
		defer tk.Stop()
		tick = tk.C
	}
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		case <-tick:
			cfg.Progress(written.Load())
		}
	}
	res := LoadResult{Records: written.Load(), Elapsed: time.Since(start)}
	if err := context.Cause(ctx); err != nil {
		return res, err
	}
	return res, nil
}
