package engine

import (
	"sync"
	"time"

	"github.com/linxGnu/grocksdb"
)

// reclaimer runs one background job at a time, and once more if it was
// asked for again while running, so that a burst of CLEARs costs at most
// two compactions.
type reclaimer struct {
	mu      sync.Mutex
	running bool
	again   bool
	done    chan struct{} // closed when the running loop returns
}

// start runs job in the background unless it runs already, in which case
// it runs once more afterwards.
func (r *reclaimer) start(job func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running {
		r.again = true
		return
	}
	r.running = true
	r.done = make(chan struct{})
	go r.loop(job, r.done)
}

// wait waits until no job runs.
func (r *reclaimer) wait() {
	r.mu.Lock()
	running, done := r.running, r.done
	r.mu.Unlock()
	if running {
		<-done
	}
}

func (r *reclaimer) loop(job func(), done chan struct{}) {
	defer close(done)
	for {
		job()
		r.mu.Lock()
		if !r.again {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.again = false
		r.mu.Unlock()
	}
}

// compactData compacts the data key space, so that what a CLEAR (or a
// trim, DeleteSlotsOutside) deleted leaves the disk: the range tombstone hides the keys at once, but their
// SST files stay until compaction meets the tombstone, which for the
// bottom level may be never without new writes. Close cancels it.
func (d *DB) compactData() {
	if err := d.enter(); err != nil {
		return // closed meanwhile: the next open has nothing to hurry
	}
	defer d.closeMu.RUnlock()
	start := time.Now()
	d.db.CompactRange(grocksdb.Range{Start: dataRangeStart, Limit: dataRangeEnd})
	d.logger.Info("engine: compaction of the data key space after a clear or trim ended", "took", time.Since(start))
}

// busy reports whether a job runs or is due.
func (r *reclaimer) busy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}
