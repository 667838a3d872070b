// Package binlog is the write-ahead log of one partition replica: the
// ordered, replicated history of its writes.
//
// A Log is a directory of segment files. Every record carries the term of
// the master that wrote it and a log sequence number (LSN); LSNs grow by
// exactly one per record, so a replica's position in the history is the
// pair (term, lsn) of its last record, and two replicas that hold the same
// term at the same LSN hold the same history up to it (log matching, as in
// Raft). The node server appends a record before applying it to the storage
// engine, replays the records after the engine's applied LSN on restart, and
// streams records to slaves with a Reader.
//
// # On-disk format
//
// A segment is named by the LSN of its first record, zero-padded to 20
// digits so that names sort like numbers ("00000000000000000001.log"). It
// starts with a 32-byte header:
//
//	magic "ZPBL" | version u32 | first lsn u64 | term of lsn first-1 u64 | reserved u32 | crc32c u32
//
// followed by records:
//
//	crc32c u32 | payload length u32 | term u64 | lsn u64 | payload
//
// Integers are little-endian. Each CRC is CRC-32C (Castagnoli) over
// everything after it: the rest of the segment header, or the rest of the
// record header and the payload. The term in the segment header is what
// lets a Log answer TermAt for the position just before its oldest record,
// which is where log matching happens after old segments are purged or the
// log is Reset.
//
// A segment is created under a temporary name and renamed once its header
// is durable, so a segment that exists always has a valid header. Records
// are only ever appended, so a crash can leave at most the tail of the last
// segment torn; Open finds the last record whose length and CRC check out
// and truncates the file after it.
//
// # Durability
//
// Append hands records to the operating system with one write(2) call and
// returns; a crash of the process after that loses nothing. Whether the
// records survive a crash of the machine depends on the SyncPolicy: see
// SyncAlways, SyncInterval and SyncNone.
package binlog
