package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestCheckpoint(t *testing.T) {
	s := newShared(t)
	root := t.TempDir()
	d := openTestDB(t, filepath.Join(root, "db"), s)
	d.term = 7
	for i := range 50 {
		d.apply(put(fmt.Sprintf("{t}k%02d", i), fmt.Sprint("v", i), 0), put(fmt.Sprint("ttl", i), "x", 1))
	}
	d.apply(del("{t}k07"))

	cpDir := filepath.Join(root, "sync", "1", "checkpoint")
	term, lsn, err := d.Checkpoint(cpDir)
	if err != nil {
		t.Fatal(err)
	}
	if term != 7 || lsn != 51 {
		t.Fatalf("Checkpoint = (%d, %d), want (7, 51)", term, lsn)
	}
	if _, _, err := d.Checkpoint(cpDir); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Checkpoint to an existing directory = %v, want ErrInvalidArgument", err)
	}
	// Writes after the checkpoint do not show in it.
	d.apply(put("{t}k00", "changed", 0))

	cp := openTestDB(t, cpDir, s)
	if ct, cl := cp.Applied(); ct != 7 || cl != 51 {
		t.Fatalf("checkpoint Applied() = (%d, %d)", ct, cl)
	}
	for i := range 50 {
		key := fmt.Sprintf("{t}k%02d", i)
		want := fmt.Sprint("v", i)
		if i == 7 {
			want = "<nil>"
		}
		if got := cp.mustGet(key, 0); got != want {
			t.Fatalf("checkpoint Get(%q) = %q, want %q", key, got, want)
		}
		if got := cp.mustGet(fmt.Sprint("ttl", i), 0); got != "x" {
			t.Fatalf("checkpoint lost TTL key %d: %q", i, got)
		}
	}
	// The copy is a full DB: it continues from the checkpoint's position.
	if err := cp.Apply(52, 7, &zppb.WriteRecord{Mutations: []*zppb.Mutation{put("new", "n", 0)}}); err != nil {
		t.Fatal(err)
	}
	if got := cp.mustGet("new", 0); got != "n" {
		t.Fatalf("Get(new) = %q", got)
	}
	if got := d.mustGet("new", 0); got != "<nil>" {
		t.Fatalf("write to the checkpoint showed in the source: %q", got)
	}
	if n, err := cp.DiskUsage(); err != nil || n == 0 {
		t.Fatalf("DiskUsage() = %d, %v", n, err)
	}
}

// TestCheckpointUnderWrites checks that the position Checkpoint reports is
// the one the checkpoint holds while writes keep coming.
func TestCheckpointUnderWrites(t *testing.T) {
	s := newShared(t)
	root := t.TempDir()
	d := openTestDB(t, filepath.Join(root, "db"), s)
	var (
		mu   sync.Mutex
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			d.apply(put("counter", fmt.Sprint(d.lsn+1), 0))
			mu.Unlock()
		}
	})
	for i := range 5 {
		dir := filepath.Join(root, fmt.Sprint("cp", i))
		_, lsn, err := d.Checkpoint(dir)
		if err != nil {
			t.Fatal(err)
		}
		cp := openTestDB(t, dir, s)
		if _, cl := cp.Applied(); cl != lsn {
			t.Fatalf("checkpoint says lsn %d, holds %d", lsn, cl)
		}
		if lsn > 0 {
			if got := cp.mustGet("counter", 0); got != fmt.Sprint(lsn) {
				t.Fatalf("checkpoint at lsn %d holds counter %q", lsn, got)
			}
		}
		cp.Close()
	}
	close(stop)
	wg.Wait()
}

func TestDestroy(t *testing.T) {
	s := newShared(t)
	root := t.TempDir()
	dir := filepath.Join(root, "db")
	d := openTestDB(t, dir, s)
	d.apply(put("k", "v", 0))
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}

	if err := Destroy(dir); !errors.Is(err, ErrInUse) {
		t.Fatalf("Destroy of an open DB = %v, want ErrInUse", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Destroy(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory still there: %v", err)
	}
	if err := Destroy(dir); err != nil {
		t.Fatalf("Destroy of a missing directory = %v", err)
	}

	// A directory that is not a DB is left alone.
	other := filepath.Join(root, "not-a-db")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Destroy(other); !errors.Is(err, ErrNotDB) {
		t.Fatalf("Destroy of a non-DB directory = %v, want ErrNotDB", err)
	}
	if _, err := os.Stat(filepath.Join(other, "precious")); err != nil {
		t.Fatalf("Destroy touched a non-DB directory: %v", err)
	}
	// An empty directory goes.
	empty := filepath.Join(root, "empty")
	os.Mkdir(empty, 0o755)
	if err := Destroy(empty); err != nil {
		t.Fatal(err)
	}

	// Reopening after Destroy starts from scratch.
	d = openTestDB(t, dir, s)
	if _, lsn := d.Applied(); lsn != 0 {
		t.Fatalf("Applied lsn = %d after Destroy", lsn)
	}
}
