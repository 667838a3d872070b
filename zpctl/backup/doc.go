// Package backup takes, lists and verifies backups of a table (zpctl
// backup): for every partition, a RocksDB checkpoint of one replica at a
// recorded (term, lsn), fetched with the full-sync protocol
// (zpnode/dbsync), and a manifest written last.
//
// # Layout
//
// A Target holds backups by name. The directory target (Dir) keeps them as
//
//	<dir>/<name>/backup.json                  the manifest, written last
//	<dir>/<name>/partitions/<id>/             partition id's checkpoint files
//	<dir>/<name>/partitions/<id>/COMPLETE     dbsync's marker: (term, lsn)
//
// A backup without backup.json is incomplete (a backup that failed or is
// running): Verify and List say so, and nothing restores it. Running
// Create again under the same name resumes it: dbsync keeps what it
// fetched and verified.
//
// # Incremental backups
//
// Table files are immutable, so a backup made with IncrementalFrom links
// (hard links in a directory target; a copy across file systems) every
// table file of the earlier backup that has the name, size and CRC32C of
// one the checkpoint lists, and fetches only the others. Each backup is
// complete in itself: removing the earlier one loses nothing of the later.
// To find the same files again, an incremental backup asks each partition
// of the replica the earlier backup copied it from, when it is still in
// sync.
package backup
