package workload

import "fmt"

// Kind is what an operation does.
type Kind uint8

// The kinds of operation. Insert is a SET of a new record; ReadModifyWrite
// is a GET then a SET of the same key (YCSB F), timed as one operation.
const (
	Get Kind = iota
	Set
	Insert
	Scan
	ReadModifyWrite
	MGet
	MSet
	Incr
	// NumKinds is the number of kinds, for arrays indexed by Kind.
	NumKinds
)

var kindNames = [NumKinds]string{"get", "set", "insert", "scan", "rmw", "mget", "mset", "incr"}

// String returns the kind's name as reports show it.
func (k Kind) String() string {
	if k < NumKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Op is one operation. A Stream fills it and reuses its buffers for the
// next one, so a target must not keep any of its slices after its call
// returns.
type Op struct {
	Kind Kind
	// Key is the key of Get, Set, Insert, ReadModifyWrite and Incr, and of
	// the first record of a Scan.
	Key []byte
	// Value is written by Set, Insert, ReadModifyWrite and (for every key)
	// MSet. It is shared by every operation: read it, never change it.
	Value []byte
	// Keys are the keys of MGet and MSet, and the records a Scan covers
	// (for targets without ordered range scans, which read them with MGET).
	Keys [][]byte
	// Delta is Incr's increment.
	Delta int64
	// Hashtag, Cursor and Count describe a Scan as a hashtag SCAN: the
	// records' group, the key to start after (nil: the start of the group)
	// and how many records to read.
	Hashtag []byte
	Cursor  []byte
	Count   int

	// record is the record an Insert creates, acknowledged by Stream.Done.
	record    uint64
	inserting bool

	buf  []byte // backing store of Key, Keys, Hashtag and Cursor
	offs []int
}
