package engine

import "errors"

// Sentinel errors; errors from this package wrap them. Test with errors.Is.
var (
	// ErrNotFound is returned by Get for a key that is absent or expired.
	ErrNotFound = errors.New("engine: key not found")

	// ErrOutOfOrder is returned by Apply for a record at or below the
	// applied LSN, or with a term below the applied term. Applying it would
	// move the replica back in its history.
	ErrOutOfOrder = errors.New("engine: record out of order")

	// ErrInvalidArgument is returned for a bad key, cursor or mutation.
	ErrInvalidArgument = errors.New("engine: invalid argument")

	// ErrCorrupt is returned when stored bytes do not decode.
	ErrCorrupt = errors.New("engine: corrupt data")

	// ErrClosed is returned by every method of a closed DB or Shared.
	ErrClosed = errors.New("engine: closed")

	// ErrInUse is returned when a directory is already open in this
	// process, or a Shared still has open DBs.
	ErrInUse = errors.New("engine: in use")

	// ErrNotDB is returned by Destroy for a non-empty directory that does
	// not look like a RocksDB database; it refuses to delete it.
	ErrNotDB = errors.New("engine: not a database directory")
)
