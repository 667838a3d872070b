package client

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/lib/topodelta"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// refreshQuietPeriod is how long after a failed PULL the client stops
// starting background PULLs (those triggered by a newer epoch seen in a
// response): with every meta server down, each data response would
// otherwise start a sweep over dead addresses.
const refreshQuietPeriod = time.Second

// topology is the cached copy of the cluster topology. Reads are lock-free
// on an immutable snapshot because every data call routes through it;
// changes (a PULL, a MOVE) build a new snapshot under mu, which is rare.
type topology struct {
	snap atomic.Pointer[snapshot]

	mu sync.Mutex // serialises install and setMaster
	// learned are masters learned from MOVE answers that carried a newer
	// epoch than the cached topology. They survive installing a PULL from a
	// lagging meta follower, until a topology at least as new arrives.
	learned map[partKey]learnedMaster
	// stale are the partitions whose master (the value) failed a call in
	// transport or by the deadline: it may be hung, or replaced without
	// this client noticing. The mark lasts until that master answers or
	// the partition gets another master, so PULLs that still name it do
	// not clear it (meta fails a hung node over only seconds later).
	stale map[partKey]string
	log   *slog.Logger
}

type partKey struct {
	table string
	id    uint32
}

type learnedMaster struct {
	addr  string
	epoch uint64
}

// snapshot is one immutable view of the topology.
type snapshot struct {
	epoch  uint64
	tables map[string]*tableRoute
	// pb is the topology as pulled (without learned masters), which the
	// next PULL asks a delta against.
	pb *zppb.Topology
}

// tableRoute is one table as routing needs it. Immutable.
type tableRoute struct {
	name string
	n    uint32
	// slots routes keys to partitions by their slot ranges.
	slots *keyspace.SlotMap
	parts []partRoute // indexed by partition id
	// epoch is the snapshot's epoch, so a MOVE answer can be judged newer
	// or older than the routing decision it corrects.
	epoch uint64
}

type partRoute struct {
	master string
	// stale: the master failed a call; see topology.stale.
	stale  bool
	slaves []string
	state  zppb.PartitionState
	term   uint64
}

// route is where one key goes.
type route struct {
	partition uint32
	master    string
	epoch     uint64
	stale     bool
}

func newTopology(log *slog.Logger) *topology {
	t := &topology{learned: make(map[partKey]learnedMaster), stale: make(map[partKey]string), log: log}
	t.snap.Store(&snapshot{tables: map[string]*tableRoute{}})
	return t
}

func (t *topology) epoch() uint64 { return t.snap.Load().epoch }

func (t *topology) table(name string) (*tableRoute, bool) {
	tr, ok := t.snap.Load().tables[name]
	return tr, ok
}

func (tr *tableRoute) route(key []byte) route {
	id := tr.slots.Partition(key)
	p := &tr.parts[id]
	return route{partition: id, master: p.master, epoch: tr.epoch, stale: p.stale}
}

// install replaces the cache with topo unless the cache is newer: meta
// followers answer PULL from their own copy and may lag. It reports whether
// topo was installed.
func (t *topology) install(topo *zppb.Topology) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := t.snap.Load()
	if topo.GetEpoch() < cur.epoch {
		return false
	}
	for k, lm := range t.learned {
		if lm.epoch <= topo.GetEpoch() {
			delete(t.learned, k)
		}
	}
	next := &snapshot{epoch: topo.GetEpoch(), tables: make(map[string]*tableRoute, len(topo.GetTables())), pb: topo}
	for _, tb := range topo.GetTables() {
		tr, err := buildTableRoute(tb, topo.GetEpoch())
		if err != nil {
			// Unroutable; treat the table as unknown rather than
			// misroute or panic on it.
			t.log.Warn("table cannot be routed; ignoring it", "epoch", topo.GetEpoch(), "err", err)
			continue
		}
		for id := range tr.parts {
			pk := partKey{tr.name, uint32(id)}
			if lm, ok := t.learned[pk]; ok {
				tr.parts[id].master = lm.addr
			}
			tr.parts[id].stale = t.stale[pk] != "" && t.stale[pk] == tr.parts[id].master
		}
		next.tables[tr.name] = tr
	}
	for pk, addr := range t.stale {
		if tr := next.tables[pk.table]; tr == nil || pk.id >= tr.n || tr.parts[pk.id].master != addr {
			delete(t.stale, pk) // another master now, or the table is gone
		}
	}
	t.snap.Store(next)
	return true
}

