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

// pendingWrite is one write on its way: it has its lsn, and goes to the
// binlog with the writes queued beside it (group commit); then it is
// applied to the DB, at once or, with min_sync_replicas k > 0, once k slaves
// have it.
type pendingWrite struct {
	term, lsn uint64
	rec       *zppb.WriteRecord
	payload   []byte
	done      chan struct{} // closed when applied or failed
	err       error
}

// Update runs fn under the write lock and writes the record it returns, if
// any. fn sees every write before it (View), so read-modify-write commands
// are atomic. When Update returns nil the write is applied, durable per the
// binlog's sync policy and, with min_sync_replicas k > 0, persisted by k
// slaves.
//
// Writes are committed in groups: the first writer to find no flush running
// becomes the flusher and writes whatever has queued, with one binlog write
// and one RocksDB write per group, until the queue is empty. With k = 0 a
// group is applied as soon as it is in the binlog; with k > 0 only once k
// slaves have it, so readers of the master never see a write that a
// failover could still lose.
//
// When fn writes nothing, or fails, after reading a write that is not
// committed yet (a DELETE waiting for slaves, say), Update answers only
// once that write commits, and fails with its error if it fails: a
// caller is never told of a state that a failover could still undo.
//
// id, when not empty, names the request: a retry of a write this replica
// (or the master it replicated from) already logged is not written again,
// but answered once the first write is: Update returns the record's Result
// either way.
func (r *Replica) Update(ctx context.Context, id []byte, fn func(v View) (*zppb.WriteRecord, error)) (int64, error) {
	a, err := r.UpdateAnswer(ctx, id, fn)
	return a.Result, err
}

// Answer is what an update answered.
type Answer struct {
	// Result and Value are the record's result and result_value: from the
	// record fn returned, or, for a retry, from the first attempt's record.
	// When fn wrote nothing they are those of the empty record it returned.
	Result int64
	Value  []byte
	// Wrote: a record was logged, by this call or by the attempt it
	// retries. False when fn returned a record without mutations (a
	// refused conditional write, say).
	Wrote bool
}

// UpdateAnswer is Update for commands whose answer is more than an int64
// or whose answer depends on whether they wrote: fn may return a record
// without mutations that carries the answer of a refusal. A retry's value
// is read back from the binlog (dedup keeps no values in memory), so it
// fails with ErrAnswerPurged once that record is purged.
func (r *Replica) UpdateAnswer(ctx context.Context, id []byte, fn func(v View) (*zppb.WriteRecord, error)) (Answer, error) {
	t, err := r.submit(id, fn)
	if err != nil {
		return Answer{}, err
	}
	return t.wait(ctx)
}

// Write writes rec; see Update.
func (r *Replica) Write(ctx context.Context, id []byte, rec *zppb.WriteRecord) error {
	_, err := r.Update(ctx, id, func(View) (*zppb.WriteRecord, error) { return rec, nil })
	return err
}

// Submit queues rec like Write but returns at once, with a Ticket for the
// outcome. A caller holding several requests (a pipeline) submits them all,
// in order, and then waits on each: their records then go to the binlog
// and the DB in one group instead of one group each.
//
// The caller must Flush every Ticket, without blocking on anything else
// between Submit and Flush, and then Wait for it: a ticket may hold the
// replica's flusher role, and until it is flushed every other writer of
// the replica waits.
func (r *Replica) Submit(id []byte, rec *zppb.WriteRecord) (*Ticket, error) {
	return r.submit(id, func(View) (*zppb.WriteRecord, error) { return rec, nil })
}

