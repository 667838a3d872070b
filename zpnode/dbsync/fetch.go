package dbsync

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/zeppelin-kv/zeppelin/lib/atomicfile"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Directory names inside a replica directory.
const (
	DBDir      = "db"       // the live DB
	StagingDir = "sync.tmp" // the checkpoint being fetched
	OldDBDir   = "db.old"   // the replaced DB, during Install only
)

// Defaults of Options.
const (
	// DefaultWindow is the number of chunk fetches Run keeps in flight.
	DefaultWindow = 4
	// DefaultFetchTimeout bounds one chunk fetch.
	DefaultFetchTimeout = time.Minute
)

// endTimeout bounds the best-effort FULLSYNC_END.
const endTimeout = 5 * time.Second

// Caller sends one request to the master and returns its response. Errors
// are transport errors; the response's code says how the request went.
// *rpc.Conn satisfies it. Run calls it from several goroutines at once (see
// Options.Window).
type Caller interface {
	Call(ctx context.Context, req *zppb.Request) (*zppb.Response, error)
}

// Options configures Run.
type Options struct {
	// ReplicaDir holds the replica: ReplicaDir/db is its live DB, which Run
	// only reads, and Run stages the checkpoint in ReplicaDir/sync.tmp.
	// Required unless Dest is set.
	ReplicaDir string

	// Dest, when set, is the directory Run fetches into instead of
	// ReplicaDir/sync.tmp: a backup's partition directory (zpctl
	// backup), which has no live DB of its own. It is staged exactly as
	// sync.tmp is (resumed, verified, COMPLETE last); Install is not for
	// it.
	Dest string

	// Reuse lists more directories, after the live DB, whose table files
	// of a manifest file's name, size and checksum are hard-linked (or
	// copied, across file systems) instead of fetched: an incremental
	// backup names the previous backup's directory of the partition.
	Reuse []string

	// Backup asks for the checkpoint as a backup (FullSyncStartRequest.
	// backup): any replica the node holds may serve it, and nothing is
	// pinned for a slave.
	Backup bool

	// Accept, when set, is asked whether the checkpoint the master offers,
	// at (term, lsn), will do before anything is fetched; its error ends
	// Run, the staging untouched.
	Accept func(term, lsn uint64) error

	// Limiter, when set, paces the bytes fetched (zpctl backup --rate).
	// ChunkSize is lowered to its burst when above it.
	Limiter *rate.Limiter

	// Table and Partition name the replica; Slave is this node's address,
	// so the master can tell its sessions apart.
	Table     string
	Partition uint32
	Slave     string

	// Master is a connection to the partition's master. Required.
	Master Caller

	// ChunkSize is the size of one fetch. Default DefaultChunkSize, at most
	// MaxChunkSize.
	ChunkSize int

	// Window is how many fetches are in flight at once, pipelined on
	// Master, so that a round trip does not stall the transfer. Default
	// DefaultWindow.
	Window int

	// FetchTimeout bounds one FULLSYNC_FETCH, so that a master that stops
	// answering fails the sync instead of hanging it. (FULLSYNC_START has
	// no such bound: checksumming a large DB the master has not synced
	// before can take minutes; ctx bounds it.) Default
	// DefaultFetchTimeout.
	FetchTimeout time.Duration

	// Progress, when set, is updated as the sync goes, for INFO.
	Progress *Progress

	// Logger receives the sync's events. Default slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.ReplicaDir == "" && o.Dest == "" {
		return o, errors.New("dbsync: Options.ReplicaDir or Options.Dest is required")
	}
	if o.Master == nil {
		return o, errors.New("dbsync: Options.Master is required")
	}
	switch {
	case o.ChunkSize <= 0:
		o.ChunkSize = DefaultChunkSize
	case o.ChunkSize > MaxChunkSize:
		o.ChunkSize = MaxChunkSize
	}
	if o.Limiter != nil && o.Limiter.Burst() > 0 && o.ChunkSize > o.Limiter.Burst() {
		o.ChunkSize = o.Limiter.Burst()
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = DefaultFetchTimeout
	}
	if o.Progress == nil {
		o.Progress = &Progress{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// Result describes a finished Run.
type Result struct {
	// Term and LSN are the position the staged checkpoint reflects.
	Term, LSN uint64
	// BytesTotal is the size of the checkpoint; BytesFetched what crossed
	// the network for it in this Run.
	BytesTotal, BytesFetched uint64
	// FilesReused were already staged or linked from the live DB (or a
	// Reuse directory), BytesReused their size; FilesFetched were
	// transferred (in part, when an earlier attempt had begun them).
	FilesReused, FilesFetched int
	BytesReused               uint64
	// Files is the checkpoint's manifest, as staged.
	Files []*zppb.SyncFile
	// SlotBegin and SlotEnd are the slots the source says the checkpoint
	// holds keys of (FullSyncStartResponse); SlotEnd 0: no claim.
	SlotBegin, SlotEnd uint32
}

// Run fetches a checkpoint of the master's DB into the staging directory
// and marks it COMPLETE; Install then swaps it in. Files the slave already
// has (in staging from an earlier attempt, or in its live DB) are not
// fetched again. The live DB is never modified, whatever happens; on
// failure the staging directory is kept so that the next Run resumes.
//
// One Run or Install at a time per replica directory (else ErrInUse).
func Run(ctx context.Context, opts Options) (res Result, err error) {
	opts, err = opts.withDefaults()
	if err != nil {
		return Result{}, err
	}
	staging := filepath.Join(opts.ReplicaDir, StagingDir)
	if opts.Dest != "" {
		staging = opts.Dest
	}
	// The lock is the staging directory's owner: the replica directory,
	// or Dest itself.
	lockDir := opts.ReplicaDir
	if opts.Dest != "" {
		lockDir = opts.Dest
	}
	unlock, err := lockReplicaDir(lockDir)
	if err != nil {
		return Result{}, err
	}
	defer unlock()

	t0 := time.Now()
	logger := opts.Logger.With("component", "dbsync")
	prog := opts.Progress
	prog.begin(t0)
	defer func() { prog.finish(time.Now(), err) }()

	start, err := startSession(ctx, opts)
	if err != nil {
		return Result{}, err
	}
	logger = logger.With("session", start.GetSession())
	defer endSession(ctx, opts, start.GetSession(), logger)
	if opts.Accept != nil {
		if err := opts.Accept(start.GetTerm(), start.GetLsn()); err != nil {
			return Result{}, err
		}
	}

	r := &run{
		opts:    opts,
		logger:  logger,
		start:   start,
		staging: staging,
		prog:    prog,
	}
	if opts.ReplicaDir != "" {
		r.reuse = append(r.reuse, filepath.Join(opts.ReplicaDir, DBDir))
	}
	r.reuse = append(r.reuse, opts.Reuse...)
	r.res.Term, r.res.LSN = start.GetTerm(), start.GetLsn()
	r.res.SlotBegin, r.res.SlotEnd = start.GetSlotBegin(), start.GetSlotEnd()
	if err := r.run(ctx); err != nil {
		logger.Warn("full sync failed; staging kept for the next attempt", "err", err,
			"bytes_fetched", r.res.BytesFetched, "took", time.Since(t0))
		return r.res, fmt.Errorf("dbsync: full sync of %s/%d: %w", opts.Table, opts.Partition, err)
	}
	logger.Info("full sync staged", "term", r.res.Term, "lsn", r.res.LSN,
		"bytes_total", r.res.BytesTotal, "bytes_fetched", r.res.BytesFetched,
		"files_reused", r.res.FilesReused, "files_fetched", r.res.FilesFetched, "took", time.Since(t0))
	return r.res, nil
}

// run is the state of one Run once the master has a session for it.
type run struct {
	opts    Options
	logger  *slog.Logger
	start   *zppb.FullSyncStartResponse
	staging string
	// reuse are the directories table files may be linked from: the live
	// DB, then Options.Reuse.
	reuse []string
	prog  *Progress
	res   Result
}

func (r *run) run(ctx context.Context) error {
	files := r.start.GetFiles()
	if err := checkManifest(files); err != nil {
		return err
	}
	r.res.Files = files
	for _, f := range files {
		r.res.BytesTotal += f.GetSize()
	}
	r.prog.setManifest(uint64(len(files)), r.res.BytesTotal, r.res.LSN)
	r.logger.Info("full sync started", "term", r.res.Term, "lsn", r.res.LSN,
		"files", len(files), "bytes", r.res.BytesTotal)

	if err := os.MkdirAll(r.staging, 0o755); err != nil {
		return err
	}
	// A marker from an earlier sync that was never installed describes
	// files we are about to change: it must be gone, durably, first, or a
	// crash could leave a mix marked complete.
	if err := atomicfile.Remove(filepath.Join(r.staging, CompleteFile)); err != nil {
		return err
	}
	// Free the space of files this checkpoint does not have before
	// fetching; keep partial fetches of files it does have.
	if err := prune(r.staging, files, true); err != nil {
		return err
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.stageFile(ctx, f); err != nil {
			return fmt.Errorf("%s: %w", f.GetName(), err)
		}
	}
	if err := prune(r.staging, files, false); err != nil {
		return err
	}
	// The files are durable; make their names durable, deepest first,
	// before the marker says they are there.
	dirs := manifestDirs(files)
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, d := range dirs {
		if err := atomicfile.SyncDir(filepath.Join(r.staging, filepath.FromSlash(d))); err != nil {
			return err
		}
	}
	if err := atomicfile.SyncDir(r.staging); err != nil {
		return err
	}
	return writeComplete(r.staging, r.res.Term, r.res.LSN)
}

// stageFile makes staging hold f: as it is, linked from the live DB, or
// fetched.
func (r *run) stageFile(ctx context.Context, f *zppb.SyncFile) error {
	dst, _ := localName(r.staging, f.GetName()) // checkManifest vetted the name
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	ok, err := r.stagedMatches(ctx, dst, f)
	if err != nil || ok {
		if ok {
			r.reused(f)
		}
		return err
	}
	if immutable(f.GetName()) {
		for _, dir := range r.reuse {
			ok, err := r.reuseFrom(ctx, dir, dst, f)
			if err != nil || ok {
				if ok {
					r.reused(f)
				}
				return err
			}
		}
	}
	if err := r.fetch(ctx, dst, f); err != nil {
		return err
	}
	r.res.FilesFetched++
	r.prog.addFile()
	return nil
}

// stagedMatches reports whether dst already holds f; a staged file that
// differs is removed.
func (r *run) stagedMatches(ctx context.Context, dst string, f *zppb.SyncFile) (bool, error) {
	fi, err := os.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.Mode().IsRegular() && uint64(fi.Size()) == f.GetSize() {
		crc, size, _, err := localSums.checksum(ctx, dst, f.GetName(), fi)
		if err != nil {
			return false, err
		}
		if crc == f.GetCrc32C() && size == f.GetSize() {
			return true, nil
		}
	}
	return false, os.RemoveAll(dst)
}

// reused counts f as staged without a fetch.
func (r *run) reused(f *zppb.SyncFile) {
	r.res.FilesReused++
	r.res.BytesReused += f.GetSize()
	r.prog.addReused(f.GetSize())
}

// reuseFrom links (or, across file systems, copies) dir's file of f's name
// (dir is the live DB or a Reuse directory) into dst when it has f's size
// and checksum. Problems with that file only mean it cannot be reused;
// they are not errors.
func (r *run) reuseFrom(ctx context.Context, dir, dst string, f *zppb.SyncFile) (bool, error) {
	src, _ := localName(dir, f.GetName())
	fi, err := os.Lstat(src)
	if err != nil || !fi.Mode().IsRegular() || uint64(fi.Size()) != f.GetSize() {
		return false, nil
	}
	crc, _, _, err := localSums.checksum(ctx, src, f.GetName(), fi)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		// Most likely compacted away under us.
		r.logger.Debug("live file not reusable", "file", f.GetName(), "err", err)
		return false, nil
	}
	if crc != f.GetCrc32C() {
		return false, nil
	}
	err = os.Link(src, dst)
	if err == nil {
		// The DB may have deleted the file between our read and the link;
		// make sure the link is the file we checksummed.
		if lfi, err := os.Lstat(dst); err == nil && os.SameFile(fi, lfi) {
			return true, nil
		}
		return false, os.Remove(dst)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	// Another file system, or one without hard links: copy.
	r.logger.Debug("cannot link live file; copying", "file", f.GetName(), "err", err)
	if err := copyVerified(ctx, src, dst, f); err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		r.logger.Warn("copying live file failed; fetching it", "file", f.GetName(), "err", err)
		return false, nil
	}
	return true, nil
}

// copyVerified copies src to dst through its part file, checking the result
// against f before it takes dst's name.
func copyVerified(ctx context.Context, src, dst string, f *zppb.SyncFile) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	part := filepath.Join(filepath.Dir(dst), path.Base(partName(f)))
	out, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	crc, n, err := crcReader(ctx, io.TeeReader(in, out))
	if err == nil && (crc != f.GetCrc32C() || n != f.GetSize()) {
		err = fmt.Errorf("%w: copy of %s", ErrChecksum, src)
	}
	return finishPart(out, part, dst, f, err)
}

