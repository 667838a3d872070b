package binlog

import (
	"context"
	"fmt"
	"time"
)

// Group commit: appends only write(2); one background goroutine makes them
// durable. Under SyncAlways every append kicks it and every WaitDurable
// caller waits for it. While it is inside fdatasync, further appends pile
// up behind it and the next sync covers all of them, so under load the
// number of syncs tracks the disk's sync rate, not the write rate. Under
// SyncInterval the first append after a sync kicks it too, and it waits
// out the interval before syncing whatever came meanwhile; nobody waits
// for it, and a log without appends costs nothing.

// runSyncer is the background sync loop (SyncAlways and SyncInterval).
func (l *Log) runSyncer() {
	defer l.wg.Done()
	var t *time.Timer
	if l.opts.Sync == SyncInterval {
		t = time.NewTimer(time.Hour)
		t.Stop()
		defer t.Stop()
	}
	for {
		select {
		case <-l.done:
			return
		case <-l.kick:
		}
		if t != nil {
			t.Reset(l.opts.SyncInterval)
			select {
			case <-l.done:
				return
			case <-t.C:
			}
		}
		_ = l.syncOnce() // a failure is sticky and reported to every caller
	}
}

// kickSyncer asks the syncer for a sync without blocking; a pending kick
// already covers this one.
func (l *Log) kickSyncer() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// syncOnce makes every record written so far durable.
func (l *Log) syncOnce() error {
	l.mu.Lock()
	if err := l.usableLocked(); err != nil {
		l.mu.Unlock()
		return err
	}
	target, af, epoch := l.last, l.active, l.epoch.Load()
	if target <= l.durable {
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()

	// Sync without l.mu so that appends go on meanwhile. If a roll or a
	// truncation closed the file in between, it synced the file first.
	var err error
	l.syncMu.Lock()
	if !af.closed {
		err = l.syncActiveLocked(af)
		l.syncs.Add(1)
	}
	l.syncMu.Unlock()

	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failLocked(fmt.Errorf("binlog: sync: %w", err))
		return l.failed
	}
	// After a truncation target may name records that are gone, and
	// records with the same LSNs written since were not covered.
	if l.epoch.Load() == epoch {
		l.markDurableLocked(target)
	}
	return nil
}

// markDurableLocked records that every record up to lsn is synced.
func (l *Log) markDurableLocked(lsn uint64) {
	if lsn > l.durable {
		l.durable = lsn
		l.synced.notify()
	}
}

// Sync makes every record appended so far durable before it returns,
// whatever the policy.
func (l *Log) Sync() error {
	return l.syncOnce()
}

// WaitDurable returns once the record at lsn is as durable as the log's
// policy promises: on stable storage under SyncAlways, written under
// SyncInterval and SyncNone (for which it never blocks). An lsn that has
// not been appended yet is an error wrapping ErrNotFound. It returns
// ctx.Err() if ctx ends first; the record then stays in the log and
// becomes durable later.
func (l *Log) WaitDurable(ctx context.Context, lsn uint64) error {
	l.mu.Lock()
	for {
		if err := l.usableLocked(); err != nil {
			l.mu.Unlock()
			return err
		}
		if lsn > l.last {
			last := l.last
			l.mu.Unlock()
			return fmt.Errorf("%w: waiting for lsn %d, last is %d", ErrNotFound, lsn, last)
		}
		if l.opts.Sync != SyncAlways || lsn <= l.durable {
			l.mu.Unlock()
			return nil
		}
		ch := l.synced.wait()
		l.kickSyncer()
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
		l.mu.Lock()
	}
}
