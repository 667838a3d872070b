package replica

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestParkedReplicaServesAndReports: a parked replica holds no DB
// descriptors, reports its position, statistics and size as they were
// without reopening, and reopens on the first read or write, with every
// write kept.
func TestParkedReplicaServesAndReports(t *testing.T) {
	dir := t.TempDir()
	r := openReplica(t, dir, newShared(t), nil)
	defer r.Close()
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 2})
	ctx := context.Background()
	for i := range 50 {
		if err := r.Write(ctx, nil, put(fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	openStats, err := r.EngineStats()
	if err != nil {
		t.Fatal(err)
	}
	dbDir := filepath.Join(dir, "db")
	if n := testcluster.OpenFDs(t, 0, dbDir); n == 0 {
		t.Fatal("an open DB holds no descriptors under its directory: the fd check below proves nothing")
	}
	parked, err := r.Park()
	if err != nil || !parked {
		t.Fatalf("Park() = %v, %v; want true", parked, err)
	}
	if n := testcluster.OpenFDs(t, 0, dbDir); n != 0 {
		t.Errorf("a parked DB holds %d descriptors, want 0", n)
	}
	// The binlog keeps its LOCK (a node locks its data directory instead:
	// binlog.Options.NoLock), and closes its active segment.
	if n := testcluster.OpenFDs(t, 0, filepath.Join(dir, "binlog")); n != 1 {
		t.Errorf("a parked replica's binlog holds %d descriptors, want 1 (its LOCK)", n)
	}
	// What the node reports does not reopen it.
	if term, lsn, applied := r.Position(); term != 2 || lsn != 50 || applied != 50 {
		t.Errorf("parked position (%d, %d, applied %d), want (2, 50, applied 50)", term, lsn, applied)
	}
	st, err := r.EngineStats()
	if err != nil || st.SSTBytes == 0 || st.EstimatedKeys != openStats.EstimatedKeys {
		t.Errorf("parked stats %+v, %v; want the open DB's %d keys in table files", st, err, openStats.EstimatedKeys)
	}
	if db, _ := r.Sizes(); db == 0 {
		t.Error("parked DB size 0")
	}
	if _, err := r.Purge(PurgePolicy{MaxSegments: 1, MinSegments: 1}); err != nil {
		t.Error(err)
	}
	if n, _, err := r.SweepExpired(ctx, nil, 10); n != 0 || err != nil {
		t.Errorf("sweep of a parked DB = %d, %v", n, err)
	}
	if !r.Parked() {
		t.Fatal("reporting, purge or sweep reopened the parked DB")
	}

	if v, _, err := r.Get([]byte("k7")); err != nil || string(v) != "v7" {
		t.Fatalf("k7 after park = %q, %v", v, err)
	}
	if r.Parked() {
		t.Fatal("a read left the DB parked")
	}
	if _, err := r.Park(); err != nil {
		t.Fatal(err)
	}
	if err := r.Write(ctx, nil, put("k7", "new", 0)); err != nil {
		t.Fatal(err)
	}
	if v, _, err := r.Get([]byte("k7")); err != nil || string(v) != "new" {
		t.Fatalf("k7 after a write to a parked DB = %q, %v", v, err)
	}
	if _, lsn, applied := r.Position(); lsn != 51 || applied != 51 {
		t.Errorf("position after the write: lsn %d applied %d, want 51", lsn, applied)
	}
}

// TestParkIfIdle parks only a DB nothing used for the idle period.
func TestParkIfIdle(t *testing.T) {
	r := openReplica(t, t.TempDir(), newShared(t), nil)
	defer r.Close()
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 1})
	if err := r.Write(context.Background(), []byte("req-1"), put("a", "1", 0)); err != nil {
		t.Fatal(err)
	}
	if n := r.RequestIDs(); n != 1 {
		t.Fatalf("%d request ids after a write with one, want 1", n)
	}
	const idle = 50 * time.Millisecond
	if parked, _ := r.ParkIfIdle(idle); parked {
		t.Fatal("parked on the first look")
	}
	time.Sleep(idle) // the idle period itself, not synchronisation
	if _, _, err := r.Get([]byte("x")); !errors.Is(err, engine.ErrNotFound) {
		t.Fatal(err)
	}
	if parked, _ := r.ParkIfIdle(idle); parked {
		t.Fatal("parked a DB used within the idle period")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		parked, err := r.ParkIfIdle(idle)
		if err != nil {
			t.Fatal(err)
		}
		if parked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an idle DB was not parked within 10 s")
		}
		time.Sleep(idle / 4)
	}
	if !r.Parked() {
		t.Fatal("ParkIfIdle said parked, Parked says not")
	}
	// An idle park forgets the request ids (a retry comes within seconds).
	if n := r.RequestIDs(); n != 0 {
		t.Errorf("%d request ids kept by a replica parked for want of use, want 0", n)
	}
}