func (r *Replica) submit(id []byte, fn func(v View) (*zppb.WriteRecord, error)) (*Ticket, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return nil, ErrClosed
	case r.failed != nil:
		return nil, r.failed
	case r.role != Master:
		return nil, ErrNotMaster
	}
	if e, ok := r.dedup.get(id); ok {
		w, fromLog := r.retryLocked(e)
		return &Ticket{r: r, w: w, fromLog: fromLog}, nil
	}
	var read uint64
	rec, err := fn(View{r: r, read: &read})
	if err == nil && r.refusesLocked(rec) {
		return nil, ErrSplitting
	}
	if err != nil || rec == nil || len(rec.Mutations) == 0 && rec.Split == nil && rec.Ingest == nil {
		// The answer (nothing to write, or a refusal) may rest on a write
		// that is not committed yet: it holds only once that write does,
		// and fails if that write fails.
		if w := r.uncommittedLocked(read); w != nil {
			return &Ticket{r: r, w: w, readOnly: true, answer: rec, err: err}, nil
		}
		if err != nil {
			return nil, err
		}
		// Nothing to write, nothing to wait for.
		return &Ticket{r: r, w: finishedWrite(0, 0), readOnly: true, answer: rec}, nil
	}
	rec.RequestId = id
	payload, err := proto.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("replica: marshal record: %w", err)
	}
	if len(r.queue) == 0 && !r.flushing {
		// Nothing in flight: the binlog says where numbering goes on (it
		// may have been cut back or reset since this replica last wrote).
		_, r.nextLSN = r.log.Last()
	}
	r.nextLSN++
	w := &pendingWrite{term: r.term, lsn: r.nextLSN, rec: rec, payload: payload, done: make(chan struct{})}
	r.queue = append(r.queue, w)
	r.dedup.add(id, w.lsn, rec)
	r.m.addOverlay(w.lsn, rec)
	lead := !r.flushing
	r.flushing = true
	return &Ticket{r: r, w: w, lead: lead}, nil
}

// uncommittedLocked returns the write logged at lsn while it is queued or
// waits for slaves; nil once it is applied (or when lsn is 0). Writes
// commit in lsn order, so waiting for it waits for every write before it.
func (r *Replica) uncommittedLocked(lsn uint64) *pendingWrite {
	if lsn == 0 {
		return nil
	}
	for _, list := range [][]*pendingWrite{r.queue, r.m.pending} {
		for _, w := range list {
			if w.lsn == lsn {
				return w
			}
		}
	}
	return nil
}

// Ticket is a write submitted to a replica and not yet waited for.
type Ticket struct {
	r    *Replica
	w    *pendingWrite
	lead bool // this ticket is the replica's flusher
	// readOnly: the call wrote nothing; its answer is answer (the empty
	// record fn returned, may be nil) or err, possibly read from the
	// uncommitted write w, and given once w commits.
	readOnly bool
	answer   *zppb.WriteRecord
	err      error
	// fromLog: a retry of a committed write whose answer has a value,
	// which is read back from the binlog record at w.lsn.
	fromLog bool
}

// Flush writes the queued records to the binlog (and the DB, when no slave
// has to acknowledge them) if this ticket holds the flusher role. It does
// not wait for other writers, only for the disk. Calling it again does
// nothing.
func (t *Ticket) Flush() {
	if t.lead {
		t.lead = false
		t.r.flush()
	}
}

// Wait flushes the ticket and waits until its write is applied, durable per
// the binlog's sync policy and, with min_sync_replicas k > 0, persisted by
// k slaves. It returns the record's Result.
func (t *Ticket) Wait(ctx context.Context) (int64, error) {
	a, err := t.wait(ctx)
	return a.Result, err
}

// waitDone waits for the write's outcome or ctx's end, whichever is first.
func (t *Ticket) waitDone(ctx context.Context) error {
	w := t.w
	select {
	case <-w.done:
		// Most writes are done once flushed (their own group commit):
		// asking ctx for Done would start its deadline's timer for
		// nothing.
		return nil
	default:
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		select {
		case <-w.done: // done as well: the outcome wins over the deadline
		default:
			if t.r.minSync() > 0 {
				return fmt.Errorf("%w: lsn %d: %w", ErrNotEnoughReplicas, w.lsn, ctx.Err())
			}
			return fmt.Errorf("replica: write lsn %d: %w", w.lsn, ctx.Err())
		}
	}
	return nil
}

