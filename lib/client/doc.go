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
// Every write (SET, DEL, INCRBY, MSET, WRITEBATCH) carries a request id,
// the same for every attempt of one call, and is retried after any failure
// within the call's deadline, including a connection that broke after the
// request was sent (the master died). The node that takes the retry — the
// old master, or the slave promoted in its place, which replicated the
// record with its id — answers as it answered the first attempt instead of
// writing again, so a retried SET never overwrites a later write by another
// client and INCRBY is never applied twice. Nodes remember the ids of their
// last 65,536 writes (8,192 across a restart); a retry older than that is
// applied again.
package client
