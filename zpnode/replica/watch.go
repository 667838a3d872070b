package replica

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Idle slave replicas wait together (docs/architecture.md, Scale, step 4).
// A slave replica whose pull the master held for at least half its wait
// and answered empty offers its position to its node's WatchHub and goes
// on pulling; the hub's waiter for that master
// node claims the offer when it sends its next BINLOG_WATCH, which ends the
// replica's syncer (and so its connection). The master answers the watch
// when a listed partition has a record past the position, or no longer
// matches it or is not mastered there; the hub then wakes those replicas,
// which dial, TRYSYNC and pull as before until idle again. An offer is
// claimed within one watch's wait (pullWait): a write to any watched
// partition, or the wait's end, sends the next.

// unsupportedFor is how long a hub keeps a master node that answered
// BINLOG_WATCH as unknown (a node of an older release, in a rolling
// upgrade) off watching: its slave replicas pull each on its own.
const unsupportedFor = 10 * time.Minute

// WatchHubOptions configures a WatchHub.
type WatchHubOptions struct {
	// Self is this node's address, as slaves name themselves to masters.
	Self string
	// Dial opens a connection to a master node.
	Dial   func(ctx context.Context, addr string) (Conn, error)
	Logger *slog.Logger
	// Wait is how long a BINLOG_WATCH waits; default pullWait.
	Wait time.Duration
}

// WatchHub is a node's waiter for its idle slave replicas: one goroutine
// and one connection per master node, holding one BINLOG_WATCH for all of
// them.
type WatchHub struct {
	opts   WatchHubOptions
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex // taken before a Replica's mu, never after
	masters map[string]*masterWatch
	closed  bool
}

// masterWatch is the hub's state for one master node. The hub's mu guards
// it.
type masterWatch struct {
	addr    string
	offered map[*watchReg]struct{} // claimed by the next watch
	covered map[*watchReg]struct{} // watched
	running bool                   // its goroutine runs
	// session is the watch session on the current connection (0: none
	// yet, the next request starts one); sent are the covered replicas
	// the master has in it, removed those it has that are gone since.
	session uint64
	sent    map[*watchReg]struct{}
	removed []*zppb.PartitionRef
	// unsupportedUntil: the node answered BINLOG_WATCH as unknown; offers
	// are refused until then.
	unsupportedUntil time.Time
}

// watchReg is one slave replica's offer, then registration, at a position.
type watchReg struct {
	r      *Replica
	master string
	pos    watchPos
}

type watchPos struct {
	from, prevTerm, acked uint64
}

// NewWatchHub returns a hub; Close it after the replicas that use it.
func NewWatchHub(opts WatchHubOptions) *WatchHub {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Wait <= 0 {
		opts.Wait = pullWait
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &WatchHub{opts: opts, ctx: ctx, cancel: cancel, masters: make(map[string]*masterWatch)}
}

// Close ends the watches and waits for their goroutines.
func (h *WatchHub) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
}

// Watching returns how many slave replicas the hub waits for, and on how
// many master nodes; none for a nil hub.
func (h *WatchHub) Watching() (replicas, masters int) {
	if h == nil {
		return 0, 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, mw := range h.masters {
		replicas += len(mw.covered)
		if mw.running {
			masters++
		}
	}
	return replicas, masters
}

// offer adds reg for the next watch of its master node; false when the hub
// is closed or the node does not know BINLOG_WATCH.
func (h *WatchHub) offer(reg *watchReg) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	mw := h.masters[reg.master]
	if mw == nil {
		mw = &masterWatch{addr: reg.master, offered: make(map[*watchReg]struct{}), covered: make(map[*watchReg]struct{}),
			sent: make(map[*watchReg]struct{})}
		h.masters[reg.master] = mw
	}
	if time.Now().Before(mw.unsupportedUntil) {
		return false
	}
	mw.offered[reg] = struct{}{}
	if !mw.running {
		mw.running = true
		h.wg.Add(1)
		go h.run(mw)
	}
	return true
}

// remove forgets reg (its replica changed master, closed, or took records
// before the offer was claimed).
func (h *WatchHub) remove(reg *watchReg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if mw := h.masters[reg.master]; mw != nil {
		delete(mw.offered, reg)
		delete(mw.covered, reg)
		if _, ok := mw.sent[reg]; ok {
			delete(mw.sent, reg)
			mw.removed = append(mw.removed, reg.ref())
		}
	}
}

