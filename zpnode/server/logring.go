package server

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

const (
	// logRingSize is how many log records a node keeps for INFO log.
	logRingSize = 512
	// logLineBytes caps the message and attributes of one kept record
	// together, so that a storm of large records holds at most
	// logRingSize*logLineBytes.
	logLineBytes = 1024
)

// logRing keeps a node's last records at Info and above, for INFO log: an
// operator sees what the node said without a shell on its host.
type logRing struct {
	mu      sync.Mutex
	entries []logEntry // ring
	next    int
	full    bool
	last    time.Time // of the newest entry
}

type logEntry struct {
	time  time.Time
	level slog.Level
	msg   string
	attrs string // key=value ...
}

func newLogRing(size int) *logRing {
	return &logRing{entries: make([]logEntry, max(size, 1))}
}

// add appends e. Two goroutines may take their records' times in one
// order and add them in the other: an entry is never dated before the one
// it follows, so that the ring reads oldest first, as it promises.
func (l *logRing) add(e logEntry) {
	l.mu.Lock()
	if e.time.Before(l.last) {
		e.time = l.last
	}
	l.last = e.time
	l.entries[l.next] = e
	l.next = (l.next + 1) % len(l.entries)
	l.full = l.full || l.next == 0
	l.mu.Unlock()
}

// lines returns the last n (all when n <= 0) records at minLevel or above,
// oldest first.
func (l *logRing) lines(n int, minLevel slog.Level) []*zppb.LogLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := l.next
	if l.full {
		kept = len(l.entries)
	}
	var out []*zppb.LogLine
	for i := 1; i <= kept && (n <= 0 || len(out) < n); i++ {
		e := &l.entries[(l.next-i+len(l.entries))%len(l.entries)]
		if e.level >= minLevel {
			out = append(out, &zppb.LogLine{TimeMs: e.time.UnixMilli(), Level: e.level.String(), Message: e.msg, Attrs: e.attrs})
		}
	}
	// Walked newest first; a log reads oldest first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// handler wraps next so that every record at Info or above is also kept
// in l, whatever level next lets through.
func (l *logRing) handler(next slog.Handler) slog.Handler {
	return &ringHandler{ring: l, next: next}
}

// ringHandler is the slog.Handler of a logRing. Derived handlers share
// the ring; each carries its own attributes (rendered once, when added)
// and group prefix.
type ringHandler struct {
	ring   *logRing
	next   slog.Handler
	attrs  string // WithAttrs', rendered
	prefix string // WithGroup's names, "a.b."
}

func (h *ringHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelInfo || h.next.Enabled(ctx, level)
}

func (h *ringHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo {
		var b strings.Builder
		b.WriteString(h.attrs)
		r.Attrs(func(a slog.Attr) bool {
			appendAttr(&b, h.prefix, a)
			// Past the cap, the rest would only be cut off.
			return b.Len() < logLineBytes
		})
		msg := capText(r.Message, logLineBytes)
		h.ring.add(logEntry{time: r.Time, level: r.Level, msg: msg, attrs: capText(b.String(), logLineBytes-len(msg))})
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *ringHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		appendAttr(&b, h.prefix, a)
	}
	return &ringHandler{ring: h.ring, next: h.next.WithAttrs(attrs), attrs: capText(b.String(), logLineBytes), prefix: h.prefix}
}

func (h *ringHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &ringHandler{ring: h.ring, next: h.next.WithGroup(name), attrs: h.attrs, prefix: h.prefix + name + "."}
}

// appendAttr renders a as slog's text handler does: " key=value", the
// keys of groups prefixed with their names, values quoted when needed.
func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			appendAttr(b, prefix, g)
		}
		return
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(quoteIfNeeded(prefix + a.Key))
	b.WriteByte('=')
	b.WriteString(quoteIfNeeded(a.Value.String()))
}

func quoteIfNeeded(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if r == ' ' || r == '=' || r == '"' || !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// capText cuts s to at most n bytes, on a character boundary, marking the
// cut with "…".
func capText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := max(n-len(mark), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if n < len(mark) {
		return s[:cut]
	}
	return s[:cut] + mark
}
