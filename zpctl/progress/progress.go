// Package progress reports how far a long zpctl operation (a bulk load, a
// migration) has come: a redrawn bar when a person watches a terminal,
// plain lines otherwise, so that cron mail and CI logs stay readable and
// greppable.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/bubbles/progress"
	"github.com/muesli/termenv"
)

// Reporter is told of the work done. It is safe for concurrent use, so
// that parallel workers can each report their share.
type Reporter interface {
	// SetTotal sets how many units the whole operation is; 0 when unknown.
	SetTotal(total int64)
	// Add records n more units done.
	Add(n int64)
	// SetDetail sets a note shown after the counts (e.g. bytes copied):
	// on the bar, and on the plain lines printed from then on.
	SetDetail(detail string)
	// Log prints a line of its own: above the bar on a terminal (which is
	// redrawn under it), after the label otherwise.
	Log(line string)
	// Done ends the report with the operation's outcome. Calls after the
	// first are ignored.
	Done(err error)
}

// Options configures New.
type Options struct {
	// Label starts every line, e.g. "load".
	Label string
	// Unit names what is counted, e.g. "keys"; default "items".
	Unit string
	// Total is the expected number of units; 0 when unknown.
	Total int64
	// Terminal selects the redrawn bar instead of plain lines.
	Terminal bool
	// Profile is the bar's colour profile. The zero value is TrueColor;
	// termenv.Ascii draws the bar without colour.
	Profile termenv.Profile
	// Width is the bar's width in cells; default 30.
	Width int
	// Interval is the least time between two redraws of the bar, and,
	// for plain lines with an unknown total, between two lines. Default
	// 100ms on a terminal, 5s otherwise.
	Interval time.Duration
	// Now is the clock; default time.Now. Tests replace it.
	Now func() time.Time
}

// plainSteps is how many lines a plain report with a known total prints
// on its way: one each time another tenth is done.
const plainSteps = 10

// New returns a Reporter writing to w.
func New(w io.Writer, opts Options) Reporter {
	if opts.Unit == "" {
		opts.Unit = "items"
	}
	if opts.Width <= 0 {
		opts.Width = 30
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
		if opts.Terminal {
			opts.Interval = 100 * time.Millisecond
		}
	}
	r := &reporter{w: w, opts: opts, total: opts.Total, start: opts.Now()}
	r.last = r.start
	if opts.Terminal {
		r.bar = progress.New(progress.WithDefaultGradient(), progress.WithWidth(opts.Width),
			progress.WithoutPercentage(), progress.WithColorProfile(opts.Profile))
		r.redraw()
	}
	return r
}

type reporter struct {
	w    io.Writer
	opts Options
	bar  progress.Model // Terminal only

	mu    sync.Mutex
	total int64
	done  int64
	start time.Time
	// last is when the bar was drawn or a plain line printed; step is the
	// last tenth a plain line reported.
	last   time.Time
	step   int64
	ended  bool
	detail string
}

func (r *reporter) SetTotal(total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total = max(total, 0)
	if r.opts.Terminal && !r.ended {
		r.redraw()
	}
}

func (r *reporter) Add(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return
	}
	r.done += n
	now := r.opts.Now()
	if r.opts.Terminal {
		if now.Sub(r.last) >= r.opts.Interval || (r.total > 0 && r.done >= r.total) {
			r.last = now
			r.redraw()
		}
		return
	}
	if r.total > 0 {
		// A line per tenth crossed; the end is Done's line.
		step := r.done * plainSteps / r.total
		if step > r.step && r.done < r.total {
			r.step = step
			r.last = now
			fmt.Fprintf(r.w, "%s: %s%s\n", r.opts.Label, r.counts(), r.detailSuffix())
		}
		return
	}
	if now.Sub(r.last) >= r.opts.Interval {
		r.last = now
		fmt.Fprintf(r.w, "%s: %s%s\n", r.opts.Label, r.counts(), r.detailSuffix())
	}
}

// detailSuffix is ", detail", or "" without one.
func (r *reporter) detailSuffix() string {
	if r.detail == "" {
		return ""
	}
	return ", " + r.detail
}

func (r *reporter) SetDetail(detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.detail == detail {
		return
	}
	r.detail = detail
	if r.opts.Terminal && !r.ended {
		now := r.opts.Now()
		if now.Sub(r.last) >= r.opts.Interval {
			r.last = now
			r.redraw()
		}
	}
}

func (r *reporter) Log(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.opts.Terminal && !r.ended {
		fmt.Fprintf(r.w, "\r\x1b[2K%s\n", line)
		r.redraw()
		return
	}
	fmt.Fprintf(r.w, "%s: %s\n", r.opts.Label, line)
}

func (r *reporter) Done(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return
	}
	r.ended = true
	if r.opts.Terminal {
		r.redraw()
		io.WriteString(r.w, "\n")
	}
	took := r.opts.Now().Sub(r.start).Round(time.Millisecond)
	if err != nil {
		fmt.Fprintf(r.w, "%s: failed after %s, %v: %v\n", r.opts.Label, r.counts(), took, err)
		return
	}
	fmt.Fprintf(r.w, "%s: done, %s in %v\n", r.opts.Label, r.counts(), took)
}

// counts is "1500/10000 keys (15%)", or "1500 keys" with no total.
func (r *reporter) counts() string {
	if r.total <= 0 {
		return fmt.Sprintf("%d %s", r.done, r.opts.Unit)
	}
	return fmt.Sprintf("%d/%d %s (%d%%)", r.done, r.total, r.opts.Unit, percent(r.done, r.total))
}

// redraw rewrites the terminal line: carriage return, erase the line, then
// label, bar and counts.
func (r *reporter) redraw() {
	var b strings.Builder
	b.WriteString("\r\x1b[2K")
	b.WriteString(r.opts.Label)
	b.WriteString(" ")
	if r.total > 0 {
		b.WriteString(r.bar.ViewAs(float64(min(r.done, r.total)) / float64(r.total)))
		b.WriteString(" ")
	}
	b.WriteString(r.counts())
	if r.detail != "" {
		b.WriteString(" · ")
		b.WriteString(r.detail)
	}
	io.WriteString(r.w, b.String())
}

func percent(done, total int64) int64 {
	if total <= 0 {
		return 0
	}
	return min(done*100/total, 100)
}

// Discard is a Reporter that reports nothing.
var Discard Reporter = discard{}

type discard struct{}

func (discard) SetTotal(int64)   {}
func (discard) Add(int64)        {}
func (discard) SetDetail(string) {}
func (discard) Log(string)       {}
func (discard) Done(error)       {}
