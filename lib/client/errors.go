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

func (e *MultiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d keys failed", e.Op, len(e.Errs), e.Total)
	for i, ke := range e.Errs {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Errs)-i)
			break
		}
		b.WriteString("; ")
		b.WriteString(ke.Error())
	}
	return b.String()
}

// Unwrap returns the per-key errors.
func (e *MultiError) Unwrap() []error {
	errs := make([]error, len(e.Errs))
	for i, ke := range e.Errs {
		errs[i] = ke.Err
	}
	return errs
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
