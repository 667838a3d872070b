package tui

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

// recv waits for the next message, failing the test after a generous
// deadline (which only a hung poller reaches).
func recv(t *testing.T, ch <-chan tea.Msg) SnapshotMsg {
	t.Helper()
	select {
	case m := <-ch:
		return m.(SnapshotMsg)
	case <-time.After(10 * time.Second):
		t.Fatal("no message from the poller")
	}
	return SnapshotMsg{}
}

func TestPoller(t *testing.T) {
	var calls atomic.Int64
	msgs := make(chan tea.Msg)
	take := func(ctx context.Context) *survey.Snapshot {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("survey without a deadline")
		}
		return &survey.Snapshot{Taken: time.Unix(calls.Add(1), 0)}
	}
	ctx, cancel := context.WithCancel(context.Background())
	// An hour between ticks: every message after the first is a Refresh.
	p := NewPoller(time.Hour, take, func(m tea.Msg) {
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	})
	done := make(chan struct{})
	go func() {
		p.Run(ctx)
		close(done)
	}()
	if m := recv(t, msgs); m.Snapshot.Taken.Unix() != 1 {
		t.Fatalf("first survey %v", m.Snapshot.Taken)
	}
	p.Refresh()
	if m := recv(t, msgs); m.Snapshot.Taken.Unix() != 2 {
		t.Fatalf("refreshed survey %v", m.Snapshot.Taken)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	// Refresh never blocks, even with nobody running.
	p.Refresh()
	p.Refresh()
}

func TestPollerTicks(t *testing.T) {
	msgs := make(chan tea.Msg, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n atomic.Int64
	p := NewPoller(5*time.Millisecond, func(context.Context) *survey.Snapshot {
		return &survey.Snapshot{Taken: time.Unix(n.Add(1), 0)}
	}, func(m tea.Msg) { msgs <- m })
	go p.Run(ctx)
	for want := int64(1); want <= 3; want++ {
		if m := recv(t, msgs); m.Snapshot.Taken.Unix() != want {
			t.Fatalf("survey %d: %v", want, m.Snapshot.Taken)
		}
	}
}
