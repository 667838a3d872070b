package engine

import (
	"bytes"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/linxGnu/grocksdb"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// DB is the RocksDB instance of one partition replica. Its methods are
// safe for concurrent use; Apply calls are serialized internally.
type DB struct {
	dir    string
	logger *slog.Logger
	shared *Shared // nil when opened without one

	db       *grocksdb.DB
	ropts    *grocksdb.Options // must outlive db: RocksDB keeps pointers into it (the compaction filter)
	metaOpts *grocksdb.Options
	data     *grocksdb.ColumnFamilyHandle // user keys (RocksDB's default family)
	meta     *grocksdb.ColumnFamilyHandle // the applied position and the layout version
	ro       *grocksdb.ReadOptions
	wo       *grocksdb.WriteOptions
	expiry   *expiryClock
	noWAL    bool // the memtable holds writes nothing else persists
	bloom    bool // the memtables have a bloom filter (Shared.acquire)

	// closeMu keeps Close from freeing the C objects under a running call:
	// every call holds it shared, Close exclusively.
	closeMu sync.RWMutex
	closed  bool

	applyMu     sync.Mutex
	appliedLSN  uint64
	appliedTerm uint64

	reclaim reclaimer // compacts the data key space after a CLEAR
}

// Open opens the DB in dir, creating it if needed, and reads its applied
// position. A directory can be open only once at a time (ErrInUse within
// this process; RocksDB's lock file across processes).
func Open(dir string, opts Options) (*DB, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if err := registerDir(abs); err != nil {
		return nil, err
	}
	opts.memtableBloom = true
	if opts.Shared != nil {
		if opts.memtableBloom, err = opts.Shared.acquire(opts.MemtableSize); err != nil {
			unregisterDir(abs)
			return nil, err
		}
	}
	d, err := open(abs, opts)
	if err != nil {
		if opts.Shared != nil {
			opts.Shared.release(opts.memtableBloom)
		}
		unregisterDir(abs)
		return nil, err
	}
	d.logger.Debug("engine: opened", "applied_lsn", d.appliedLSN, "applied_term", d.appliedTerm)
	return d, nil
}

func open(dir string, opts Options) (*DB, error) {
	ropts, expiry, err := newRocksOptions(opts)
	if err != nil {
		return nil, err
	}
	metaOpts := newMetaOptions()
	rdb, cfs, err := grocksdb.OpenDbColumnFamilies(ropts, dir, families, []*grocksdb.Options{ropts, metaOpts})
	if err != nil {
		ropts.Destroy()
		metaOpts.Destroy()
		return nil, fmt.Errorf("engine: opening %s: %w", dir, err)
	}
	d := &DB{
		dir:      dir,
		logger:   opts.Logger.With("db", dir),
		shared:   opts.Shared,
		db:       rdb,
		ropts:    ropts,
		metaOpts: metaOpts,
		data:     cfs[0],
		meta:     cfs[1],
		ro:       grocksdb.NewDefaultReadOptions(),
		wo:       grocksdb.NewDefaultWriteOptions(),
		expiry:   expiry,
		noWAL:    opts.DisableWAL,
		bloom:    opts.memtableBloom,
	}
	d.wo.DisableWAL(opts.DisableWAL)
	if err := d.loadMeta(); err != nil {
		d.free()
		return nil, err
	}
	return d, nil
}

// The column families of a DB: data, and the metadata that every write
// batch updates. Were the applied position a key among the data, every
// table file would hold a version of it, so every file's key range would
// reach it and every compaction into a level would rewrite that level's
// last file — on a small DB, all of it: new writes to fresh keys would
// rewrite old data, and a full sync after a short outage would find no
// table file of the slave's still in use.
var families = []string{"default", "meta"}

// newMetaOptions builds the options of the metadata family: a handful of
// small keys.
func newMetaOptions() *grocksdb.Options {
	o := grocksdb.NewDefaultOptions()
	o.SetWriteBufferSize(1 << 20)
	return o
}

// newRocksOptions builds the RocksDB options of one DB (and of its data
// family).
func newRocksOptions(opts Options) (*grocksdb.Options, *expiryClock, error) {
	o := grocksdb.NewDefaultOptions()
	o.SetCreateIfMissing(true)
	o.SetCreateIfMissingColumnFamilies(true)
	// The families are flushed together, so that table files never hold a
	// metadata position ahead of the data it describes (there is no WAL
	// to make up for it after a crash).
	o.SetAtomicFlush(true)
	o.SetMaxOpenFiles(opts.MaxOpenFiles)
	o.SetWriteBufferSize(opts.MemtableSize)
	o.SetDbWriteBufferSize(0)
	// A bloom filter of each memtable's keys lets a read of a key not
	// written since the last flush — most reads of a DB larger than its
	// memtables — skip the memtable's skiplist, where a lookup costs a
	// cache miss per level. It takes 2% of the memtable's size, for the
	// DBs the Shared grants one (see memtableBloomShare).
	if opts.memtableBloom {
		o.SetMemTablePrefixBloomSizeRatio(memtableBloomRatio)
		o.SetMemtableWholeKeyFiltering(true)
	}
	o.SetLevelCompactionDynamicLevelBytes(true)
	o.SetCompression(grocksdb.LZ4Compression)
	o.SetBottommostCompression(grocksdb.ZSTDCompression)
	o.SetMaxLogFileSize(16 << 20)
	o.SetKeepLogFileNum(4)
	// With statistics on, RocksDB would copy every ticker into an in-memory
	// history each stats_persist_period_sec (600 s), about 23 KB a DB each
	// time, dropping old copies only once its own estimate of the history
	// passes stats_history_buffer_size (1 MiB): 1 MB a DB after seven
	// hours. Nothing reads that history (GetStatsHistory), and on a node
	// hosting thousands of idle DBs it is gigabytes that grow for hours.
	o.SetStatsPersistPeriodSec(0)
	// A DB is one partition replica among many on a node: its table cache
	// (up to MaxOpenFiles readers) needs no 64 shards, allocated up front
	// (50 KB a DB), and its MANIFEST no 4 MiB preallocated on disk (40 GB
	// for 10,000 DBs). BenchmarkIdleCost measured both.
	o.SetTableCacheNumshardbits(2)
	o.SetManifestPreallocationSize(64 << 10)

	bbto := newTableOptions()
	if s := opts.Shared; s != nil {
		// Index and filter blocks go in the shared cache too, so that the
		// cache size bounds them instead of them growing with the data.
		bbto.SetBlockCache(s.cache)
		bbto.SetCacheIndexAndFilterBlocks(true)
		bbto.SetPinL0FilterAndIndexBlocksInCache(true)
		o.SetMaxBackgroundJobs(s.opts.BackgroundJobs)
	}
	o.SetBlockBasedTableFactory(bbto) // copies the table options
	bbto.Destroy()

	expiry := newExpiryFilter()
	o.SetCompactionFilter(expiry.filter) // o owns it from here on

	if s := opts.Shared; s != nil {
		if err := s.wbm.attach(o, opts.MemtableSize, 0); err != nil {
			o.Destroy()
			return nil, nil, err
		}
		// The block cache hit rate in the node's metrics, counted once
		// for all DBs (see tickers).
		if opts.tuning == nil || !opts.tuning.noTickers {
			if err := s.tickers.attach(o, opts.MemtableSize, 0); err != nil {
				o.Destroy()
				return nil, nil, err
			}
		}
	}
	if t := opts.tuning; t != nil && t.tune != nil {
		t.tune(o)
	}
	return o, expiry.clock, nil
}

// newTableOptions returns the table format of data files, which the DB's
// flushes and compactions and a bulk load's SSTWriter share.
func newTableOptions() *grocksdb.BlockBasedTableOptions {
	bbto := grocksdb.NewDefaultBlockBasedTableOptions()
	bbto.SetBlockSize(16 << 10)
	bbto.SetFilterPolicy(grocksdb.NewBloomFilterFull(10))
	bbto.SetFormatVersion(5)
	return bbto
}

// loadMeta reads the applied position and checks the layout version.
func (d *DB) loadMeta() error {
	if err := d.migrateMeta(); err != nil {
		return err
	}
	format, err := getCF(d.db, d.ro, d.meta, keyFormat)
	if err != nil {
		return err
	}
	switch {
	case format == nil:
		if err := d.db.PutCF(d.wo, d.meta, keyFormat, encodeUint64(layoutVersion)); err != nil {
			return fmt.Errorf("engine: writing layout version: %w", err)
		}
	default:
		v, err := decodeUint64(format, keyFormat)
		if err != nil {
			return err
		}
		if v != layoutVersion {
			return fmt.Errorf("%w: layout version %d, this build reads %d", ErrCorrupt, v, layoutVersion)
		}
	}
	d.appliedTerm, d.appliedLSN, err = readApplied(d.db, d.ro, d.meta)
	return err
}

// migrateMeta moves the metadata keys of a DB written before the metadata
// family existed (they were data-family keys) into it, in one batch.
func (d *DB) migrateMeta() error {
	format, err := getCF(d.db, d.ro, d.data, keyFormat)
	if err != nil || format == nil {
		return err
	}
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	for _, k := range [][]byte{keyFormat, keyApplied} {
		v, err := getCF(d.db, d.ro, d.data, k)
		if err != nil {
			return err
		}
		if v != nil {
			wb.PutCF(d.meta, k, v)
		}
		wb.DeleteCF(d.data, k)
	}
	if err := d.db.Write(d.wo, wb); err != nil {
		return fmt.Errorf("engine: moving metadata to its column family: %w", err)
	}
	d.logger.Info("engine: moved metadata to its column family")
	return nil
}

// readApplied reads the applied position from the metadata family.
func readApplied(db *grocksdb.DB, ro *grocksdb.ReadOptions, meta *grocksdb.ColumnFamilyHandle) (term, lsn uint64, err error) {
	b, err := getCF(db, ro, meta, keyApplied)
	if err != nil {
		return 0, 0, err
	}
	return decodeApplied(b)
}

// getCF returns a copy of the value stored under key in family cf, or nil.
func getCF(db *grocksdb.DB, ro *grocksdb.ReadOptions, cf *grocksdb.ColumnFamilyHandle, key []byte) ([]byte, error) {
	sl, err := db.GetCF(ro, cf, key)
	if err != nil {
		return nil, fmt.Errorf("engine: reading %s: %w", key, err)
	}
	defer sl.Free()
	if !sl.Exists() {
		return nil, nil
	}
	return bytes.Clone(sl.Data()), nil
}

// Close closes the DB. It waits for calls in progress.
func (d *DB) Close() error {
	// A manual compaction (after a CLEAR, or Compact) can run for minutes
	// on a large DB and holds closeMu: cancel it rather than wait it out.
	d.closeMu.RLock()
	if !d.closed {
		d.db.DisableManualCompaction()
	}
	d.closeMu.RUnlock()
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.closed {
		return ErrClosed
	}
	d.closed = true
	if d.noWAL {
		// Without a WAL the memtable would be lost; the caller's log
		// could replay it, but a clean stop should not need that.
		if err := d.flush(); err != nil {
			d.logger.Warn("engine: flush on close failed; the next open replays the caller's log", "err", err)
		}
	}
	d.free()
	if d.shared != nil {
		d.shared.release(d.bloom)
	}
	unregisterDir(d.dir)
	d.logger.Debug("engine: closed")
	return nil
}

// free releases the C objects; the DB must not be used afterwards.
func (d *DB) free() {
	d.data.Destroy()
	d.meta.Destroy()
	d.db.Close()
	d.ro.Destroy()
	d.wo.Destroy()
	d.ropts.Destroy() // after db.Close: it owns the compaction filter
	d.metaOpts.Destroy()
	d.expiry = nil
}

// enter starts a call; the caller must call d.closeMu.RUnlock when done.
func (d *DB) enter() error {
	d.closeMu.RLock()
	if d.closed {
		d.closeMu.RUnlock()
		return ErrClosed
	}
	return nil
}

// Dir returns the DB's directory.
func (d *DB) Dir() string { return d.dir }

// Get returns the value of key and its expiry (unix ms, 0 = never), or
// ErrNotFound if key is absent or expired at nowMs. The value is a copy
// the caller owns.
func (d *DB) Get(key []byte, nowMs int64) (value []byte, expireAtMs int64, err error) {
	if err := checkKey(key); err != nil {
		return nil, 0, err
	}
	if err := d.enter(); err != nil {
		return nil, 0, err
	}
	defer d.closeMu.RUnlock()
	h, err := d.db.GetPinned(d.ro, dataKey(key))
	if err != nil {
		return nil, 0, fmt.Errorf("engine: get: %w", err)
	}
	defer h.Destroy()
	if !h.Exists() {
		return nil, 0, ErrNotFound
	}
	user, exp, err := decodeValue(h.Data())
	if err != nil {
		return nil, 0, fmt.Errorf("key %q: %w", key, err)
	}
	if expired(exp, nowMs) {
		return nil, 0, ErrNotFound
	}
	return append(make([]byte, 0, len(user)), user...), exp, nil
}

// Expired reports whether key is stored but expired at nowMs. The node
// calls it under its write lock before logging a sweep delete for a key
// ExpiredKeys returned, since the key may have been rewritten meanwhile.
func (d *DB) Expired(key []byte, nowMs int64) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	if err := d.enter(); err != nil {
		return false, err
	}
	defer d.closeMu.RUnlock()
	h, err := d.db.GetPinned(d.ro, dataKey(key))
	if err != nil {
		return false, fmt.Errorf("engine: get: %w", err)
	}
	defer h.Destroy()
	if !h.Exists() {
		return false, nil
	}
	_, exp, err := decodeValue(h.Data())
	if err != nil {
		return false, fmt.Errorf("key %q: %w", key, err)
	}
	return expired(exp, nowMs), nil
}

