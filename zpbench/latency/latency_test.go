package latency

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	h := New()
	// 1..1000 µs, once each: percentiles are known exactly.
	for i := 1; i <= 1000; i++ {
		Record(h, time.Duration(i)*time.Microsecond)
	}
	s := Summarize(h)
	within := func(name string, got, want time.Duration) {
		t.Helper()
		// 3 significant digits: 0.1% error.
		if diff := got - want; diff < -want/1000 || diff > want/1000 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if s.Count != 1000 {
		t.Errorf("Count = %d", s.Count)
	}
	within("Min", s.Min, time.Microsecond)
	within("P50", s.P50, 500*time.Microsecond)
	within("P95", s.P95, 950*time.Microsecond)
	within("P99", s.P99, 990*time.Microsecond)
	within("P999", s.P999, 999*time.Microsecond)
	within("Max", s.Max, 1000*time.Microsecond)
	within("Mean", s.Mean, 500500*time.Nanosecond)
}

func TestRecordClamps(t *testing.T) {
	h := New()
	if Record(h, 0) {
		t.Error("0 reported as saturated")
	}
	if !Record(h, 2*time.Minute) {
		t.Error("2 minutes not reported as saturated")
	}
	if h.TotalCount() != 2 {
		t.Fatalf("TotalCount = %d, want 2", h.TotalCount())
	}
	if max := time.Duration(h.Max()); max < time.Minute-time.Minute/1000 {
		t.Errorf("Max = %v, want about 1m", max)
	}
}

func TestSummarizeEmpty(t *testing.T) {
	if s := Summarize(nil); s != (Summary{}) {
		t.Errorf("Summarize(nil) = %+v", s)
	}
	if s := Summarize(New()); s != (Summary{}) {
		t.Errorf("Summarize(empty) = %+v", s)
	}
}
