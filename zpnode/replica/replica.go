// Package replica is one partition replica on a node: a RocksDB instance
// (lib/engine) and the binlog (lib/binlog) every write goes through first.
// A master serves writes and streams its binlog to slaves; a slave pulls
// from its master (slave.go), and copies the master's DB when it is too far
// behind (fullsync.go).
package replica

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/binlog"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Role is what a replica does for its partition.
type Role int

// Roles of a replica.
const (
	Slave Role = iota
	Master
)

func (r Role) String() string {
	if r == Master {
		return "master"
	}
	return "slave"
}

var (
	// ErrClosed is returned by operations on a closed replica.
	ErrClosed = errors.New("replica: closed")
	// ErrNotMaster means the replica is not (or no longer) its partition's
	// master: writes and replication requests belong elsewhere.
	ErrNotMaster = errors.New("replica: not the master")
	// ErrNotEnoughReplicas means a write was not acknowledged by
	// min_sync_replicas slaves before its deadline. It is in the master's
	// binlog and may still be applied.
	ErrNotEnoughReplicas = errors.New("replica: not enough slaves acknowledged the write")
	// ErrAnswerPurged means a retried write was applied once, but the
	// binlog record its answer's value was to be read from is gone.
	ErrAnswerPurged = errors.New("replica: the write was applied; its answer is no longer in the binlog")
	// ErrSplitting means the write's keys are in the range a split of the
	// partition is moving to a new partition: the master logged the fence
	// and takes no more writes to it (clients retry: WAIT).
	ErrSplitting = errors.New("replica: the key's slots are moving to a new partition (split)")
)

// Conn is a connection to another node, as *rpc.Conn provides.
type Conn interface {
	Call(ctx context.Context, req *zppb.Request) (*zppb.Response, error)
	Close() error
}

// Options configures a replica.
type Options struct {
	// Dir holds the replica: Dir/db and Dir/binlog.
	Dir    string
	Table  string
	ID     uint32
	Shared *engine.Shared
	Binlog binlog.Options
	// Self is this node's address, as slaves name themselves to masters.
	Self string
	// Dial opens a dedicated connection to a master; a slave holds one per
	// partition while it pulls, because BINLOG_PULL long-polls.
	Dial func(ctx context.Context, addr string) (Conn, error)
	// Watch, when set, takes over the wait of a slave whose partition is
	// idle (watch.go): the slave gives up its connection until its master
	// has records for it. Nil: every slave pulls on its own.
	Watch *WatchHub
	// PullWait is how long a slave's pull waits for records; default 30 s.
	PullWait time.Duration
	// SyncAfter, when set, holds a slave's first contact with its master
	// until it is closed: a node opening thousands of replicas at start
	// opens them all before their slaves start catching up, which would
	// take the CPUs the opening needs (docs/benchmarks.md, Scale).
	SyncAfter <-chan struct{}
	Logger    *slog.Logger
	// Now returns the current time; tests may fix it. Default time.Now.
	Now func() time.Time
	// SplitDir says where the child of a split fence this replica applies
	// is created (split.go): the directory of the child's replica, or ""
	// when the fence is not to be acted on (its child is a partition
	// already). Nil: fences are inert.
	SplitDir func(rec *zppb.SplitRecord) string
	// SplitStaged, when set, is called once the child of a fence is
	// staged (the node reports it at once).
	SplitStaged func(rec *zppb.SplitRecord)
	// SplitCommitted, when set, says whether the split of a fence SplitDir
	// left alone committed (its child is a partition) rather than rolled
	// back: the replica then records the trim of the child's slots
	// (split.go, trimCommittedLocked) and calls SplitTrim, for the node to
	// run it.
	SplitCommitted func(rec *zppb.SplitRecord) bool
	SplitTrim      func()
	// Owns, when set, gives the slot range [begin, end) the replica's
	// partition owns in its node's topology, and the fence of the split
	// it is in PREPARE of (nil: none): a full sync installs a copy that
	// may hold keys the replica must not keep (installOwnedLocked).
	Owns func() (begin, end uint32, preparing *zppb.SplitRecord)
	// Fatal is called when the replica cannot go on (its DB cannot be
	// reopened after a full sync). Default: log and exit the process, so a
	// supervisor restarts it and Open recovers or reports the disk.
	Fatal func(error)
}

