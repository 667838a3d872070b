// Package client is the smart client of a Zeppelin-Go cluster.
//
// A Client PULLs the cluster topology from any meta server, caches it, and
// sends every data command straight to the master of the key's partition, so
// the meta servers stay off the data path: when all of them are down, reads
// and writes to healthy partitions go on from the cache.
//
// A Client's methods come in three groups, each an interface: KV (reads
// and writes of keys), Cluster (tables, nodes, the meta group, moves and
// quotas, through the meta servers) and Maintenance (INFO from nodes). A
// caller that needs one group can hold just that interface. Every method
// returns this package's types, never protocol messages.
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
// A master that hangs (SIGSTOP, a long GC pause, a half-open connection)
// gives no answer that could say the route is wrong, so any call that fails
// in transport or by its deadline marks its partition's route stale and
// starts a PULL in the background (one at a time per client; Close ends
// it). The next call to a stale partition waits, for at most half of its
// remaining time, for a PULL begun after it began, and so reaches the new
// master as soon as the meta servers have one. The mark lasts until the
// master answers or the partition gets another master. No attempt at a
// node lasts longer than Options.AttemptTimeout (plus a second per 4 MiB
// of request, so that large values still get through), so a call with a long
// deadline that began against the hung master retries at the new one.
//
// Server answers are returned as *status.Error values: branch on them with
// errors.Is and the status sentinels (status.ErrNotFound,
// status.ErrTableNotFound, status.ErrCrossSlot ...). Input the client can
// check itself (empty or oversized keys, oversized values, negative TTLs,
// batches across slots) fails before anything is sent, with the same codes.
//
// # Retries and writes
//
// Every write (SET and SetWith, DEL, INCRBY, MSET, WRITEBATCH, GetSet,
// GetDel, Expire, Persist, Append, IncrByFloat) carries a request id,
// the same for every attempt of one call, and is retried after any failure
// within the call's deadline, including a connection that broke after the
// request was sent (the master died). The node that takes the retry — the
// old master, or the slave promoted in its place, which replicated the
// record with its id — answers as it answered the first attempt instead of
// writing again, so a retried SET never overwrites a later write by another
// client and INCRBY is never applied twice; answers that are values (the
// old value of GetSet, GetDel's) come back as the first attempt got them.
// Nodes remember the ids of their
// last 65,536 writes (8,192 across a restart); a retry older than that is
// applied again.
//
// # Failed writes
//
// When a write still fails, its error tells whether it may have been
// applied. It matches ErrUnknownOutcome when any attempt may have been: the
// request was sent and no answer said the node did nothing (a read
// timeout, a reset after sending, the deadline ending while it was in
// flight), or the node answered WAIT, NOT_ENOUGH_REPLICAS, TIMEOUT or
// ERROR, after which the write may be in its binlog (and in the binlog of
// the slave promoted next). Otherwise the write was not applied: every
// attempt failed before it was sent (a refused dial) or was refused before
// the node logged it (MOVE, TABLE_NOT_FOUND, invalid input, quota), or
// the node every ambiguous attempt went to refused the request's own bytes
// on a retry (KEY_TOO_LARGE, VALUE_TOO_LARGE, EMPTY_KEY, MALFORMED): it
// refuses every attempt of one call alike, as they carry the same request
// (a node restarted with a larger limit between the attempts is the one
// exception). Either
// way the error matches context.DeadlineExceeded when the deadline ended
// the call, and the causes (status.ErrWait, rpc.ErrTransport ...) with
// errors.Is; its message names the first ambiguous failure and the last
// error. Reads never report ErrUnknownOutcome.
package client