// finishPart fsyncs and closes the part file and renames it to dst when err
// is nil; otherwise (or if that fails) it removes it.
func finishPart(fh *os.File, part, dst string, f *zppb.SyncFile, err error) error {
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(part, dst)
	}
	if err != nil {
		os.Remove(part)
		return err
	}
	// We know the checksum of what we just wrote: the next sync (when
	// this file is in the live DB) need not read it.
	if fi, err := os.Lstat(dst); err == nil && immutable(f.GetName()) {
		if k, ok := keyOf(f.GetName(), fi); ok {
			localSums.put(k, f.GetCrc32C())
		}
	}
	return nil
}

// fetch transfers f into dst through its part file, continuing one an
// earlier attempt left. The result must match f's size and checksum.
func (r *run) fetch(ctx context.Context, dst string, f *zppb.SyncFile) error {
	part := filepath.Join(filepath.Dir(dst), path.Base(partName(f)))
	fh, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	var from uint64
	var crc uint32
	fi, err := fh.Stat()
	if err == nil && fi.Size() > 0 {
		if uint64(fi.Size()) <= f.GetSize() {
			crc, from, err = crcReader(ctx, fh)
		} else {
			err = fh.Truncate(0)
		}
	}
	if err != nil {
		fh.Close()
		return err
	}
	resumed := from
	if resumed > 0 {
		r.logger.Info("continuing an interrupted fetch", "file", f.GetName(), "offset", from, "size", f.GetSize())
	}
	crc, err = r.fetchRange(ctx, f, from, fh, crc)
	if err == nil && crc != f.GetCrc32C() && resumed > 0 {
		// The part was damaged (a crash before it was fsynced, a disk
		// error): fetch the whole file once more.
		r.logger.Warn("partial file does not match; fetching it whole", "file", f.GetName())
		if err = fh.Truncate(0); err == nil {
			_, err = fh.Seek(0, io.SeekStart)
		}
		if err == nil {
			crc, err = r.fetchRange(ctx, f, 0, fh, 0)
		}
	}
	if err != nil {
		// Keep the part for the next attempt.
		fh.Close()
		return err
	}
	if crc != f.GetCrc32C() {
		err = fmt.Errorf("%w: crc32c %08x, manifest says %08x", ErrChecksum, crc, f.GetCrc32C())
	}
	return finishPart(fh, part, dst, f, err)
}