// Replica is one partition replica.
type Replica struct {
	opts Options
	log  *binlog.Log

	// dbMu guards the db pointer, which a full sync replaces and parking
	// sets to nil (park.go); holders of a read lock may use the DB. Get it
	// through holdDB, which reopens a parked DB.
	dbMu     sync.RWMutex
	db       *engine.DB
	dbClosed bool     // Close closed the DB: nothing reopens it
	parked   parkedDB // meaningful while db is nil
	dbUses   atomic.Uint64
	parkMu   sync.Mutex // serialises parking; guards idle
	idle     idleState
	// trimming is the slot range kept by a trim in progress (split.go),
	// nil when there is none: scans leave out the keys outside it.
	trimming atomic.Pointer[slotRange]
	// trimMu serialises TrimSlots: after a restart the parent's resumed
	// trim and its child's trim of both halves run the same trim at once.
	trimMu sync.Mutex
	// unstaged is the fence applied without its child staged
	// (unstagedFile), nil when there is none.
	unstaged atomic.Pointer[zppb.SplitRecord]
	// slots is the range the replica takes writes for (SetSlots): its
	// partition's range in the node's topology. Guarded by mu.
	slots slotRange
	// fence is the slot range a split in PREPARE moves away (SetSlots, or
	// LogSplit as the master logs the fence): writes to it are refused.
	// Guarded by mu.
	fence *slotRange
	// size and sizeAt (unix ns) are DataSize's last figure and when it
	// was read.
	size, sizeAt atomic.Uint64
	sizeHeld     atomic.Bool

	ctx    context.Context // ends with Close
	cancel context.CancelFunc

	mu     sync.Mutex // serialises writes and role changes; guards below
	role   Role
	term   uint64
	master string
	closed bool
	// failed is set when the binlog or the DB failed a write: the replica
	// takes no more writes until the node restarts.
	failed error
	// The write queue (group commit, see write.go): writes with an lsn,
	// not yet in the binlog; the last lsn handed out; whether a flush runs.
	queue    []*pendingWrite
	nextLSN  uint64
	flushing bool
	dedup    dedup       // request ids of recent records
	m        masterState // meaningful while role == Master
	s        slaveState  // meaningful while role == Slave
}

