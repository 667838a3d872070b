package dbsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestRunInstall copies a DB of several table files to an empty slave and
// checks that the installed DB holds exactly the master's data at the
// master's position.
func TestRunInstall(t *testing.T) {
	s := newShared(t)
	m := newMaster(t, s, SourceOptions{})
	for i := range 3 {
		write(t, m.db, 2, i*6000, 6000, 100, 100, 1)
		flush(t, m.db)
	}
	write(t, m.db, 2, 18000, 2000, 100, 100, 1) // left in the memtable
	wantTerm, wantLSN := m.db.Applied()
	want := contents(t, m.db)

	sl := newSlave(t, s)
	prog := &Progress{}
	if got := prog.Snapshot().GetState(); got != StateRunning {
		t.Fatalf("zero Progress state = %q", got)
	}
	opts := sl.opts(t, nil)
	opts.Progress = prog
	opts.ChunkSize = 64 << 10
	// Read the progress from the fetching goroutines while Run updates it
	// (the race detector checks the locking).
	opts.Master = fetchHook(m.dial(t), func(_ int64, _ *zppb.FullSyncFetchRequest, resp *zppb.Response) (*zppb.Response, error) {
		p := prog.Snapshot()
		if p.GetState() != StateRunning || p.GetBytesTotal() == 0 || p.GetLsn() != wantLSN || p.GetBytesFetched() > p.GetBytesTotal() {
			t.Errorf("progress while running: %v", p)
		}
		return resp, nil
	})
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Term != wantTerm || res.LSN != wantLSN {
		t.Fatalf("Run position = (%d, %d), want (%d, %d)", res.Term, res.LSN, wantTerm, wantLSN)
	}
	if res.BytesFetched != res.BytesTotal || res.FilesReused != 0 || res.FilesFetched == 0 {
		t.Fatalf("Run of an empty slave: %+v, want everything fetched", res)
	}
	p := prog.Snapshot()
	if p.GetState() != StateDone || p.GetBytesFetched() != res.BytesTotal || p.GetBytesTotal() != res.BytesTotal ||
		p.GetFilesFetched() != uint64(res.FilesFetched) || p.GetFilesTotal() != uint64(res.FilesFetched) ||
		p.GetFinishedMs() < p.GetStartedMs() || p.GetStartedMs() == 0 || p.GetBytesPerSec() <= 0 {
		t.Fatalf("final progress %v for %+v", p, res)
	}
	ssts, _ := filepath.Glob(filepath.Join(sl.dir, StagingDir, "*.sst"))
	if len(ssts) < 3 {
		t.Fatalf("staged %d table files, want at least 3", len(ssts))
	}
	if n := m.checkpoints(t); n != 0 {
		t.Fatalf("%d checkpoints left on the master after FULLSYNC_END", n)
	}

	term, lsn := sl.install(t)
	if term != wantTerm || lsn != wantLSN {
		t.Fatalf("Install = (%d, %d), want (%d, %d)", term, lsn, wantTerm, wantLSN)
	}
	if at, al := sl.db.Applied(); at != wantTerm || al != wantLSN {
		t.Fatalf("installed DB applied (%d, %d), want (%d, %d)", at, al, wantTerm, wantLSN)
	}
	sameContents(t, contents(t, sl.db), want)
	for _, name := range []string{StagingDir, OldDBDir, InstalledFile, filepath.Join(DBDir, CompleteFile)} {
		if _, err := os.Stat(filepath.Join(sl.dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after Install: %v", name, err)
		}
	}
	// The installed DB goes on from the checkpoint's position.
	write(t, sl.db, wantTerm, 50000, 10, 10, 10, 2)
}

// TestResyncReusesFiles checks the point of rsync-style full sync: after a
// short outage most table files are linked from the slave's live DB, not
// fetched.
func TestResyncReusesFiles(t *testing.T) {
	s := newShared(t)
	m := newMaster(t, s, SourceOptions{})
	for i := range 3 {
		write(t, m.db, 1, i*7000, 7000, 100, 200, 1)
		flush(t, m.db)
	}
	// Compact to the bottom level, so that the new table file below cannot
	// trigger a compaction that rewrites every file.
	if err := m.db.Compact(); err != nil {
		t.Fatal(err)
	}
	sl := newSlave(t, s)
	if _, err := Run(context.Background(), sl.opts(t, m.dial(t))); err != nil {
		t.Fatal(err)
	}
	sl.install(t)

	// The master moves on (new term, new writes, a new table file) while
	// the slave is away.
	write(t, m.db, 2, 21000, 1000, 100, 200, 1)
	flush(t, m.db)
	wantTerm, wantLSN := m.db.Applied()
	want := contents(t, m.db)

	// The live DB is open during Run, as on a node.
	res, err := Run(context.Background(), sl.opts(t, m.dial(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resync: %+v", res)
	if res.BytesFetched*5 > res.BytesTotal {
		t.Fatalf("resync fetched %d of %d bytes; want most reused", res.BytesFetched, res.BytesTotal)
	}
	if res.FilesReused == 0 || res.FilesFetched == 0 {
		t.Fatalf("resync: %+v, want both reused and fetched files", res)
	}
	// Reused table files are links to the live ones, not copies.
	ssts, _ := filepath.Glob(filepath.Join(sl.dir, StagingDir, "*.sst"))
	linked := 0
	for _, p := range ssts {
		live, err := os.Stat(filepath.Join(sl.dir, DBDir, filepath.Base(p)))
		if err != nil {
			continue
		}
		staged, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if os.SameFile(live, staged) {
			linked++
		}
	}
	if linked == 0 {
		t.Fatalf("no staged table file is a link to the live DB's")
	}
	term, lsn := sl.install(t)
	if term != wantTerm || lsn != wantLSN {
		t.Fatalf("Install = (%d, %d), want (%d, %d)", term, lsn, wantTerm, wantLSN)
	}
	sameContents(t, contents(t, sl.db), want)
}

// TestResume interrupts a Run part-way and checks that the live DB is
// untouched and that the next Run fetches only what is still missing.
func TestResume(t *testing.T) {
	s := newShared(t)
	errBoom := errors.New("boom")

	for _, tc := range []struct {
		name    string
		cancel  bool // cancel Run's context, rather than fail the call
		wantErr error
	}{
		{"cancel", true, context.Canceled},
		{"error", false, errBoom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMaster(t, s, SourceOptions{})
			for i := range 3 {
				write(t, m.db, 1, i*7000, 7000, 100, 200, 1)
				flush(t, m.db)
			}
			want := contents(t, m.db)
			sl := newSlave(t, s)
			write(t, sl.db, 1, 0, 100, 10, 50, 9) // an old, short DB
			flush(t, sl.db)
			sl.close(t)
			liveDir := filepath.Join(sl.dir, DBDir)
			before := snapshotDir(t, liveDir)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opts := sl.opts(t, nil)
			opts.ChunkSize = 32 << 10
			opts.Master = fetchHook(m.dial(t), func(n int64, _ *zppb.FullSyncFetchRequest, resp *zppb.Response) (*zppb.Response, error) {
				if n < 60 {
					return resp, nil
				}
				if tc.cancel {
					cancel()
					return resp, nil
				}
				return nil, errBoom
			})
			first, err := Run(ctx, opts)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("interrupted Run = %v, want %v", err, tc.wantErr)
			}
			if first.BytesFetched == 0 {
				t.Fatalf("first Run fetched nothing before it failed")
			}
			sameDir(t, snapshotDir(t, liveDir), before)
			if _, _, err := Install(sl.dir); !errors.Is(err, ErrIncomplete) {
				t.Fatalf("Install after a failed Run = %v, want ErrIncomplete", err)
			}
			parts, _ := filepath.Glob(filepath.Join(sl.dir, StagingDir, "*"+partSuffix))
			if len(parts) == 0 {
				t.Fatalf("no partial file kept for resumption")
			}

			res, err := Run(context.Background(), sl.opts(t, m.dial(t)))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("first attempt fetched %d bytes; second %+v", first.BytesFetched, res)
			if res.BytesFetched >= res.BytesTotal || res.BytesFetched+first.BytesFetched < res.BytesTotal {
				t.Fatalf("second Run fetched %d of %d bytes (first %d): want only the rest",
					res.BytesFetched, res.BytesTotal, first.BytesFetched)
			}
			// Each Run ends its session, except that cancelling a call in
			// flight closes the connection the first Run would send
			// FULLSYNC_END on: that checkpoint waits for the master's idle
			// timeout.
			lingering := 0
			if tc.cancel {
				lingering = 1
			}
			if n := m.checkpoints(t); n > lingering {
				t.Fatalf("%d checkpoints left on the master, want at most %d", n, lingering)
			}
			sl.install(t)
			sameContents(t, contents(t, sl.db), want)
		})
	}
}

// TestStalePart checks that a damaged partial file is fetched again whole
// rather than failing the sync, and that the part of another version of
// the file is not used.
func TestStalePart(t *testing.T) {
	s := newShared(t)
	m := newMaster(t, s, SourceOptions{})
	write(t, m.db, 1, 0, 5000, 100, 200, 1)
	flush(t, m.db)
	want := contents(t, m.db)
	sl := newSlave(t, s)

	// Stop after the first chunk of the first table file.
	var sst *zppb.SyncFile
	var start *zppb.FullSyncStartResponse
	opts := sl.opts(t, nil)
	opts.ChunkSize = 16 << 10
	opts.Window = 1
	conn := m.dial(t)
	opts.Master = fetchHook(callerFunc(func(ctx context.Context, req *zppb.Request) (*zppb.Response, error) {
		resp, err := conn.Call(ctx, req)
		if s := resp.GetFullsyncStart(); s != nil {
			start = s
		}
		return resp, err
	}), func(_ int64, req *zppb.FullSyncFetchRequest, resp *zppb.Response) (*zppb.Response, error) {
		if strings.HasSuffix(req.GetName(), ".sst") {
			for _, f := range start.GetFiles() {
				if f.GetName() == req.GetName() {
					sst = f
				}
			}
			return nil, errors.New("stop")
		}
		return resp, nil
	})
	if _, err := Run(context.Background(), opts); err == nil {
		t.Fatal("Run did not fail")
	}
	// Damage the part of that file, as a crash before its fsync could, and
	// leave the part of an unrelated file of the same name.
	staging := filepath.Join(sl.dir, StagingDir)
	part := filepath.Join(staging, partName(sst))
	if err := os.WriteFile(part, []byte("not the start of this table file"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(staging, partName(&zppb.SyncFile{Name: sst.Name, Size: 12, Crc32C: 34}))
	if err := os.WriteFile(other, []byte("another file"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), sl.opts(t, m.dial(t)))
	if err != nil {
		t.Fatal(err)
	}
	if res.BytesFetched < res.BytesTotal-64<<10 {
		t.Fatalf("%+v: want the damaged part refetched", res)
	}
	if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("part of a file not in the manifest kept: %v", err)
	}
	sl.install(t)
	sameContents(t, contents(t, sl.db), want)
}

// TestCorruptChunk flips a bit in transit: the file must fail its checksum
// and never reach the staging directory under its name.
func TestCorruptChunk(t *testing.T) {
	s := newShared(t)
	m := newMaster(t, s, SourceOptions{})
	write(t, m.db, 1, 0, 5000, 100, 200, 1)
	flush(t, m.db)
	want := contents(t, m.db)
	sl := newSlave(t, s)
	sl.close(t)
	liveDir := filepath.Join(sl.dir, DBDir)
	before := snapshotDir(t, liveDir)

	var corrupted string
	opts := sl.opts(t, nil)
	opts.ChunkSize = 16 << 10
	opts.Master = fetchHook(m.dial(t), func(n int64, req *zppb.FullSyncFetchRequest, resp *zppb.Response) (*zppb.Response, error) {
		if n == 2 {
			corrupted = req.GetName()
			resp.GetFullsyncFetch().Data[7] ^= 0x10
		}
		return resp, nil
	})
	_, err := Run(context.Background(), opts)
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("Run with a corrupt chunk = %v, want ErrChecksum", err)
	}
	for _, pattern := range []string{corrupted, corrupted + ".*" + partSuffix, CompleteFile} {
		if m, _ := filepath.Glob(filepath.Join(sl.dir, StagingDir, pattern)); len(m) > 0 {
			t.Errorf("%v in staging after a checksum failure", m)
		}
	}
	if _, _, err := Install(sl.dir); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Install = %v, want ErrIncomplete", err)
	}
	sameDir(t, snapshotDir(t, liveDir), before)

	// A clean attempt succeeds.
	if _, err := Run(context.Background(), sl.opts(t, m.dial(t))); err != nil {
		t.Fatal(err)
	}
	sl.install(t)
	sameContents(t, contents(t, sl.db), want)
}

// TestRunErrors covers failures before any file moves.
func TestRunErrors(t *testing.T) {
	s := newShared(t)
	m := newMaster(t, s, SourceOptions{})
	write(t, m.db, 1, 0, 10, 10, 10, 1)

	t.Run("unknown partition", func(t *testing.T) {
		sl := newSlave(t, s)
		opts := sl.opts(t, m.dial(t))
		opts.Partition = 99
		prog := &Progress{}
		opts.Progress = prog
		_, err := Run(context.Background(), opts)
		if err == nil || !strings.Contains(err.Error(), "TABLE_NOT_FOUND") {
			t.Fatalf("Run = %v, want TABLE_NOT_FOUND", err)
		}
		if st := prog.Snapshot().GetState(); !strings.HasPrefix(st, "failed: ") {
			t.Fatalf("progress state %q", st)
		}
	})
	t.Run("in use", func(t *testing.T) {
		sl := newSlave(t, s)
		unlock, err := lockReplicaDir(sl.dir)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		if _, err := Run(context.Background(), sl.opts(t, m.dial(t))); !errors.Is(err, ErrInUse) {
			t.Fatalf("Run = %v, want ErrInUse", err)
		}
		if _, _, err := Install(sl.dir); !errors.Is(err, ErrInUse) {
			t.Fatalf("Install = %v, want ErrInUse", err)
		}
	})
	t.Run("master stops answering", func(t *testing.T) {
		sl := newSlave(t, s)
		conn := m.dial(t)
		opts := sl.opts(t, callerFunc(func(ctx context.Context, req *zppb.Request) (*zppb.Response, error) {
			if req.GetFullsyncFetch() != nil {
				<-ctx.Done() // a master that never answers
				return nil, ctx.Err()
			}
			return conn.Call(ctx, req)
		}))
		opts.FetchTimeout = 50 * time.Millisecond
		if _, err := Run(context.Background(), opts); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Run = %v, want a fetch timeout", err)
		}
	})
	t.Run("bad manifest", func(t *testing.T) {
		sl := newSlave(t, s)
		c := callerFunc(func(ctx context.Context, req *zppb.Request) (*zppb.Response, error) {
			if req.GetFullsyncStart() == nil {
				return &zppb.Response{}, nil
			}
			return &zppb.Response{Result: &zppb.Response_FullsyncStart{FullsyncStart: &zppb.FullSyncStartResponse{
				Session: "s", Files: []*zppb.SyncFile{{Name: "CURRENT"}, {Name: "../db/CURRENT"}},
			}}}, nil
		})
		if _, err := Run(context.Background(), sl.opts(t, c)); !errors.Is(err, ErrBadManifest) {
			t.Fatalf("Run = %v, want ErrBadManifest", err)
		}
		if _, err := os.Stat(filepath.Join(sl.dir, StagingDir)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("staging created for a bad manifest: %v", err)
		}
	})
}

