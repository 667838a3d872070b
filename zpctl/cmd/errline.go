package cmd

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
)

// zpctl prints a failure as one short line: what went wrong, not how the
// client got there. The whole chain of Go errors (the operation, the node,
// the last error before the deadline, the dial repeated at every layer)
// goes under --verbose, and into the "detail" field of --output json.

// libPrefix begins the message of every error lib/client returns.
const libPrefix = "client: "

// briefError returns err in one short line. Each error of lib/client in
// the chain is replaced by its cause (see libCause); the context zpctl
// put around it, e.g. "setmaster: plan: ", stays.
func briefError(err error) string {
	s := err.Error()
	for _, lib := range libErrors(err) {
		s = strings.Replace(s, lib.Error(), libCause(lib), 1)
	}
	return s
}

// libErrors returns the outermost errors of lib/client in err's tree: one
// for a single call, one per failed key or partition of a multi-key one.
func libErrors(err error) []error {
	if err == nil {
		return nil
	}
	if msg := err.Error(); strings.HasPrefix(msg, libPrefix) {
		// Unless it is zpctl's wrapping that begins with the library's
		// error, "%w; the plan changed meanwhile".
		if u, ok := err.(interface{ Unwrap() error }); ok {
			if inner := u.Unwrap(); inner != nil && inner.Error() != msg && strings.HasPrefix(msg, inner.Error()) {
				return libErrors(inner)
			}
		}
		return []error{err}
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return libErrors(u.Unwrap())
	case interface{ Unwrap() []error }:
		var out []error
		for _, e := range u.Unwrap() {
			out = append(out, libErrors(e)...)
		}
		return out
	}
	return nil
}

// libCause is an error of lib/client said in a few words: whether the
// write may have been applied, whether the deadline ended the call, and
// the last thing that went wrong: the server's answer, the network error,
// the server that is not a Zeppelin server. What it cannot make shorter
// it returns whole.
func libCause(lib error) string {
	var parts []string
	switch {
	case errors.Is(lib, client.ErrUnknownOutcome):
		parts = append(parts, client.ErrUnknownOutcome.Error())
	case errors.Is(lib, context.DeadlineExceeded):
		parts = append(parts, "timed out")
	}
	if errors.Is(lib, client.ErrMetaUnreachable) {
		parts = append(parts, client.ErrMetaUnreachable.Error())
	}
	if c := rootCause(lib); c != "" {
		parts = append(parts, c)
	}
	if len(parts) == 0 {
		return lib.Error()
	}
	return strings.Join(parts, ": ")
}

// rootCause is the most telling error in lib's tree, "" when none of
// those below is there.
func rootCause(lib error) string {
	if se, ok := errors.AsType[*status.Error](lib); ok {
		return se.Error()
	}
	if fe, ok := errors.AsType[*rpc.ForeignProtocolError](lib); ok {
		return fe.Error()
	}
	if oe, ok := errors.AsType[*net.OpError](lib); ok {
		return oe.Error()
	}
	// Sentinels wrapped with their details, e.g. "partition has no master:
	// table "t" partition 3".
	for _, s := range []error{client.ErrNoMaster, client.ErrClosed, rpc.ErrClosed} {
		if e := outermost(lib, s); e != nil {
			return e.Error()
		}
	}
	return ""
}

// outermost returns the outermost error in err's tree whose message begins
// with sentinel's, nil when there is none.
func outermost(err, sentinel error) error {
	if err == nil || !errors.Is(err, sentinel) {
		return nil
	}
	if strings.HasPrefix(err.Error(), sentinel.Error()) {
		return err
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return outermost(u.Unwrap(), sentinel)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if o := outermost(e, sentinel); o != nil {
				return o
			}
		}
	}
	return nil
}
