package replica

import (
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
)

// sizeRefresh is how long DataSize's figure stands before it reads the
// DB's properties again: a PING asks every master replica's, each second.
const sizeRefresh = 2 * time.Second

// DataSize returns the bytes of the replica's data (engine.DB.DataSize),
// read at most every sizeRefresh, for the automatic split; 0 while it is
// not a fair figure: a trim after a split, or the compaction after it, is
// not over (the data still counts the other half; HoldSize), or the DB
// was never read. It does not reopen a parked DB: a parked replica keeps its last
// figure.
func (r *Replica) DataSize() uint64 {
	if r.Trimming() || r.sizeHeld.Load() {
		r.sizeAt.Store(0) // read again once it is over
		return 0
	}
	now := r.opts.Now()
	if at := r.sizeAt.Load(); at != 0 && now.Sub(time.Unix(0, int64(at))) < sizeRefresh {
		return r.size.Load()
	}
	r.dbMu.RLock()
	db := r.db
	var (
		size    uint64
		settled bool
		err     error
	)
	if db != nil {
		size, settled, err = db.DataSize()
	}
	r.dbMu.RUnlock()
	if db == nil {
		return r.size.Load()
	}
	if err != nil || !settled {
		size = 0
	}
	r.size.Store(size)
	r.sizeAt.Store(uint64(now.UnixNano()))
	return size
}

// HoldSize makes DataSize report 0 (unknown) while on: the node holds it
// for a split's child whose trim has not started yet, as the child's data
// still counts the parent's keys.
func (r *Replica) HoldSize(on bool) { r.sizeHeld.Store(on) }

// SampleSlots weighs the replica's data by slot from about n of its keys
// (engine.DB.SampleSlots), for a split point.
func (r *Replica) SampleSlots(n int) (engine.SlotSample, error) {
	db, err := r.holdDB()
	if err != nil {
		return engine.SlotSample{}, err
	}
	defer r.dbMu.RUnlock()
	return db.SampleSlots(n, nil, r.NowMs())
}
