package binlog

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/zeppelin-kv/zeppelin/lib/dirlock"
)

// Log is the binlog of one replica. Its methods are safe for concurrent
// use, although the node serializes appends to one partition anyway,
// because it assigns the LSNs.
type Log struct {
	dir    string
	opts   Options
	logger *slog.Logger
	lock   *dirlock.Lock // nil with Options.NoLock

	// epoch changes whenever records are removed from the end of the log
	// (TruncateAfter, Reset), which invalidates every Reader. Written under
	// mu; Readers load it without the lock.
	epoch atomic.Uint64

	appends atomic.Uint64
	syncs   atomic.Uint64

	mu       sync.Mutex
	segs     []*segment  // oldest first; the last one is active
	active   *activeFile // the last segment, open for appending
	last     uint64      // LSN of the last record, or the base position
	lastTerm uint64
	durable  uint64 // every record up to this LSN is known to be synced
	size     int64  // bytes in all segments
	buf      []byte // encoding buffer, reused across appends
	failed   error  // sticky: the log cannot take writes until reopened
	closed   bool
	appended broadcaster // wakes Reader.Wait
	synced   broadcaster // wakes WaitDurable

	// syncMu serializes syncs with closing the file being synced. Lock
	// order: mu before syncMu; never wait for mu while holding syncMu.
	syncMu sync.Mutex
	// fresh is set while the log's first segment may not be on disk: a
	// new log creates it without a sync (createFresh), and so may a log
	// reopened without a synced mark before it holds a record. The next
	// sync of the active file syncs the directory too (syncActiveLocked)
	// before any record counts as durable, and no synced mark is written
	// until then. Written under syncMu.
	fresh bool
	kick  chan struct{} // asks the syncer for a sync now
	done  chan struct{} // closed by Close to stop the syncer
	wg    sync.WaitGroup
}

// activeFile is the active segment's append handle.
type activeFile struct {
	f *os.File
	// closed is set, under Log.syncMu, once f is closed; a sync that raced
	// with the close then has nothing left to do, because whoever closes an
	// active file syncs it first.
	closed bool
}

// maxRetainedBuf caps the encoding buffer kept between appends.
const maxRetainedBuf = 4 << 20

// Open opens the log in dir, creating the directory and an empty log
// (whose first record will be LSN 1) if needed. It checks the last segment
// record by record and truncates a torn or corrupt tail, logging what it
// dropped; older segments are checked when they are read.
func Open(dir string, opts Options) (*Log, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("binlog: %w", err)
	}
	var lock *dirlock.Lock
	if !opts.NoLock {
		if lock, err = dirlock.Acquire(dir); err != nil {
			return nil, fmt.Errorf("binlog: %w", err)
		}
	}
	l := &Log{
		dir:    dir,
		opts:   opts,
		logger: opts.Logger.With("binlog", dir),
		lock:   lock,
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	if err := l.load(); err != nil {
		if l.active != nil {
			l.active.f.Close()
		}
		lock.Release()
		return nil, err
	}
	if opts.Sync != SyncNone {
		l.wg.Add(1)
		go l.runSyncer()
	}
	return l, nil
}