// Open opens (creating if needed) the replica in opts.Dir and replays binlog
// records the DB has not applied yet. It starts as an idle slave without a
// master until SetRole says otherwise.
func Open(opts Options) (*Replica, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PullWait <= 0 {
		opts.PullWait = pullWait
	}
	if opts.Fatal == nil {
		logger := opts.Logger
		opts.Fatal = func(err error) {
			logger.Error("fatal replica error; exiting", "err", err)
			os.Exit(2)
		}
	}
	opts.Logger = opts.Logger.With("table", opts.Table, "partition", opts.ID)
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	cleanStaging(opts.Dir)
	if err := recoverFullSync(opts.Dir); err != nil {
		return nil, fmt.Errorf("replica %s/%d: %w", opts.Table, opts.ID, err)
	}
	bopts := opts.Binlog
	bopts.Logger = opts.Logger
	log, err := binlog.Open(filepath.Join(opts.Dir, "binlog"), bopts)
	if err != nil {
		return nil, fmt.Errorf("replica %s/%d: %w", opts.Table, opts.ID, err)
	}
	r := &Replica{opts: opts, log: log, slots: slotRange{0, keyspace.Slots}}
	if err := r.openOrPark(); err != nil {
		log.Close()
		return nil, fmt.Errorf("replica %s/%d: %w", opts.Table, opts.ID, err)
	}
	r.dropAppliedFiles()
	r.dropStaleStaged()
	if begin, end, ok, err := r.PendingTrim(); err != nil {
		r.opts.Logger.Warn("ignoring unreadable trim record", "err", err)
	} else if ok {
		r.trimming.Store(&slotRange{begin, end})
	}
	if sp, err := r.readUnstaged(); err != nil {
		r.opts.Logger.Warn("ignoring an unreadable record of a split's child not staged", "err", err)
	} else if sp != nil {
		r.unstaged.Store(sp)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.m.init()
	r.term, _ = r.log.Last()
	return r, nil
}

// openOrPark brings the DB up to the binlog at Open. A DB closed with a
// park mark at the binlog's last record stays parked: nothing to replay,
// and its position and statistics are in the mark. Any other DB opens,
// and the binlog records it lacks (a crash, or writes a master held for
// its slaves) are applied.
func (r *Replica) openOrPark() error {
	dir := r.opts.Dir
	if err := finishPendingInstall(dir, r.log); err != nil {
		return err
	}
	parked, idle, marked, err := readParkMark(dir)
	if err != nil {
		r.opts.Logger.Warn("ignoring unreadable park mark", "err", err)
		marked = false
	}
	term, lsn := r.log.Last()
	if marked && lsn == parked.applied && (lsn == 0 || term == parked.term) && !r.splitPending() {
		r.parked = parked
		if !idle {
			r.warmDedup()
		}
		return r.log.Park()
	}
	if _, err := os.Stat(filepath.Join(dir, "db")); errors.Is(err, fs.ErrNotExist) && !marked && lsn == 0 {
		// A new replica: its DB is created by the first request that
		// needs it, so that a table of thousands of partitions becomes
		// writable without creating thousands of RocksDB instances.
		r.parked = parkedDB{stats: engine.Stats{WALDisabled: true}, empty: true}
		return r.log.Park()
	}
	// The DB is about to change: the mark, if any, no longer describes it.
	if err := removeParkMark(dir); err != nil {
		return err
	}
	db, err := openDB(r.opts)
	if err != nil {
		return err
	}
	r.db = db
	if err := r.replayLocked(); err != nil {
		db.Close()
		return fmt.Errorf("replay: %w", err)
	}
	r.warmDedup()
	return nil
}

// dedupWarm is how many of the last binlog records Open reads to remember
// their request ids: enough for the retries of clients that were waiting
// when the node stopped, without making a restart slow.
const dedupWarm = 8192

// warmDedup fills the request-id memory from the tail of the binlog. A
// failure costs only the deduplication of retries older than the start.
func (r *Replica) warmDedup() {
	if err := r.readSplitIDs(); err != nil {
		r.opts.Logger.Warn("cannot read the request ids a split handed over; retries of writes before it may be applied twice", "err", err)
	}
	if err := r.readRecentRequestIDs(); err != nil {
		r.opts.Logger.Warn("cannot read recent request ids from the binlog; retries of older writes may be applied twice", "err", err)
	}
}

func (r *Replica) readRecentRequestIDs() error {
	_, last := r.log.Last()
	from := r.log.First()
	if from == 0 {
		return nil // no records: a new log, or one reset after a full sync or a split
	}
	if last >= dedupWarm && last-dedupWarm+1 > from {
		from = last - dedupWarm + 1
	}
	if from > last {
		return nil
	}
	rd, err := r.log.NewReader(from)
	if err != nil {
		return err
	}
	defer rd.Close()
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		wr := &zppb.WriteRecord{}
		if err := proto.Unmarshal(rec.Payload, wr); err != nil {
			return err
		}
		r.dedup.add(wr.RequestId, rec.LSN, wr)
	}
}

func openDB(opts Options) (*engine.DB, error) {
	// The binlog is the write-ahead log: RocksDB's own would write every
	// record a second time. Purge flushes before it drops binlog records.
	db, err := engine.Open(filepath.Join(opts.Dir, "db"), engine.Options{Shared: opts.Shared, Logger: opts.Logger, DisableWAL: true})
	if err != nil {
		return nil, fmt.Errorf("replica %s/%d: %w", opts.Table, opts.ID, err)
	}
	return db, nil
}

// replayLocked applies the binlog records after the DB's applied lsn. The
// caller holds mu (or has the replica to itself).
func (r *Replica) replayLocked() error {
	r.dbMu.RLock()
	_, last := r.log.Last()
	upToDate := r.parkedLocked() && last == r.parked.applied
	r.dbMu.RUnlock()
	if upToDate && !r.splitPending() {
		return nil // parked with every record applied: no need to open it
	}
	db, err := r.holdDB()
	if err != nil {
		return err
	}
	defer r.dbMu.RUnlock()
	appliedTerm, applied := db.Applied()
	if err := r.resumeSplitLocked(db, applied); err != nil {
		return err
	}
	_, last = r.log.Last()
	if last <= applied {
		if last < applied {
			// The DB is ahead of the binlog: the binlog lost a tail it had
			// not synced (fsync none/interval and a machine crash) while
			// RocksDB kept it. Continue numbering after the DB.
			r.opts.Logger.Warn("binlog behind the DB; restarting it after the applied lsn", "binlog_lsn", last, "applied_lsn", applied)
			return r.log.Reset(appliedTerm, applied)
		}
		return nil
	}
	rd, err := r.log.NewReader(applied + 1)
	if err != nil {
		return err
	}
	defer rd.Close()
	// Apply in chunks: one RocksDB write each.
	const chunk = 256
	n := 0
	batch := make([]engine.Record, 0, chunk)
	apply := func() error {
		err := r.applySplittingLocked(db, batch)
		n += len(batch)
		batch = batch[:0]
		return err
	}
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		wr := &zppb.WriteRecord{}
		if err := proto.Unmarshal(rec.Payload, wr); err != nil {
			return fmt.Errorf("record %d does not parse: %w", rec.LSN, err)
		}
		batch = append(batch, r.engineRecord(rec.LSN, rec.Term, wr))
		r.dedup.add(wr.RequestId, rec.LSN, wr)
		if len(batch) == chunk {
			if err := apply(); err != nil {
				return err
			}
		}
	}
	if err := apply(); err != nil {
		return err
	}
	r.opts.Logger.Info("replayed binlog", "records", n, "from_lsn", applied+1)
	return nil
}

