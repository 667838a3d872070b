package dbsync

import (
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Progress is the state of a full sync as INFO shows it. Run updates it as
// it goes; Snapshot may be called at any time from any goroutine. The zero
// value is ready to use and reads as a sync about to start.
type Progress struct {
	mu           sync.Mutex
	state        string
	filesTotal   uint64
	filesFetched uint64
	bytesTotal   uint64
	bytesFetched uint64
	bytesReused  uint64
	started      time.Time
	finished     time.Time
	lsn          uint64
}

// States of a full sync; a failure is "failed: " and the error.
const (
	StateRunning = "running"
	StateDone    = "done"
	stateFailed  = "failed: "
)

// Snapshot returns a copy of the progress. FilesFetched and BytesFetched
// count what was transferred: files the slave already had are in the
// totals only.
func (p *Progress) Snapshot() *zppb.FullSyncProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &zppb.FullSyncProgress{
		State:        p.state,
		FilesTotal:   p.filesTotal,
		FilesFetched: p.filesFetched,
		BytesTotal:   p.bytesTotal,
		BytesFetched: p.bytesFetched,
		Lsn:          p.lsn,
	}
	if s.State == "" {
		s.State = StateRunning
	}
	if !p.started.IsZero() {
		s.StartedMs = p.started.UnixMilli()
		end := time.Now()
		if !p.finished.IsZero() {
			s.FinishedMs = p.finished.UnixMilli()
			end = p.finished
		}
		if d := end.Sub(p.started).Seconds(); d > 0 {
			s.BytesPerSec = float64(p.bytesFetched) / d
		}
	}
	return s
}

// begin resets p for a new sync.
func (p *Progress) begin(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = StateRunning
	p.filesTotal, p.filesFetched, p.bytesTotal, p.bytesFetched, p.bytesReused = 0, 0, 0, 0, 0
	p.started, p.finished, p.lsn = now, time.Time{}, 0
}

// setManifest records what the master's checkpoint holds.
func (p *Progress) setManifest(files, bytes, lsn uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.filesTotal, p.bytesTotal, p.lsn = files, bytes, lsn
}

func (p *Progress) addBytes(n uint64) {
	p.mu.Lock()
	p.bytesFetched += n
	p.mu.Unlock()
}

func (p *Progress) addReused(n uint64) {
	p.mu.Lock()
	p.bytesReused += n
	p.mu.Unlock()
}

// Bytes returns the checkpoint's size (0 until its manifest is known),
// the bytes fetched so far and those of files staged without a fetch.
func (p *Progress) Bytes() (total, fetched, reused uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bytesTotal, p.bytesFetched, p.bytesReused
}

func (p *Progress) addFile() {
	p.mu.Lock()
	p.filesFetched++
	p.mu.Unlock()
}

// finish records the outcome.
func (p *Progress) finish(now time.Time, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished = now
	if err != nil {
		p.state = stateFailed + err.Error()
	} else {
		p.state = StateDone
	}
}
