package dbsync

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Defaults of SourceOptions and of fetch sizes.
const (
	DefaultSessionTTL  = 10 * time.Minute
	DefaultMaxSessions = 4
	// DefaultChunkSize is the fetch size when a request asks for 0 bytes,
	// and the slave's default.
	DefaultChunkSize = 1 << 20
	// MaxChunkSize caps one fetch, far below the RPC frame limit, so that a
	// fetch never holds a connection (and the master's memory) for long.
	MaxChunkSize = 4 << 20
)

// SourceOptions configures a Source.
type SourceOptions struct {
	// Dir holds the checkpoints, one directory per session, e.g.
	// <data>/.fullsync. It must be on the same file system as the DBs, so
	// that checkpoints hard-link table files instead of copying them.
	// Required.
	Dir string

	// SessionTTL is how long a session may sit without a fetch before its
	// checkpoint is removed. Default DefaultSessionTTL.
	SessionTTL time.Duration

	// MaxSessions bounds the sessions open at once (starting ones
	// included). A checkpoint pins the table files that compaction would
	// otherwise delete, so each one can grow to the size of its DB; the
	// bound keeps several slaves syncing at once from filling the disk.
	// Default DefaultMaxSessions.
	MaxSessions int

	// Logger receives session events. Default slog.Default().
	Logger *slog.Logger
}

// Checkpointer is the DB a Source takes checkpoints of: *engine.DB. An
// interface, so that the package does not link RocksDB into programs that
// only fetch or serve existing checkpoints (zpctl backup).
type Checkpointer interface {
	// Checkpoint writes an openable copy of the DB to dir, which must not
	// exist, and returns the binlog position it reflects.
	Checkpoint(dir string) (term, lsn uint64, err error)
}

// Source serves full syncs from the master's DBs: it takes checkpoints,
// describes them and hands out their bytes. Its methods are safe for
// concurrent use.
type Source struct {
	opts   SourceOptions
	logger *slog.Logger
	sums   *sumCache

	// ctx ends at Close, abandoning checksumming in progress.
	ctx    context.Context
	cancel context.CancelFunc
	stop   chan struct{} // closed by Close: stops gcLoop
	gcDone chan struct{}

	mu       sync.Mutex
	sessions map[string]*session
	starting int                 // Starts between their slot and their session
	hashing  map[string]*keyLock // per partition: one manifest built at a time
	closed   bool
	// ops counts Starts and Fetches in progress; Add only under mu while
	// open, so Close can Wait for them.
	ops sync.WaitGroup

	// limit paces the bytes Fetch serves, all sessions together (SetRate);
	// nil: unlimited.
	limit atomic.Pointer[rate.Limiter]
}

// SetRate limits the bytes all fetches together serve to bytesPerSec (the
// meta scheduler's fullsync-rate, which PINGs bring); 0 lifts the limit.
// Production traffic keeps its latency while a slave full-syncs.
func (s *Source) SetRate(bytesPerSec uint64) {
	cur := s.limit.Load()
	switch {
	case bytesPerSec == 0:
		s.limit.Store(nil)
	case cur == nil:
		s.limit.Store(rate.NewLimiter(rate.Limit(bytesPerSec), MaxChunkSize))
	case cur.Limit() != rate.Limit(bytesPerSec):
		cur.SetLimit(rate.Limit(bytesPerSec))
	}
}

// Rate returns the limit SetRate set, 0 when unlimited.
func (s *Source) Rate() uint64 {
	if l := s.limit.Load(); l != nil {
		return uint64(l.Limit())
	}
	return 0
}

// pace waits until n more bytes may be served. A wait that would outlast
// ctx's deadline fails at once (the slave retries the full sync), which is
// why the scheduler accepts no rate under zpmeta/fsm.MinFullSyncRate.
func (s *Source) pace(ctx context.Context, n uint64) error {
	l := s.limit.Load()
	if l == nil || n == 0 {
		return nil
	}
	if err := l.WaitN(ctx, int(n)); err != nil {
		return fmt.Errorf("dbsync: fetch: %w: %w", errRateWait, err)
	}
	return nil
}

