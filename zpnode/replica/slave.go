package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/binlog"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/failpoint"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/dbsync"
)

// Replication tuning: a pull waits up to pullWait for records and brings at
// most pullBytes of them. The master answers a waiting pull as soon as a
// record is appended, so the wait adds no latency; it only sets how often
// an idle slave asks, on both nodes: at 1 s, a node with 6,667 idle slave
// replicas sent and served 6,667 pulls a second for nothing.
const (
	pullWait     = 30 * time.Second
	pullBytes    = 4 << 20
	retryBackoff = 50 * time.Millisecond
	maxBackoff   = time.Second
)

// slaveState is what a slave keeps about following its master.
type slaveState struct {
	cancel context.CancelFunc
	done   chan struct{}

	state     atomic.Value // string, for INFO
	masterLSN atomic.Uint64
	fullsync  fullSyncStatus

	// watch is the replica's offer to, or registration with,
	// Options.Watch; handedOff says the hub claimed it and the syncer
	// ended for it (watch.go). The replica's mu guards both.
	watch     *watchReg
	handedOff bool
}

// stopSyncerLocked detaches the running syncer when stop is set and
// returns a function that cancels it and waits for it to exit; call that
// without holding mu.
func (s *slaveState) stopSyncerLocked(stop bool) func() {
	if !stop || s.cancel == nil {
		return func() {}
	}
	cancel, done := s.cancel, s.done
	s.cancel, s.done = nil, nil
	return func() {
		cancel()
		<-done
	}
}

func (s *slaveState) setState(st string) { s.state.Store(st) }

func (s *slaveState) getState() string {
	if v, ok := s.state.Load().(string); ok {
		return v
	}
	return "idle"
}