// TestConcurrentSlaves syncs several slaves from one master at once, as
// after a node replacement: sessions, the checksum cache and fetches
// interleave on the master.
func TestConcurrentSlaves(t *testing.T) {
	s := newShared(t)
	m := newMaster(t, s, SourceOptions{})
	for i := range 2 {
		write(t, m.db, 1, i*5000, 5000, 100, 200, 1)
		flush(t, m.db)
	}
	want := contents(t, m.db)
	slaves := make([]*slave, 3)
	errs := make(chan error, len(slaves))
	for i := range slaves {
		slaves[i] = newSlave(t, s)
		opts := slaves[i].opts(t, m.dial(t))
		opts.Slave = fmt.Sprint("slave:", i)
		opts.ChunkSize = 64 << 10
		go func() {
			_, err := Run(context.Background(), opts)
			errs <- err
		}()
	}
	for range slaves {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, sl := range slaves {
		sl.install(t)
		sameContents(t, contents(t, sl.db), want)
	}
	if n := m.checkpoints(t); n != 0 {
		t.Fatalf("%d checkpoints left", n)
	}
}

// TestDestReuse is Run as a backup uses it: into a directory of its own
// (Dest, no replica), paced by a Limiter whose burst bounds every fetch,
// and, the second time, linking the first backup's table files (Reuse)
// so that only the files it lacks cross the network.
func TestDestReuse(t *testing.T) {
	s := newShared(t)
	m := newMaster(t, s, SourceOptions{})
	write(t, m.db, 1, 0, 5000, 100, 200, 1)
	flush(t, m.db)
	if err := m.db.Compact(); err != nil {
		t.Fatal(err)
	}
	const burst = 64 << 10
	var maxLen atomic.Uint32
	limited := fetchHook(m.dial(t), func(_ int64, req *zppb.FullSyncFetchRequest, resp *zppb.Response) (*zppb.Response, error) {
		for cur := maxLen.Load(); req.Length > cur && !maxLen.CompareAndSwap(cur, req.Length); cur = maxLen.Load() {
		}
		return resp, nil
	})
	first := filepath.Join(t.TempDir(), "b1", "p3")
	res1, err := Run(context.Background(), Options{Dest: first, Table: testTable, Partition: testPart, Master: limited,
		Backup: true, Limiter: rate.NewLimiter(rate.Inf, burst), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if res1.FilesReused != 0 || res1.BytesFetched != res1.BytesTotal || len(res1.Files) == 0 {
		t.Fatalf("first backup: %+v; want every byte fetched", res1)
	}
	if got := maxLen.Load(); got == 0 || got > burst {
		t.Fatalf("largest fetch %d bytes; want at most the limiter's burst %d", got, burst)
	}
	if term, lsn, err := readComplete(first); err != nil || term != res1.Term || lsn != res1.LSN {
		t.Fatalf("COMPLETE in Dest: (%d, %d, %v), want (%d, %d)", term, lsn, err, res1.Term, res1.LSN)
	}

	write(t, m.db, 1, 5000, 1000, 100, 200, 1)
	flush(t, m.db)
	second := filepath.Join(t.TempDir(), "b2", "p3")
	res2, err := Run(context.Background(), Options{Dest: second, Reuse: []string{first}, Table: testTable, Partition: testPart,
		Master: m.dial(t), Backup: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	// What the first backup has (same name, size and checksum) is
	// linked; everything else is fetched, byte for byte.
	had := make(map[string]*zppb.SyncFile)
	for _, f := range res1.Files {
		had[f.Name] = f
	}
	var wantFetched uint64
	for _, f := range res2.Files {
		if h := had[f.Name]; h != nil && h.Size == f.Size && h.Crc32C == f.Crc32C && immutable(f.Name) {
			a, err1 := os.Stat(filepath.Join(first, f.Name))
			b, err2 := os.Stat(filepath.Join(second, f.Name))
			if err1 != nil || err2 != nil || !os.SameFile(a, b) {
				t.Errorf("%s is in the first backup but not linked from it (%v, %v)", f.Name, err1, err2)
			}
			continue
		}
		wantFetched += f.Size
	}
	if res2.BytesFetched != wantFetched || res2.FilesReused == 0 || res2.BytesReused+res2.BytesFetched != res2.BytesTotal {
		t.Fatalf("incremental: %+v; want %d bytes fetched and the rest reused", res2, wantFetched)
	}
}

// TestServeRestamp is a restore: a backup (a Run into Dest) is served by
// another Source with Serve, fetched by a slave, restamped with a new
// term and installed. The installed DB has the backup's keys at (new term,
// backup lsn), and the backup's directory outlives its session.
func TestServeRestamp(t *testing.T) {
	s := newShared(t)
	m := newMaster(t, s, SourceOptions{})
	write(t, m.db, 5, 0, 3000, 100, 200, 1)
	want := contents(t, m.db)
	backupDir := filepath.Join(t.TempDir(), "backup", "p3")
	res, err := Run(context.Background(), Options{Dest: backupDir, Table: testTable, Partition: testPart, Master: m.dial(t), Backup: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}

	src, err := NewSource(SourceOptions{Dir: filepath.Join(t.TempDir(), ".fullsync"), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	serving := callerFunc(func(ctx context.Context, req *zppb.Request) (*zppb.Response, error) {
		switch c := req.Cmd.(type) {
		case *zppb.Request_FullsyncStart:
			resp, err := src.Serve(c.FullsyncStart.Table, c.FullsyncStart.Partition, backupDir, res.Term, res.LSN, res.Files)
			if err != nil {
				return status.Response(err), nil
			}
			return &zppb.Response{Result: &zppb.Response_FullsyncStart{FullsyncStart: resp}}, nil
		case *zppb.Request_FullsyncFetch:
			data, err := src.Fetch(ctx, c.FullsyncFetch)
			if err != nil {
				return status.Response(err), nil
			}
			return &zppb.Response{Result: &zppb.Response_FullsyncFetch{FullsyncFetch: &zppb.FullSyncFetchResponse{Data: data}}}, nil
		case *zppb.Request_FullsyncEnd:
			if err := src.End(c.FullsyncEnd.Session); err != nil {
				return status.Response(err), nil
			}
			return &zppb.Response{}, nil
		}
		return &zppb.Response{Code: zppb.Code_INVALID_ARGUMENT}, nil
	})
	sl := newSlave(t, s)
	if _, err := Run(context.Background(), sl.opts(t, serving)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(backupDir, "CURRENT")); err != nil {
		t.Fatalf("the served backup lost its files at the session's end: %v", err)
	}
	const newTerm = 2
	lsn, err := Restamp(sl.dir, newTerm, func(dir string) (PositionSetter, error) {
		return engine.Open(dir, engine.Options{Shared: s, Logger: testLogger(t), DisableWAL: true})
	})
	if err != nil || lsn != res.LSN {
		t.Fatalf("Restamp = %d, %v; want lsn %d", lsn, err, res.LSN)
	}
	if term, lsn := sl.install(t); term != newTerm || lsn != res.LSN {
		t.Fatalf("installed at (%d, %d), want (%d, %d)", term, lsn, newTerm, res.LSN)
	}
	if term, lsn := sl.db.Applied(); term != newTerm || lsn != res.LSN {
		t.Fatalf("installed DB applied (%d, %d), want (%d, %d)", term, lsn, newTerm, res.LSN)
	}
	// The DB takes the next record of the new term.
	if err := sl.db.Apply(res.LSN+1, newTerm, &zppb.WriteRecord{Mutations: []*zppb.Mutation{{Kind: zppb.Mutation_PUT, Key: []byte("after"), Value: []byte("restore")}}}); err != nil {
		t.Fatalf("a write after the restore: %v", err)
	}
	want["after"] = 0
	got := contents(t, sl.db)
	if _, ok := got["after"]; !ok {
		t.Fatal("the write after the restore is not there")
	}
	got["after"] = 0
	sameContents(t, got, want)
}
