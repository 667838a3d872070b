package testcluster

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// HoldOpen makes the zpnode replica in dir block when it opens, until the
// returned function runs (or the test ends): its park mark becomes a
// named pipe, which the open reads, and reading a pipe waits for a
// writer. The pipe then reads empty, an unreadable mark, which the open
// ignores. A park mark already there (a replica closed parked) is
// replaced.
func HoldOpen(t testing.TB, dir string) (release func()) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mark := filepath.Join(dir, "PARKED")
	if err := os.Remove(mark); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(mark, 0o644); err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if released {
			return
		}
		released = true
		f, err := os.OpenFile(mark, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		// Opened already: the next open of the replica must not wait.
		if err := os.Remove(mark); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(release)
	return release
}
