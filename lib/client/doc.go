// Package client is the smart client of a Zeppelin-Go cluster.
//
// A Client PULLs the cluster topology from any meta server, caches it, and
// sends every data command straight to the master of the key's partition, so
// the meta servers stay off the data path: when all of them are down, reads
// and writes to healthy partitions go on from the cache.
//
// Every call takes a context. When the context has no deadline the client
// applies Options.DefaultTimeout, because an unbounded retry loop against a
// cluster in failover is never what a caller wants. Within the deadline the
// client follows MOVE answers, backs off on WAIT, and re-PULLs the topology
// when it learns that its copy is stale (an unknown table, a connection
// error, a MOVE it cannot follow, a response from a newer epoch). When the
// deadline ends the last error seen is returned wrapped together with the
// context's error, so both errors.Is(err, context.DeadlineExceeded) and, for
// example, errors.Is(err, status.ErrWait) hold.
//
// Server answers are returned as *status.Error values: branch on them with
// errors.Is and the status sentinels (status.ErrNotFound,
// status.ErrTableNotFound, status.ErrCrossSlot ...). Input the client can
// check itself (empty or oversized keys, oversized values, negative TTLs,
// batches across slots) fails before anything is sent, with the same codes.
//
// # Retries and writes
//
// SET, DEL, MSET and WRITEBATCH leave the same state when applied twice, so
// they are retried after any failure, including a connection that broke
// after the request was sent. INCRBY is not: after such an ambiguous failure
// it returns an error wrapping ErrUnknownOutcome (and the transport error),
// because the increment may or may not have been applied. INCRBY is retried
// only when the request certainly did not reach a server: the dial failed,
// or the server answered with a code that means it did nothing (MOVE, WAIT,
// TABLE_NOT_FOUND, UNAVAILABLE).
package client
