package binlog

import (
	"errors"
	"os"
	"slices"
	"time"
)

// TermStart says that records from FirstLSN on carry Term, up to the next
// TermStart. A log's term history is short: one entry per master change.
type TermStart struct {
	Term     uint64
	FirstLSN uint64
}

// Terms returns the term history of the retained records, oldest first. The
// first entry may start before First() when the record before the oldest
// retained one (the base, see TermAt) has the same term. A log without
// records returns its base position alone, if it has a term.
func (l *Log) Terms() ([]TermStart, error) {
	l.mu.Lock()
	if err := l.checkOpenLocked(); err != nil {
		l.mu.Unlock()
		return nil, err
	}
	segs := slices.Clone(l.segs)
	baseTerm, base := l.baseLocked()
	l.mu.Unlock()

	var out []TermStart
	add := func(term, first uint64) {
		if n := len(out); n == 0 || out[n-1].Term != term {
			out = append(out, TermStart{Term: term, FirstLSN: first})
		}
	}
	if baseTerm != 0 {
		add(baseTerm, base)
	}
	for _, seg := range segs {
		// TermAt loads a segment's term runs once when it was sealed before
		// Open; an empty active segment has none.
		if _, err := l.TermAt(seg.first); err != nil {
			if errors.Is(err, ErrNotFound) || errors.Is(err, ErrPurged) {
				continue
			}
			return nil, err
		}
		l.mu.Lock()
		runs := slices.Clone(seg.terms)
		l.mu.Unlock()
		for _, r := range runs {
			add(r.term, r.first)
		}
	}
	return out, nil
}

// SegmentInfo describes one segment file, for purge decisions.
type SegmentInfo struct {
	// FirstLSN is the first record the segment holds; the segment holds
	// records up to the next segment's FirstLSN - 1 (the last one is the
	// active segment, still growing).
	FirstLSN uint64
	Size     int64
	ModTime  time.Time
}

// Segments lists the segments, oldest first, the active one last.
func (l *Log) Segments() []SegmentInfo {
	l.mu.Lock()
	segs := slices.Clone(l.segs)
	out := make([]SegmentInfo, len(segs))
	for i, s := range segs {
		out[i] = SegmentInfo{FirstLSN: s.first, Size: s.size}
	}
	l.mu.Unlock()
	for i, s := range segs {
		if fi, err := os.Stat(s.path); err == nil {
			out[i].ModTime = fi.ModTime()
		}
	}
	return out
}