// Apply applies the binlog record at (term, lsn): all its mutations and
// the new applied position, in one atomic RocksDB write. lsn must be above
// the applied LSN and term at least the applied term, else ErrOutOfOrder;
// a record with a bad mutation (empty or oversized key, negative expiry,
// unknown kind) is rejected whole with ErrInvalidArgument. A nil or empty
// record only moves the applied position.
func (d *DB) Apply(lsn, term uint64, rec *zppb.WriteRecord) error {
	return d.ApplyBatch([]Record{{LSN: lsn, Term: term, Rec: rec}})
}

// Record is one binlog record to apply.
type Record struct {
	LSN, Term uint64
	Rec       *zppb.WriteRecord
	// IngestPath is the table file of a record that ingests one
	// (Rec.ingest, written by an SSTWriter); the file stays where it is.
	IngestPath string
}

// ApplyBatch applies records, in ascending lsn order, and the position of
// the last one in one RocksDB write: all of them or none. Applying many
// records at once is what lets a busy partition share one write among its
// clients' requests.
//
// A CLEAR mutation deletes every data key (a range tombstone over the data
// key space, so its cost does not grow with the data) and leaves metadata,
// the applied position included, alone. Mutations after it, in its record
// or later ones of the batch, apply on the empty key space: the batch's
// operations get ascending sequence numbers. Once written, a compaction of
// the data key space runs in the background so the disk space comes back.
//
// A record that ingests a table file (Rec.ingest) applies on its own:
// the records before it in one write, then the file and its position,
// then the rest.
func (d *DB) ApplyBatch(recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer d.closeMu.RUnlock()
	for len(recs) > 0 {
		i := slices.IndexFunc(recs, func(r Record) bool { return r.Rec.GetIngest() != nil })
		if i < 0 {
			return d.applyBatch(recs)
		}
		if err := d.applyBatch(recs[:i]); err != nil {
			return err
		}
		if err := d.applyIngest(recs[i]); err != nil {
			return err
		}
		recs = recs[i+1:]
	}
	return nil
}

