package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/atomicfile"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// topology is the node's immutable view of a pulled Topology, indexed for
// routing. A new one replaces it whole.
type topology struct {
	pb     *zppb.Topology
	epoch  uint64
	tables map[string]*zppb.Table
	// slots route the keys of each table that can be routed; unroutable
	// lists why the others cannot (topo.SlotMap), and their keys are
	// answered TABLE_NOT_FOUND.
	slots      map[string]*keyspace.SlotMap
	unroutable []error
	// protected: some table has passwords. Without any, requests skip
	// the password check altogether (checkTable).
	protected bool
	// missingVerifiers: some table is protected but came without its
	// verifiers (a topology saved by a release that did not ask for them,
	// or pulled from a meta server that did not give them): its requests
	// are refused until a whole PULL brings them (pull).
	missingVerifiers bool
}

var emptyTopology = &topology{pb: &zppb.Topology{}, tables: map[string]*zppb.Table{}, slots: map[string]*keyspace.SlotMap{}}

func newTopology(pb *zppb.Topology) *topology {
	t := &topology{pb: pb, epoch: pb.Epoch, tables: make(map[string]*zppb.Table, len(pb.Tables)), slots: make(map[string]*keyspace.SlotMap, len(pb.Tables))}
	for _, tb := range pb.Tables {
		t.tables[tb.Name] = tb
		if m, err := topo.SlotMap(tb); err != nil {
			t.unroutable = append(t.unroutable, err)
		} else {
			t.slots[tb.Name] = m
		}
		t.protected = t.protected || tableauth.Protected(tb)
		t.missingVerifiers = t.missingVerifiers || (tableauth.Protected(tb) && len(tb.Credentials) == 0)
	}
	return t
}

// partition returns the partition of table holding key.
func (t *topology) partition(table string, key []byte) (*zppb.Table, *zppb.Partition, bool) {
	return t.partitionOfSlot(table, keyspace.Slot(key))
}

// partitionOfSlot returns the partition of table that owns slot, by the
// partitions' slot ranges.
func (t *topology) partitionOfSlot(table string, slot uint16) (*zppb.Table, *zppb.Partition, bool) {
	m := t.slots[table]
	if m == nil {
		return nil, nil, false
	}
	tb := t.tables[table]
	return tb, tb.Partitions[m.PartitionOfSlot(slot)], true
}

// partitionByID returns partition id of table.
func (t *topology) partitionByID(table string, id uint32) (*zppb.Table, *zppb.Partition, bool) {
	tb := t.tables[table]
	if tb == nil || int(id) >= len(tb.Partitions) {
		return nil, nil, false
	}
	return tb, tb.Partitions[id], true
}

const topologyFile = "topology.pb"

// saveTopology writes pb to the data dir, durably and atomically, so that a
// restarted node can serve its partitions before (or without) reaching a
// meta server.
func saveTopology(dir string, pb *zppb.Topology) error {
	data, err := proto.Marshal(pb)
	if err != nil {
		return err
	}
	// Owner only: it holds the tables' password verifiers.
	return atomicfile.Write(filepath.Join(dir, topologyFile), data, 0o600)
}

// loadTopology reads the saved topology; nil without error when there is none.
func loadTopology(dir string) (*zppb.Topology, error) {
	data, err := os.ReadFile(filepath.Join(dir, topologyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	pb := &zppb.Topology{}
	if err := proto.Unmarshal(data, pb); err != nil {
		return nil, fmt.Errorf("%s: %w", topologyFile, err)
	}
	return pb, nil
}
