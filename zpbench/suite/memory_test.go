package suite

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
)

// series samples RSS every step seconds for n samples, from rss(t).
func series(n int, step float64, rss func(t float64) float64) []MemSnapshot {
	out := make([]MemSnapshot, n)
	for i := range out {
		t := float64(i) * step
		out[i] = MemSnapshot{AtSec: t, RSS: uint64(rss(t))}
	}
	return out
}

const mb = 1 << 20

func TestGrowthOf(t *testing.T) {
	tests := []struct {
		name        string
		samples     []MemSnapshot
		wantEnough  bool
		wantGrowing bool
		wantSlope   float64 // MiB per minute, when Enough
	}{
		{"flat", series(121, 5, func(float64) float64 { return 500 * mb }), true, false, 0},
		{"leak all along: 1 MiB/s", series(121, 5, func(t float64) float64 { return 500*mb + t*mb }), true, true, 60},
		{"grows, then levels off half-way", series(121, 5, func(t float64) float64 { return 400*mb + min(t, 300)*mb }), true, false, 0},
		{"levels off, then grows in the second half", series(121, 5, func(t float64) float64 { return 500*mb + max(t-300, 0)*mb/2 }), true, true, 30},
		{"slow creep under the threshold: 2 MiB over the second half", series(121, 5, func(t float64) float64 { return 500*mb + t*mb/150 }), true, false, 0.4},
		{"noise around a level", series(121, 5, func(t float64) float64 { return 500*mb + 3*mb*math.Sin(t) }), true, false, math.NaN()},
		{"too few samples", series(3, 5, func(t float64) float64 { return 500*mb + t*mb }), false, false, 0},
		{"one sample", series(1, 5, func(float64) float64 { return mb }), false, false, 0},
		{"none", nil, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := growthOf(tt.samples)
			if g.Enough != tt.wantEnough || g.Growing != tt.wantGrowing {
				t.Errorf("growthOf: enough %v growing %v, want %v %v (%+v)", g.Enough, g.Growing, tt.wantEnough, tt.wantGrowing, g)
			}
			if g.Enough && !math.IsNaN(tt.wantSlope) && math.Abs(g.SlopePerMin/mb-tt.wantSlope) > 0.05 {
				t.Errorf("slope %.3f MiB/min, want %.3f", g.SlopePerMin/mb, tt.wantSlope)
			}
		})
	}
}

// TestSoakLeaking: a block cache warming up all soak long and a Go heap in
// use swinging with each GC grow RSS, not the live heap or what lies
// outside Go and the caches; a leak in either of those is a leak.
func TestSoakLeaking(t *testing.T) {
	node := func(liveLeak, cLeak float64) *SoakResult {
		samples := series(121, 5, func(t float64) float64 { return 300*mb + t*mb/4 + t*(liveLeak+cLeak) })
		for i := range samples {
			at := samples[i].AtSec
			samples[i].BlockCache = uint64(at * mb / 4)
			samples[i].Memtables = 64 * mb
			samples[i].GoLive = uint64(50*mb + at*liveLeak)
			samples[i].GoHeap = samples[i].GoLive + uint64(i%3)*20*mb // GC cycles
			samples[i].GoHeld = uint64(150*mb + at*liveLeak)
		}
		s := &SoakResult{Samples: samples, Growth: growthOf(samples)}
		s.GrowthLive = growthOfValue(samples, func(m MemSnapshot) float64 { return float64(m.GoLive) })
		s.GrowthOther = growthOfValue(samples, func(m MemSnapshot) float64 { return float64(m.Other()) })
		return s
	}
	tests := []struct {
		name                string
		soak                *SoakResult
		wantLive, wantOther bool
	}{
		{"healthy: caches fill", node(0, 0), false, false},
		{"Go leak: 100 KiB/s live", node(100<<10, 0), true, false},
		{"C leak: 100 KiB/s outside Go", node(0, 100<<10), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.soak
			if !s.Growth.Growing {
				t.Errorf("RSS: %+v, want growing (the block cache warms up)", s.Growth)
			}
			if s.GrowthLive.Growing != tt.wantLive || s.GrowthOther.Growing != tt.wantOther || s.Leaking() != (tt.wantLive || tt.wantOther) {
				t.Errorf("live %+v, other %+v, leaking %v; want live %v, other %v", s.GrowthLive, s.GrowthOther, s.Leaking(), tt.wantLive, tt.wantOther)
			}
		})
	}
}

