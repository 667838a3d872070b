// Package latency records operation latencies in HDR histograms
// (github.com/HdrHistogram/hdrhistogram-go) and summarises them. HDR
// histograms keep every percentile to 3 significant digits in a fixed
// amount of memory and merge exactly, which averaging per-worker
// percentiles would not.
package latency

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Bounds of every histogram: 1 ns to 1 minute at 3 significant digits
// (about 200 KiB each). Slower operations are recorded as 1 minute and
// counted by Saturated.
const (
	lowest     = 1
	Highest    = int64(time.Minute)
	sigFigures = 3
)

// New returns an empty histogram of durations in nanoseconds.
func New() *hdrhistogram.Histogram {
	return hdrhistogram.New(lowest, Highest, sigFigures)
}

// Record adds d to h, clamped to [1ns, Highest], and reports whether it
// had to be clamped from above.
func Record(h *hdrhistogram.Histogram, d time.Duration) (saturated bool) {
	v := int64(d)
	if v < lowest {
		v = lowest
	}
	if v > Highest {
		v, saturated = Highest, true
	}
	h.RecordValue(v) // in range by construction
	return saturated
}

// Summary is what reports show of a histogram.
type Summary struct {
	Count int64
	Min   time.Duration
	Mean  time.Duration
	P50   time.Duration
	P95   time.Duration
	P99   time.Duration
	P999  time.Duration
	Max   time.Duration
}

// Summarize returns h's summary; the zero Summary when h is nil or empty.
func Summarize(h *hdrhistogram.Histogram) Summary {
	if h == nil || h.TotalCount() == 0 {
		return Summary{}
	}
	ps := h.ValueAtPercentiles([]float64{50, 95, 99, 99.9})
	return Summary{
		Count: h.TotalCount(),
		Min:   time.Duration(h.Min()),
		Mean:  time.Duration(h.Mean()),
		P50:   time.Duration(ps[50]),
		P95:   time.Duration(ps[95]),
		P99:   time.Duration(ps[99]),
		P999:  time.Duration(ps[99.9]),
		Max:   time.Duration(h.Max()),
	}
}