func (reg *watchReg) ref() *zppb.PartitionRef {
	return &zppb.PartitionRef{Table: reg.r.opts.Table, Partition: reg.r.opts.ID}
}

// run holds the watch of one master node until nothing is left to watch.
func (h *WatchHub) run(mw *masterWatch) {
	defer h.wg.Done()
	var conn Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	backoff := retryBackoff
	for {
		req, ok := h.nextWatch(mw)
		if !ok {
			return
		}
		if conn == nil {
			var err error
			if conn, err = h.opts.Dial(h.ctx, mw.addr); err != nil {
				conn = nil
				h.endSession(mw) // its first request was not sent
				h.opts.Logger.Debug("cannot reach master node to watch; retrying", "master", mw.addr, "err", err, "backoff", backoff)
				if !h.sleep(backoff) {
					return
				}
				backoff = min(2*backoff, maxBackoff)
				continue
			}
		}
		ctx, cancel := context.WithTimeout(h.ctx, h.opts.Wait+5*time.Second)
		resp, err := call(ctx, conn, &zppb.Request{Cmd: &zppb.Request_BinlogWatch{BinlogWatch: req}})
		cancel()
		switch {
		case h.ctx.Err() != nil:
			return
		case err == nil && resp.GetBinlogWatch().GetUnknownSession():
			h.endSession(mw)
			if req.NewSession && !h.sleep(backoff) {
				return // a node closing refuses new sessions
			}
			continue
		case status.Code(err) == zppb.Code_INVALID_ARGUMENT:
			// A node of an older release: its replicas pull each on
			// their own, as before.
			h.opts.Logger.Info("master node does not know BINLOG_WATCH; its slave replicas pull on their own", "master", mw.addr)
			h.wake(mw, nil, time.Now().Add(unsupportedFor))
			continue
		case err != nil:
			// The node restarts or the network failed: the positions are
			// still what the replicas have; watch again on a new
			// connection.
			h.opts.Logger.Debug("watch failed; retrying", "master", mw.addr, "err", err, "backoff", backoff)
			conn.Close()
			conn = nil
			h.endSession(mw)
			if !h.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = retryBackoff
		ready := resp.GetBinlogWatch().GetReady()
		if len(ready) > 0 {
			h.wake(mw, ready, time.Time{})
		}
	}
}

// nextWatch claims the offers and returns the watch listing every
// registered replica; false when there is none left (the goroutine ends).
func (h *WatchHub) nextWatch(mw *masterWatch) (*zppb.BinlogWatchRequest, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for reg := range mw.offered {
		delete(mw.offered, reg)
		if reg.r.handOff(reg) {
			mw.covered[reg] = struct{}{}
		}
	}
	if len(mw.covered) == 0 || h.closed {
		mw.running = false
		if !time.Now().Before(mw.unsupportedUntil) {
			delete(h.masters, mw.addr)
		}
		return nil, false
	}
	req := &zppb.BinlogWatchRequest{Slave: h.opts.Self, WaitMs: uint32(h.opts.Wait / time.Millisecond), Session: mw.session}
	if mw.session == 0 {
		for mw.session == 0 {
			mw.session = rand.Uint64()
		}
		req.Session, req.NewSession = mw.session, true
		clear(mw.sent)
		mw.removed = nil
	}
	req.Removed, mw.removed = mw.removed, nil
	for reg := range mw.covered {
		if _, ok := mw.sent[reg]; ok {
			continue
		}
		mw.sent[reg] = struct{}{}
		req.Partitions = append(req.Partitions, &zppb.WatchedPartition{
			Table: reg.r.opts.Table, Partition: reg.r.opts.ID,
			FromLsn: reg.pos.from, PrevTerm: reg.pos.prevTerm, AckedLsn: reg.pos.acked,
		})
	}
	return req, true
}

// endSession makes the next request start a new session, listing every
// replica again: the connection failed, or the master lost the session.
func (h *WatchHub) endSession(mw *masterWatch) {
	h.mu.Lock()
	mw.session = 0
	h.mu.Unlock()
}

// wake restarts the syncers of the replicas named in ready, or of all of
// mw's when ready is nil; a non-zero unsupportedUntil also refuses offers
// until then and drops those not claimed yet (they still pull on their
// own).
func (h *WatchHub) wake(mw *masterWatch, ready []*zppb.PartitionRef, unsupportedUntil time.Time) {
	type key struct {
		table string
		id    uint32
	}
	var named map[key]bool
	if ready != nil {
		named = make(map[key]bool, len(ready))
		for _, p := range ready {
			named[key{p.Table, p.Partition}] = true
		}
	}
	var woken []*watchReg
	h.mu.Lock()
	for reg := range mw.covered {
		if named == nil || named[key{reg.r.opts.Table, reg.r.opts.ID}] {
			// The master's answer dropped it from the session.
			delete(mw.covered, reg)
			delete(mw.sent, reg)
			woken = append(woken, reg)
		}
	}
	if !unsupportedUntil.IsZero() {
		mw.unsupportedUntil = unsupportedUntil
		for reg := range mw.offered {
			delete(mw.offered, reg)
			woken = append(woken, reg)
		}
	}
	h.mu.Unlock()
	for _, reg := range woken {
		reg.r.wakeFromWatch(reg)
	}
}

func (h *WatchHub) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-h.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// offerWatch offers the replica's position to the node's hub after a pull
// came back empty: the partition is idle. The replica keeps pulling until
// the hub claims the offer. It reports whether the hub took the offer.
func (r *Replica) offerWatch(master string, term, lsn uint64) bool {
	h := r.opts.Watch
	if h == nil {
		return false
	}
	pos := watchPos{from: lsn + 1, prevTerm: term, acked: lsn}
	r.mu.Lock()
	old := r.s.watch
	if old != nil && (old.pos == pos || r.s.handedOff) {
		r.mu.Unlock()
		return true // offered already
	}
	if r.closed || r.role != Slave || r.master != master {
		r.mu.Unlock()
		return false
	}
	// An offer at another position (the log was cut back since) is
	// replaced.
	reg := &watchReg{r: r, master: master, pos: pos}
	r.s.watch = reg
	r.mu.Unlock()
	if old != nil {
		h.remove(old)
	}
	if h.offer(reg) {
		return true
	}
	r.mu.Lock()
	if r.s.watch == reg {
		r.s.watch = nil
	}
	r.mu.Unlock()
	return false
}

// withdrawWatch takes back an offer not yet claimed: records came.
func (r *Replica) withdrawWatch() {
	r.mu.Lock()
	reg := r.s.watch
	if reg == nil || r.s.handedOff {
		r.mu.Unlock()
		return
	}
	r.s.watch = nil
	r.mu.Unlock()
	r.opts.Watch.remove(reg)
}

// dropWatchLocked forgets the replica's offer or registration (a new
// master, a promotion, Close) and returns the hub call to make without
// holding mu. A handed-off syncer is stopped already.
func (r *Replica) dropWatchLocked() func() {
	reg := r.s.watch
	r.s.watch, r.s.handedOff = nil, false
	if reg == nil {
		return func() {}
	}
	return func() { r.opts.Watch.remove(reg) }
}

// handOff ends the replica's own syncer when the hub lists reg in its
// watch; false when reg is no longer the replica's offer. The hub's mu is
// held.
func (r *Replica) handOff(reg *watchReg) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.s.watch != reg || r.s.handedOff || r.closed || r.role != Slave || r.master != reg.master || r.s.cancel == nil {
		if r.s.watch == reg {
			r.s.watch = nil
		}
		return false
	}
	r.s.handedOff = true
	// The syncer's goroutine and connection end; cancel and done stay, so
	// that wakeFromWatch waits for it before starting the next.
	r.s.cancel()
	return true
}

// wakeFromWatch starts the replica's syncer again: its master has records
// for it (or news).
func (r *Replica) wakeFromWatch(reg *watchReg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.s.watch != reg {
		return
	}
	r.s.watch = nil
	if !r.s.handedOff {
		return // never claimed: the syncer still pulls
	}
	r.s.handedOff = false
	if r.closed || r.role != Slave || r.master != reg.master {
		return
	}
	prev := r.s.stopSyncerLocked(true)
	r.startSyncerLocked(prev)
}