// startSyncerLocked starts following the master, in a goroutine that
// first calls after (each), which waits for an earlier syncer to end.
func (r *Replica) startSyncerLocked(after ...func()) {
	if r.s.cancel != nil || r.closed || r.opts.Dial == nil {
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	r.s.cancel, r.s.done = cancel, done
	master := r.master
	go func() {
		defer close(done)
		for _, f := range after {
			f()
		}
		r.runSyncer(ctx, master)
	}()
}

// runSyncer follows master until ctx ends: TRYSYNC, then pull and apply,
// with a full sync when the master says so; every failure starts over after
// a backoff.
func (r *Replica) runSyncer(ctx context.Context, master string) {
	if r.opts.SyncAfter != nil {
		r.s.setState("waiting for the node to open its replicas")
		select {
		case <-r.opts.SyncAfter:
		case <-ctx.Done():
		}
	}
	backoff := retryBackoff
	for ctx.Err() == nil {
		err := r.syncWith(ctx, master)
		if ctx.Err() != nil {
			break
		}
		r.s.setState("error: " + err.Error())
		r.opts.Logger.Debug("replication from master failed; retrying", "master", master, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
	r.mu.Lock()
	watched := r.s.handedOff
	r.mu.Unlock()
	if !watched {
		// A slave the hub waits for is caught up and follows: it stays
		// "streaming", as INFO, zpctl and meta's moves expect of one.
		r.s.setState("idle")
	}
}

func (r *Replica) syncWith(ctx context.Context, master string) error {
	r.s.setState("connecting")
	conn, err := r.opts.Dial(ctx, master)
	if err != nil {
		return err
	}
	defer conn.Close()
	for ctx.Err() == nil {
		resp, err := r.trySync(ctx, conn)
		if err != nil {
			return err
		}
		switch resp.Result {
		case zppb.TrySyncResponse_CONTINUE:
			if err := r.catchUpDB(); err != nil {
				return err
			}
			if err := r.stream(ctx, conn, master); err != nil {
				return err
			}
			// Out of sync with the master: negotiate again.
		case zppb.TrySyncResponse_TRUNCATE:
			if err := r.truncateTo(ctx, conn, resp.Lsn); err != nil {
				return err
			}
		case zppb.TrySyncResponse_FULLSYNC:
			if err := r.fullSync(ctx, conn); err != nil {
				return fmt.Errorf("full sync: %w", err)
			}
		}
	}
	return ctx.Err()
}

func (r *Replica) trySync(ctx context.Context, conn Conn) (*zppb.TrySyncResponse, error) {
	r.s.setState("trysync")
	terms, err := r.log.Terms()
	if err != nil {
		return nil, err
	}
	term, lsn, applied := r.Position()
	req := &zppb.TrySyncRequest{Table: r.opts.Table, Partition: r.opts.ID, Slave: r.opts.Self, Term: term, Lsn: lsn, AppliedLsn: applied}
	for _, t := range terms {
		req.Terms = append(req.Terms, &zppb.TermStart{Term: t.Term, FirstLsn: t.FirstLSN})
	}
	resp, err := call(ctx, conn, &zppb.Request{Cmd: &zppb.Request_TrySync{TrySync: req}})
	if err != nil {
		return nil, err
	}
	ts := resp.GetTrySync()
	if ts == nil {
		return nil, errors.New("TRYSYNC answer without a result")
	}
	r.s.masterLSN.Store(ts.MasterLsn)
	return ts, nil
}

// truncateTo cuts the binlog back to the last record the master agrees
// with. A DB that already applied records past it cannot be cut back, so
// it is replaced by a full sync instead.
func (r *Replica) truncateTo(ctx context.Context, conn Conn, lsn uint64) error {
	_, _, applied := r.Position()
	if applied > lsn {
		r.opts.Logger.Warn("DB applied records the master does not have; full sync", "applied_lsn", applied, "common_lsn", lsn)
		return r.fullSync(ctx, conn)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.role != Slave {
		return ErrNotMaster
	}
	r.opts.Logger.Warn("truncating binlog to the master's log", "after_lsn", lsn)
	r.dedup.truncate(lsn)
	return r.log.TruncateAfter(lsn)
}

// catchUpDB applies binlog records the DB has not applied yet: writes a
// former master logged but never committed, which the new master agrees
// with.
func (r *Replica) catchUpDB() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.replayLocked()
}

// stream pulls records and applies them until the master says the logs no
// longer match (nil) or something fails. A pull that comes back empty
// offers the replica to the node's WatchHub, which ends ctx once it
// waits for it.
func (r *Replica) stream(ctx context.Context, conn Conn, master string) error {
	r.s.setState("streaming")
	// Whether the replica may have an offer out with the hub (an earlier
	// round of the syncer may have left one), which records withdraw.
	offered := true
	for ctx.Err() == nil {
		term, lsn, _ := r.Position()
		// What the slave has is persisted per its own fsync policy once
		// WaitDurable returns: that is what it acknowledges.
		if err := r.log.WaitDurable(ctx, lsn); err != nil {
			return err
		}
		req := &zppb.BinlogPullRequest{
			Table: r.opts.Table, Partition: r.opts.ID, Slave: r.opts.Self,
			FromLsn: lsn + 1, PrevTerm: term, AckedLsn: lsn,
			MaxBytes: pullBytes, WaitMs: uint32(r.opts.PullWait / time.Millisecond),
		}
		cctx, cancel := context.WithTimeout(ctx, r.opts.PullWait+5*time.Second)
		sent := time.Now()
		resp, err := call(cctx, conn, &zppb.Request{Cmd: &zppb.Request_BinlogPull{BinlogPull: req}})
		cancel()
		if err != nil {
			return err
		}
		pr := resp.GetBinlogPull()
		if pr == nil {
			return errors.New("BINLOG_PULL answer without a result")
		}
		r.s.masterLSN.Store(pr.MasterLsn)
		if !pr.InSync {
			return nil
		}
		if len(pr.Records) == 0 {
			// The partition is idle if the master waited long for a
			// record (an empty answer at once is news: a step-down, a
			// cut log). That is once a pull's wait (30 s), so the lock
			// costs nothing; asked each time, a hub that refused (an old
			// master node) is asked again once it would accept.
			if time.Since(sent) >= r.opts.PullWait/2 {
				offered = r.offerWatch(master, term, lsn)
			}
			continue
		}
		if offered {
			// Once per stream and after each idle spell: a busy
			// partition's pulls skip the lock.
			r.withdrawWatch()
			offered = false
		}
		if err := r.applyReplicated(ctx, conn, pr.Records); err != nil {
			if errors.Is(err, ErrNotStaged) {
				// A bulk load's file is gone from the master too: its
				// DB has the data, which a full sync brings.
				r.opts.Logger.Warn("bulk load: table file unavailable; full sync", "err", err)
				return r.fullSync(ctx, conn)
			}
			return err
		}
	}
	return ctx.Err()
}

// applyReplicated appends records from the master to the binlog and applies
// them to the DB. The table files of records that ingest one are fetched
// from the master over conn first, when this replica lacks them.
func (r *Replica) applyReplicated(ctx context.Context, conn Conn, recs []*zppb.BinlogRecord) error {
	if len(recs) == 0 {
		return nil
	}
	batch := make([]binlog.Record, len(recs))
	wrs := make([]*zppb.WriteRecord, len(recs))
	for i, rec := range recs {
		batch[i] = binlog.Record{Term: rec.Term, LSN: rec.Lsn, Payload: rec.Payload}
		wrs[i] = &zppb.WriteRecord{}
		if err := proto.Unmarshal(rec.Payload, wrs[i]); err != nil {
			return fmt.Errorf("replicated record %d does not parse: %w", rec.Lsn, err)
		}
	}
	if err := r.fetchStaged(ctx, conn, wrs); err != nil {
		return err
	}
	if slices.ContainsFunc(wrs, func(w *zppb.WriteRecord) bool { return w.Ingest != nil }) {
		if err := failpoint.Hold(ctx, r.opts.Logger, failpoint.BulkApply); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.role != Slave || r.closed {
		return ErrNotMaster
	}
	if err := r.log.AppendBatch(batch); err != nil {
		return fmt.Errorf("append replicated records: %w", err)
	}
	apply := make([]engine.Record, len(recs))
	for i, rec := range recs {
		apply[i] = r.engineRecord(rec.Lsn, rec.Term, wrs[i])
		r.dedup.add(wrs[i].RequestId, rec.Lsn, wrs[i])
	}
	db, err := r.holdDB()
	if err != nil {
		return fmt.Errorf("apply replicated records: %w", err)
	}
	defer r.dbMu.RUnlock()
	if err := r.applySplittingLocked(db, apply); err != nil {
		return fmt.Errorf("apply replicated records: %w", err)
	}
	return nil
}

// call sends req and turns an error code into an error.
func call(ctx context.Context, conn Conn, req *zppb.Request) (*zppb.Response, error) {
	resp, err := conn.Call(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp, status.FromResponse(resp)
}

// fullSyncStatus is the progress of the current or last full sync.
type fullSyncStatus struct {
	mu      sync.Mutex
	current *dbsync.Progress
}
