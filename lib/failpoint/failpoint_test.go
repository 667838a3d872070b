package failpoint

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestHold: an unarmed point passes; an armed one holds, says who holds
// it, and lets go once disarmed or when the context ends.
func TestHold(t *testing.T) {
	old := dir
	dir = t.TempDir()
	defer func() { dir = old }()
	logger := slog.New(slog.DiscardHandler)
	ctx := context.Background()

	if err := Hold(ctx, logger, SplitCommit); err != nil {
		t.Fatalf("unarmed point: %v", err)
	}
	armed := filepath.Join(dir, SplitCommit)
	if err := os.WriteFile(armed, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Hold(ctx, logger, SplitCommit) }()
	held := HeldPath(dir, SplitCommit, os.Getpid())
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(held); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("armed point returned %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no held file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := os.Remove(armed); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("released point: %v", err)
	}
	if _, err := os.Stat(held); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("held file after the release: %v", err)
	}

	if err := os.WriteFile(armed, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := Hold(cctx, logger, SplitCommit); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("armed point, context ended: %v", err)
	}
}
