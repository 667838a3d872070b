package replica

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Info reports the replica for INFO replication.
func (r *Replica) Info() *zppb.ReplicaInfo {
	term, lsn, applied := r.Position()
	info := &zppb.ReplicaInfo{
		Table: r.opts.Table, Partition: r.opts.ID,
		Term: term, Lsn: lsn, AppliedLsn: applied, FirstLsn: r.log.First(),
	}
	r.mu.Lock()
	role := r.role
	info.Role, info.Master = role.String(), r.master
	if role == Master {
		info.State = "serving"
		info.MinSyncReplicas = uint32(r.m.minSync)
		info.Peers = r.peerInfosLocked(lsn)
	} else {
		info.State = r.s.getState()
	}
	r.mu.Unlock()
	if role == Slave {
		if m := r.s.masterLSN.Load(); m > lsn {
			info.LagRecords = m - lsn
		}
		info.Fullsync = r.s.fullsync.snapshot()
	} else {
		for _, p := range info.Peers {
			info.LagRecords = max(info.LagRecords, p.LagRecords)
		}
	}
	if info.LagRecords > 0 && lsn >= info.FirstLsn && lsn > 0 {
		// Estimate bytes from the binlog's mean record size.
		n := lsn - info.FirstLsn + 1
		info.LagBytes = info.LagRecords * uint64(r.log.Size()) / n
	}
	return info
}

// Digest returns a SHA-256 over every live key, its value and expiry at
// nowMs, in key order, and the number of keys: two replicas with the same
// digest hold the same data.
func (r *Replica) Digest(nowMs int64) (digest [sha256.Size]byte, keys int, err error) {
	h := sha256.New()
	var n [8]byte
	write := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	db, ok, err := r.readDB()
	if !ok {
		h.Sum(digest[:0]) // no DB yet: the digest of no keys
		return digest, 0, err
	}
	defer r.dbMu.RUnlock()
	err = db.ForEach(nowMs, func(k, v []byte, exp int64) error {
		write(k)
		write(v)
		binary.BigEndian.PutUint64(n[:], uint64(exp))
		h.Write(n[:])
		keys++
		return nil
	})
	h.Sum(digest[:0])
	return digest, keys, err
}

// EngineStats returns RocksDB's figures for the replica's DB; for a parked
// DB, those it had when parked (without memtables and table readers).
func (r *Replica) EngineStats() (engine.Stats, error) {
	r.dbMu.RLock()
	defer r.dbMu.RUnlock()
	switch {
	case r.db != nil:
		return r.db.Stats()
	case r.dbClosed:
		return engine.Stats{}, ErrClosed
	}
	return r.parked.stats, nil
}

// RequestIDs is how many write request ids the replica remembers to answer
// retries (at most 65,536; about 76 bytes each).
func (r *Replica) RequestIDs() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.dedup.index)
}
