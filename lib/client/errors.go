package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Errors of the client itself. Server answers come back as *status.Error
// values instead; see the package documentation.
var (
	// ErrClosed is returned by calls on a closed Client.
	ErrClosed = errors.New("client closed")

	// ErrInvalidOptions wraps every problem New found in its Options.
	ErrInvalidOptions = errors.New("client: invalid options")

	// ErrUnknownOutcome means a write failed but may have been applied: some
	// attempt reached a node (or, for CREATE_TABLE and other meta commands,
	// a meta server) and no answer said it did nothing — the connection
	// broke or the deadline ended after the request was sent, or the node
	// answered that the write is logged but not (yet) acknowledged. The
	// error also wraps the cause (the context's error, a *status.Error ...)
	// and the first such failure. A write whose error does not match it was
	// not applied. Reads never fail with it.
	ErrUnknownOutcome = errors.New("outcome unknown, the request may have been applied")

	// ErrMetaUnreachable means no meta server answered. The error also
	// wraps the last meta server's error.
	ErrMetaUnreachable = errors.New("no meta server answered")

	// ErrNoMaster means the topology names no master for the key's
	// partition (it is being assigned); the client retries until the
	// deadline and returns this wrapped if nothing changed.
	ErrNoMaster = errors.New("partition has no master")
)

// KeyError is the failure of one key of a multi-key call.
type KeyError struct {
	// Index is the key's position in the call's arguments.
	Index int
	Key   []byte
	Err   error
}

func (e KeyError) Error() string { return fmt.Sprintf("key %q: %v", e.Key, e.Err) }

func (e KeyError) Unwrap() error { return e.Err }

// MultiError reports the keys of a multi-key call (MGet, MSet) that failed;
// every other key succeeded. errors.Is and errors.As look into every key's
// error, so errors.Is(err, context.DeadlineExceeded) holds when any key ran
// out of time.
type MultiError struct {
	// Op is the command, e.g. "mset".
	Op string
	// Total is the number of keys in the call.
	Total int
	// Errs are the failed keys, in argument order.
	Errs []KeyError
}

func (e *MultiError) Error() string { return failureSummary(e.Op, "keys", e.Total, e.Errs) }

// Unwrap returns the per-key errors.
func (e *MultiError) Unwrap() []error { return unwrapAll(e.Errs) }

// PartitionError is the failure of one partition of a per-partition call.
type PartitionError struct {
	Partition uint32
	Err       error
}

func (e PartitionError) Error() string { return fmt.Sprintf("partition %d: %v", e.Partition, e.Err) }

func (e PartitionError) Unwrap() error { return e.Err }

// PartitionsError reports the partitions of a per-partition call
// (FlushTable) that failed; every other partition succeeded. As with
// MultiError, errors.Is and errors.As look into every partition's error.
type PartitionsError struct {
	// Op is the command and its table, e.g. "flush table users".
	Op string
	// Total is the number of partitions in the call.
	Total int
	// Errs are the failed partitions, in ascending order.
	Errs []PartitionError
}

func (e *PartitionsError) Error() string {
	return failureSummary(e.Op, "partitions", e.Total, e.Errs)
}

// Unwrap returns the per-partition errors.
func (e *PartitionsError) Unwrap() []error { return unwrapAll(e.Errs) }

// failureSummary is "op: 2 of 9 items failed; <first error>; <second>",
// naming the first three failures.
func failureSummary[E error](op, items string, total int, errs []E) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d %s failed", op, len(errs), total, items)
	for i, e := range errs {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(errs)-i)
			break
		}
		b.WriteString("; ")
		b.WriteString(e.Error())
	}
	return b.String()
}

func unwrapAll[E interface{ Unwrap() error }](errs []E) []error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e.Unwrap()
	}
	return out
}

// sentMaybe reports whether a transport failure may have happened after
// the request left this process. rpc marks the failures that certainly
// came before (a failed dial, a connection already closed, a call given up
// while queued) with rpc.ErrNotSent.
func sentMaybe(err error) bool {
	return rpc.IsTransport(err) && !errors.Is(err, rpc.ErrNotSent)
}

// mayHaveApplied reports whether a write whose attempt failed with err may
// have been applied by the server. Only failures that say the request was
// never sent, or answers given before the server logged anything, count
// as not applied. WAIT is not one of them: a node answers WAIT as well to a
// write it had logged when it lost the partition, and the slave promoted
// in its place may have the record.
func mayHaveApplied(err error) bool {
	if rpc.IsTransport(err) {
		return sentMaybe(err)
	}
	var se *status.Error
	if !errors.As(err, &se) {
		// Failed in this process before sending (e.g. over the frame
		// limit), or a meta sweep that found no server.
		return false
	}
	switch se.Code {
	case zppb.Code_MOVE, zppb.Code_TABLE_NOT_FOUND, zppb.Code_UNAVAILABLE,
		zppb.Code_NOT_FOUND, zppb.Code_KEY_TOO_LARGE, zppb.Code_VALUE_TOO_LARGE,
		zppb.Code_EMPTY_KEY, zppb.Code_INVALID_ARGUMENT, zppb.Code_NOT_INTEGER,
		zppb.Code_MALFORMED, zppb.Code_QUOTA_EXCEEDED, zppb.Code_CROSS_SLOT,
		zppb.Code_OVERFLOW, zppb.Code_UNAUTHENTICATED:
		// Refused before the write was logged.
		return false
	}
	// WAIT, ERROR, TIMEOUT, NOT_ENOUGH_REPLICAS (logged, waiting for
	// slaves that may still acknowledge it) and codes added later.
	return true
}

