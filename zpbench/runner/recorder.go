package runner

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/zeppelin-kv/zeppelin/zpbench/latency"
	"github.com/zeppelin-kv/zeppelin/zpbench/target"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// recorder collects the measurements of one worker. The goroutines of a
// worker's pipeline share it; a mutex is cheaper than merging per-goroutine
// histograms of 200 KiB each.
type recorder struct {
	mu  sync.Mutex
	res *Result
}

func newRecorder() *recorder {
	return &recorder{res: NewResult()}
}

func (r *recorder) record(kind workload.Kind, d time.Duration, o target.Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Add(kind, d, o)
}

// take returns the measurements so far and starts afresh.
func (r *recorder) take() *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.res
	r.res = NewResult()
	return res
}

// mergeLatency adds the latencies recorded so far to h.
func (r *recorder) mergeLatency(h *hdrhistogram.Histogram) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.res.All != nil {
		h.Merge(r.res.All)
	}
}

// Result is the measurement of one phase (or, merged, of several).
type Result struct {
	// Ops counts the operations completed while measuring: successes,
	// misses and errors.
	Ops int64
	// Errors counts the failed operations; ErrorsByCode splits them by
	// target.Code, ErrorSamples keeps one message per code.
	Errors       int64
	ErrorsByCode map[string]int64
	ErrorSamples map[string]string
	// Misses counts reads that found no value (they succeeded).
	Misses int64
	// Saturated counts latencies over the histogram's range (1 minute),
	// recorded as 1 minute.
	Saturated int64
	// Elapsed is the measured time: from the end of the warm-up until the
	// last operation completed.
	Elapsed time.Duration
	// All holds the latency of every successful operation; ByKind splits
	// it by kind. Failed operations are not in them.
	All    *hdrhistogram.Histogram
	ByKind [workload.NumKinds]*hdrhistogram.Histogram
}

// NewResult returns an empty result.
func NewResult() *Result {
	return &Result{ErrorsByCode: map[string]int64{}, ErrorSamples: map[string]string{}}
}

// Add records one operation of kind that took d and ended as o.
func (r *Result) Add(kind workload.Kind, d time.Duration, o target.Outcome) {
	r.Ops++
	if o.Err != nil {
		r.Errors++
		code := target.Code(o.Err)
		r.ErrorsByCode[code]++
		if _, ok := r.ErrorSamples[code]; !ok {
			r.ErrorSamples[code] = o.Err.Error()
		}
		return
	}
	if o.Miss {
		r.Misses++
	}
	if r.All == nil {
		r.All = latency.New()
	}
	if r.ByKind[kind] == nil {
		r.ByKind[kind] = latency.New()
	}
	if latency.Record(r.All, d) {
		r.Saturated++
	}
	latency.Record(r.ByKind[kind], d)
}

// Merge adds o's measurements to r. Elapsed times add up: merged results
// are consecutive phases (the rounds of a comparison).
func (r *Result) Merge(o *Result) {
	r.Ops += o.Ops
	r.Errors += o.Errors
	r.Misses += o.Misses
	r.Saturated += o.Saturated
	r.Elapsed += o.Elapsed
	for c, n := range o.ErrorsByCode {
		r.ErrorsByCode[c] += n
	}
	for c, s := range o.ErrorSamples {
		if _, ok := r.ErrorSamples[c]; !ok {
			r.ErrorSamples[c] = s
		}
	}
	r.All = mergeHist(r.All, o.All)
	for k := range r.ByKind {
		r.ByKind[k] = mergeHist(r.ByKind[k], o.ByKind[k])
	}
}

func mergeHist(dst, src *hdrhistogram.Histogram) *hdrhistogram.Histogram {
	if src == nil {
		return dst
	}
	if dst == nil {
		dst = latency.New()
	}
	dst.Merge(src)
	return dst
}

// Throughput is successful operations per second of Elapsed.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops-r.Errors) / r.Elapsed.Seconds()
}

// ErrorRate is the fraction of operations that failed.
func (r *Result) ErrorRate() float64 {
	if r.Ops == 0 {
		return 0
	}
	return float64(r.Errors) / float64(r.Ops)
}