// fetchRange fetches f from offset from to its end, in order, writing it
// to w and folding it into crc, with up to Window fetches in flight. On
// error it stops issuing fetches and waits for those in flight, without
// cancelling them: cancelling a call closes an rpc.Conn, and the
// connection is still good.
func (r *run) fetchRange(ctx context.Context, f *zppb.SyncFile, from uint64, w io.Writer, crc uint32) (uint32, error) {
	type result struct {
		data []byte
		err  error
	}
	chunk := uint64(r.opts.ChunkSize)
	stop := make(chan struct{})
	// Each fetch gets its channel in pending before it starts, so pending
	// yields results in file order, and the consumer receiving from every
	// channel is what joins every fetch goroutine.
	pending := make(chan chan result, r.opts.Window-1)
	go func() {
		defer close(pending)
		for off := from; off < f.GetSize(); off += chunk {
			n := min(chunk, f.GetSize()-off)
			ch := make(chan result, 1)
			select {
			case pending <- ch:
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
			go func() {
				data, err := r.fetchChunk(ctx, f, off, n)
				ch <- result{data, err}
			}()
		}
	}()
	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
			close(stop)
		}
	}
	next := from
	for ch := range pending {
		res := <-ch
		if firstErr != nil {
			continue // draining
		}
		if res.err != nil {
			fail(res.err)
			continue
		}
		if _, err := w.Write(res.data); err != nil {
			fail(err)
			continue
		}
		crc = crc32.Update(crc, castagnoli, res.data)
		next += uint64(len(res.data))
		r.res.BytesFetched += uint64(len(res.data))
		r.prog.addBytes(uint64(len(res.data)))
	}
	if firstErr != nil {
		return 0, firstErr
	}
	if next != f.GetSize() {
		// The producer stopped early: only ctx makes it do that.
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("fetched %d bytes of %d", next, f.GetSize())
	}
	return crc, nil
}

