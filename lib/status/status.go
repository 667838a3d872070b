// Package status carries the protocol's status codes through Go errors, so a
// server can return an error that becomes a precise wire code and a client
// can branch on it with errors.Is.
package status

import (
	"errors"
	"fmt"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Error is a failure with a wire code.
type Error struct {
	Code zppb.Code
	Msg  string
	// Master is set with MOVE: the master the server knows.
	Master string
	// Epoch is the topology epoch of the server that answered.
	Epoch uint64
	// OutcomeUnknown says the command may have been applied all the same
	// (the server stopped waiting for its commit).
	OutcomeUnknown bool
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Msg
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, status.ErrNotFound) matches any NOT_FOUND.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Msg == ""
}

// Sentinels, one per code, for errors.Is.
var (
	ErrNotFound          = &Error{Code: zppb.Code_NOT_FOUND}
	ErrMove              = &Error{Code: zppb.Code_MOVE}
	ErrWait              = &Error{Code: zppb.Code_WAIT}
	ErrInternal          = &Error{Code: zppb.Code_ERROR}
	ErrTableNotFound     = &Error{Code: zppb.Code_TABLE_NOT_FOUND}
	ErrKeyTooLarge       = &Error{Code: zppb.Code_KEY_TOO_LARGE}
	ErrValueTooLarge     = &Error{Code: zppb.Code_VALUE_TOO_LARGE}
	ErrEmptyKey          = &Error{Code: zppb.Code_EMPTY_KEY}
	ErrInvalidArgument   = &Error{Code: zppb.Code_INVALID_ARGUMENT}
	ErrNotInteger        = &Error{Code: zppb.Code_NOT_INTEGER}
	ErrMalformed         = &Error{Code: zppb.Code_MALFORMED}
	ErrNoLeader          = &Error{Code: zppb.Code_NO_LEADER}
	ErrStaleEpoch        = &Error{Code: zppb.Code_STALE_EPOCH}
	ErrTableExists       = &Error{Code: zppb.Code_TABLE_EXISTS}
	ErrQuotaExceeded     = &Error{Code: zppb.Code_QUOTA_EXCEEDED}
	ErrCrossSlot         = &Error{Code: zppb.Code_CROSS_SLOT}
	ErrNotEnoughNodes    = &Error{Code: zppb.Code_NOT_ENOUGH_NODES}
	ErrNotEnoughReplicas = &Error{Code: zppb.Code_NOT_ENOUGH_REPLICAS}
	ErrTimeout           = &Error{Code: zppb.Code_TIMEOUT}
	ErrNodeNotFound      = &Error{Code: zppb.Code_NODE_NOT_FOUND}
	ErrOverflow          = &Error{Code: zppb.Code_OVERFLOW}
	ErrUnavailable       = &Error{Code: zppb.Code_UNAVAILABLE}
	ErrUnauthenticated   = &Error{Code: zppb.Code_UNAUTHENTICATED}
)

// ErrFailedPrecondition is FAILED_PRECONDITION's sentinel, apart from the
// others as its code is numbered apart.
var ErrFailedPrecondition = &Error{Code: zppb.Code_FAILED_PRECONDITION}

// New returns an *Error with code and a formatted message.
func New(code zppb.Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Code returns the wire code of err: OK for nil, the code of an *Error in
// its chain, ERROR otherwise.
func Code(err error) zppb.Code {
	if err == nil {
		return zppb.Code_OK
	}
	var se *Error
	if errors.As(err, &se) {
		return se.Code
	}
	return zppb.Code_ERROR
}

// FromResponse returns nil when resp is OK, and its code, message, master and
// epoch as an *Error otherwise.
func FromResponse(resp *zppb.Response) error {
	if resp.GetCode() == zppb.Code_OK {
		return nil
	}
	return &Error{Code: resp.GetCode(), Msg: resp.GetMsg(), Master: resp.GetMaster(), Epoch: resp.GetEpoch(), OutcomeUnknown: resp.GetOutcomeUnknown()}
}

// Response returns an error response for err; errors without a code become
// ERROR with their text.
func Response(err error) *zppb.Response {
	var se *Error
	if errors.As(err, &se) {
		msg := se.Msg
		if err != error(se) {
			// Keep the context the chain added around the coded error.
			msg = err.Error()
		}
		return &zppb.Response{Code: se.Code, Msg: msg, Master: se.Master, Epoch: se.Epoch, OutcomeUnknown: se.OutcomeUnknown}
	}
	return &zppb.Response{Code: zppb.Code_ERROR, Msg: err.Error()}
}

// NoCommand is the message of the INVALID_ARGUMENT a server answers to a
// request without a command. A server reads a command of a later release
// than its own (an unknown field of Request's oneof) as no command, so this
// answer is how a client tells that the server predates the command.
const NoCommand = "request without a command"

// UnknownCommand reports whether err is a server's answer to a command it
// does not know (see NoCommand).
func UnknownCommand(err error) bool {
	var se *Error
	return errors.As(err, &se) && se.Code == zppb.Code_INVALID_ARGUMENT && se.Msg == NoCommand
}

// Retryable reports whether err is worth retrying against the same or a
// refreshed topology: MOVE, WAIT, NO_LEADER, UNAVAILABLE.
func Retryable(err error) bool {
	switch Code(err) {
	case zppb.Code_MOVE, zppb.Code_WAIT, zppb.Code_NO_LEADER, zppb.Code_UNAVAILABLE:
		return true
	}
	return false
}
