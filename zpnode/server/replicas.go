package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/atomicfile"
	"github.com/zeppelin-kv/zeppelin/lib/binlog"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

type replicaKey struct {
	table string
	id    uint32
}

// replicaSet holds the open replicas. Only applying a topology (one at a
// time, its background open included) opens and closes them; requests
// look them up.
type replicaSet struct {
	s  *Server
	mu sync.RWMutex
	m  map[replicaKey]*replica.Replica
}

func newReplicaSet(s *Server) *replicaSet {
	return &replicaSet{s: s, m: make(map[replicaKey]*replica.Replica)}
}

func (rs *replicaSet) get(table string, id uint32) *replica.Replica {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	return rs.m[replicaKey{table, id}]
}

// snapshot returns the open replicas at this moment; callers may take their
// time over it without holding up topology changes.
func (rs *replicaSet) snapshot() map[replicaKey]*replica.Replica {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	return maps.Clone(rs.m)
}

func (rs *replicaSet) put(k replicaKey, r *replica.Replica) {
	rs.mu.Lock()
	rs.m[k] = r
	rs.mu.Unlock()
}

func (rs *replicaSet) remove(k replicaKey) *replica.Replica {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.m[k]
	delete(rs.m, k)
	return r
}

func (rs *replicaSet) closeAll() error {
	rs.mu.Lock()
	m := rs.m
	rs.m = make(map[replicaKey]*replica.Replica)
	rs.mu.Unlock()
	// Closed without the lock: Close waits for a record being applied,
	// and applying one may look a replica up (the fence of a split that
	// committed before it got here records a trim the node runs).
	var errs []error
	for _, r := range m {
		errs = append(errs, r.Close())
	}
	return errors.Join(errs...)
}

// everyReplica calls fn on each open replica every interval until the
// server closes. The replicas are those open when a round starts; fn runs
// without holding up topology changes.
func (s *Server) everyReplica(interval time.Duration, fn func(replicaKey, *replica.Replica)) {
	s.every(interval, func() {
		for k, r := range s.replicas.snapshot() {
			if s.ctx.Err() != nil {
				return
			}
			fn(k, r)
		}
	})
}

// every runs pass every interval until the server closes.
func (s *Server) every(interval time.Duration, pass func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		pass()
	}
}

// parkPass parks the DBs of replicas nobody used for IdleClose, and past
// MaxOpenDBs the least recently used of the others (run every
// ParkInterval).
func (s *Server) parkPass() {
	type open struct {
		k     replicaKey
		r     *replica.Replica
		since time.Time
	}
	var opened []open
	for k, r := range s.replicas.snapshot() {
		if s.ctx.Err() != nil {
			return
		}
		if _, err := r.ParkIfIdle(s.cfg.IdleClose); err != nil {
			s.cfg.Logger.Warn("cannot park idle replica", "table", k.table, "partition", k.id, "err", err)
		}
		if s.cfg.MaxOpenDBs > 0 && !r.Parked() {
			opened = append(opened, open{k, r, r.IdleSince()})
		}
	}
	if s.cfg.MaxOpenDBs <= 0 || len(opened) <= s.cfg.MaxOpenDBs {
		return
	}
	slices.SortFunc(opened, func(a, b open) int { return a.since.Compare(b.since) })
	surplus := len(opened) - s.cfg.MaxOpenDBs
	for _, o := range opened {
		if surplus == 0 || s.ctx.Err() != nil {
			return
		}
		// A DB in use right now is left alone; the next pass tries again.
		if ok, err := o.r.Park(); err != nil {
			s.cfg.Logger.Warn("cannot park replica", "table", o.k.table, "partition", o.k.id, "err", err)
		} else if ok {
			surplus--
		}
	}
}

// tableMarker records in a table's directory which incarnation of the table
// (its created_epoch) the data belongs to, so that a table dropped and
// created again under the same name never sees the old data.
const tableMarker = "TABLE"

func (s *Server) tableDir(table string) string { return filepath.Join(s.cfg.DataDir, table) }

func (s *Server) replicaDir(table string, id uint32) string {
	return filepath.Join(s.cfg.DataDir, table, strconv.FormatUint(uint64(id), 10))
}

