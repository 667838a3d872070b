package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sweeper defaults.
const (
	DefaultSweepInterval  = time.Minute
	DefaultSweepBatchSize = 100
	DefaultSweepPause     = 10 * time.Millisecond
)

// SweepOptions configures RunSweeper.
type SweepOptions struct {
	// Interval is the pause between the end of one pass over the key space
	// and the start of the next. Default DefaultSweepInterval.
	Interval time.Duration

	// BatchSize is the most keys passed to one Delete call. Default
	// DefaultSweepBatchSize.
	BatchSize int

	// Pause is the pause between two ExpiredKeys calls within a pass, which
	// keeps a pass over a large DB from competing with client traffic.
	// Default DefaultSweepPause; negative for none.
	Pause time.Duration

	// Now returns the current time in unix ms. Default: the wall clock.
	Now func() int64

	// Delete receives keys that were expired when listed. It must check
	// each again with DB.Expired under the partition's write lock and log a
	// DELETE for those that still are, through the binlog like any write
	// (see the package documentation). Required.
	Delete func(ctx context.Context, keys [][]byte) error
}

func (o SweepOptions) withDefaults() (SweepOptions, error) {
	if o.Delete == nil {
		return o, fmt.Errorf("%w: SweepOptions.Delete is required", ErrInvalidArgument)
	}
	if o.Interval < 0 || o.BatchSize < 0 {
		return o, fmt.Errorf("%w: negative sweep interval or batch size", ErrInvalidArgument)
	}
	if o.Interval == 0 {
		o.Interval = DefaultSweepInterval
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultSweepBatchSize
	}
	switch {
	case o.Pause == 0:
		o.Pause = DefaultSweepPause
	case o.Pause < 0:
		o.Pause = 0
	}
	if o.Now == nil {
		o.Now = func() int64 { return time.Now().UnixMilli() }
	}
	return o, nil
}

// RunSweeper sweeps expired keys until ctx ends: it walks the key space
// with ExpiredKeys and hands what it finds to opts.Delete, pass after pass.
// The node runs it for the partitions it masters and cancels ctx when it
// stops being master. It returns ctx.Err() when ctx ends, or the first
// error from the DB or from Delete.
func (d *DB) RunSweeper(ctx context.Context, opts SweepOptions) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	for {
		start := time.Now()
		found, err := d.sweepPass(ctx, opts)
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return ctx.Err()
			}
			return err
		}
		d.logger.Debug("engine: sweep pass done", "expired", found, "took", time.Since(start))
		if err := sleep(ctx, opts.Interval); err != nil {
			return err
		}
	}
}

// sweepPass makes one pass over the key space and returns how many expired
// keys it handed to Delete.
func (d *DB) sweepPass(ctx context.Context, opts SweepOptions) (int, error) {
	found := 0
	var cursor []byte
	for {
		keys, next, err := d.ExpiredKeys(cursor, opts.Now(), opts.BatchSize)
		if err != nil {
			return found, err
		}
		if len(keys) > 0 {
			if err := opts.Delete(ctx, keys); err != nil {
				return found, fmt.Errorf("engine: sweep delete: %w", err)
			}
			found += len(keys)
		}
		if next == nil {
			return found, nil
		}
		cursor = next
		if err := sleep(ctx, opts.Pause); err != nil {
			return found, err
		}
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
