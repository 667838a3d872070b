package cmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/backup"
	"github.com/zeppelin-kv/zeppelin/zpctl/bulkload"
)

// Exit codes of zpctl. Scripts branch on them, so they never change
// meaning; new ones are only ever added.
//
//	0  OK           the command did what it was asked
//	1  Error        any failure not listed below
//	2  Usage        bad command line: unknown command or flag, wrong
//	                arguments, bad --meta/--output, a drop without --yes
//	                on a non-terminal
//	3  NotFound     the key, table or node does not exist
//	4  Unavailable  the cluster did not answer in time: --timeout reached,
//	                no meta server or node reachable, no Raft leader, a
//	                partition in WAIT or without master, too few nodes or
//	                replicas
//	5  Invalid      the request was refused as invalid: empty or too large
//	                key or value, not an integer, keys across slots, quota
//	                exceeded, out-of-range arguments; bulkload input with
//	                more bad lines than --max-errors
//	6  Conflict     the table already exists, or --expected-epoch (or the
//	                epoch a topology plan was made at) is stale, or the
//	                cluster is not in a state that allows the command
//	                yet (FAILED_PRECONDITION: a split while a node of the
//	                table runs a release without slot ranges)
//	7  Unknown      a write may or may not have been applied (the
//	                connection broke after sending it): check before
//	                retrying
//	8  Aborted      the operator declined a confirmation, or zpctl was
//	                interrupted
//	9  Unsupported  not supported yet: the command exists in zpctl, but
//	                it cannot carry this out yet (no command answers it
//	                today; kept for scripts that branch on it)
//	10 Unhealthy    checkup ran and found problems; the report names them
//	11 MoveFailed   a topology move the command queued ended FAILED or
//	                CANCELLED, and was rolled back
//	12 Unauthenticated  the meta servers want the admin token for this
//	                (--admin-token-file), or the one given is wrong; or
//	                the nodes want the cluster secret
//	                (--cluster-secret-file)
//	13 Corrupt      backup verify found the backup damaged (a file
//	                missing or not matching its checksum, a partition
//	                missing) or incomplete (no manifest)
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitNotFound    = 3
	ExitUnavailable = 4
	ExitInvalid     = 5
	ExitConflict    = 6
	ExitUnknown     = 7
	ExitAborted     = 8
	ExitUnsupported = 9
	ExitUnhealthy   = 10
	ExitMoveFailed  = 11
	// ExitUnauthenticated: a request that changes the cluster without the
	// meta servers' admin token, or with a wrong one.
	ExitUnauthenticated = 12
	// ExitCorrupt: a backup is damaged or incomplete.
	ExitCorrupt = 13
)

// exitCodeHelp is the table above for `zpctl --help`.
const exitCodeHelp = `Exit codes:
   0  ok
   1  error (anything not below)
   2  usage: bad command line, flags or arguments
   3  not found: key, table or node
   4  unavailable: timeout, cluster unreachable, no leader, partition waiting
   5  invalid input: key/value too large, empty key, not an integer, cross-slot,
      quota exceeded, bulkload bad lines over --max-errors
   6  conflict: table exists, stale --expected-epoch or topology plan
   7  unknown outcome: a write may or may not have been applied
   8  aborted: confirmation declined or interrupted
   9  unsupported: the command cannot carry this out yet
  10  unhealthy: checkup found problems
  11  move failed: a queued move ended FAILED or CANCELLED (rolled back)
  12  unauthenticated: the meta servers want the admin token
      (--admin-token-file), or the one given is wrong; or the nodes want
      the cluster secret (--cluster-secret-file)
  13  corrupt: backup verify found the backup damaged or incomplete`

// usageError marks a bad command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// quietError is an exit code that is itself the answer, printed on stdout
// already (exists of a missing key exits 3): nothing goes to stderr.
type quietError struct{ err error }

func (e *quietError) Error() string { return e.err.Error() }
func (e *quietError) Unwrap() error { return e.err }

// errAborted is a confirmation the operator declined.
var errAborted = errors.New("aborted")

// ErrUnsupported means the cluster cannot carry out a command yet.
var ErrUnsupported = errors.New("not supported yet")

// ErrUnhealthy means checkup found problems.
var ErrUnhealthy = errors.New("cluster unhealthy")

// ExitCode maps an error to zpctl's exit code. The order matters: an
// unknown outcome is also a transport failure, and a timeout may wrap any
// code (the last one seen before the deadline).
func ExitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue), errors.Is(err, client.ErrInvalidOptions):
		return ExitUsage
	case errors.Is(err, client.ErrUnknownOutcome):
		return ExitUnknown
	case errors.Is(err, ErrUnsupported):
		return ExitUnsupported
	case errors.Is(err, ErrUnhealthy):
		return ExitUnhealthy
	case errors.Is(err, ErrMoveFailed):
		return ExitMoveFailed
	case errors.Is(err, backup.ErrCorrupt), errors.Is(err, backup.ErrIncomplete), errors.Is(err, backup.ErrBadManifest):
		return ExitCorrupt
	case errors.Is(err, backup.ErrExists):
		return ExitConflict
	case errors.Is(err, backup.ErrNotFound):
		return ExitNotFound
	case errors.Is(err, bulkload.ErrTooManyBadLines):
		return ExitInvalid
	case errors.Is(err, errAborted), errors.Is(err, context.Canceled):
		return ExitAborted
	case errors.Is(err, context.DeadlineExceeded), rpc.IsTransport(err),
		errors.Is(err, client.ErrMetaUnreachable), errors.Is(err, client.ErrNoMaster):
		return ExitUnavailable
	}
	switch status.Code(err) {
	case zppb.Code_NOT_FOUND, zppb.Code_TABLE_NOT_FOUND, zppb.Code_NODE_NOT_FOUND:
		return ExitNotFound
	case zppb.Code_WAIT, zppb.Code_MOVE, zppb.Code_NO_LEADER, zppb.Code_UNAVAILABLE, zppb.Code_TIMEOUT,
		zppb.Code_NOT_ENOUGH_NODES, zppb.Code_NOT_ENOUGH_REPLICAS:
		return ExitUnavailable
	case zppb.Code_KEY_TOO_LARGE, zppb.Code_VALUE_TOO_LARGE, zppb.Code_EMPTY_KEY, zppb.Code_INVALID_ARGUMENT,
		zppb.Code_NOT_INTEGER, zppb.Code_CROSS_SLOT, zppb.Code_MALFORMED, zppb.Code_OVERFLOW, zppb.Code_QUOTA_EXCEEDED:
		return ExitInvalid
	case zppb.Code_TABLE_EXISTS, zppb.Code_STALE_EPOCH, zppb.Code_FAILED_PRECONDITION:
		return ExitConflict
	case zppb.Code_UNAUTHENTICATED:
		return ExitUnauthenticated
	}
	return ExitError
}
