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

// CPUSeconds is the CPU time (user and system) process pid (0: this
// process) has used so far.
func CPUSeconds(t testing.TB, pid int) float64 {
	t.Helper()
	path := filepath.Join(procDir(pid), "stat")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis start with field 3, state.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		t.Fatalf("%s: %q", path, b)
	}
	var ticks int
	for _, s := range f[11:13] { // utime, stime: fields 14 and 15
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(fmt.Errorf("%s: %w", path, err))
		}
		ticks += n
	}
	// USER_HZ is 100 on every Linux the tests run on.
	return float64(ticks) / 100
}