// load reads the segment list, repairs the last segment and opens it for
// appending.
func (l *Log) load() error {
	firsts, err := listSegments(l.dir)
	if err != nil {
		return err
	}
	if len(firsts) == 1 && firsts[0] == 1 && tornFirstSegment(l.dir) {
		// A crash interrupted the unsynced creation of a new log's first
		// segment: it held no record, so the log starts again.
		l.logger.Warn("binlog: discarding the first segment of a new log whose creation a crash interrupted")
		if err := os.Remove(filepath.Join(l.dir, segmentName(1))); err != nil {
			return fmt.Errorf("binlog: %w", err)
		}
		firsts = nil
	}
	if len(firsts) == 0 {
		// A node creates a log per replica, thousands for a table of
		// thousands of partitions: syncing each segment's header and
		// directory at creation made that bound by the disk's sync rate
		// (two syncs a log). Nothing in an empty log needs to survive a
		// crash, so the first sync of a record does it (fresh).
		f, seg, err := createFresh(l.dir)
		if err != nil {
			return err
		}
		l.fresh = true
		l.segs = []*segment{seg}
		l.active = &activeFile{f: f}
		l.size = seg.size
		return nil
	}

	for _, first := range firsts[:len(firsts)-1] {
		path := filepath.Join(l.dir, segmentName(first))
		h, size, err := readSegmentHeader(path, first)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, &segment{first: first, prevTerm: h.prevTerm, path: path, size: size})
		l.size += size
	}

	first := firsts[len(firsts)-1]
	path := filepath.Join(l.dir, segmentName(first))
	res, err := scanSegment(path, first, noLimit)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("binlog: %w", err)
	}
	l.active = &activeFile{f: f}
	if res.end < res.fileSize {
		// A crash mid-append leaves a partial record, which no caller was
		// told is durable. A bad disk can damage older records too. Either
		// way nothing from the first bad record on can be trusted, so the
		// log ends before it; replication brings back what a replica lost.
		l.logger.Warn("binlog: truncating damaged tail",
			"segment", filepath.Base(path), "offset", res.end,
			"dropped_bytes", res.fileSize-res.end, "last_lsn", res.last, "reason", res.bad)
		if err := f.Truncate(res.end); err != nil {
			return fmt.Errorf("binlog: truncating %s: %w", path, err)
		}
	}
	seg := &segment{first: first, prevTerm: res.header.prevTerm, path: path, size: res.end, terms: res.terms}
	l.segs = append(l.segs, seg)
	l.size += seg.size
	l.last, l.lastTerm = res.last, res.lastTerm
	// What survived a restart is what the kernel had; whether it reached
	// the disk is unknown, so sync it (and any repair) before claiming
	// durability, unless the synced mark says it did (syncmark.go). A
	// first segment might be one created without a sync (createFresh):
	// it is fresh, and needs no sync while it holds no record and no
	// repair; otherwise the sync takes its directory too.
	if m, ok := readSyncedMark(l.dir); !ok || m.segment != filepath.Base(path) || m.size != res.fileSize || res.end != res.fileSize {
		l.fresh = len(firsts) == 1 && first == 1
		if !l.fresh || res.last > 0 || res.end != res.fileSize {
			if err := l.syncActiveLocked(l.active); err != nil {
				return fmt.Errorf("binlog: %w", err)
			}
			l.syncs.Add(1)
		}
	}
	l.durable = l.last
	return nil
}

// Close syncs and closes the log and stops its background goroutine.
// Waiters in WaitDurable and Reader.Wait return ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.synced.notify()
	l.appended.notify()
	l.mu.Unlock()

	close(l.done)
	l.wg.Wait()

	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	l.syncMu.Lock()
	if !l.active.closed {
		if l.failed == nil {
			if serr := l.syncActiveLocked(l.active); serr != nil {
				err = fmt.Errorf("binlog: sync on close: %w", serr)
			}
		}
		if cerr := l.active.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("binlog: %w", cerr)
		}
		l.active.closed = true
		if err == nil && l.failed == nil {
			l.writeSyncedMarkLocked()
		}
	}
	l.syncMu.Unlock()
	if uerr := l.lock.Release(); uerr != nil && err == nil {
		err = fmt.Errorf("binlog: %w", uerr)
	}
	return err
}

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }

// Append appends one record; see AppendBatch.
func (l *Log) Append(rec Record) error {
	recs := [1]Record{rec}
	return l.AppendBatch(recs[:])
}

// AppendBatch appends records, which must continue the log: the first LSN
// is Last()+1 and each next one is one more, with terms that never
// decrease; otherwise nothing is written and the error wraps ErrOutOfOrder.
//
// When AppendBatch returns nil the records are in the kernel: readable by
// Readers and safe from a crash of this process. Use WaitDurable to wait
// for them to be as safe as the SyncPolicy makes them. AppendBatch itself
// never waits for a sync (except to seal a full segment).
//
// If an I/O error stops it part-way, a prefix of recs may have been
// appended; Last says how far it got.
func (l *Log) AppendBatch(recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	if err := l.openActiveLocked(); err != nil {
		return err
	}
	term := l.lastTerm
	for i, rec := range recs {
		if want := l.last + 1 + uint64(i); rec.LSN != want {
			return fmt.Errorf("%w: lsn %d, want %d", ErrOutOfOrder, rec.LSN, want)
		}
		if rec.Term < term {
			return fmt.Errorf("%w: lsn %d has term %d, below term %d", ErrOutOfOrder, rec.LSN, rec.Term, term)
		}
		term = rec.Term
		if len(rec.Payload) > MaxPayloadSize {
			return fmt.Errorf("%w: lsn %d has %d bytes", ErrTooLarge, rec.LSN, len(rec.Payload))
		}
	}

	// Encode as many records as fit in the active segment, write them with
	// one call, roll, repeat.
	start := 0
	l.buf = l.buf[:0]
	for i, rec := range recs {
		seg := l.activeSegment()
		pending := int64(len(l.buf))
		hasRecords := l.last >= seg.first || pending > 0
		if hasRecords && seg.size+pending+encodedSize(rec) > l.opts.SegmentSize {
			if err := l.writeLocked(recs[start:i]); err != nil {
				return err
			}
			start = i
			if err := l.rollLocked(); err != nil {
				return err
			}
		}
		l.buf = appendRecord(l.buf, rec)
	}
	err := l.writeLocked(recs[start:])
	if cap(l.buf) > maxRetainedBuf {
		l.buf = nil
	}
	return err
}