func (t *Ticket) wait(ctx context.Context) (Answer, error) {
	t.Flush()
	if err := t.waitDone(ctx); err != nil {
		return Answer{}, err
	}
	w := t.w
	if w.err != nil {
		return Answer{}, w.err
	}
	if err := t.r.log.WaitDurable(ctx, w.lsn); err != nil {
		return Answer{}, fmt.Errorf("replica: binlog sync: %w", err)
	}
	switch {
	case t.readOnly:
		if t.err != nil {
			return Answer{}, t.err
		}
		return Answer{Result: t.answer.GetResult(), Value: t.answer.GetResultValue()}, nil
	case t.fromLog:
		rec, err := t.r.loggedRecord(w.lsn)
		if err != nil {
			return Answer{}, err
		}
		return Answer{Result: rec.Result, Value: rec.ResultValue, Wrote: true}, nil
	}
	return Answer{Result: w.rec.Result, Value: w.rec.ResultValue, Wrote: true}, nil
}

// loggedRecord reads the record at lsn back from the binlog.
func (r *Replica) loggedRecord(lsn uint64) (*zppb.WriteRecord, error) {
	rd, err := r.log.NewReader(lsn)
	if err != nil {
		return nil, fmt.Errorf("%w: lsn %d: %w", ErrAnswerPurged, lsn, err)
	}
	defer rd.Close()
	rec, err := rd.Next()
	if err == nil && rec.LSN != lsn {
		err = fmt.Errorf("read lsn %d", rec.LSN)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: lsn %d: %w", ErrAnswerPurged, lsn, err)
	}
	wr := &zppb.WriteRecord{}
	if err := proto.Unmarshal(rec.Payload, wr); err != nil {
		return nil, fmt.Errorf("replica: record %d does not parse: %w", lsn, err)
	}
	return wr, nil
}

func (r *Replica) minSync() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m.minSync
}

// retryLocked answers a retry of the write logged at e.lsn: when that write
// is in the queue or waits for slaves, the retry waits for the same outcome
// (and has its record); otherwise it is applied already, and fromLog says
// its answer's value has to be read back from the binlog.
func (r *Replica) retryLocked(e dedupEntry) (w *pendingWrite, fromLog bool) {
	if w := r.uncommittedLocked(e.lsn); w != nil {
		return w, false
	}
	return finishedWrite(e.lsn, e.result), e.hasValue
}

// finishedWrite is a write that has nothing left to wait for.
func finishedWrite(lsn uint64, result int64) *pendingWrite {
	done := make(chan struct{})
	close(done)
	return &pendingWrite{lsn: lsn, rec: &zppb.WriteRecord{Result: result}, done: done}
}

// flush writes the queued writes to the binlog in groups until the queue is
// empty. One goroutine at a time runs it (the one update made the leader).
func (r *Replica) flush() {
	for {
		r.mu.Lock()
		batch := r.queue
		r.queue = nil
		if len(batch) == 0 {
			r.flushing = false
			r.mu.Unlock()
			return
		}
		if r.closed {
			// Closed before this group reached the binlog (a submitted
			// pipeline flushes a moment after it queued): nothing was
			// written, and callers retry elsewhere.
			r.finishLocked(batch, ErrClosed)
			r.mu.Unlock()
			continue
		}
		r.mu.Unlock()

		recs := make([]binlog.Record, len(batch))
		for i, w := range batch {
			recs[i] = binlog.Record{Term: w.term, LSN: w.lsn, Payload: w.payload}
		}
		err := r.log.AppendBatch(recs)

		r.mu.Lock()
		switch {
		case err != nil:
			// The disk failed under the binlog: stop taking writes
			// rather than number around a hole. A restart replays what
			// made it.
			r.failLocked(fmt.Errorf("replica: binlog append: %w", err), batch)
		case r.role != Master || r.closed:
			// Demoted meanwhile: the records are in the binlog, where log
			// matching with the new master decides their fate.
			r.finishLocked(batch, fmt.Errorf("%w: partition changed hands during the write", ErrNotMaster))
		case r.m.minSync == 0 && len(r.m.pending) == 0:
			r.m.notifyAppend()
			if err := r.applyLocked(batch); err != nil {
				r.failLocked(err, batch)
			} else {
				r.finishLocked(batch, nil)
			}
		default:
			r.m.notifyAppend()
			r.m.pending = append(r.m.pending, batch...)
			r.advanceCommitLocked()
		}
		r.mu.Unlock()
	}
}

