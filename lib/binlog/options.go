package binlog

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults applied by Open to zero fields of Options.
const (
	DefaultSegmentSize  = 64 << 20
	DefaultSyncInterval = 10 * time.Millisecond

	// MinSegmentSize is the smallest SegmentSize Open accepts.
	MinSegmentSize = 1 << 10
)

// SyncPolicy says when the log calls fdatasync(2), trading the cost of
// writes against what a crash of the machine (power loss, kernel panic) can
// lose. A crash of the process alone never loses an appended record under
// any policy, because Append has already handed it to the kernel.
type SyncPolicy int

const (
	// SyncInterval syncs in the background every Options.SyncInterval.
	// WaitDurable returns as soon as the record is written. A machine crash
	// loses at most the last interval of writes. This is the default.
	SyncInterval SyncPolicy = iota

	// SyncAlways makes WaitDurable return only once the record is on stable
	// storage. Concurrent waiters share one sync (group commit), so the cost
	// is one sync per batch of concurrent writes, not one per write. A
	// machine crash loses nothing that WaitDurable confirmed.
	SyncAlways

	// SyncNone leaves flushing to the kernel, except that a segment is synced
	// when it is sealed and on Close. A machine crash may lose whatever the
	// kernel had not yet written back (typically up to 30 s on Linux).
	SyncNone
)

// String returns the policy's name as ParseSyncPolicy accepts it.
func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNone:
		return "none"
	default:
		return fmt.Sprintf("SyncPolicy(%d)", int(p))
	}
}

// ParseSyncPolicy parses "always", "interval" or "none".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch s {
	case "always":
		return SyncAlways, nil
	case "interval":
		return SyncInterval, nil
	case "none":
		return SyncNone, nil
	default:
		return 0, fmt.Errorf("binlog: unknown sync policy %q (want always, interval or none)", s)
	}
}

// MarshalText implements encoding.TextMarshaler.
func (p SyncPolicy) MarshalText() ([]byte, error) {
	if p < SyncInterval || p > SyncNone {
		return nil, fmt.Errorf("binlog: invalid sync policy %d", int(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler, so a SyncPolicy can sit
// directly in a configuration struct.
func (p *SyncPolicy) UnmarshalText(b []byte) error {
	v, err := ParseSyncPolicy(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Options configures a Log. The zero value is usable.
type Options struct {
	// SegmentSize is the size at which the active segment is sealed and a new
	// one started. A segment holds at least one record, so a record larger
	// than SegmentSize gets a segment of its own. Default DefaultSegmentSize.
	SegmentSize int64

	// Sync is the fsync policy. Default SyncInterval.
	Sync SyncPolicy

	// SyncInterval is the period of background syncs under SyncInterval.
	// Default DefaultSyncInterval.
	SyncInterval time.Duration

	// Logger receives repairs and failures. Default slog.Default().
	Logger *slog.Logger

	// NoLock leaves out the lock on the log's directory (its LOCK file,
	// and a descriptor held while the log is open): the caller guarantees
	// that no other Log opens the directory, as zpnode does by locking
	// its whole data directory.
	NoLock bool
}

// withDefaults validates o and fills in zero fields.
func (o Options) withDefaults() (Options, error) {
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.SegmentSize < MinSegmentSize {
		return o, fmt.Errorf("binlog: SegmentSize %d below minimum %d", o.SegmentSize, MinSegmentSize)
	}
	if o.Sync < SyncInterval || o.Sync > SyncNone {
		return o, fmt.Errorf("binlog: invalid sync policy %d", int(o.Sync))
	}
	if o.SyncInterval < 0 {
		return o, fmt.Errorf("binlog: negative SyncInterval %v", o.SyncInterval)
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}