// writeLocked writes the encoded records in l.buf, which are recs, to the
// active segment and updates the log's state.
func (l *Log) writeLocked(recs []Record) error {
	if len(l.buf) == 0 {
		return nil
	}
	seg := l.activeSegment()
	n, err := l.active.f.Write(l.buf)
	if err != nil {
		// A short write leaves part of a record at the tail. Cut it off so
		// the file stays a valid log; if that fails too, refuse writes
		// until the log is reopened (Open repairs torn tails).
		err = fmt.Errorf("binlog: writing %s: %w", seg.path, err)
		if n > 0 {
			if terr := l.active.f.Truncate(seg.size); terr != nil {
				l.failLocked(fmt.Errorf("%w (and truncating the torn write failed: %v)", err, terr))
			}
		}
		l.buf = l.buf[:0]
		return err
	}
	seg.size += int64(n)
	l.size += int64(n)
	for _, rec := range recs {
		seg.noteTerm(rec.LSN, rec.Term)
	}
	last := recs[len(recs)-1]
	l.last, l.lastTerm = last.LSN, last.Term
	l.buf = l.buf[:0]
	l.appends.Add(uint64(len(recs)))
	l.appended.notify()
	if l.opts.Sync != SyncNone {
		// Under SyncInterval the kick starts the interval: an idle log
		// costs no timer wakeups.
		l.kickSyncer()
	}
	return nil
}

// rollLocked seals the active segment and starts a new one after it.
func (l *Log) rollLocked() error {
	old := l.active
	// A sealed segment never changes again: sync it now, so that durability
	// only ever has to track the active segment.
	l.syncMu.Lock()
	err := l.syncActiveLocked(old)
	l.syncMu.Unlock()
	if err != nil {
		l.failLocked(fmt.Errorf("binlog: sync on roll: %w", err))
		return l.failed
	}
	l.syncs.Add(1)
	l.markDurableLocked(l.last)

	f, seg, err := createSegment(l.dir, segmentHeader{first: l.last + 1, prevTerm: l.lastTerm})
	if err != nil {
		return err // the old segment stays active; the next append retries
	}
	l.syncMu.Lock()
	old.f.Close()
	old.closed = true
	l.syncMu.Unlock()
	l.segs = append(l.segs, seg)
	l.active = &activeFile{f: f}
	l.size += seg.size
	l.logger.Debug("binlog: new segment", "segment", filepath.Base(seg.path))
	return nil
}

// Park syncs and closes the active segment's file, so that an idle log
// holds no descriptor (none at all with Options.NoLock); the next append
// opens it again. Readers keep their own. A log whose every record is
// known synced (a new one, whose segment was created durable) closes
// without a sync.
func (l *Log) Park() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	wasOpen := !l.active.closed
	if err := l.closeActiveSyncingLocked(l.durable != l.last); err != nil {
		return err
	}
	if wasOpen && !l.isFresh() {
		l.writeSyncedMarkLocked()
	}
	l.markDurableLocked(l.last)
	return nil
}

// syncActiveLocked makes what was written to af durable, with the
// directory entry of a fresh first segment; the caller holds syncMu.
func (l *Log) syncActiveLocked(af *activeFile) error {
	if err := fdatasync(af.f); err != nil {
		return err
	}
	if l.fresh {
		if err := syncDir(l.dir); err != nil {
			return err
		}
		l.fresh = false
	}
	return nil
}

// isFresh reports whether the first segment may not be on disk yet.
func (l *Log) isFresh() bool {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	return l.fresh
}

// openActiveLocked opens the active segment's file again after Park.
func (l *Log) openActiveLocked() error {
	if !l.active.closed {
		return nil
	}
	seg := l.activeSegment()
	f, err := os.OpenFile(seg.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("binlog: %w", err)
	}
	l.active = &activeFile{f: f}
	return nil
}

// usableLocked returns the error that stops the log from taking writes.
func (l *Log) usableLocked() error {
	if l.closed {
		return ErrClosed
	}
	return l.failed
}

// failLocked makes err sticky: after a failed sync the kernel may have
// dropped the dirty pages, so neither retrying nor carrying on is safe.
func (l *Log) failLocked(err error) {
	if l.failed != nil {
		return
	}
	l.failed = err
	l.logger.Error("binlog: log failed; reopen to recover", "err", err)
	l.synced.notify()
	l.appended.notify()
}