// fetchChunk fetches n bytes of f at off; the master must return exactly
// that.
func (r *run) fetchChunk(ctx context.Context, f *zppb.SyncFile, off, n uint64) ([]byte, error) {
	if l := r.opts.Limiter; l != nil {
		if err := l.WaitN(ctx, int(n)); err != nil {
			return nil, fmt.Errorf("fetch at %d: rate limit: %w", off, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.FetchTimeout)
	defer cancel()
	resp, err := r.opts.Master.Call(ctx, &zppb.Request{Cmd: &zppb.Request_FullsyncFetch{FullsyncFetch: &zppb.FullSyncFetchRequest{
		Table:     r.opts.Table,
		Partition: r.opts.Partition,
		Session:   r.start.GetSession(),
		Name:      f.GetName(),
		Offset:    off,
		Length:    uint32(n),
	}}})
	if err == nil {
		err = status.FromResponse(resp)
		if status.Code(err) == zppb.Code_NOT_FOUND {
			err = fmt.Errorf("%w: %w", ErrNoSession, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("fetch at %d: %w", off, err)
	}
	fr := resp.GetFullsyncFetch()
	if fr == nil {
		return nil, fmt.Errorf("fetch at %d: response without data", off)
	}
	if uint64(len(fr.GetData())) != n {
		return nil, fmt.Errorf("fetch at %d: master sent %d bytes, want %d", off, len(fr.GetData()), n)
	}
	return fr.GetData(), nil
}

// startSession asks the master for a checkpoint.
func startSession(ctx context.Context, opts Options) (*zppb.FullSyncStartResponse, error) {
	resp, err := opts.Master.Call(ctx, &zppb.Request{Cmd: &zppb.Request_FullsyncStart{FullsyncStart: &zppb.FullSyncStartRequest{
		Table:     opts.Table,
		Partition: opts.Partition,
		Slave:     opts.Slave,
		Backup:    opts.Backup,
	}}})
	if err == nil {
		err = status.FromResponse(resp)
	}
	if err != nil {
		return nil, fmt.Errorf("dbsync: FULLSYNC_START %s/%d: %w", opts.Table, opts.Partition, err)
	}
	start := resp.GetFullsyncStart()
	if start == nil || start.GetSession() == "" {
		return nil, fmt.Errorf("dbsync: FULLSYNC_START %s/%d: response without a session", opts.Table, opts.Partition)
	}
	return start, nil
}

// endSession tells the master it can drop the checkpoint, whatever became
// of the sync (a retry starts a new session). It is best effort: the
// master expires sessions on its own.
func endSession(ctx context.Context, opts Options, session string, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
	defer cancel()
	resp, err := opts.Master.Call(ctx, &zppb.Request{Cmd: &zppb.Request_FullsyncEnd{FullsyncEnd: &zppb.FullSyncEndRequest{
		Table:     opts.Table,
		Partition: opts.Partition,
		Session:   session,
	}}})
	if err == nil {
		err = status.FromResponse(resp)
	}
	if err != nil {
		logger.Info("FULLSYNC_END failed; the master will expire the session", "err", err)
	}
}

// prune removes from staging what is not a file of the manifest (or, with
// keepParts, a partial fetch of one: see partName).
func prune(staging string, files []*zppb.SyncFile, keepParts bool) error {
	want := make(map[string]bool, len(files))
	parts := make(map[string]bool)
	for _, f := range files {
		want[f.GetName()] = true
		if keepParts {
			parts[partName(f)] = true
		}
	}
	wantDirs := make(map[string]bool)
	for _, d := range manifestDirs(files) {
		wantDirs[d] = true
	}
	return filepath.WalkDir(staging, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == staging {
			return nil
		}
		rel, err := filepath.Rel(staging, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if e.IsDir() {
			if wantDirs[name] {
				return nil
			}
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			return filepath.SkipDir
		}
		if (want[name] || parts[name]) && e.Type().IsRegular() {
			return nil
		}
		return os.Remove(p)
	})
}

// manifestDirs returns the subdirectories the manifest's files are in.
func manifestDirs(files []*zppb.SyncFile) []string {
	seen := make(map[string]bool)
	var dirs []string
	for _, f := range files {
		for d := path.Dir(f.GetName()); d != "." && !seen[d]; d = path.Dir(d) {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return dirs
}