// applyIngest applies a record that ingests a table file.
func (d *DB) applyIngest(r Record) error {
	if len(r.Rec.GetMutations()) > 0 {
		return fmt.Errorf("%w: lsn %d ingests a file and has mutations", ErrInvalidArgument, r.LSN)
	}
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	if r.LSN <= d.appliedLSN {
		return fmt.Errorf("%w: lsn %d, applied %d", ErrOutOfOrder, r.LSN, d.appliedLSN)
	}
	if r.Term < d.appliedTerm {
		return fmt.Errorf("%w: lsn %d has term %d, applied term %d", ErrOutOfOrder, r.LSN, r.Term, d.appliedTerm)
	}
	return d.ingest(r.IngestPath, r.Term, r.LSN)
}

// applyBatch applies records without ingestion; the caller holds closeMu.
func (d *DB) applyBatch(recs []Record) error {
	if len(recs) == 0 {
		return nil
	}

	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	cleared := false
	for j, r := range recs {
		if j > 0 && (r.LSN <= recs[j-1].LSN || r.Term < recs[j-1].Term) {
			return fmt.Errorf("%w: lsn %d term %d after lsn %d term %d in one batch", ErrOutOfOrder, r.LSN, r.Term, recs[j-1].LSN, recs[j-1].Term)
		}
		for i, m := range r.Rec.GetMutations() {
			if err := addMutation(wb, m); err != nil {
				return fmt.Errorf("lsn %d mutation %d: %w", r.LSN, i, err)
			}
			cleared = cleared || m.GetKind() == zppb.Mutation_CLEAR
		}
	}
	first, last := recs[0], recs[len(recs)-1]
	wb.PutCF(d.meta, keyApplied, encodeApplied(last.Term, last.LSN))

	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	if first.LSN <= d.appliedLSN {
		return fmt.Errorf("%w: lsn %d, applied %d", ErrOutOfOrder, first.LSN, d.appliedLSN)
	}
	if first.Term < d.appliedTerm {
		return fmt.Errorf("%w: lsn %d has term %d, applied term %d", ErrOutOfOrder, first.LSN, first.Term, d.appliedTerm)
	}
	if err := d.db.Write(d.wo, wb); err != nil {
		return fmt.Errorf("engine: apply lsn %d-%d: %w", first.LSN, last.LSN, err)
	}
	d.appliedLSN, d.appliedTerm = last.LSN, last.Term
	if cleared {
		d.reclaim.start(d.compactData)
	}
	return nil
}