func TestRSSRange(t *testing.T) {
	tests := []struct {
		rss              []uint64
		start, peak, end uint64
	}{
		{[]uint64{100, 300, 200}, 100, 300, 200},
		{[]uint64{5}, 5, 5, 5},
		{nil, 0, 0, 0},
	}
	for _, tt := range tests {
		var s []MemSnapshot
		for _, r := range tt.rss {
			s = append(s, MemSnapshot{RSS: r})
		}
		if a, b, c := rssRange(s); a != tt.start || b != tt.peak || c != tt.end {
			t.Errorf("rssRange(%v) = %d %d %d, want %d %d %d", tt.rss, a, b, c, tt.start, tt.peak, tt.end)
		}
	}
}

func TestMemSnapshotOther(t *testing.T) {
	m := MemSnapshot{RSS: 500 * mb, BlockCache: 100 * mb, Memtables: 64 * mb, GoHeap: 30 * mb, GoHeld: 60 * mb}
	if got := m.Other(); got != 276*mb {
		t.Errorf("Other() = %d, want %d", got, 276*mb)
	}
	if got := (MemSnapshot{RSS: 10, GoHeld: 20}).Other(); got != -10 {
		t.Errorf("Other() = %d, want -10", got)
	}
}

func TestWriteMemory(t *testing.T) {
	soakOf := func(samples []MemSnapshot) *SoakResult {
		s := &SoakResult{Duration: 10 * time.Minute, Sample: 5 * time.Second, ReadRatio: 0.8, Conns: 50, Samples: samples}
		s.StartRSS, s.PeakRSS, s.EndRSS = rssRange(samples)
		s.Growth = growthOf(samples)
		s.GrowthLive = growthOfValue(samples, func(m MemSnapshot) float64 { return float64(m.GoLive) })
		s.GrowthOther = growthOfValue(samples, func(m MemSnapshot) float64 { return float64(m.Other()) })
		return s
	}
	base := MemoryResult{Keys: 1_000_000, ValueSize: 100, Partitions: 16, Snapshots: []MemSnapshot{
		{When: "after the load", RSS: 300 * mb, BlockCache: 0, Memtables: 120 * mb, GoHeap: 20 * mb, GoLive: 12 * mb, GoHeld: 40 * mb},
		{When: "after 5s of GETs", RSS: 350 * mb, BlockCache: 40 * mb, Memtables: 120 * mb, GoHeap: 22 * mb, GoLive: 13 * mb, GoHeld: 42 * mb},
	}}
	tests := []struct {
		name string
		soak *SoakResult
		want []string
	}{
		{"no soak", nil, []string{
			"| | after the load | after 5s of GETs |",
			"| RSS | **300.0 MiB** | **350.0 MiB** |",
			"| block cache | 0.0 MiB | 40.0 MiB |",
			"| memtables | 120.0 MiB | 120.0 MiB |",
			"| SST readers | 0.0 MiB | 0.0 MiB |",
			"| Go heap live | 12.0 MiB | 13.0 MiB |",
			"| Go heap in use | 20.0 MiB | 22.0 MiB |",
			"| Go runtime, held | 40.0 MiB | 42.0 MiB |",
			"| other | 140.0 MiB | 148.0 MiB |",
			"Not run: `make bench-soak`",
		}},
		{"flat soak", soakOf(series(121, 5, func(float64) float64 { return 400 * mb })), []string{
			"80% GET, 20% SET",
			"| 400.0 MiB | 400.0 MiB | 400.0 MiB | flat: +0.0 MiB/min, +0.0 MiB over the second half (threshold 8.0 MiB) |",
			"| 600s | 400.0 MiB |",
		}},
		{"growing soak", soakOf(series(121, 5, func(t float64) float64 { return 400*mb + t*mb })), []string{
			"| 400.0 MiB | 1000.0 MiB | 1000.0 MiB | **still growing**: +60.0 MiB/min, +300.0 MiB over the second half (threshold 14.0 MiB) |",
		}},
		{"short soak", soakOf(series(2, 5, func(float64) float64 { return 400 * mb })), []string{
			"too few samples to tell",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base
			m.Soak = tt.soak
			var b strings.Builder
			writeMemory(func(f string, args ...any) { fmt.Fprintf(&b, f, args...) }, &Results{Memory: &m})
			md := b.String()
			for _, want := range tt.want {
				if !strings.Contains(md, want) {
					t.Errorf("memory section lacks %q", want)
				}
			}
			// The soak's samples are thinned to about soakRows rows, the
			// last one kept.
			if n := len(regexp.MustCompile(`(?m)^\| \d+s \|`).FindAllString(md, -1)); tt.soak != nil && len(tt.soak.Samples) > soakRows && n > soakRows+1 {
				t.Errorf("soak table has %d rows, want at most %d", n, soakRows+1)
			}
			if t.Failed() {
				t.Log(md)
			}
		})
	}
}
