package testcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// procDir is /proc/PID, or /proc/self for pid 0.
func procDir(pid int) string {
	if pid == 0 {
		return "/proc/self"
	}
	return "/proc/" + strconv.Itoa(pid)
}

// OpenFDs counts the open descriptors of process pid (0: this process);
// with under set, only those on files below that directory.
func OpenFDs(t testing.TB, pid int, under string) int {
	t.Helper()
	dir := filepath.Join(procDir(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if under == "" {
		return len(ents)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(target, under+"/") {
			n++
		}
	}
	return n
}

// ResidentBytes is the RSS of process pid (0: this process).
func ResidentBytes(t testing.TB, pid int) int {
	t.Helper()
	path := filepath.Join(procDir(pid), "statm")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		t.Fatalf("%s: %q", path, b)
	}
	pages, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(fmt.Errorf("%s: %w", path, err))
	}
	return pages * os.Getpagesize()
}