// Assignment is what the topology says about this replica.
type Assignment struct {
	Role Role
	// Master is the partition's master (this node when Role is Master).
	Master string
	// Term is the partition's term: records a master writes carry it.
	Term uint64
	// Slaves are the partition's slaves; only their acknowledgements count
	// towards MinSync.
	Slaves []string
	// MinSync is the table's min_sync_replicas.
	MinSync int
}

// SetRole applies the topology's view of the replica: a master serves
// writes at the partition's term, a slave follows the master named. It is
// called by one goroutine at a time.
func (r *Replica) SetRole(a Assignment) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	was, wasMaster := r.role, r.master
	r.role, r.master, r.term = a.Role, a.Master, a.Term
	if a.Role == Master {
		if was != Master {
			// Acknowledgements from an earlier time as master may name
			// records the log has lost since.
			r.m.closePeers()
			clear(r.m.peers)
			// A former master's binlog may hold records it never applied
			// (they waited for slaves); as master now, they are its data.
			if err := r.replayLocked(); err != nil {
				r.opts.Logger.Error("cannot apply binlog on promotion", "err", err)
			}
		}
		r.m.slaves = append(r.m.slaves[:0], a.Slaves...)
		r.m.forgetPeersLocked()
		r.m.minSync = a.MinSync
		r.advanceCommitLocked()
	} else if was == Master {
		r.failPendingLocked(fmt.Errorf("%w: partition now mastered by %q", ErrNotMaster, a.Master))
		// Slaves' pulls waiting for records: their next one learns the
		// news rather than after a pull's whole wait.
		r.m.notifyAppend()
	}
	newMaster := a.Role != Slave || a.Master != wasMaster
	stop := r.s.stopSyncerLocked(newMaster)
	unwatch := func() {}
	if newMaster {
		unwatch = r.dropWatchLocked()
	}
	r.mu.Unlock()
	stop()
	unwatch()

	if a.Role == Slave && a.Master != "" && a.Master != r.opts.Self {
		r.mu.Lock()
		r.startSyncerLocked()
		r.mu.Unlock()
	}
	if was != a.Role || wasMaster != a.Master {
		r.opts.Logger.Info("replica role", "role", a.Role, "master", a.Master, "term", a.Term, "min_sync", a.MinSync)
	}
}

// Role returns the replica's role and the partition's master address.
func (r *Replica) Role() (Role, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.role, r.master
}

// View reads the replica's data as a write in progress sees it: including
// writes not yet committed to the DB. It notes the newest uncommitted write
// it read through, so that Update can hold back an answer built on it until
// that write commits.
type View struct {
	r    *Replica
	read *uint64 // the lsn of the newest uncommitted write read so far
}

// Get returns the value of key and its expiry (unix ms, 0 = never);
// engine.ErrNotFound when absent or expired.
func (v View) Get(key []byte) ([]byte, int64, error) {
	if e, ok := v.r.m.overlay[string(key)]; ok {
		v.saw(e.lsn)
		m := e.m
		if m.Kind == zppb.Mutation_DELETE || (m.ExpireAtMs != 0 && m.ExpireAtMs <= v.r.NowMs()) {
			return nil, 0, engine.ErrNotFound
		}
		return m.Value, m.ExpireAtMs, nil
	}
	if v.r.m.clearLSN != 0 {
		v.saw(v.r.m.clearLSN)
		return nil, 0, engine.ErrNotFound
	}
	return v.r.Get(key)
}