// errRateWait is a fetch that the full-sync rate limit would hold past its
// deadline.
var errRateWait = errors.New("the full-sync rate limit holds the fetch past its deadline")

// session is one checkpoint being fetched.
type session struct {
	id, dir   string
	table     string
	partition uint32
	term, lsn uint64
	manifest  []*zppb.SyncFile // sorted by name
	files     map[string]*zppb.SyncFile
	started   time.Time
	// keep: the directory is not the session's own (Serve) and outlives
	// it.
	keep bool

	// Guarded by Source.mu.
	lastUsed time.Time
	refs     int  // fetches reading the checkpoint now
	ended    bool // out of the map; the last release removes dir
	served   uint64
}

// NewSource creates opts.Dir if needed and removes the checkpoints a
// previous process left there: their sessions died with it.
func NewSource(opts SourceOptions) (*Source, error) {
	if opts.Dir == "" {
		return nil, errors.New("dbsync: SourceOptions.Dir is required")
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("dbsync: %w", err)
	}
	s := &Source{
		opts:     opts,
		logger:   opts.Logger.With("component", "dbsync-source"),
		sums:     newSumCache(defaultCacheEntries),
		stop:     make(chan struct{}),
		gcDone:   make(chan struct{}),
		sessions: make(map[string]*session),
		hashing:  make(map[string]*keyLock),
	}
	if n, err := s.removeLeftovers(); err != nil {
		return nil, err
	} else if n > 0 {
		s.logger.Info("removed checkpoints of a previous process", "dir", opts.Dir, "count", n)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.gcLoop()
	return s, nil
}

// Start takes a checkpoint of db, the replica (table, partition), and
// returns its position and manifest. It fails with ErrBusy when
// MaxSessions sessions are open.
func (s *Source) Start(ctx context.Context, table string, partition uint32, db Checkpointer) (*zppb.FullSyncStartResponse, error) {
	if db == nil {
		return nil, errors.New("dbsync: Start without a DB")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if len(s.sessions)+s.starting >= s.opts.MaxSessions {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w (%d)", ErrBusy, s.opts.MaxSessions)
	}
	s.starting++
	s.ops.Add(1)
	s.mu.Unlock()
	defer s.ops.Done()

	sess, err := s.start(ctx, table, partition, db)

	s.mu.Lock()
	s.starting--
	if err == nil && s.closed {
		err = ErrClosed
	}
	if err == nil {
		sess.lastUsed = time.Now()
		s.sessions[sess.id] = sess
	}
	s.mu.Unlock()
	if err != nil {
		if sess != nil {
			s.removeDirs([]string{sess.dir})
		}
		return nil, fmt.Errorf("dbsync: start %s/%d: %w", table, partition, err)
	}
	return &zppb.FullSyncStartResponse{Session: sess.id, Term: sess.term, Lsn: sess.lsn, Files: sess.manifest}, nil
}

// start makes the checkpoint and its manifest. On error the returned
// session (if any) names the directory to remove.
func (s *Source) start(ctx context.Context, table string, partition uint32, db Checkpointer) (*session, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopOnClose := context.AfterFunc(s.ctx, cancel)
	defer stopOnClose()

	t0 := time.Now()
	id := newSessionID()
	sess := &session{
		id:        id,
		dir:       filepath.Join(s.opts.Dir, id),
		table:     table,
		partition: partition,
		started:   t0,
	}
	var err error
	sess.term, sess.lsn, err = db.Checkpoint(sess.dir)
	if err != nil {
		return sess, err
	}
	tCheckpoint := time.Since(t0)

	// Two slaves of one partition often start together (a new partition,
	// a node replaced): the second waits and finds every table file's
	// checksum in the cache instead of reading the DB again.
	unlock, err := s.lockKey(ctx, fmt.Sprintf("%s/%d", sess.table, sess.partition))
	if err != nil {
		return sess, err
	}
	files, st, err := buildManifest(ctx, sess.dir, s.sums)
	unlock()
	if err != nil {
		return sess, err
	}
	sess.manifest = files
	sess.files = make(map[string]*zppb.SyncFile, len(files))
	for _, f := range files {
		sess.files[f.Name] = f
	}
	s.logger.Info("full-sync session started",
		"session", id, "table", sess.table, "partition", sess.partition,
		"term", sess.term, "lsn", sess.lsn, "files", len(files), "bytes", st.bytes,
		"hashed_bytes", st.hashed, "cached_checksums", st.cachedHits,
		"checkpoint_took", tCheckpoint, "took", time.Since(t0))
	return sess, nil
}

// Serve opens a session over dir, an existing checkpoint of partition
// (table, partition) at (term, lsn) whose files are listed, with their
// checksums, in files: a backup being restored (zpctl backup restore
// serves a backup's partition to the master installing it). The directory
// is only read; End, expiry and Close leave it in place. The fetching side
// checks every file against files, so a damaged backup fails there.
func (s *Source) Serve(table string, partition uint32, dir string, term, lsn uint64, files []*zppb.SyncFile) (*zppb.FullSyncStartResponse, error) {
	if err := checkManifest(files); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if len(s.sessions)+s.starting >= s.opts.MaxSessions {
		return nil, fmt.Errorf("%w (%d)", ErrBusy, s.opts.MaxSessions)
	}
	sess := &session{id: newSessionID(), dir: dir, table: table, partition: partition, term: term, lsn: lsn,
		manifest: files, files: make(map[string]*zppb.SyncFile, len(files)), started: time.Now(), keep: true}
	for _, f := range files {
		sess.files[f.GetName()] = f
	}
	sess.lastUsed = sess.started
	s.sessions[sess.id] = sess
	return &zppb.FullSyncStartResponse{Session: sess.id, Term: term, Lsn: lsn, Files: files}, nil
}

// Fetch returns up to req.Length bytes (DefaultChunkSize when 0, at most
// MaxChunkSize) of file req.Name of the session from req.Offset; fewer
// only at the end of the file, none at its end. It keeps the session from
// expiring.
func (s *Source) Fetch(ctx context.Context, req *zppb.FullSyncFetchRequest) ([]byte, error) {
	sess, err := s.acquire(req.GetSession(), req.GetTable(), req.GetPartition())
	if err != nil {
		return nil, err
	}
	var served uint64
	defer func() { s.release(sess, served) }()

	p, ok := localName(sess.dir, req.GetName())
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrBadName, req.GetName())
	}
	f, ok := sess.files[req.GetName()]
	if !ok {
		return nil, fmt.Errorf("%w: %q is not in session %s", ErrBadName, req.GetName(), sess.id)
	}
	off := req.GetOffset()
	if off > f.Size {
		return nil, fmt.Errorf("%w: %s offset %d, size %d", ErrBadOffset, f.Name, off, f.Size)
	}
	n := uint64(req.GetLength())
	if n == 0 {
		n = DefaultChunkSize
	}
	n = min(n, MaxChunkSize, f.Size-off)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.pace(ctx, n); err != nil {
		return nil, err
	}
	data := make([]byte, n)
	fh, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("dbsync: fetch: %w", err)
	}
	defer fh.Close()
	if _, err := fh.ReadAt(data, int64(off)); err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%s is shorter than its manifest size %d", p, f.Size)
		}
		return nil, fmt.Errorf("dbsync: fetch: %w", err)
	}
	served = n
	return data, nil
}