// applyLocked applies writes that are in the binlog to the DB, in one
// RocksDB write.
func (r *Replica) applyLocked(batch []*pendingWrite) error {
	recs := make([]engine.Record, len(batch))
	for i, w := range batch {
		recs[i] = r.engineRecord(w.lsn, w.term, w.rec)
	}
	db, err := r.holdDB()
	if err != nil {
		return fmt.Errorf("replica: apply: %w", err)
	}
	defer r.dbMu.RUnlock()
	if err := r.applySplittingLocked(db, recs); err != nil {
		return fmt.Errorf("replica: apply: %w", err)
	}
	return nil
}

// finishLocked ends writes: their overlay entries go (the DB has them, or
// they failed) and their callers are told.
func (r *Replica) finishLocked(batch []*pendingWrite, err error) {
	for _, w := range batch {
		r.m.dropOverlay(w.lsn, w.rec)
		w.err = err
		close(w.done)
	}
}

// failLocked makes the replica refuse writes from now on: its binlog or DB
// failed, and numbering on past a record that may be half there would
// corrupt it. Every write in flight fails.
func (r *Replica) failLocked(err error, batch []*pendingWrite) {
	r.opts.Logger.Error("replica stops taking writes; restart the node once the disk is fixed", "err", err)
	r.failed = err
	r.finishLocked(batch, err)
	r.finishLocked(r.queue, err)
	r.queue = nil
	r.failPendingLocked(err)
}

// advanceCommitLocked applies, in lsn order, the pending writes that enough
// slaves have acknowledged.
func (r *Replica) advanceCommitLocked() {
	if len(r.m.pending) == 0 {
		return
	}
	commit := r.commitIndexLocked()
	n := 0
	for n < len(r.m.pending) && r.m.pending[n].lsn <= commit {
		n++
	}
	if n == 0 {
		return
	}
	batch := r.m.pending[:n]
	r.m.pending = slices.Clone(r.m.pending[n:])
	if err := r.applyLocked(batch); err != nil {
		// The records are replicated, so they cannot be taken back; the
		// DB catches up from the binlog on the next open.
		r.failLocked(err, batch)
		return
	}
	r.finishLocked(batch, nil)
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
// decides whether they survive. Writes not yet in the binlog are failed by
// the flush that takes them.
func (r *Replica) failPendingLocked(err error) {
	r.finishLocked(r.m.pending, err)
	r.m.pending = nil
}

// SweepExpired deletes up to limit expired keys after cursor through the
// binlog, so that slaves drop them too. It returns how many it deleted and
// the cursor to continue from (empty when the sweep is through). Only
// masters sweep.
func (r *Replica) SweepExpired(ctx context.Context, cursor []byte, limit int) (int, []byte, error) {
	r.dbMu.RLock()
	if r.db == nil {
		// Parked: leave its expired keys to the reads that find them and
		// to compaction rather than reopen an idle DB every sweep.
		r.dbMu.RUnlock()
		return 0, nil, nil
	}
	keys, next, err := r.db.ExpiredKeys(cursor, r.NowMs(), limit)
	r.dbMu.RUnlock()
	if err != nil || len(keys) == 0 {
		return 0, next, err
	}
	n := 0
	t, err := r.submit(nil, func(v View) (*zppb.WriteRecord, error) {
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
	if err != nil || t.readOnly {
		// Nothing to delete: no answer rests on what the view read.
		return 0, next, err
	}
	_, err = t.Wait(ctx)
	return n, next, err
}
