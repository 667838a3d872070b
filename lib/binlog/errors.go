package binlog

import (
	"errors"

	"github.com/zeppelin-kv/zeppelin/lib/dirlock"
)

// Sentinel errors. Errors returned by this package wrap them with detail;
// test with errors.Is.
var (
	// ErrOutOfOrder is returned by Append when a record's LSN is not the
	// log's last LSN plus one, or its term is below the last record's.
	ErrOutOfOrder = errors.New("binlog: record out of order")

	// ErrNotFound is returned for an LSN beyond the end of the log.
	ErrNotFound = errors.New("binlog: lsn not in log")

	// ErrPurged is returned for an LSN older than the oldest record the log
	// still holds: it was removed by PurgeBefore or Reset.
	ErrPurged = errors.New("binlog: lsn purged")

	// ErrTruncated is returned by a Reader whose log was changed under it by
	// TruncateAfter or Reset. The reader is done; open a new one.
	ErrTruncated = errors.New("binlog: log truncated under reader")

	// ErrCorrupt is returned when a segment holds bytes that are not a valid
	// record in a place where Open's tail repair does not apply (a sealed
	// segment, or a segment header).
	ErrCorrupt = errors.New("binlog: corrupt segment")

	// ErrTooLarge is returned by Append for a payload above MaxPayloadSize.
	ErrTooLarge = errors.New("binlog: payload too large")

	// ErrClosed is returned by every method of a closed Log and by its
	// Readers.
	ErrClosed = errors.New("binlog: log closed")

	// ErrLocked is returned by Open when another Log, in this process or
	// another one, has the directory open.
	ErrLocked = dirlock.ErrLocked
)