// addMutation adds one mutation to wb after checking it.
func addMutation(wb *grocksdb.WriteBatch, m *zppb.Mutation) error {
	switch m.GetKind() {
	case zppb.Mutation_PUT:
		if err := checkKey(m.GetKey()); err != nil {
			return err
		}
		if m.GetExpireAtMs() < 0 {
			return fmt.Errorf("%w: negative expiry %d", ErrInvalidArgument, m.GetExpireAtMs())
		}
		wb.Put(dataKey(m.GetKey()), encodeValue(m.GetValue(), m.GetExpireAtMs()))
	case zppb.Mutation_DELETE:
		if err := checkKey(m.GetKey()); err != nil {
			return err
		}
		wb.Delete(dataKey(m.GetKey()))
	case zppb.Mutation_CLEAR:
		// A key here would suggest the writer meant something narrower.
		if len(m.GetKey()) > 0 || len(m.GetValue()) > 0 || m.GetExpireAtMs() != 0 {
			return fmt.Errorf("%w: CLEAR with a key, value or expiry", ErrInvalidArgument)
		}
		wb.DeleteRange(dataRangeStart, dataRangeEnd)
	default:
		return fmt.Errorf("%w: unknown kind %v", ErrInvalidArgument, m.GetKind())
	}
	return nil
}

