package server

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// newTestRing returns a ring of size and a logger writing through it to a
// text handler at Warn, as a node run with --log-level warn.
func newTestRing(size int) (*logRing, *slog.Logger, *bytes.Buffer) {
	var out bytes.Buffer
	ring := newLogRing(size)
	return ring, slog.New(ring.handler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))), &out
}

// TestLogRingAttrs: each record keeps its message, level and attributes
// as key=value text, with those of derived loggers and group names; the
// wrapped handler still gets what its level lets through.
func TestLogRingAttrs(t *testing.T) {
	tests := []struct {
		name      string
		log       func(l *slog.Logger)
		wantMsg   string
		wantAttrs string
		wantLevel string
	}{
		{"plain", func(l *slog.Logger) { l.Info("replica role", "table", "t", "partition", 3) }, "replica role", "table=t partition=3", "INFO"},
		{"quoted", func(l *slog.Logger) { l.Warn("x", "err", "dial tcp: refused", "k=v", "") }, "x", `err="dial tcp: refused" "k=v"=""`, "WARN"},
		{"with", func(l *slog.Logger) { l.With("node", "n1").Error("boom", "n", 1) }, "boom", "node=n1 n=1", "ERROR"},
		{"group", func(l *slog.Logger) { l.With("a", 1).WithGroup("g").With("b", 2).Info("m", "c", 3) }, "m", "a=1 g.b=2 g.c=3", "INFO"},
		{"group attr", func(l *slog.Logger) { l.Info("m", slog.Group("req", "id", 7, slog.Group("peer", "addr", "x"))) }, "m", "req.id=7 req.peer.addr=x", "INFO"},
		{"empty group", func(l *slog.Logger) { l.WithGroup("").Info("m", "a", 1) }, "m", "a=1", "INFO"},
		{"capped", func(l *slog.Logger) { l.Info(strings.Repeat("m", 600), "v", strings.Repeat("é", 600)) }, strings.Repeat("m", 600), "", "INFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ring, l, _ := newTestRing(4)
			tt.log(l)
			got := ring.lines(0, slog.LevelInfo)
			if len(got) != 1 {
				t.Fatalf("%d lines kept", len(got))
			}
			g := got[0]
			if g.Message != tt.wantMsg || g.Level != tt.wantLevel || g.TimeMs == 0 {
				t.Fatalf("got %s %q, want %s %q", g.Level, g.Message, tt.wantLevel, tt.wantMsg)
			}
			if tt.name == "capped" {
				if n := len(g.Message) + len(g.Attrs); n > logLineBytes || !strings.HasPrefix(g.Attrs, "v=") || !strings.HasSuffix(g.Attrs, "…") {
					t.Fatalf("%d bytes kept, attrs %q", n, g.Attrs)
				}
				return
			}
			if g.Attrs != tt.wantAttrs {
				t.Fatalf("attrs %q, want %q", g.Attrs, tt.wantAttrs)
			}
		})
	}
}

// TestLogRingLevels: Info and above are kept whatever the wrapped
// handler's level; Debug is not; the wrapped handler is unchanged.
func TestLogRingLevels(t *testing.T) {
	ring, l, out := newTestRing(8)
	l.Debug("d")
	l.Info("i")
	l.Warn("w")
	l.Error("e")
	tests := []struct {
		min  slog.Level
		n    int
		want string
	}{
		{slog.LevelDebug, 0, "i w e"},
		{slog.LevelInfo, 0, "i w e"},
		{slog.LevelWarn, 0, "w e"},
		{slog.LevelError, 0, "e"},
		{slog.LevelInfo, 2, "w e"},
		{slog.LevelWarn, 1, "e"},
	}
	for _, tt := range tests {
		var got []string
		for _, g := range ring.lines(tt.n, tt.min) {
			got = append(got, g.Message)
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("lines(%d, %v) = %v, want %s", tt.n, tt.min, got, tt.want)
		}
	}
	if s := out.String(); strings.Contains(s, "msg=i") || !strings.Contains(s, "msg=w") || !strings.Contains(s, "msg=e") {
		t.Fatalf("wrapped handler wrote:\n%s", s)
	}
}

// TestLogRingBound: the ring keeps its size's newest records, oldest
// first, however many are logged.
func TestLogRingBound(t *testing.T) {
	for _, logged := range []int{0, 1, 5, 8, 9, 1000} {
		ring, l, _ := newTestRing(8)
		for i := range logged {
			l.Info(fmt.Sprint(i))
		}
		got := ring.lines(0, slog.LevelInfo)
		if want := min(logged, 8); len(got) != want {
			t.Fatalf("%d logged: %d kept, want %d", logged, len(got), want)
		}
		for i, g := range got {
			if want := fmt.Sprint(logged - len(got) + i); g.Message != want {
				t.Fatalf("%d logged: line %d is %q, want %q", logged, i, g.Message, want)
			}
		}
	}
}

// TestLogRingConcurrent logs from many goroutines through derived loggers
// while reading (run with -race): every record lands, none torn.
func TestLogRingConcurrent(t *testing.T) {
	const writers, each = 8, 200
	ring, l, _ := newTestRing(writers * each)
	var wg sync.WaitGroup
	for w := range writers {
		wl := l.With("w", w)
		wg.Go(func() {
			for i := range each {
				wl.WithGroup("g").Info("m", "i", i)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			ring.lines(10, slog.LevelInfo)
		}
	})
	wg.Wait()
	got := ring.lines(0, slog.LevelInfo)
	if len(got) != writers*each {
		t.Fatalf("%d lines kept, want %d", len(got), writers*each)
	}
	for _, g := range got {
		if !strings.HasPrefix(g.Attrs, "w=") || !strings.Contains(g.Attrs, " g.i=") {
			t.Fatalf("line %q", g.Attrs)
		}
	}
}

// TestLogRingOldestFirst: a record dated before the one added ahead of it
// (its goroutine took the time first and lost the race to the ring) does
// not make the ring read out of order.
func TestLogRingOldestFirst(t *testing.T) {
	ring := newLogRing(8)
	t0 := time.Unix(1000, 0)
	ring.add(logEntry{time: t0.Add(2 * time.Millisecond), level: slog.LevelInfo, msg: "second"})
	ring.add(logEntry{time: t0.Add(time.Millisecond), level: slog.LevelInfo, msg: "first, added late"})
	ring.add(logEntry{time: t0.Add(3 * time.Millisecond), level: slog.LevelInfo, msg: "third"})
	lines := ring.lines(0, slog.LevelInfo)
	for i := 1; i < len(lines); i++ {
		if lines[i].TimeMs < lines[i-1].TimeMs {
			t.Fatalf("line %d (%s) dated before line %d: %v", i, lines[i].Message, i-1, lines)
		}
	}
}
