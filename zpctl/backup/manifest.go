package backup

import (
	"encoding/json"
	"fmt"
	"time"
)

// ManifestFile is the manifest's name in a backup; its presence is what
// makes a backup complete.
const ManifestFile = "backup.json"

// FormatVersion is the manifest format Create writes and Verify accepts.
const FormatVersion = 1

// Manifest describes a complete backup.
type Manifest struct {
	Format int    `json:"format"`
	Name   string `json:"name"`
	// Table is the table's settings when the backup started.
	Table TableSettings `json:"table"`
	// Epoch is the topology epoch the backup started at.
	Epoch      uint64    `json:"epoch"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// ToolVersion is the zpctl version that wrote it.
	ToolVersion string `json:"tool_version"`
	// IncrementalFrom names the backup whose files this one linked; ""
	// for a full backup.
	IncrementalFrom string      `json:"incremental_from,omitempty"`
	Partitions      []Partition `json:"partitions"`
	// Bytes is the size of every partition's files; BytesCopied what was
	// fetched from the cluster for them, BytesReused what was linked from
	// IncrementalFrom (or left by an earlier attempt under this name).
	Bytes       uint64 `json:"bytes"`
	BytesCopied uint64 `json:"bytes_copied"`
	BytesReused uint64 `json:"bytes_reused"`
}

// TableSettings are what a restore needs to create the table again.
type TableSettings struct {
	Name             string `json:"name"`
	PartitionCount   uint32 `json:"partition_count"`
	Replicas         uint32 `json:"replicas"`
	MinSyncReplicas  uint32 `json:"min_sync_replicas"`
	CreatedEpoch     uint64 `json:"created_epoch"`
	QuotaOpsPerSec   uint64 `json:"quota_ops_per_sec,omitempty"`
	QuotaBytesPerSec uint64 `json:"quota_bytes_per_sec,omitempty"`
	// SplitSize is the table's automatic split size (0: off).
	SplitSize uint64 `json:"split_size,omitempty"`
}

// Partition is one partition's checkpoint.
type Partition struct {
	ID uint32 `json:"id"`
	// SlotBegin and SlotEnd are its half-open slot range.
	SlotBegin uint32 `json:"slot_begin"`
	SlotEnd   uint32 `json:"slot_end"`
	// Term and LSN are the binlog position the checkpoint reflects: every
	// record up to it, none after.
	Term uint64 `json:"term"`
	LSN  uint64 `json:"lsn"`
	// Source is the node the checkpoint came from, and SourceRole its
	// role then ("master" or "slave").
	Source     string `json:"source"`
	SourceRole string `json:"source_role"`
	// Dir is the partition's directory in the backup.
	Dir   string `json:"dir"`
	Files []File `json:"files"`
	Bytes uint64 `json:"bytes"`
	// TakenAt is when the checkpoint was fetched.
	TakenAt time.Time `json:"taken_at"`
}

// File is one file of a checkpoint.
type File struct {
	Name   string `json:"name"`
	Size   uint64 `json:"size"`
	CRC32C uint32 `json:"crc32c"`
}

// parseManifest decodes and checks the shape of a manifest: format,
// partitions 0..n-1 each once, file names that stay in their directory.
func parseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadManifest, err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("%w: format %d, this zpctl reads %d", ErrBadManifest, m.Format, FormatVersion)
	}
	return &m, nil
}

// partitionDir is partition id's directory in a backup.
func partitionDir(id uint32) string { return fmt.Sprintf("partitions/%04d", id) }
