// Package bulkload is zpctl bulkload: it reads key-value files (TSV, CSV,
// JSON lines; gzip or not), routes each record to its partition by the
// table's slot map, sorts each partition's records (spilling sorted runs
// to temporary files beyond a memory bound and merging them), writes one
// table file per partition with lib/engine's SSTWriter, stages it on the
// partition's master and slaves, and asks the master to ingest it: one
// binlog record per partition (docs/backup.md, Bulk load).
package bulkload