// persistedTier is RocksDB's kPersistedTier, which grocksdb 1.7 does not
// name: with the WAL off, a read at this tier skips the memtables.
const persistedTier = grocksdb.ReadTier(2)

// PersistedApplied returns the applied position as it is in table files,
// that is, what survives a crash of a DB opened with DisableWAL (without a
// WAL the memtables are lost). With the WAL on it equals Applied.
func (d *DB) PersistedApplied() (term, lsn uint64, err error) {
	if err := d.enter(); err != nil {
		return 0, 0, err
	}
	defer d.closeMu.RUnlock()
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	ro.SetReadTier(persistedTier)
	return readApplied(d.db, ro, d.meta)
}

// SetApplied sets the applied position to (term, lsn) with no record and
// none of Apply's ordering checks: a restore (dbsync.Restamp) gives a
// checkpoint taken in one cluster the term of the master that installs it
// in another, which may be lower. Nothing else may move the position but
// Apply. Like any write of a DB opened with DisableWAL, it is durable once
// flushed.
func (d *DB) SetApplied(term, lsn uint64) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.closeMu.RUnlock()
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	wb.PutCF(d.meta, keyApplied, encodeApplied(term, lsn))
	if err := d.db.Write(d.wo, wb); err != nil {
		return fmt.Errorf("engine: set applied (%d, %d): %w", term, lsn, err)
	}
	d.appliedLSN, d.appliedTerm = lsn, term
	return nil
}

// Applied returns the position of the last applied binlog record, (0, 0)
// for a new DB.
func (d *DB) Applied() (term, lsn uint64) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	return d.appliedTerm, d.appliedLSN
}