// End removes the session's checkpoint (once fetches still reading it
// return). An unknown session is ErrNoSession.
func (s *Source) End(id string) error {
	s.mu.Lock()
	sess, ok := s.sessions[id]
	var (
		dir    string
		served uint64
	)
	if ok {
		dir = s.endLocked(sess)
		served = sess.served
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoSession, id)
	}
	s.logger.Info("full-sync session ended", "session", id, "table", sess.table, "partition", sess.partition,
		"served_bytes", served, "took", time.Since(sess.started))
	s.removeDirs([]string{dir})
	return nil
}

// Close removes every checkpoint and stops the expiry goroutine, after
// waiting for Starts (their checksumming abandoned) and Fetches in
// progress. Calls after Close fail with ErrClosed.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, sess := range s.sessions {
		s.endLocked(sess)
	}
	s.mu.Unlock()
	s.cancel()
	close(s.stop)
	<-s.gcDone
	s.ops.Wait()
	// Every session directory, including any an earlier removal failed on.
	_, err := s.removeLeftovers()
	return err
}

// acquire finds a live session of the partition and marks it in use.
func (s *Source) acquire(id, table string, partition uint32) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	sess, ok := s.sessions[id]
	if !ok || sess.table != table || sess.partition != partition {
		return nil, fmt.Errorf("%w: %q for %s/%d", ErrNoSession, id, table, partition)
	}
	sess.refs++
	sess.lastUsed = time.Now()
	s.ops.Add(1)
	return sess, nil
}

