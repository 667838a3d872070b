package client

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
)

// Errors of the client itself. Server answers come back as *status.Error
// values instead; see the package documentation.
var (
	// ErrClosed is returned by calls on a closed Client.
	ErrClosed = errors.New("client closed")

	// ErrInvalidOptions wraps every problem New found in its Options.
	ErrInvalidOptions = errors.New("client: invalid options")

	// ErrUnknownOutcome means a request that carries no request id (CREATE_TABLE
	// ...) may or may not have been applied: the connection failed after
	// the request was sent, or the deadline ended while it was in flight.
	// The error also wraps the underlying cause.
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

// dialFailed reports whether err says the connection could not be
// established, i.e. the request certainly never left this process. rpc wraps
// the dialer's *net.OpError, whose Op is "dial" only for connection setup
// (reads and writes say "read"/"write"; a closed stream is io.EOF).
func dialFailed(err error) bool {
	var op *net.OpError
	return rpc.IsTransport(err) && errors.As(err, &op) && op.Op == "dial"
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
