// Package testcluster starts real zpmeta and zpnode processes on 127.0.0.1
// for integration tests, and lets tests kill, pause, restart and inspect
// them. Every process it starts is stopped by the test's cleanup.
package testcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// BinDirEnv names a directory holding prebuilt zpmeta and zpnode binaries;
// `make test` sets it so the suite does not build them again.
const BinDirEnv = "ZP_BIN_DIR"

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// binaries returns the directory holding zpmeta and zpnode, building them
// once per test process when BinDirEnv does not point at them.
func binaries() (string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		if haveBinaries(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("testcluster: %s=%s lacks zpmeta or zpnode", BinDirEnv, dir)
	}
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "zeppelin-testbin-")
		if buildErr != nil {
			return
		}
		for _, name := range []string{"zpmeta", "zpnode"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, name), "./"+name)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("testcluster: go build ./%s: %w\n%s", name, err, out)
				return
			}
		}
	})
	return buildDir, buildErr
}

func haveBinaries(dir string) bool {
	for _, name := range []string{"zpmeta", "zpnode"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
			return false
		}
	}
	return true
}

// moduleRoot is the directory of the go.mod this package belongs to.
func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("testcluster: cannot locate source")
	}
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("testcluster: no go.mod above %s", file)
		}
		dir = parent
	}
}
