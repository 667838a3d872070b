// Package dbsync is full sync (Zeppelin's DBSync): copying a master's
// RocksDB to a slave that is too far behind to catch up from the binlog,
// rsync-style, so that files the slave already has are not sent again.
//
// # Master side
//
// A Source answers the FULLSYNC_* calls. FULLSYNC_START takes a RocksDB
// checkpoint of the replica's DB into a session directory under
// SourceOptions.Dir and answers with the (term, lsn) it reflects and its
// manifest: every file with its size and CRC32C. The checkpoint hard-links
// the table files, so it is cheap, and so the same SST shows up again in
// the next checkpoint: the Source caches the checksums of immutable files
// (*.sst, *.blob) by identity (name, device, inode, size, mtime) and
// computes only those of the small mutable ones (MANIFEST, CURRENT,
// OPTIONS, WAL) every time. FULLSYNC_FETCH reads a chunk of one manifest
// file; FULLSYNC_END, an idle timeout or Close drop the checkpoint. The
// master's DB is only read.
//
// # Slave side
//
// Run fetches a checkpoint into ReplicaDir/sync.tmp (the staging
// directory) and Install swaps it in as ReplicaDir/db:
//
//	<replica>/db/             the live DB (engine.Open)
//	<replica>/sync.tmp/       staging: the checkpoint being fetched; COMPLETE once it all is
//	<replica>/db.old/         the previous DB, during Install only
//	<replica>/sync.installed  (term, lsn) of an installed DB whose binlog reset is still owed
//
// For each manifest file Run keeps the staged copy if it already matches
// (an earlier attempt fetched it), else hard-links the live DB's file of
// the same name, size and checksum (SSTs are immutable, so linking from an
// open DB is safe), else fetches it in chunks into a part file named for
// the file's name, size and checksum, verifies them, fsyncs it and renames
// it into place. Only then does it write the COMPLETE marker holding
// (term, lsn). The staging directory survives failures and restarts, so a
// new attempt fetches only what is still missing, and continues a part
// file where it stopped.
//
// # Crash safety
//
// The live db/ is never written by Run. Install renames db to db.old,
// sync.tmp to db, fsyncs the replica directory, moves the marker out to
// sync.installed and removes db.old; Recover, run before the DB is opened
// at startup, finishes or rolls back an Install that a crash interrupted,
// so that exactly one complete db/ exists. A staging directory without
// COMPLETE is never installed. The replica restarts its binlog at the
// installed position and then calls FinishInstall; PendingInstall tells it
// at startup that a crash came in between.
package dbsync
