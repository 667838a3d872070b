// Package engine is the storage engine of one partition replica: a RocksDB
// instance holding the replica's keys, their expiry, and the binlog
// position the data reflects.
//
// # Layout inside RocksDB
//
// Data keys are
//
//	'd' | uvarint(len(tag)) | tag | user key
//
// where tag is the key's hashtag (keyspace.HashTag: the part between the
// first '{' and the next '}', when non-empty; else empty). Keys that share
// a hashtag are therefore contiguous, and listing them is a prefix
// iteration. The length in front keeps tag "ab" from matching tag "abc".
// Because the hashtag is part of the stored key, keyspace.HashTag's rule is
// part of the on-disk format.
//
// Values are
//
//	format byte (1) | expiry, unix ms, 8 bytes big-endian (0 = never) | user bytes
//
// Metadata lives in its own column family, "meta": "m/applied" holds the
// binlog position of the last applied record (term and LSN, 8 bytes
// big-endian each) and "m/format" the layout version. The two families are
// written in the same batches and flushed together (atomic flush), so
// table files never hold a position ahead of their data. A DB from before
// the family existed has these keys among the data; Open moves them.
//
// # Writes and the binlog
//
// Every write arrives as a binlog record and goes through Apply, which
// writes its mutations and the record's position in one RocksDB write
// batch. After a crash the DB therefore says exactly which record it
// reflects, and the node replays the binlog from the next one. Replicas
// open their DB with Options.DisableWAL: the binlog already holds every
// write, so a second log would only double the write work. Writes then
// live in the memtable until a flush, and what a crash loses of them the
// replay restores; PersistedApplied says how far the table files reach,
// which is how far the binlog must be kept.
//
// # Clearing
//
// A CLEAR mutation (a table flush) deletes the whole data key space with
// one range tombstone, in the same write batch as its record's position,
// so it is exactly as atomic and replayable as any other record; metadata
// keys are outside the range. Reads, scans and sweeps skip what the
// tombstone covers at once; a background compaction of the data key space
// then drops the files, and Close cancels it. RocksDB's key-count estimate
// lags until that compaction has run.
//
// # Expiry
//
// Reads take the current time as a parameter and treat a value whose
// expiry has passed as absent. Disk space is reclaimed two ways:
//
//   - A compaction filter drops expired values whenever RocksDB compacts
//     them. Each replica does this on its own, with its own clock, and that
//     is safe: a value the filter drops is one that reads already treat as
//     absent, so no replica's answers change. It becomes a tombstone below
//     the bottommost level, so an older version cannot resurface.
//   - Levels that are rarely compacted would keep expired values forever,
//     so the master also sweeps: ExpiredKeys lists expired keys, and the
//     node turns them into ordinary DELETE records in the binlog. The
//     deletes must go through the binlog rather than straight into RocksDB,
//     because every replica has to apply the same sequence of writes: a
//     replica deleting on its own clock could delete a key that a later
//     record (already applied elsewhere) rewrote.
package engine