func (v View) saw(lsn uint64) {
	if v.read != nil && lsn > *v.read {
		*v.read = lsn
	}
}

// Get reads key from the DB: committed data only.
func (r *Replica) Get(key []byte) ([]byte, int64, error) {
	db, ok, err := r.readDB()
	if !ok {
		return nil, 0, cmp.Or(err, engine.ErrNotFound)
	}
	defer r.dbMu.RUnlock()
	return db.Get(key, r.NowMs())
}

// Scan returns up to count live keys with exactly hashtag, after cursor.
// A page may come back short with a cursor to continue from.
func (r *Replica) Scan(hashtag, cursor []byte, count int) ([]*zppb.KeyValue, []byte, error) {
	db, ok, err := r.readDB()
	if !ok {
		return nil, nil, err
	}
	entries, next, err := db.Scan(hashtag, cursor, count, r.NowMs())
	r.dbMu.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	return r.keyValues(entries), next, nil
}

// ScanAll returns up to count live keys of the replica after cursor, in
// the DB's order (engine.DB.ScanAll); values are left out with keysOnly.
func (r *Replica) ScanAll(cursor []byte, count int, keysOnly bool) ([]*zppb.KeyValue, []byte, error) {
	db, ok, err := r.readDB()
	if !ok {
		return nil, nil, err
	}
	entries, next, err := db.ScanAll(cursor, count, r.NowMs(), keysOnly)
	r.dbMu.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	return r.keyValues(entries), next, nil
}

// keyValues converts a page of a scan, leaving out the keys a trim in
// progress is deleting: they belong to the other half of a split, and a
// walk over both halves must list each key once. The page may come back
// short, as scans' pages may.
func (r *Replica) keyValues(entries []engine.Entry) []*zppb.KeyValue {
	keep := r.trimming.Load()
	kvs := make([]*zppb.KeyValue, 0, len(entries))
	for _, e := range entries {
		if keep == nil || keep.holds(e.Key) {
			kvs = append(kvs, &zppb.KeyValue{Key: e.Key, Value: e.Value})
		}
	}
	return kvs
}

// NowMs is the replica's clock in unix milliseconds.
func (r *Replica) NowMs() int64 { return r.opts.Now().UnixMilli() }

// Position returns the (term, lsn) of the last binlog record and the lsn
// the DB has applied. It does not reopen a parked DB.
func (r *Replica) Position() (term, lsn, applied uint64) {
	term, lsn = r.log.Last()
	r.dbMu.RLock()
	if r.db != nil {
		_, applied = r.db.Applied()
	} else {
		applied = r.parked.applied
	}
	r.dbMu.RUnlock()
	return term, lsn, applied
}

// FirstLSN returns the oldest lsn the binlog still holds.
func (r *Replica) FirstLSN() uint64 { return r.log.First() }

// Sizes returns the bytes the DB and the binlog use on disk. It does not
// reopen a parked DB.
func (r *Replica) Sizes() (db, binlog int64) {
	var err error
	r.dbMu.RLock()
	if r.db != nil {
		db, err = r.db.DiskUsage()
	} else {
		db = r.parked.disk
	}
	r.dbMu.RUnlock()
	if err != nil {
		r.opts.Logger.Debug("disk usage", "err", err)
	}
	return db, r.log.Size()
}

// WithDB runs fn with the DB held open (a full sync source checkpoints it).
func (r *Replica) WithDB(fn func(db *engine.DB) error) error {
	db, err := r.holdDB()
	if err != nil {
		return err
	}
	defer r.dbMu.RUnlock()
	return fn(db)
}

// Close stops replication, fails writes waiting for slaves and closes the
// binlog and the DB.
func (r *Replica) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.cancel()
	r.failPendingLocked(ErrClosed)
	for e := range r.m.watches {
		e.fire()
	}
	stop := r.s.stopSyncerLocked(true)
	unwatch := r.dropWatchLocked()
	r.mu.Unlock()
	stop()
	unwatch()

	r.m.closePeers()
	r.dbMu.Lock()
	defer r.dbMu.Unlock()
	r.dbClosed = true
	var dbErr error
	if r.db != nil { // nil when parked: closed already
		// Closed with a park mark, the next start need not open it.
		if err := r.closeDBLocked(false); err != nil {
			r.opts.Logger.Warn("closing DB without a park mark", "err", err)
			dbErr = r.db.Close()
		}
	}
	return errors.Join(r.log.Close(), dbErr)
}
