package replica

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/binlog"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// pendingWrite is a record in the master's binlog that waits for
// min_sync_replicas acknowledgements before it is applied to the DB.
type pendingWrite struct {
	term, lsn uint64
	rec       *zppb.WriteRecord
	done      chan struct{} // closed when applied or failed
	err       error
}

// Update runs fn under the write lock and writes the record it returns, if
// any. fn sees every write before it (View), so read-modify-write commands
// are atomic. When Update returns nil the write is durable per the binlog's
// sync policy and, with min_sync_replicas k > 0, persisted by k slaves.
//
// With k = 0 the record is applied to the DB at once. With k > 0 it is
// applied only once k slaves have it, so readers of the master never see a
// write that a failover could still lose.
func (r *Replica) Update(ctx context.Context, fn func(v View) (*zppb.WriteRecord, error)) error {
	w, err := r.update(fn)
	if err != nil || w == nil {
		return err
	}
	if err := r.log.WaitDurable(ctx, w.lsn); err != nil {
		return fmt.Errorf("replica: binlog sync: %w", err)
	}
	if w.done == nil {
		return nil
	}
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return fmt.Errorf("%w: lsn %d: %w", ErrNotEnoughReplicas, w.lsn, ctx.Err())
	}
}

// Write writes rec; see Update.
func (r *Replica) Write(ctx context.Context, rec *zppb.WriteRecord) error {
	return r.Update(ctx, func(View) (*zppb.WriteRecord, error) { return rec, nil })
}

func (r *Replica) update(fn func(v View) (*zppb.WriteRecord, error)) (*pendingWrite, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return nil, ErrClosed
	case r.role != Master:
		return nil, ErrNotMaster
	}
	rec, err := fn(View{r})
	if err != nil || rec == nil || len(rec.Mutations) == 0 {
		return nil, err
	}
	payload, err := proto.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("replica: marshal record: %w", err)
	}
	_, last := r.log.Last()
	w := &pendingWrite{term: r.term, lsn: last + 1, rec: rec}
	if err := r.log.Append(binlog.Record{Term: w.term, LSN: w.lsn, Payload: payload}); err != nil {
		return nil, fmt.Errorf("replica: binlog append: %w", err)
	}
	r.m.notifyAppend()

	if r.m.minSync == 0 && len(r.m.pending) == 0 {
		r.dbMu.RLock()
		err := r.db.Apply(w.lsn, w.term, rec)
		r.dbMu.RUnlock()
		if err != nil {
			// Keep binlog and DB in step: the caller is told the write
			// failed, so replay must not bring it back. A slave that pulled
			// it already is cut back by log matching.
			if terr := r.log.TruncateAfter(w.lsn - 1); terr != nil {
				r.opts.Logger.Error("cannot undo binlog record after a failed apply", "lsn", w.lsn, "err", terr)
			}
			return nil, fmt.Errorf("replica: apply: %w", err)
		}
		return w, nil
	}
	w.done = make(chan struct{})
	r.m.pending = append(r.m.pending, w)
	for _, m := range rec.Mutations {
		r.m.overlay[string(m.Key)] = overlayEntry{lsn: w.lsn, m: m}
	}
	r.advanceCommitLocked()
	return w, nil
}

// advanceCommitLocked applies, in lsn order, the pending writes that enough
// slaves have acknowledged.
func (r *Replica) advanceCommitLocked() {
	if len(r.m.pending) == 0 {
		return
	}
	commit := r.commitIndexLocked()
	r.dbMu.RLock()
	defer r.dbMu.RUnlock()
	for len(r.m.pending) > 0 && r.m.pending[0].lsn <= commit {
		w := r.m.pending[0]
		if err := r.db.Apply(w.lsn, w.term, w.rec); err != nil {
			// The record is replicated, so it cannot be taken back; the DB
			// catches up from the binlog on the next open.
			r.opts.Logger.Error("cannot apply acknowledged record; the DB is behind the binlog until restart", "lsn", w.lsn, "err", err)
			w.err = fmt.Errorf("replica: apply: %w", err)
		}
		for _, m := range w.rec.Mutations {
			if e, ok := r.m.overlay[string(m.Key)]; ok && e.lsn == w.lsn {
				delete(r.m.overlay, string(m.Key))
			}
		}
		r.m.pending[0] = nil
		r.m.pending = r.m.pending[1:]
		close(w.done)
	}
}

// commitIndexLocked is the highest lsn that min_sync_replicas of the
// partition's slaves have persisted.
func (r *Replica) commitIndexLocked() uint64 {
	k := r.m.minSync
	if k <= 0 {
		_, last := r.log.Last()
		return last
	}
	var acks []uint64
	for _, addr := range r.m.slaves {
		if p := r.m.peers[addr]; p != nil {
			acks = append(acks, p.acked)
		}
	}
	if len(acks) < k {
		return 0
	}
	// The k-th highest acknowledgement.
	slices.SortFunc(acks, func(a, b uint64) int { return cmp.Compare(b, a) })
	return acks[k-1]
}

// failPendingLocked fails every write still waiting for slaves; their
// records stay in the binlog, where log matching with the next master
// decides whether they survive.
func (r *Replica) failPendingLocked(err error) {
	for _, w := range r.m.pending {
		w.err = err
		close(w.done)
	}
	r.m.pending = nil
	clear(r.m.overlay)
}

// SweepExpired deletes up to limit expired keys after cursor through the
// binlog, so that slaves drop them too. It returns how many it deleted and
// the cursor to continue from (empty when the sweep is through). Only
// masters sweep.
func (r *Replica) SweepExpired(ctx context.Context, cursor []byte, limit int) (int, []byte, error) {
	r.dbMu.RLock()
	keys, next, err := r.db.ExpiredKeys(cursor, r.NowMs(), limit)
	r.dbMu.RUnlock()
	if err != nil || len(keys) == 0 {
		return 0, next, err
	}
	n := 0
	err = r.Update(ctx, func(v View) (*zppb.WriteRecord, error) {
		rec := &zppb.WriteRecord{}
		for _, k := range keys {
			// A key written again since the scan is live: leave it.
			if _, _, err := v.Get(k); errors.Is(err, engine.ErrNotFound) {
				if _, pending := r.m.overlay[string(k)]; !pending {
					rec.Mutations = append(rec.Mutations, &zppb.Mutation{Kind: zppb.Mutation_DELETE, Key: k})
				}
			}
		}
		n = len(rec.Mutations)
		return rec, nil
	})
	return n, next, err
}