// safeTableName guards the file system against a table name that is not a
// plain directory name; meta validates names too.
func safeTableName(name string) bool {
	return name != "" && name[0] != '.' && !strings.ContainsAny(name, `/\`) && name != topologyFile
}

// applyTopology makes the open replicas match pb: sets the roles of the
// open ones, publishes pb for routing, closes (and deletes) the ones it no
// longer holds, removes the directories of tables pb does not have, then
// opens the ones this node now holds, each taking its role as it opens. pb
// is a topology fresh from a meta server or, at start, the one saved
// before a restart.
func (s *Server) applyTopology(pb *zppb.Topology) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	_, openNew := s.applyRouting(pb)
	openNew()
}

// applyRouting is applyTopology but for the opening of the new replicas,
// which it counts and returns to run next; the caller holds applyMu until
// that is done.
//
// Routing by pb starts before the new replicas are open: a request for one
// not open yet gets WAIT, and a table of thousands of partitions serves
// each as soon as it opens, while the node runs pb's epoch (and renews its
// master lease) for the partitions it already had.
func (s *Server) applyRouting(pb *zppb.Topology) (news int, openNew func()) {
	self := s.cfg.Addr
	type want struct {
		table *zppb.Table
		p     *zppb.Partition
	}
	wanted := make(map[replicaKey]want)
	for _, tb := range pb.Tables {
		if !safeTableName(tb.Name) {
			s.cfg.Logger.Error("ignoring table with unsafe name", "table", tb.Name)
			continue
		}
		if err := s.claimTableDir(tb); err != nil {
			s.cfg.Logger.Error("cannot prepare table directory", "table", tb.Name, "err", err)
			continue
		}
		for _, p := range tb.Partitions {
			if p.Master == self || slices.Contains(p.Slaves, self) {
				wanted[replicaKey{tb.Name, p.Id}] = want{tb, p}
			}
		}
	}

	// Under openMu, so that a replica a background open finishes now
	// takes its role from pb or a later topology (openReplicas).
	s.openMu.Lock()
	s.assigned.Store(int64(len(wanted)))
	var missing []replicaKey
	for k, w := range wanted {
		if r := s.replicas.get(k.table, k.id); r != nil {
			s.limitSlots(w.table, w.p, r)
			r.SetRole(assignment(self, w.table, w.p))
			defer s.applySplit(w.table, w.p, r) // once pb is the node's topology
		} else if _, opening := s.inflight[k]; !opening {
			missing = append(missing, k)
			s.inflight[k] = w.table.CreatedEpoch
		}
	}
	s.quota.update(pb, self)
	nt := newTopology(pb)
	s.topo.Store(nt)
	s.openMu.Unlock()
	for _, err := range nt.unroutable {
		s.cfg.Logger.Warn("table cannot be routed; its keys are answered TABLE_NOT_FOUND", "epoch", pb.Epoch, "err", err)
	}

	for k := range s.replicas.snapshot() {
		if _, ok := wanted[k]; ok {
			continue
		}
		if r := s.replicas.remove(k); r != nil {
			if err := r.Close(); err != nil {
				s.cfg.Logger.Warn("closing replica", "table", k.table, "partition", k.id, "err", err)
			}
		}
		if err := os.RemoveAll(s.replicaDir(k.table, k.id)); err != nil {
			s.cfg.Logger.Warn("removing replica data", "table", k.table, "partition", k.id, "err", err)
		}
		s.cfg.Logger.Info("replica removed", "table", k.table, "partition", k.id)
	}
	s.removeUnknownTables(pb)
	s.sweepSplitLeftovers(pb)
	// A replica that fails to open is left out: requests for it get WAIT;
	// the next epoch or restart retries.
	return len(missing), func() { s.openReplicas(missing) }
}

// assignment is what partition p of table tb asks of the node at self.
func assignment(self string, tb *zppb.Table, p *zppb.Partition) replica.Assignment {
	a := replica.Assignment{
		Role: replica.Slave, Master: p.Master, Term: p.Term,
		Slaves: p.Slaves, MinSync: int(tb.MinSyncReplicas),
	}
	if p.Master == self {
		a.Role = replica.Master
	}
	return a
}

// opened finishes the open of replica k (r nil: it failed): r takes its
// role from the topology the node runs now, which may be newer than the
// one that asked for it, and serves; a replica that topology no longer
// gives the node is closed and its data removed.
func (s *Server) opened(k replicaKey, r *replica.Replica) {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	delete(s.inflight, k)
	if r == nil {
		return
	}
	self := s.cfg.Addr
	tb, p, ok := s.topo.Load().partitionByID(k.table, k.id)
	if ok && p.Id == k.id && (p.Master == self || slices.Contains(p.Slaves, self)) {
		s.limitSlots(tb, p, r)
		r.SetRole(assignment(self, tb, p))
		s.replicas.put(k, r)
		s.applySplit(tb, p, r)
		if !s.trimAfterSplit(k, r) {
			s.resumeTrims(k, r)
		}
		return
	}
	if err := r.Close(); err != nil {
		s.cfg.Logger.Warn("closing replica", "table", k.table, "partition", k.id, "err", err)
	}
	if err := os.RemoveAll(s.replicaDir(k.table, k.id)); err != nil {
		s.cfg.Logger.Warn("removing replica data", "table", k.table, "partition", k.id, "err", err)
	}
	s.cfg.Logger.Info("replica removed as it opened: a newer topology moved it away", "table", k.table, "partition", k.id)
}

// opensTouched reports whether pb drops or recreates a table whose
// replicas a background open is still opening: applying it would remove
// their directories under the open, so it waits for the open to end.
func (s *Server) opensTouched(pb *zppb.Topology) bool {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	if len(s.inflight) == 0 {
		return false
	}
	created := make(map[string]uint64, len(pb.Tables))
	for _, tb := range pb.Tables {
		created[tb.Name] = tb.CreatedEpoch
	}
	for k, epoch := range s.inflight {
		if c, ok := created[k.table]; !ok || c != epoch {
			return true
		}
	}
	return false
}

// openWorkers is how many replicas a node opens at once. Opening is mostly
// waiting on the disk (RocksDB reads its MANIFEST and table footers, the
// binlog its last segment), so more than the CPUs.
const openWorkers = 16

// openProgressEvery is how often a long open logs its progress.
const openProgressEvery = 2 * time.Second

// openReplicas opens the replicas keys name, several at a time, each to
// serve as the topology the node runs by then says (opened); a start with
// thousands of replicas, or a table created with thousands of partitions,
// logs its progress.
func (s *Server) openReplicas(keys []replicaKey) {
	if len(keys) == 0 {
		return
	}
	start := time.Now()
	s.opening.Add(int64(len(keys)))
	var done, failed atomic.Int64
	work := make(chan replicaKey)
	var wg sync.WaitGroup
	for range min(openWorkers, len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				s.checkSplitChild(k)
				r, err := replica.Open(replica.Options{
					Dir:       s.replicaDir(k.table, k.id),
					Table:     k.table,
					ID:        k.id,
					Shared:    s.shared,
					Binlog:    s.binlogOptions(),
					Self:      s.cfg.Addr,
					Dial:      s.peers.Dial,
					SyncAfter: s.syncAfter,
					Watch:     s.watch,
					PullWait:  s.cfg.PullWait,
					Logger:    s.cfg.Logger,

					SplitDir:       s.splitDir(k.table, k.id),
					SplitStaged:    s.splitStaged(k.table, k.id),
					SplitCommitted: s.splitCommitted(k.table),
					SplitTrim:      func() { s.runRecordedTrim(k) },
					Owns:           s.owns(k.table, k.id),
				})
				if err != nil {
					s.cfg.Logger.Error("cannot open replica", "table", k.table, "partition", k.id, "err", err)
					failed.Add(1)
					r = nil
				}
				s.opened(k, r)
				done.Add(1)
				s.opening.Add(-1)
			}
		}()
	}
	tick := time.NewTicker(openProgressEvery)
	defer tick.Stop()
send:
	for i, k := range keys {
		for sent := false; !sent; {
			select {
			case work <- k:
				sent = true
			case <-tick.C:
				s.logOpenProgress(start, int(done.Load()), len(keys))
			case <-s.ctx.Done():
				// Closing: what was not opened is not wanted now.
				s.opening.Add(-int64(len(keys) - i))
				for _, k := range keys[i:] {
					s.opened(k, nil)
				}
				break send
			}
		}
	}
	close(work)
	wg.Wait()
	if time.Since(start) >= openProgressEvery || failed.Load() > 0 {
		s.cfg.Logger.Info("replicas opened", "opened", len(keys)-int(failed.Load()), "failed", failed.Load(),
			"took", time.Since(start).Round(time.Millisecond))
	}
}

func (s *Server) logOpenProgress(start time.Time, done, total int) {
	elapsed := time.Since(start)
	attrs := []any{"done", done, "total", total}
	if done > 0 {
		rate := float64(done) / elapsed.Seconds()
		attrs = append(attrs, "per_s", int(rate), "eta", time.Duration(float64(total-done)/rate*float64(time.Second)).Round(time.Second))
	}
	s.cfg.Logger.Info("opening replicas", attrs...)
}

// binlogOptions are the replicas' binlog options: the configured ones,
// without a lock per binlog (Start locks the data directory).
func (s *Server) binlogOptions() binlog.Options {
	o := s.cfg.Binlog
	o.NoLock = true
	return o
}

// dialPeer opens the dedicated connection a slave pulls from its master
// on, or the one the node's WatchHub watches a master node on.
func (s *Server) dialPeer(ctx context.Context, addr string) (replica.Conn, error) {
	c, err := rpc.DialTLS(ctx, addr, 0, s.tls.DialConfig())
	if err != nil {
		return nil, err
	}
	c.SetClusterToken(s.cfg.ClusterSecret)
	return c, nil
}

// claimTableDir creates the table's directory with its marker, wiping data
// of an earlier incarnation of the same name.
func (s *Server) claimTableDir(tb *zppb.Table) error {
	dir := s.tableDir(tb.Name)
	want := strconv.FormatUint(tb.CreatedEpoch, 10)
	got, err := markerEpoch(dir)
	switch {
	case err == nil && got == tb.CreatedEpoch:
		return nil
	case err == nil && got > tb.CreatedEpoch:
		// The data is of a later incarnation than this topology knows (a
		// topology saved before the table was created again): only a newer
		// topology can say what to do with it.
		return fmt.Errorf("table %q on disk is of epoch %d, newer than the topology's %d; waiting for a newer topology", tb.Name, got, tb.CreatedEpoch)
	case err == nil:
		s.closeTable(tb.Name)
		s.cfg.Logger.Info("table was recreated; removing old data", "table", tb.Name, "old_epoch", got, "new_epoch", want)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// A marker torn by a crash would name no incarnation, and the next
	// start would take the table's data for an older one's and wipe it.
	return atomicfile.Write(filepath.Join(dir, tableMarker), []byte(want), 0o644)
}

// markerEpoch reads the created_epoch of the table whose directory is dir.
func markerEpoch(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, tableMarker))
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("table marker %s: %w", filepath.Join(dir, tableMarker), err)
	}
	return n, nil
}

func (s *Server) closeTable(table string) {
	for k := range s.replicas.snapshot() {
		if k.table != table {
			continue
		}
		if r := s.replicas.remove(k); r != nil {
			r.Close()
		}
	}
}

// removeUnknownTables deletes table directories (those with a marker) of
// tables pb does not have: dropped while the node was away.
func (s *Server) removeUnknownTables(pb *zppb.Topology) {
	known := make(map[string]bool, len(pb.Tables))
	for _, tb := range pb.Tables {
		known[tb.Name] = true
	}
	entries, err := os.ReadDir(s.cfg.DataDir)
	if err != nil {
		s.cfg.Logger.Warn("listing data dir", "err", err)
		return
	}
	for _, e := range entries {
		if !e.IsDir() || known[e.Name()] {
			continue
		}
		created, err := markerEpoch(filepath.Join(s.cfg.DataDir, e.Name()))
		if err != nil {
			continue // not ours
		}
		if created > pb.Epoch {
			// Created after this topology (one saved before the table was
			// created, say): its absence here says nothing about a drop.
			s.cfg.Logger.Warn("keeping a table the topology does not know yet", "table", e.Name(), "created_epoch", created, "epoch", pb.Epoch)
			continue
		}
		s.closeTable(e.Name())
		if err := os.RemoveAll(filepath.Join(s.cfg.DataDir, e.Name())); err != nil {
			s.cfg.Logger.Warn("removing dropped table", "table", e.Name(), "err", err)
			continue
		}
		s.cfg.Logger.Info("dropped table removed", "table", e.Name())
	}
}
