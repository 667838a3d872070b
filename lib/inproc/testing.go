package inproc

import (
	"log/slog"
	"os"
	"sync"
	"testing"
)

// failedLogBytes bounds the servers' log a test keeps to show if it fails.
const failedLogBytes = 4 << 20

// StartTest starts a cluster for t, in t's temporary directory unless
// opts.Dir is set, and closes it when the test ends. It fails the test when
// the cluster does not start. The servers log to stderr when the test runs
// with -v; otherwise their last lines (failedLogBytes at most) are kept and
// shown only if the test fails.
func StartTest(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Logger == nil {
		if testing.Verbose() {
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		} else {
			tail := newLogTail(failedLogBytes)
			opts.Logger = slog.New(slog.NewTextHandler(tail, &slog.HandlerOptions{Level: slog.LevelInfo}))
			// Registered before the cluster's Close, so it runs after it
			// and shows the shutdown too.
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("the cluster's servers logged:\n%s", tail)
				}
			})
		}
	}
	c, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("closing the cluster: %v", err)
		}
	})
	return c
}

// Shared is one cluster that the tests of a package share, each with
// tables of its own: started by the first test that asks, closed (and its
// directory removed) by Close, which the package's TestMain calls after
// m.Run. A test that stops servers or needs an empty cluster starts its own
// with StartTest instead.
type Shared struct {
	// Options are the cluster's; Dir is a new temporary directory.
	Options Options

	once sync.Once
	c    *Cluster
	err  error
}

// Cluster returns the shared cluster, starting it on first use; it fails
// the test when the cluster cannot start.
func (s *Shared) Cluster(t testing.TB) *Cluster {
	t.Helper()
	s.once.Do(func() {
		opts := s.Options
		if opts.Dir, s.err = os.MkdirTemp("", "inproc-shared-"); s.err != nil {
			return
		}
		s.c, s.err = Start(opts)
	})
	if s.err != nil {
		t.Fatalf("starting the shared cluster: %v", s.err)
	}
	return s.c
}

// Close stops the shared cluster, if it was started, and removes its data.
func (s *Shared) Close() {
	if s.c != nil {
		s.c.Close()
		os.RemoveAll(s.c.opts.Dir)
	}
}