func buildTableRoute(tb *zppb.Table, epoch uint64) (*tableRoute, error) {
	slots, err := topo.SlotMap(tb)
	if err != nil {
		return nil, err
	}
	n := tb.GetPartitionCount()
	tr := &tableRoute{name: tb.GetName(), n: n, slots: slots, parts: make([]partRoute, n), epoch: epoch}
	for _, p := range tb.GetPartitions() {
		tr.parts[p.GetId()] = partRoute{
			master: p.GetMaster(),
			slaves: p.GetSlaves(),
			state:  p.GetState(),
			term:   p.GetTerm(),
		}
	}
	return tr, nil
}

// setMaster records that addr masters a partition, as a MOVE answer said.
// epoch is the answering node's epoch (0 when it did not say).
func (t *topology) setMaster(table string, id uint32, addr string, epoch uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := t.snap.Load()
	tr, ok := cur.tables[table]
	if !ok || id >= tr.n || tr.parts[id].master == addr {
		return
	}
	if epoch > cur.epoch {
		t.learned[partKey{table, id}] = learnedMaster{addr: addr, epoch: epoch}
	}
	delete(t.stale, partKey{table, id})
	t.updatePartLocked(cur, tr, id, func(p *partRoute) { p.master, p.stale = addr, false })
}

// markStale records that addr, as master of a partition, failed a call. It
// reports whether the mark is new.
func (t *topology) markStale(table string, id uint32, addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := t.snap.Load()
	tr, ok := cur.tables[table]
	if !ok || id >= tr.n || tr.parts[id].master != addr || tr.parts[id].stale {
		return false
	}
	t.stale[partKey{table, id}] = addr
	t.updatePartLocked(cur, tr, id, func(p *partRoute) { p.stale = true })
	return true
}

// clearStale records that addr answered as master of a partition. It
// costs a map lookup when there is no mark, since every answer calls it.
func (t *topology) clearStale(table string, id uint32, addr string) {
	if tr, ok := t.table(table); !ok || id >= tr.n || !tr.parts[id].stale || tr.parts[id].master != addr {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := t.snap.Load()
	tr, ok := cur.tables[table]
	if !ok || id >= tr.n || !tr.parts[id].stale || tr.parts[id].master != addr {
		return
	}
	delete(t.stale, partKey{table, id})
	t.updatePartLocked(cur, tr, id, func(p *partRoute) { p.stale = false })
}

// updatePartLocked installs a snapshot in which partition id of tr is
// changed by fn; t.mu is held.
func (t *topology) updatePartLocked(cur *snapshot, tr *tableRoute, id uint32, fn func(*partRoute)) {
	ntr := *tr
	ntr.parts = slices.Clone(tr.parts)
	fn(&ntr.parts[id])
	next := &snapshot{epoch: cur.epoch, tables: maps.Clone(cur.tables), pb: cur.pb}
	next.tables[tr.name] = &ntr
	t.snap.Store(next)
}

// pullFlight is one PULL in progress; concurrent refreshes join it rather
// than each sweeping the meta servers.
type pullFlight struct {
	// gen numbers the flights in the order they started.
	gen  uint64
	done chan struct{}
	err  error // set before done closes
}

// startRefresh starts a PULL of the whole topology, or joins the one in
// progress. want is the epoch the caller knows exists (0 when it does not
// know): the PULL prefers a meta server that has it. started reports whether
// this call started the flight, so that a caller that needs a PULL begun
// after its own observation can tell. The PULL runs detached from the
// caller's context, bounded by DefaultTimeout, so a caller that gives up
// does not fail the others waiting on it.
func (c *core) startRefresh(want uint64) (f *pullFlight, started bool) {
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	if c.flight != nil {
		if c.onJoin != nil {
			c.onJoin()
		}
		return c.flight, false
	}
	f = &pullFlight{gen: c.pullGen.Add(1), done: make(chan struct{})}
	if c.closed.Load() {
		f.err = ErrClosed
		close(f.done)
		return f, true
	}
	c.flight = f
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.baseCtx, c.opts.DefaultTimeout)
		// The cache needs routes, not heartbeats: a delta will do.
		topo, err := c.pullOnce(ctx, "", want, c.topo.snap.Load().pb)
		cancel()
		if err == nil {
			before := c.topo.epoch()
			if c.topo.install(topo) && topo.GetEpoch() != before {
				c.log.Debug("topology updated", "epoch", topo.GetEpoch(), "was", before)
			}
		}
		c.flightMu.Lock()
		c.flight = nil
		wasFailing := !c.lastPullFailure.IsZero()
		if err != nil {
			c.lastPullFailure = time.Now()
		} else {
			c.lastPullFailure = time.Time{}
		}
		c.flightMu.Unlock()
		// Log changes of state, not every failed attempt: with the meta
		// servers down, PULLs fail as often as calls meet a stale topology.
		switch {
		case err != nil && !wasFailing:
			c.log.Warn("topology refresh failed; serving from the cached topology", "epoch", c.topo.epoch(), "err", err)
		case err != nil:
			c.log.Debug("topology refresh failed", "err", err)
		case wasFailing:
			c.log.Info("topology refresh recovered", "epoch", c.topo.epoch())
		}
		f.err = err
		close(f.done)
	}()
	return f, true
}

