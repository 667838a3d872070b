package progress

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/muesli/termenv"
)

// clock is a fake time source that tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Unix(1_700_000_000, 0)} }

func TestPlainLines(t *testing.T) {
	tests := []struct {
		name  string
		total int64
		adds  []int64
		err   error
		want  string
	}{
		{
			name:  "a line per tenth",
			total: 100,
			adds:  []int64{5, 5, 15, 50, 25},
			want: `load: 10/100 keys (10%)
load: 25/100 keys (25%)
load: 75/100 keys (75%)
load: done, 100/100 keys (100%) in 5s
`,
		},
		{
			name:  "failure",
			total: 10,
			adds:  []int64{3},
			err:   errors.New("boom"),
			want: `load: 3/10 keys (30%)
load: failed after 3/10 keys (30%), 1s: boom
`,
		},
		{
			name:  "unknown total: a line per interval",
			total: 0,
			adds:  []int64{1, 1, 1, 1, 1, 1},
			want: `load: 5 keys
load: done, 6 keys in 6s
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			c := newClock()
			r := New(&buf, Options{Label: "load", Unit: "keys", Total: tt.total, Now: c.now, Interval: 5 * time.Second})
			for _, n := range tt.adds {
				c.advance(time.Second)
				r.Add(n)
			}
			r.Done(tt.err)
			r.Done(nil) // ignored
			r.Add(1)    // ignored
			if buf.String() != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", buf.String(), tt.want)
			}
		})
	}
}

func TestTerminalBar(t *testing.T) {
	var buf bytes.Buffer
	c := newClock()
	r := New(&buf, Options{Label: "load", Unit: "keys", Total: 4, Terminal: true, Width: 8, Now: c.now, Profile: termenv.Ascii})
	r.Add(1) // within the redraw interval: not drawn
	c.advance(time.Second)
	r.Add(1)
	r.Add(2) // complete: drawn at once
	r.Done(nil)
	frames := strings.Split(buf.String(), "\r\x1b[2K")
	want := []string{
		"",
		"load ░░░░░░░░ 0/4 keys (0%)",
		"load ████░░░░ 2/4 keys (50%)",
		"load ████████ 4/4 keys (100%)",
		"load ████████ 4/4 keys (100%)\nload: done, 4/4 keys (100%) in 1s\n",
	}
	if len(frames) != len(want) {
		t.Fatalf("%d frames, want %d: %q", len(frames), len(want), buf.String())
	}
	for i := range want {
		if frames[i] != want[i] {
			t.Errorf("frame %d = %q, want %q", i, frames[i], want[i])
		}
	}
}

func TestConcurrentAdds(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf, Options{Label: "x", Total: 800})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				r.Add(1)
			}
		})
	}
	wg.Wait()
	r.Done(nil)
	if lines := strings.Count(buf.String(), "\n"); lines != 10 || !strings.Contains(buf.String(), "done, 800/800 items (100%)") {
		t.Fatalf("%d lines:\n%s", lines, buf.String())
	}
}

// Log prints a line above the bar (redrawn under it) or after the label;
// the detail follows the counts.
func TestDetailAndLog(t *testing.T) {
	t.Run("terminal", func(t *testing.T) {
		var buf bytes.Buffer
		c := newClock()
		r := New(&buf, Options{Label: "migrate", Unit: "moves", Total: 2, Terminal: true, Width: 4, Now: c.now, Profile: termenv.Ascii})
		c.advance(time.Second)
		r.SetDetail("copied 1.0 KiB/2.0 KiB")
		r.Log("move 7 default/0: PENDING → CATCHING_UP")
		r.Add(2)
		r.Done(nil)
		frames := strings.Split(buf.String(), "\r\x1b[2K")
		want := []string{
			"",
			"migrate ░░░░ 0/2 moves (0%)",
			"migrate ░░░░ 0/2 moves (0%) · copied 1.0 KiB/2.0 KiB",
			"move 7 default/0: PENDING → CATCHING_UP\n",
			"migrate ░░░░ 0/2 moves (0%) · copied 1.0 KiB/2.0 KiB",
			"migrate ████ 2/2 moves (100%) · copied 1.0 KiB/2.0 KiB",
			"migrate ████ 2/2 moves (100%) · copied 1.0 KiB/2.0 KiB\nmigrate: done, 2/2 moves (100%) in 1s\n",
		}
		if strings.Join(frames, "|") != strings.Join(want, "|") {
			t.Fatalf("frames:\n%q\nwant:\n%q", frames, want)
		}
	})
	t.Run("plain", func(t *testing.T) {
		var buf bytes.Buffer
		c := newClock()
		r := New(&buf, Options{Label: "migrate", Unit: "moves", Total: 2, Now: c.now})
		r.Log("move 7 queued")
		r.SetDetail("1 running")
		r.Add(1)
		r.Done(errors.New("move 8 FAILED"))
		want := "migrate: move 7 queued\nmigrate: 1/2 moves (50%), 1 running\nmigrate: failed after 1/2 moves (50%), 0s: move 8 FAILED\n"
		if buf.String() != want {
			t.Fatalf("got:\n%s\nwant:\n%s", buf.String(), want)
		}
	})
}
