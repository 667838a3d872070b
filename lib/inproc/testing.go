package inproc

import (
	"log/slog"
	"os"
	"testing"
)

// StartTest starts a cluster for t, in t's temporary directory unless
// opts.Dir is set, logging to stderr when the test runs with -v, and closes
// it when the test ends. It fails the test when the cluster does not start.
func StartTest(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Logger == nil && testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
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