// refreshInBackground starts a PULL without waiting for it, unless the
// cache already has epoch want or a PULL failed moments ago.
func (c *core) refreshInBackground(want uint64) {
	if want != 0 && c.topo.epoch() >= want {
		return
	}
	c.flightMu.Lock()
	quiet := !c.lastPullFailure.IsZero() && time.Since(c.lastPullFailure) < refreshQuietPeriod
	c.flightMu.Unlock()
	if quiet {
		return
	}
	c.startRefresh(want)
}

// metaFailing reports whether a PULL failed moments ago (the meta servers
// may all be down), so that calls do not wait on PULLs.
func (c *core) metaFailing() bool {
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	return !c.lastPullFailure.IsZero() && time.Since(c.lastPullFailure) < refreshQuietPeriod
}

// routeFailed is the rule for every attempt that failed in transport or by
// the deadline: the master may be hung (SIGSTOP, a long GC pause, a
// half-open connection) and replaced by now, which no answer will ever
// say. So the partition is marked stale, making the next call to it PULL
// before it sends (see freshen), and a PULL starts now, in the background:
// the call that failed may already be out of time.
func (c *core) routeFailed(table string, id uint32, addr string, err error) {
	if c.closed.Load() {
		return
	}
	if c.topo.markStale(table, id, addr) {
		c.log.Debug("master failed a call; route marked stale", "table", table, "partition", id, "node", addr, "err", err)
	}
	c.startRefresh(0)
}

// freshen waits for a PULL that started after generation gen (the value of
// pullGen when the caller's call began), and gives up after half of what is
// left of ctx, so that the call can still try the cached route. A call
// routed to a stale partition waits so that it reaches the new master as
// soon as meta has one, instead of timing out against the old one as well.
// It does not wait while the meta servers are failing: they are then off
// the data path, as always.
func (c *core) freshen(ctx context.Context, gen uint64) {
	if c.metaFailing() {
		c.refreshInBackground(0)
		return
	}
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Until(dl)/2)
		defer cancel()
	}
	for !c.closed.Load() {
		f, _ := c.startRefresh(0)
		select {
		case <-f.done:
		case <-ctx.Done():
			return
		}
		if f.gen > gen || f.err != nil {
			return
		}
		// That PULL began before the call did and may predate what the
		// caller needs: run another.
	}
}

// noteEpoch looks at the epoch a server answered with and refreshes the
// cache in the background when it is newer.
func (c *core) noteEpoch(epoch uint64) {
	c.sawEpoch(epoch)
	if epoch > c.topo.epoch() {
		c.refreshInBackground(epoch)
	}
}

// sawEpoch records that the cluster has reached epoch.
func (c *core) sawEpoch(epoch uint64) {
	for {
		cur := c.seen.Load()
		if epoch <= cur || c.seen.CompareAndSwap(cur, epoch) {
			return
		}
	}
}

// refreshWait PULLs (or joins the PULL in progress) and waits for it.
// started reports whether this call started it.
func (c *core) refreshWait(ctx context.Context, want uint64) (started bool, err error) {
	f, started := c.startRefresh(want)
	select {
	case <-f.done:
		return started, f.err
	case <-ctx.Done():
		return started, ctx.Err()
	}
}

