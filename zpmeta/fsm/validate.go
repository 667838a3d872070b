package fsm

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

// NormalizeCreateTable fills the defaults of req in place (replicas 0 means
// DefaultReplicas) and checks what does not depend on the state: the name,
// 1..MaxPartitions partitions, min_sync_replicas < replicas.
func NormalizeCreateTable(req *zppb.CreateTableRequest) error {
	if req.Replicas == 0 {
		req.Replicas = DefaultReplicas
	}
	return validateTableShape(req.GetName(), req.GetPartitions(), req.GetReplicas(), req.GetMinSyncReplicas())
}

func validateTableShape(name string, partitions, replicas, minSync uint32) error {
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

// checkEpoch fails with STALE_EPOCH when expected is set and is not current.
func checkEpoch(expected, current uint64) error {
	if expected != 0 && expected != current {
		err := status.New(zppb.Code_STALE_EPOCH, "expected epoch %d, current is %d", expected, current)
		err.Epoch = current
		return err
	}
	return nil
}
