// Package topo holds the rules of the topology that the meta servers, the
// client and zpctl apply alike: what a valid table or node address is, the
// defaults they share (table.go), which partition owns a slot (slots.go),
// and which moves are legal, which node may receive a replica or be
// removed (moves.go). Each rule lives here once;
// the meta FSM enforces it, the client and zpctl check it before sending so
// that a bad request fails without a round trip and with the same words.
// The rules are pure functions over a View of the topology, which the FSM's
// state and lib/client's Topology each implement over what they hold.
package topo

import (
	"net"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

const (
	// DefaultReplicas is the replica count of a table created with 0.
	DefaultReplicas = 3
	// MaxPartitions is the most partitions a table may have: one per slot.
	MaxPartitions = keyspace.Slots
	// MaxTableNameLen bounds table names, which nodes use as directory names.
	MaxTableNameLen = 64
	// DefaultWeight is the weight of a node that reports none.
	DefaultWeight = 1
)

// ValidateTableName checks that name is 1..MaxTableNameLen characters of
// [a-zA-Z0-9_.-], not starting with '.' or '-': nodes keep a table's data in
// a directory of that name.
func ValidateTableName(name string) error {
	if name == "" {
		return status.New(zppb.Code_INVALID_ARGUMENT, "table name is empty")
	}
	if len(name) > MaxTableNameLen {
		return status.New(zppb.Code_INVALID_ARGUMENT, "table name is %d characters, at most %d", len(name), MaxTableNameLen)
	}
	if name[0] == '.' || name[0] == '-' {
		// Names are directories on nodes, which keep their own state in
		// dot-directories; a leading '-' reads as a flag in scripts.
		return status.New(zppb.Code_INVALID_ARGUMENT, "table name %q must start with a letter, digit or '_'", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return status.New(zppb.Code_INVALID_ARGUMENT, "table name %q has %q at %d; allowed are [a-zA-Z0-9_.-]", name, c, i)
		}
	}
	return nil
}

// Replicas is the replica count a table asked with r gets: r, or
// DefaultReplicas for 0.
func Replicas(r uint32) uint32 {
	if r == 0 {
		return DefaultReplicas
	}
	return r
}

// ValidateTableShape checks a table's name, 1..MaxPartitions partitions,
// at least one replica (after Replicas' default) and min_sync_replicas
// below the replicas, since it counts slaves.
func ValidateTableShape(name string, partitions, replicas, minSync uint32) error {
	if err := ValidateTableName(name); err != nil {
		return err
	}
	if partitions < 1 || partitions > MaxPartitions {
		return status.New(zppb.Code_INVALID_ARGUMENT, "partitions must be 1..%d, got %d", MaxPartitions, partitions)
	}
	if replicas < 1 {
		return status.New(zppb.Code_INVALID_ARGUMENT, "replicas must be at least 1")
	}
	if minSync >= replicas {
		return status.New(zppb.Code_INVALID_ARGUMENT, "min_sync_replicas %d must be less than replicas %d: it counts slaves", minSync, replicas)
	}
	return nil
}

// MinSplitSize is the smallest automatic split threshold
// (Table.split_size): a master's size counts its memtables by the memory
// they took, which grows a megabyte at a time, so smaller thresholds
// split on noise.
const MinSplitSize = 1 << 20

// ValidateSplitSize checks a table's automatic split threshold: 0 (off)
// or at least MinSplitSize bytes.
func ValidateSplitSize(size uint64) error {
	if size != 0 && size < MinSplitSize {
		return status.New(zppb.Code_INVALID_ARGUMENT, "split size %d bytes: want 0 (off) or at least %d (1 MiB)", size, MinSplitSize)
	}
	return nil
}

// ValidateNodeAddr checks that addr is a host:port a node can be reached at.
func ValidateNodeAddr(addr string) error {
	if addr == "" {
		return status.New(zppb.Code_INVALID_ARGUMENT, "node address is empty")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return status.New(zppb.Code_INVALID_ARGUMENT, "node address %q is not host:port", addr)
	}
	return nil
}
