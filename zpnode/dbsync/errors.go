package dbsync

import (
	"errors"

	"github.com/zeppelin-kv/zeppelin/lib/status"
)

// Errors the Source returns carry a wire code: status.Response(err) turns
// them into the right response without a mapping table in the node, and
// errors.Is still matches the sentinel on the master.
var (
	// ErrNoSession: the session does not exist (never did, ended, expired,
	// or the master restarted) or belongs to another partition. Code
	// NOT_FOUND; on the slave, Run reports it wrapped around the
	// master's answer, and a new Run starts a new session.
	ErrNoSession = coded(status.ErrNotFound, "dbsync: no such full-sync session")

	// ErrBusy: the Source already serves its maximum number of sessions.
	// Code WAIT: the slave retries later.
	ErrBusy = coded(status.ErrWait, "dbsync: too many full syncs in progress")

	// ErrBadName: a fetch named a file that is not in the session's
	// manifest, or a path that would leave the session directory. Code
	// INVALID_ARGUMENT.
	ErrBadName = coded(status.ErrInvalidArgument, "dbsync: bad file name")

	// ErrBadOffset: a fetch started past the end of the file. Code
	// INVALID_ARGUMENT.
	ErrBadOffset = coded(status.ErrInvalidArgument, "dbsync: offset past end of file")

	// ErrClosed: the Source is closed. Code UNAVAILABLE.
	ErrClosed = coded(status.ErrUnavailable, "dbsync: source closed")
)

// Errors of the slave side.
var (
	// ErrChecksum: a fetched or linked file does not match the manifest's
	// size or CRC32C. The file is not installed.
	ErrChecksum = errors.New("dbsync: checksum mismatch")

	// ErrBadManifest: the master's manifest is unusable (a name escapes
	// the staging directory, a duplicate, no CURRENT file ...).
	ErrBadManifest = errors.New("dbsync: bad manifest")

	// ErrIncomplete: Install found no complete staging directory.
	ErrIncomplete = errors.New("dbsync: no complete full sync to install")

	// ErrInUse: another Run or Install is using the same replica directory
	// in this process.
	ErrInUse = errors.New("dbsync: replica directory in use by another full sync")
)

// codedError is a sentinel that unwraps to a status error, so that it
// carries a wire code and remains distinct from other errors of that code.
type codedError struct {
	msg  string
	code *status.Error
}

func coded(code *status.Error, msg string) error { return &codedError{msg: msg, code: code} }

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return e.code }
