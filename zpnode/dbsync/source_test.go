package dbsync

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func fetchReq(session, name string, off uint64, n uint32) *zppb.FullSyncFetchRequest {
	return &zppb.FullSyncFetchRequest{Table: testTable, Partition: testPart, Session: session, Name: name, Offset: off, Length: n}
}

// biggest returns the largest file of a manifest.
func biggest(files []*zppb.SyncFile) *zppb.SyncFile {
	var b *zppb.SyncFile
	for _, f := range files {
		if b == nil || f.GetSize() > b.GetSize() {
			b = f
		}
	}
	return b
}

func TestSourceFetch(t *testing.T) {
	s := newShared(t)
	m := newMaster(t, s, SourceOptions{})
	write(t, m.db, 4, 0, 3000, 100, 2000, 1) // ~6 MB of incompressible values
	flush(t, m.db)
	ctx := context.Background()
	start, err := m.src.Start(ctx, testTable, testPart, m.db)
	if err != nil {
		t.Fatal(err)
	}
	if _, lsn := m.db.Applied(); start.GetTerm() != 4 || start.GetLsn() != lsn {
		t.Fatalf("Start position (%d, %d), want (4, %d)", start.GetTerm(), start.GetLsn(), lsn)
	}
	if err := checkManifest(start.GetFiles()); err != nil {
		t.Fatal(err)
	}
	big := biggest(start.GetFiles())
	if big.GetSize() <= MaxChunkSize {
		t.Fatalf("largest file %d bytes; the test needs one above MaxChunkSize", big.GetSize())
	}
	file, err := os.ReadFile(filepath.Join(m.src.opts.Dir, start.GetSession(), big.GetName()))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		req     *zppb.FullSyncFetchRequest
		want    []byte // nil with wantErr
		wantErr error
		code    zppb.Code
	}{
		{"chunk", fetchReq(start.Session, big.Name, 100, 1000), file[100:1100], nil, 0},
		{"default length", fetchReq(start.Session, big.Name, 0, 0), file[:DefaultChunkSize], nil, 0},
		{"capped length", fetchReq(start.Session, big.Name, 0, 64<<20), file[:MaxChunkSize], nil, 0},
		{"short at the end", fetchReq(start.Session, big.Name, big.Size-10, 1000), file[big.Size-10:], nil, 0},
		{"at the end", fetchReq(start.Session, big.Name, big.Size, 1000), []byte{}, nil, 0},
		{"past the end", fetchReq(start.Session, big.Name, big.Size+1, 1000), nil, ErrBadOffset, zppb.Code_INVALID_ARGUMENT},
		{"unknown session", fetchReq("0123", big.Name, 0, 10), nil, ErrNoSession, zppb.Code_NOT_FOUND},
		{"other partition", &zppb.FullSyncFetchRequest{Table: testTable, Partition: testPart + 1, Session: start.Session, Name: big.Name}, nil, ErrNoSession, zppb.Code_NOT_FOUND},
		{"parent", fetchReq(start.Session, "../x", 0, 10), nil, ErrBadName, zppb.Code_INVALID_ARGUMENT},
		{"parent inside", fetchReq(start.Session, "a/../../"+big.Name, 0, 10), nil, ErrBadName, zppb.Code_INVALID_ARGUMENT},
		{"absolute", fetchReq(start.Session, "/etc/passwd", 0, 10), nil, ErrBadName, zppb.Code_INVALID_ARGUMENT},
		{"unclean", fetchReq(start.Session, "./"+big.Name, 0, 10), nil, ErrBadName, zppb.Code_INVALID_ARGUMENT},
		{"empty", fetchReq(start.Session, "", 0, 10), nil, ErrBadName, zppb.Code_INVALID_ARGUMENT},
		{"not in the manifest", fetchReq(start.Session, "LOCK", 0, 10), nil, ErrBadName, zppb.Code_INVALID_ARGUMENT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.src.Fetch(ctx, tc.req)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Fetch = %v, want %v", err, tc.wantErr)
				}
				// The node answers with the code the error carries.
				if resp := status.Response(err); resp.GetCode() != tc.code || !strings.Contains(resp.GetMsg(), "dbsync") {
					t.Fatalf("response for %v: %v, want code %v", err, resp, tc.code)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("Fetch = %d bytes, %v; want %d bytes", len(got), err, len(tc.want))
			}
		})
	}

	// Over the wire, the slave sees the codes.
	resp, err := m.dial(t).Call(ctx, &zppb.Request{Cmd: &zppb.Request_FullsyncFetch{FullsyncFetch: fetchReq("nope", "CURRENT", 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := status.FromResponse(resp); !errors.Is(err, status.ErrNotFound) {
		t.Fatalf("FETCH of an unknown session over RPC: %v, want NOT_FOUND", err)
	}

	if err := m.src.End(start.GetSession()); err != nil {
		t.Fatal(err)
	}
	if n := m.checkpoints(t); n != 0 {
		t.Fatalf("%d checkpoints after End", n)
	}
	if _, err := m.src.Fetch(ctx, fetchReq(start.Session, big.Name, 0, 10)); !errors.Is(err, ErrNoSession) {
		t.Fatalf("Fetch after End = %v, want ErrNoSession", err)
	}
	if err := m.src.End(start.GetSession()); !errors.Is(err, ErrNoSession) {
		t.Fatalf("second End = %v, want ErrNoSession", err)
	}
}

func TestSourceBusy(t *testing.T) {
	s := newShared(t)
	m := newMaster(t, s, SourceOptions{MaxSessions: 2})
	write(t, m.db, 1, 0, 100, 10, 10, 1)
	ctx := context.Background()
	a, err := m.src.Start(ctx, testTable, testPart, m.db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.src.Start(ctx, testTable, testPart, m.db); err != nil {
		t.Fatal(err)
	}
	_, err = m.src.Start(ctx, testTable, testPart, m.db)
	if !errors.Is(err, ErrBusy) || status.Response(err).GetCode() != zppb.Code_WAIT {
		t.Fatalf("third Start = %v, want ErrBusy with code WAIT", err)
	}
	if n := m.checkpoints(t); n != 2 {
		t.Fatalf("%d checkpoints, want 2 (none for the refused Start)", n)
	}
	if err := m.src.End(a.Session); err != nil {
		t.Fatal(err)
	}
	if _, err := m.src.Start(ctx, testTable, testPart, m.db); err != nil {
		t.Fatalf("Start after End freed a slot: %v", err)
	}
}

func TestSourceExpiry(t *testing.T) {
	s := newShared(t)
	const ttl = 300 * time.Millisecond
	m := newMaster(t, s, SourceOptions{SessionTTL: ttl})
	write(t, m.db, 1, 0, 100, 10, 10, 1)
	ctx := context.Background()
	idle, err := m.src.Start(ctx, testTable, testPart, m.db)
	if err != nil {
		t.Fatal(err)
	}
	busy, err := m.src.Start(ctx, testTable, testPart, m.db)
	if err != nil {
		t.Fatal(err)
	}
	// Fetching keeps a session alive well past its TTL; the idle one goes.
	deadline := time.Now().Add(3 * ttl)
	for time.Now().Before(deadline) {
		if _, err := m.src.Fetch(ctx, fetchReq(busy.Session, "CURRENT", 0, 0)); err != nil {
			t.Fatalf("Fetch from a session in use: %v", err)
		}
		time.Sleep(ttl / 20)
	}
	waitFor(t, "the idle session to expire", func() bool {
		_, err := m.src.Fetch(ctx, fetchReq(idle.Session, "CURRENT", 0, 0))
		return errors.Is(err, ErrNoSession)
	})
	waitFor(t, "the idle checkpoint to go", func() bool {
		_, err := os.Stat(filepath.Join(m.src.opts.Dir, idle.Session))
		return errors.Is(err, os.ErrNotExist)
	})
	if _, err := os.Stat(filepath.Join(m.src.opts.Dir, busy.Session)); err != nil {
		t.Fatalf("checkpoint of the session in use: %v", err)
	}
}

func TestSourceClose(t *testing.T) {
	s := newShared(t)
	m := newMaster(t, s, SourceOptions{})
	write(t, m.db, 1, 0, 100, 10, 10, 1)
	ctx := context.Background()
	var ids []string
	for range 3 {
		st, err := m.src.Start(ctx, testTable, testPart, m.db)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.Session)
	}
	if n := m.checkpoints(t); n != 3 {
		t.Fatalf("%d checkpoints, want 3", n)
	}
	if err := m.src.Close(); err != nil {
		t.Fatal(err)
	}
	if n := m.checkpoints(t); n != 0 {
		t.Fatalf("%d checkpoints after Close", n)
	}
	if _, err := m.src.Fetch(ctx, fetchReq(ids[0], "CURRENT", 0, 0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Fetch after Close = %v, want ErrClosed", err)
	}
	if _, err := m.src.Start(ctx, testTable, testPart, m.db); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close = %v, want ErrClosed", err)
	}
	if err := m.src.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestSourceStartFails checks that a failed checkpoint leaves nothing
// behind and gives its slot back.
func TestSourceStartFails(t *testing.T) {
	s := newShared(t)
	m := newMaster(t, s, SourceOptions{MaxSessions: 1})
	closed := openDB(t, filepath.Join(t.TempDir(), "db"), s)
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.src.Start(context.Background(), testTable, testPart, closed); err == nil {
		t.Fatal("Start on a closed DB succeeded")
	}
	if n := m.checkpoints(t); n != 0 {
		t.Fatalf("%d checkpoints after a failed Start", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.src.Start(ctx, testTable, testPart, m.db); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a cancelled context = %v", err)
	}
	if n := m.checkpoints(t); n != 0 {
		t.Fatalf("%d checkpoints after a cancelled Start", n)
	}
	if _, err := m.src.Start(context.Background(), testTable, testPart, m.db); err != nil {
		t.Fatalf("Start after failures (slot not given back?): %v", err)
	}
}

func TestNewSourceRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	leftover := filepath.Join(dir, newSessionID())
	keep := filepath.Join(dir, "not-a-session")
	for _, d := range []string{leftover, keep} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "000001.sst"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, err := NewSource(SourceOptions{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover checkpoint: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("unrelated directory removed: %v", err)
	}
}