func (s *Source) release(sess *session, served uint64) {
	s.mu.Lock()
	sess.refs--
	sess.served += served
	sess.lastUsed = time.Now()
	remove := sess.ended && sess.refs == 0 && !sess.keep
	s.mu.Unlock()
	if remove {
		s.removeDirs([]string{sess.dir})
	}
	s.ops.Done()
}

// endLocked takes sess out of the map and returns its directory if nobody
// reads it now; otherwise the last release removes it. s.mu is held.
func (s *Source) endLocked(sess *session) string {
	delete(s.sessions, sess.id)
	sess.ended = true
	if sess.refs > 0 || sess.keep {
		return ""
	}
	return sess.dir
}

// gcLoop ends sessions nobody has fetched from for SessionTTL: a slave that
// died or gave up must not pin a checkpoint forever.
func (s *Source) gcLoop() {
	defer close(s.gcDone)
	t := time.NewTicker(min(max(s.opts.SessionTTL/4, 10*time.Millisecond), time.Minute))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.expire(now)
		}
	}
}

func (s *Source) expire(now time.Time) {
	var expired []*session
	var dirs []string
	s.mu.Lock()
	for _, sess := range s.sessions {
		if sess.refs == 0 && now.Sub(sess.lastUsed) > s.opts.SessionTTL {
			expired = append(expired, sess)
			if dir := s.endLocked(sess); dir != "" {
				dirs = append(dirs, dir)
			}
		}
	}
	s.mu.Unlock()
	for _, sess := range expired {
		s.logger.Warn("full-sync session expired", "session", sess.id, "table", sess.table,
			"partition", sess.partition, "idle_for", s.opts.SessionTTL)
	}
	s.removeDirs(dirs)
}

func (s *Source) removeDirs(dirs []string) {
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			s.logger.Error("removing checkpoint", "dir", dir, "err", err)
		}
	}
}

// removeLeftovers removes every session directory in Dir. Only names a
// session could have are touched, so a mistaken Dir (say, the data
// directory itself) loses nothing.
func (s *Source) removeLeftovers() (int, error) {
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return 0, fmt.Errorf("dbsync: %w", err)
	}
	var errs []error
	n := 0
	for _, e := range entries {
		if !isSessionID(e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.opts.Dir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("dbsync: removing checkpoints: %w", err)
	}
	return n, nil
}

// keyLock is a mutex per key whose Lock can be abandoned with a context.
type keyLock struct {
	ch   chan struct{}
	refs int
}

func (s *Source) lockKey(ctx context.Context, key string) (unlock func(), err error) {
	s.mu.Lock()
	kl := s.hashing[key]
	if kl == nil {
		kl = &keyLock{ch: make(chan struct{}, 1)}
		s.hashing[key] = kl
	}
	kl.refs++
	s.mu.Unlock()
	drop := func() {
		s.mu.Lock()
		if kl.refs--; kl.refs == 0 {
			delete(s.hashing, key)
		}
		s.mu.Unlock()
	}
	select {
	case kl.ch <- struct{}{}:
		return func() { <-kl.ch; drop() }, nil
	case <-ctx.Done():
		drop()
		return nil, ctx.Err()
	}
}

const sessionIDLen = 32

// newSessionID returns 128 random bits in hex: unguessable, so that a
// session cannot be read by a peer that did not start it.
func newSessionID() string {
	var b [sessionIDLen / 2]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

func isSessionID(name string) bool {
	if len(name) != sessionIDLen {
		return false
	}
	for _, c := range []byte(name) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