// TestParkRacesRequests parks the DB over and over while writers and
// readers use it: every acknowledged write reads back, and nothing fails.
// The writers go on past their 100 writes each until the DB was parked
// while they ran (on a loaded machine the parker may get no turn among
// the first 400), up to 10,000 each.
func TestParkRacesRequests(t *testing.T) {
	r := openReplica(t, t.TempDir(), newShared(t), nil)
	defer r.Close()
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 1})
	ctx := context.Background()
	stop := make(chan struct{})
	var parks atomic.Int64
	parked := make(chan struct{})
	var parker sync.WaitGroup
	parker.Add(1)
	go func() {
		defer parker.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if ok, err := r.Park(); err != nil {
				t.Error(err)
				return
			} else if ok && parks.Add(1) == 1 {
				close(parked)
			}
		}
	}()
	errs := make(chan error, 4)
	var writers sync.WaitGroup
	var written atomic.Int64
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range 10000 {
				if i >= 100 {
					select {
					case <-parked:
						return
					default:
					}
				}
				k := fmt.Sprintf("w%d-%d", w, i)
				if err := r.Write(ctx, nil, put(k, k, 0)); err != nil {
					errs <- err
					return
				}
				written.Add(1)
				if v, _, err := r.Get([]byte(k)); err != nil || string(v) != k {
					errs <- fmt.Errorf("%s = %q, %v", k, v, err)
					return
				}
			}
		}()
	}
	writers.Wait()
	close(stop)
	parker.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, lsn, applied := r.Position(); lsn != uint64(written.Load()) || applied != lsn {
		t.Errorf("at lsn %d applied %d after %d acknowledged writes", lsn, applied, written.Load())
	}
	if parks.Load() == 0 {
		t.Error("the DB was never parked while in use: the test raced nothing")
	}
	t.Logf("%d parks, %d writes", parks.Load(), written.Load())
}