// nodeError is an attempt's failure at one node.
type nodeError struct {
	node string
	err  error
}

// atNode tags err as the failure of an attempt at node.
func atNode(node string, err error) error { return &nodeError{node: node, err: err} }

func (e *nodeError) Error() string { return "node " + e.node + ": " + e.err.Error() }
func (e *nodeError) Unwrap() error { return e.err }

// nodeOf is the node err was tagged with by atNode, "" if none.
func nodeOf(err error) string {
	var ne *nodeError
	if errors.As(err, &ne) {
		return ne.node
	}
	return ""
}

// refusesContent reports whether err is a node's refusal of the request's
// own bytes (a key or value over its limits, a malformed record): the
// same node refuses every attempt of the call alike, since each carries
// the same request.
func refusesContent(err error) bool {
	switch status.Code(err) {
	case zppb.Code_KEY_TOO_LARGE, zppb.Code_VALUE_TOO_LARGE, zppb.Code_EMPTY_KEY, zppb.Code_MALFORMED:
		return true
	}
	return false
}

// failures gathers the failed attempts of one call, so that the error it
// ends with names why it failed and, for a write, whether it may have been
// applied.
type failures struct {
	write bool
	// ambiguous is the first failure after which the write may have been
	// applied (never set for reads). Kept apart from last because a later
	// attempt that certainly failed (a dial to the dead master) does not
	// undo it.
	ambiguous error
	// ambiguousAt is the node every ambiguous attempt went to, "" when
	// they went to more than one or to one not known.
	ambiguousAt string
	// last is the latest failure, the best guess at why the call did not
	// succeed in time.
	last error
}

// add records a failed attempt.
func (f *failures) add(err error) {
	f.noteAmbiguous(err)
	f.last = err
}

// addCut records an attempt the deadline cut short: the failure before it,
// if any, says more about why the call did not succeed in time.
func (f *failures) addCut(err error) {
	f.noteAmbiguous(err)
	if f.last == nil {
		f.last = err
	}
}

func (f *failures) noteAmbiguous(err error) {
	if !f.write || !mayHaveApplied(err) {
		return
	}
	if f.ambiguous == nil {
		f.ambiguous, f.ambiguousAt = err, nodeOf(err)
	} else if nodeOf(err) != f.ambiguousAt {
		f.ambiguousAt = ""
	}
}

// final is the error of a call ended by err, a final answer (or a local
// failure) that no retry can change.
func (f *failures) final(op string, err error) error {
	f.add(err)
	// A timed-out attempt of an oversized SET is ambiguous, but when the
	// node it went to refuses the same bytes on a retry, it refused them
	// the first time too.
	contentRefused := f.ambiguousAt != "" && refusesContent(err) && nodeOf(err) == f.ambiguousAt
	switch {
	case f.ambiguous == nil || contentRefused:
		return fmt.Errorf("client: %s: %w", op, err)
	case f.ambiguous == err:
		return fmt.Errorf("client: %s: %w: %w", op, ErrUnknownOutcome, err)
	}
	return fmt.Errorf("client: %s: %w: %w (first ambiguous failure: %w)", op, ErrUnknownOutcome, err, f.ambiguous)
}

// ended is the error of a call whose context ended (cause is its error,
// or ErrClosed when Close ended it).
func (f *failures) ended(op string, cause error) error {
	if f.ambiguous == nil {
		if errors.Is(cause, ErrClosed) {
			return fmt.Errorf("client: %s: %w", op, cause)
		}
		return deadlineError(op, cause, f.last)
	}
	if f.last == nil || f.last == f.ambiguous {
		return fmt.Errorf("client: %s: %w: %w (last error: %w)", op, ErrUnknownOutcome, cause, f.ambiguous)
	}
	return fmt.Errorf("client: %s: %w: %w (first ambiguous failure: %w; last error: %w)", op, ErrUnknownOutcome, cause, f.ambiguous, f.last)
}

// deadlineError is what a call returns when its context ends: the context's
// error and the last failure, both matchable with errors.Is.
func deadlineError(op string, ctxErr, last error) error {
	if last == nil {
		return fmt.Errorf("client: %s: %w", op, ctxErr)
	}
	if errors.Is(last, ctxErr) {
		// The last failure already says it (e.g. a call abandoned by rpc).
		return fmt.Errorf("client: %s: %w", op, last)
	}
	return fmt.Errorf("client: %s: %w (last error: %w)", op, ctxErr, last)
}