func (l *Log) activeSegment() *segment { return l.segs[len(l.segs)-1] }

// segmentIndexLocked returns the index of the segment that holds lsn, or -1
// if lsn is before the first segment.
func (l *Log) segmentIndexLocked(lsn uint64) int {
	return sort.Search(len(l.segs), func(i int) bool { return l.segs[i].first > lsn }) - 1
}

// baseLocked is the position just before the oldest retained record.
func (l *Log) baseLocked() (term, lsn uint64) {
	s := l.segs[0]
	return s.prevTerm, s.first - 1
}

// Last returns the term and LSN of the last record. For a log without
// records it returns the position the log starts after: (0, 0) for a new
// log, or what was given to Reset.
func (l *Log) Last() (term, lsn uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastTerm, l.last
}

// First returns the LSN of the oldest record held, or 0 if the log holds
// none.
func (l *Log) First() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, base := l.baseLocked(); l.last > base {
		return base + 1
	}
	return 0
}

// Durable returns the LSN up to which records are known to be on stable
// storage. It trails Last under SyncInterval and SyncNone.
func (l *Log) Durable() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durable
}

// Size returns the bytes the log's segments take on disk.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// TermAt returns the term of the record at lsn. It also answers for the
// position just before the oldest record (First()-1, or Last() of an empty
// log), so that log matching works right at the purge boundary. It fails
// with ErrPurged below that and with ErrNotFound beyond Last.
func (l *Log) TermAt(lsn uint64) (uint64, error) {
	l.mu.Lock()
	if err := l.checkOpenLocked(); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	baseTerm, base := l.baseLocked()
	switch {
	case lsn == base:
		l.mu.Unlock()
		return baseTerm, nil
	case lsn < base:
		l.mu.Unlock()
		return 0, fmt.Errorf("%w: lsn %d, first is %d", ErrPurged, lsn, base+1)
	case lsn > l.last:
		l.mu.Unlock()
		return 0, fmt.Errorf("%w: lsn %d, last is %d", ErrNotFound, lsn, l.last)
	}
	i := l.segmentIndexLocked(lsn)
	seg := l.segs[i]
	if seg.terms != nil || i == len(l.segs)-1 {
		t := seg.termAt(lsn)
		l.mu.Unlock()
		return t, nil
	}
	// A segment sealed before Open: read it once, without holding up
	// appends, and remember its terms.
	end := l.segs[i+1].first - 1
	l.mu.Unlock()

	res, err := scanSegment(seg.path, seg.first, noLimit)
	if err != nil {
		l.mu.Lock()
		removed := seg.removed
		l.mu.Unlock()
		if removed {
			return 0, fmt.Errorf("%w: lsn %d", ErrPurged, lsn)
		}
		return 0, err
	}
	if res.last != end {
		reason := res.bad
		if reason == nil {
			reason = fmt.Errorf("ends at lsn %d", res.last)
		}
		return 0, fmt.Errorf("%w: %s: want records up to lsn %d: %v", ErrCorrupt, seg.path, end, reason)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if seg.terms == nil {
		seg.terms = res.terms
		if seg.terms == nil {
			seg.terms = []termRun{}
		}
	}
	return seg.termAt(lsn), nil
}

// checkOpenLocked reports ErrClosed; unlike usableLocked it lets reads go
// on after a write failure.
func (l *Log) checkOpenLocked() error {
	if l.closed {
		return ErrClosed
	}
	return nil
}

// Stats is a snapshot of a Log's counters, for metrics.
type Stats struct {
	Segments int
	Bytes    int64
	First    uint64 // 0 when empty
	Last     uint64
	LastTerm uint64
	Durable  uint64
	Appends  uint64 // records appended since Open
	Syncs    uint64 // fdatasync calls on segments since (and by) Open
}

// Stats returns the log's current counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Stats{
		Segments: len(l.segs),
		Bytes:    l.size,
		Last:     l.last,
		LastTerm: l.lastTerm,
		Durable:  l.durable,
		Appends:  l.appends.Load(),
		Syncs:    l.syncs.Load(),
	}
	if _, base := l.baseLocked(); l.last > base {
		s.First = base + 1
	}
	return s
}

// broadcaster wakes every goroutine waiting for a state change. It is
// guarded by the Log's mutex; a channel is only allocated when someone
// waits.
type broadcaster struct{ ch chan struct{} }

func (b *broadcaster) wait() <-chan struct{} {
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcaster) notify() {
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
