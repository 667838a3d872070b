package dbsync

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

const (
	testTable = "t"
	testPart  = uint32(3)
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newShared(t testing.TB) *engine.Shared {
	t.Helper()
	s, err := engine.NewShared(engine.SharedOptions{BlockCacheSize: 16 << 20, WriteBufferSize: 64 << 20, BackgroundJobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Shared.Close: %v", err)
		}
	})
	return s
}

// openDB opens a DB closed at the end of the test (if still open).
func openDB(t testing.TB, dir string, s *engine.Shared) *engine.DB {
	t.Helper()
	db, err := engine.Open(dir, engine.Options{Shared: s, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("engine.Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// write applies n keys key<from>..key<from+n-1>, batch keys per record at
// the next lsns with term, each value valSize bytes derived from seed.
func write(t testing.TB, db *engine.DB, term uint64, from, n, batch, valSize int, seed uint64) {
	t.Helper()
	_, lsn := db.Applied()
	rng := rand.New(rand.NewPCG(seed, uint64(from)))
	for i := from; i < from+n; {
		rec := &zppb.WriteRecord{}
		for ; i < from+n && len(rec.Mutations) < batch; i++ {
			v := make([]byte, valSize+8)
			for j := 0; j < valSize; j += 8 {
				binary.LittleEndian.PutUint64(v[j:], rng.Uint64())
			}
			v = v[:valSize]
			rec.Mutations = append(rec.Mutations, &zppb.Mutation{Kind: zppb.Mutation_PUT, Key: fmt.Appendf(nil, "key%08d", i), Value: v})
		}
		lsn++
		if err := db.Apply(lsn, term, rec); err != nil {
			t.Fatalf("Apply(%d): %v", lsn, err)
		}
	}
}

func flush(t testing.TB, db *engine.DB) {
	t.Helper()
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
}

// contents returns every key and a checksum of its value.
func contents(t testing.TB, db *engine.DB) map[string]uint32 {
	t.Helper()
	m := make(map[string]uint32)
	var cursor []byte
	for {
		entries, next, err := db.Scan(nil, cursor, engine.MaxScanCount, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			m[string(e.Key)] = crc32.ChecksumIEEE(e.Value)
		}
		if len(next) == 0 {
			return m
		}
		cursor = next
	}
}

func sameContents(t testing.TB, got, want map[string]uint32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("slave has %d keys, master %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("key %s differs", k)
		}
	}
}

// master is a node serving full syncs of one DB over real TCP. Its handler
// is test scaffolding, standing in for zpnode/server.
type master struct {
	db   *engine.DB
	src  *Source
	addr string
}

func newMaster(t testing.TB, s *engine.Shared, opts SourceOptions) *master {
	t.Helper()
	root := t.TempDir()
	m := &master{db: openDB(t, filepath.Join(root, "db"), s)}
	if opts.Dir == "" {
		opts.Dir = filepath.Join(root, ".fullsync")
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	src, err := NewSource(opts)
	if err != nil {
		t.Fatal(err)
	}
	m.src = src
	srv, err := rpc.NewServer(rpc.ServerConfig{Handler: m.handle, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.addr = ln.Addr().String()
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-served
		if err := src.Close(); err != nil {
			t.Errorf("Source.Close: %v", err)
		}
	})
	return m
}

func (m *master) handle(ctx context.Context, req *zppb.Request) *zppb.Response {
	switch c := req.Cmd.(type) {
	case *zppb.Request_FullsyncStart:
		if c.FullsyncStart.GetTable() != testTable || c.FullsyncStart.GetPartition() != testPart {
			return &zppb.Response{Code: zppb.Code_TABLE_NOT_FOUND}
		}
		resp, err := m.src.Start(ctx, c.FullsyncStart.GetTable(), c.FullsyncStart.GetPartition(), m.db)
		if err != nil {
			return status.Response(err)
		}
		return &zppb.Response{Result: &zppb.Response_FullsyncStart{FullsyncStart: resp}}
	case *zppb.Request_FullsyncFetch:
		data, err := m.src.Fetch(ctx, c.FullsyncFetch)
		if err != nil {
			return status.Response(err)
		}
		return &zppb.Response{Result: &zppb.Response_FullsyncFetch{FullsyncFetch: &zppb.FullSyncFetchResponse{Data: data}}}
	case *zppb.Request_FullsyncEnd:
		if err := m.src.End(c.FullsyncEnd.GetSession()); err != nil {
			return status.Response(err)
		}
		return &zppb.Response{}
	}
	return &zppb.Response{Code: zppb.Code_INVALID_ARGUMENT, Msg: "not a full-sync command"}
}

// dial returns a connection to the master, closed at the end of the test.
func (m *master) dial(t testing.TB) *rpc.Conn {
	t.Helper()
	c, err := rpc.Dial(context.Background(), m.addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sessions returns the number of checkpoint directories on the master.
func (m *master) checkpoints(t testing.TB) int {
	t.Helper()
	entries, err := os.ReadDir(m.src.opts.Dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if isSessionID(e.Name()) {
			n++
		}
	}
	return n
}

// callerFunc adapts a function to Caller.
type callerFunc func(ctx context.Context, req *zppb.Request) (*zppb.Response, error)

func (f callerFunc) Call(ctx context.Context, req *zppb.Request) (*zppb.Response, error) {
	return f(ctx, req)
}

// fetchHook wraps c and passes each successful FULLSYNC_FETCH's response
// through hook with the fetch's number (from 1); hook may alter it or fail
// the call.
func fetchHook(c Caller, hook func(n int64, req *zppb.FullSyncFetchRequest, resp *zppb.Response) (*zppb.Response, error)) Caller {
	var count atomic.Int64
	return callerFunc(func(ctx context.Context, req *zppb.Request) (*zppb.Response, error) {
		if req.GetFullsyncFetch() == nil {
			return c.Call(ctx, req)
		}
		n := count.Add(1)
		resp, err := c.Call(ctx, req)
		if err != nil {
			return resp, err
		}
		return hook(n, req.GetFullsyncFetch(), resp)
	})
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// slave is a replica directory with a live DB.
type slave struct {
	dir    string
	shared *engine.Shared
	db     *engine.DB // nil while closed
}

func newSlave(t testing.TB, s *engine.Shared) *slave {
	sl := &slave{dir: t.TempDir(), shared: s}
	sl.open(t)
	return sl
}

func (sl *slave) open(t testing.TB) {
	t.Helper()
	sl.db = openDB(t, filepath.Join(sl.dir, DBDir), sl.shared)
}

func (sl *slave) close(t testing.TB) {
	t.Helper()
	if sl.db == nil {
		return
	}
	if err := sl.db.Close(); err != nil {
		t.Fatal(err)
	}
	sl.db = nil
}

func (sl *slave) opts(t testing.TB, c Caller) Options {
	return Options{
		ReplicaDir: sl.dir,
		Table:      testTable,
		Partition:  testPart,
		Slave:      "slave:1",
		Master:     c,
		Logger:     testLogger(t),
	}
}

// install closes the live DB, installs the staged one and reopens it, as
// a replica does (with its binlog reset between Install and
// FinishInstall).
func (sl *slave) install(t testing.TB) (term, lsn uint64) {
	t.Helper()
	sl.close(t)
	term, lsn, err := Install(sl.dir)
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	if pt, pl, ok, err := PendingInstall(sl.dir); err != nil || !ok || pt != term || pl != lsn {
		t.Fatalf("PendingInstall = (%d, %d, %v, %v), want (%d, %d, true)", pt, pl, ok, err, term, lsn)
	}
	if err := FinishInstall(sl.dir); err != nil {
		t.Fatal(err)
	}
	sl.open(t)
	return term, lsn
}

// fileState is what a directory listing should keep unchanged.
type fileState struct {
	size  int64
	mtime int64
	crc   uint32
}

// snapshotDir describes every file below dir.
func snapshotDir(t testing.TB, dir string) map[string]fileState {
	t.Helper()
	m := make(map[string]fileState)
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		m[rel] = fileState{size: fi.Size(), mtime: fi.ModTime().UnixNano(), crc: crc32.ChecksumIEEE(b)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameDir(t testing.TB, got, want map[string]fileState) {
	t.Helper()
	var diffs []string
	for n, w := range want {
		if g, ok := got[n]; !ok || g != w {
			diffs = append(diffs, n)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			diffs = append(diffs, n)
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		t.Fatalf("files changed: %v", diffs)
	}
}