// Flush writes the memtables to table files and waits for it. After a
// CLEAR it first waits for the compaction the CLEAR started, which flushes
// too: a RocksDB built with assertions (Debian's) aborts the process when
// the two flushes meet in one atomic flush.
func (d *DB) Flush() error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.closeMu.RUnlock()
	d.reclaim.wait()
	return d.flush()
}

// FlushForClose cancels a manual compaction in progress and flushes the
// memtables, for a caller about to close the DB that must know the flush
// worked (Close only logs a failure). The compaction after a CLEAR flushes
// first, and a RocksDB 7.8 built with assertions (Debian's) aborts the
// process when that flush and this one meet in one atomic flush, so Close
// cancels it too. On failure manual compactions are enabled again.
func (d *DB) FlushForClose() error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.closeMu.RUnlock()
	d.db.DisableManualCompaction()
	// The compaction's own flush may still run once it is cancelled.
	d.reclaim.wait()
	if err := d.flush(); err != nil {
		d.db.EnableManualCompaction()
		return err
	}
	return nil
}

// flush flushes the data family, then the metadata family, with writes
// held off: the metadata's applied position must never reach table files
// ahead of the data it describes.
func (d *DB) flush() error {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	for _, cf := range []*grocksdb.ColumnFamilyHandle{d.data, d.meta} {
		if err := d.db.FlushCF(cf, fo); err != nil {
			return fmt.Errorf("engine: flush: %w", err)
		}
	}
	return nil
}

// Compact compacts the whole key space down to the last level, dropping
// expired values and deleted keys on the way. It is expensive; it exists
// for operators and tests.
func (d *DB) Compact() error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.closeMu.RUnlock()
	d.db.CompactRange(grocksdb.Range{})
	return nil
}

// Stats are RocksDB's estimates for one DB, for metrics and quotas.
type Stats struct {
	EstimatedKeys uint64 // includes expired keys not yet dropped
	SSTBytes      uint64
	MemtableBytes uint64
	// TableReaderBytes is the memory of the open SST files' readers (index
	// and filter blocks held outside the block cache).
	TableReaderBytes uint64
	PendingCompact   uint64 // bytes RocksDB estimates compaction must rewrite
	// WALDisabled: the DB was opened with Options.DisableWAL.
	WALDisabled bool
}

// Stats returns RocksDB's current estimates.
func (d *DB) Stats() (Stats, error) {
	if err := d.enter(); err != nil {
		return Stats{}, err
	}
	defer d.closeMu.RUnlock()
	prop := func(name string) uint64 {
		v, _ := strconv.ParseUint(d.db.GetProperty(name), 10, 64)
		return v // 0 if RocksDB does not know the property
	}
	return Stats{
		EstimatedKeys:    prop("rocksdb.estimate-num-keys"),
		SSTBytes:         prop("rocksdb.total-sst-files-size"),
		MemtableBytes:    prop("rocksdb.cur-size-all-mem-tables"),
		TableReaderBytes: prop("rocksdb.estimate-table-readers-mem"),
		PendingCompact:   prop("rocksdb.estimate-pending-compaction-bytes"),
		WALDisabled:      d.noWAL,
	}, nil
}

// DataSize returns the bytes of the DB's live table files and memtables
// (two property reads, no file system access), and whether the figure is
// settled: not while the compaction after a clear or a trim runs, as the
// table files still hold what was deleted.
func (d *DB) DataSize() (size uint64, settled bool, err error) {
	if err := d.enter(); err != nil {
		return 0, false, err
	}
	defer d.closeMu.RUnlock()
	prop := func(name string) uint64 {
		v, _ := strconv.ParseUint(d.db.GetProperty(name), 10, 64)
		return v
	}
	return prop("rocksdb.live-sst-files-size") + prop("rocksdb.cur-size-all-mem-tables"), !d.reclaim.busy(), nil
}

// openDirs holds the directories of the DBs open in this process, so that
// Destroy cannot remove one under a live DB.
var (
	openDirsMu sync.Mutex
	openDirs   = map[string]bool{}
)

func registerDir(abs string) error {
	openDirsMu.Lock()
	defer openDirsMu.Unlock()
	if openDirs[abs] {
		return fmt.Errorf("%w: %s is open", ErrInUse, abs)
	}
	openDirs[abs] = true
	return nil
}

func unregisterDir(abs string) {
	openDirsMu.Lock()
	delete(openDirs, abs)
	openDirsMu.Unlock()
}