// TestCloseParkedReplica: closing a parked replica closes its binlog and
// leaves nothing to reopen.
func TestCloseParkedReplica(t *testing.T) {
	dir := t.TempDir()
	shared := newShared(t)
	r := openReplica(t, dir, shared, nil)
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 1})
	if err := r.Write(context.Background(), nil, put("a", "1", 0)); err != nil {
		t.Fatal(err)
	}
	if ok, err := r.Park(); !ok || err != nil {
		t.Fatalf("Park() = %v, %v", ok, err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Get([]byte("a")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	if _, err := r.EngineStats(); !errors.Is(err, ErrClosed) {
		t.Errorf("EngineStats after Close = %v, want ErrClosed", err)
	}
	if n := testcluster.OpenFDs(t, 0, dir); n != 0 {
		t.Errorf("%d descriptors open under the closed replica", n)
	}
	r = openReplica(t, dir, shared, nil)
	defer r.Close()
	if v, _, err := r.Get([]byte("a")); err != nil || string(v) != "1" {
		t.Fatalf("a after reopening a replica closed while parked = %q, %v", v, err)
	}
}

// TestOpenStartsParked: a replica closed cleanly opens parked, at its
// position, without opening its DB; the first request opens it and
// removes the park mark before the DB can change. When the binlog holds
// records past the mark (a crash after an append), Open opens the DB and
// applies them.
func TestOpenStartsParked(t *testing.T) {
	tests := []struct {
		name       string
		tail       bool // append a record to the binlog after the close
		wantParked bool
		wantLSN    uint64
		wantK1     string
	}{
		{"clean close", false, true, 20, "v1"},
		{"binlog ahead of the mark", true, false, 21, "tail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			shared := newShared(t)
			r := openReplica(t, dir, shared, nil)
			r.SetRole(Assignment{Role: Master, Master: "self", Term: 4})
			for i := range 20 {
				if err := r.Write(context.Background(), nil, put(fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i), 0)); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			mark := filepath.Join(dir, parkMarkFile)
			if _, err := os.Stat(mark); err != nil {
				t.Fatalf("no park mark after a clean close: %v", err)
			}
			if tt.tail {
				appendToBinlog(t, dir, 4, 21, put("k1", "tail", 0))
			}

			r = openReplica(t, dir, shared, nil)
			defer r.Close()
			if r.Parked() != tt.wantParked {
				t.Fatalf("Parked() = %v after open, want %v", r.Parked(), tt.wantParked)
			}
			if term, lsn, applied := r.Position(); term != 4 || lsn != tt.wantLSN || applied != tt.wantLSN {
				t.Errorf("position (%d, %d, applied %d), want (4, %d, applied %d)", term, lsn, applied, tt.wantLSN, tt.wantLSN)
			}
			if st, err := r.EngineStats(); err != nil || st.SSTBytes == 0 {
				t.Errorf("stats %+v, %v; want table files", st, err)
			}
			if v, _, err := r.Get([]byte("k1")); err != nil || string(v) != tt.wantK1 {
				t.Fatalf("k1 = %q, %v; want %q", v, err, tt.wantK1)
			}
			if _, err := os.Stat(mark); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("park mark still there with the DB open: %v", err)
			}
		})
	}
}

// TestNewReplicaCreatesItsDBOnFirstUse: a new replica opens parked with
// no DB on disk (a table of thousands of partitions is created without
// thousands of RocksDB instances), and its first write creates it.
func TestNewReplicaCreatesItsDBOnFirstUse(t *testing.T) {
	dir := t.TempDir()
	r := openReplica(t, dir, newShared(t), nil)
	defer r.Close()
	if !r.Parked() {
		t.Error("a new replica opened its DB")
	}
	if _, err := os.Stat(filepath.Join(dir, "db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a new replica has a DB directory: %v", err)
	}
	if term, lsn, applied := r.Position(); term != 0 || lsn != 0 || applied != 0 {
		t.Errorf("new replica at (%d, %d, applied %d)", term, lsn, applied)
	}
	// Reads find nothing, without creating it.
	if _, _, err := r.Get([]byte("a")); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Get of a new replica: %v, want ErrNotFound", err)
	}
	if kvs, _, err := r.ScanAll(nil, 10, false); err != nil || len(kvs) != 0 {
		t.Errorf("ScanAll of a new replica: %v, %v", kvs, err)
	}
	if kvs, _, err := r.Scan([]byte("h"), nil, 10); err != nil || len(kvs) != 0 {
		t.Errorf("Scan of a new replica: %v, %v", kvs, err)
	}
	if _, n, err := r.Digest(0); err != nil || n != 0 {
		t.Errorf("Digest of a new replica: %d keys, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reads created the DB: %v", err)
	}
	r.SetRole(Assignment{Role: Master, Master: "self", Term: 1})
	if err := r.Write(context.Background(), nil, put("a", "1", 0)); err != nil {
		t.Fatal(err)
	}
	if v, _, err := r.Get([]byte("a")); err != nil || string(v) != "1" {
		t.Fatalf("a = %q, %v", v, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "db")); err != nil {
		t.Errorf("no DB directory after the first write: %v", err)
	}
}