// tableFor returns the cached route of table, PULLing when the cache does
// not know it. It returns status TABLE_NOT_FOUND when the meta servers do
// not know it either. Three cases make a PULL that misses the table
// inconclusive, and lead to another: a PULL that was already running when
// the caller found the table missing may have been answered before the
// table was created; meta followers answer from their own copy, which
// may lag an epoch this client has seen (e.g. the one that created the
// table), in which case it asks again until ctx ends; and a follower may
// lag a creation this client has not seen (another process created the
// table), which asking every member for the table itself finds.
func (c *core) tableFor(ctx context.Context, table string) (*tableRoute, error) {
	if tr, ok := c.topo.table(table); ok {
		return tr, nil
	}
	var bo *backoff
	confirmed := false
	for {
		want := c.seen.Load()
		started, err := c.refreshWait(ctx, want)
		if err != nil {
			return nil, err
		}
		if tr, ok := c.topo.table(table); ok {
			return tr, nil
		}
		if !started {
			continue
		}
		notFound := status.New(zppb.Code_TABLE_NOT_FOUND, "table %q", table)
		if c.topo.epoch() >= want {
			// The answer may have come from a follower behind the
			// table's creation: ask for the table itself, which every
			// member is asked for until one has it, and if one has it at
			// a newer epoch, PULL again wanting that epoch.
			if confirmed {
				return nil, notFound
			}
			confirmed = true
			topo, err := c.pullOnce(ctx, table, 0, nil)
			if err != nil || topo.GetEpoch() <= c.topo.epoch() {
				return nil, notFound
			}
			c.sawEpoch(topo.GetEpoch())
			continue
		}
		if bo == nil {
			bo = c.newBackoff()
		}
		if err := c.sleep(ctx, bo.next()); err != nil {
			return nil, fmt.Errorf("%w (last error: meta servers lag epoch %d: %w)", err, want, notFound)
		}
	}
}

// pullOnce asks the meta servers for the topology (or one table), once
// each at most, starting with the one that answered last. A meta server
// whose copy is older than want is passed over for the next one; when none
// has want, the newest answer is returned. One that does not know table is
// passed over too: a follower may not have applied its creation yet, and
// a new client has seen no epoch to ask for. With cur (and no table) the
// whole topology is asked as a delta against cur (lib/topodelta) and
// returned whole; the nodes' heartbeats and versions in it may then be
// cur's, older than the answering leader's.
func (c *core) pullOnce(ctx context.Context, table string, want uint64, cur *zppb.Topology) (*zppb.Topology, error) {
	var best *zppb.Topology
	var notFound error
	err := c.sweepMetas(ctx, true, func(ctx context.Context, addr string) error {
		topo, err := c.pullFrom(ctx, addr, table, cur)
		if status.Code(err) == zppb.Code_TABLE_NOT_FOUND {
			notFound = err
			return errStaleMeta
		}
		if err != nil {
			return err
		}
		if best == nil || topo.GetEpoch() > best.GetEpoch() {
			best = topo
		}
		if topo.GetEpoch() < want {
			return errStaleMeta
		}
		return nil
	})
	if best != nil {
		return best, nil
	}
	if notFound != nil && ctx.Err() == nil {
		return nil, notFound
	}
	return nil, err
}

// pullFrom PULLs from one meta server: table, or the whole topology as a
// delta against cur (nil: none) merged into it; a delta that does not fit
// cur is asked again whole.
func (c *core) pullFrom(ctx context.Context, addr, table string, cur *zppb.Topology) (*zppb.Topology, error) {
	if table != "" {
		cur = nil // one table comes whole
	}
	return topodelta.Pull(ctx, cur, func(ctx context.Context, req *zppb.PullRequest) (*zppb.PullResponse, error) {
		req.Table = table
		resp, err := c.pool.Call(ctx, addr, &zppb.Request{Cmd: &zppb.Request_Pull{Pull: req}})
		if err != nil {
			return nil, err
		}
		if err := status.FromResponse(resp); err != nil {
			return nil, err
		}
		if resp.GetPull().GetTopology() == nil {
			return nil, status.New(zppb.Code_ERROR, "meta %s answered PULL without a topology", addr)
		}
		return resp.GetPull(), nil
	}, func(err error) {
		c.log.Debug("topology delta does not fit; pulling the whole topology", "meta", addr, "err", err)
	})
}
