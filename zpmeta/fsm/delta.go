package fsm

import (
	"cmp"
	"fmt"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// touched is what one command changes, if it changes anything: tables as a
// whole (their own fields, or created or dropped: one no longer in the state
// was dropped), partitions of tables, and nodes by name (one no longer in the
// state was removed).
type touched struct {
	tables []string
	parts  []partRef
	nodes  []string
}

// partRef names a partition.
type partRef struct {
	table     string
	partition uint32
}

// touches names what cmd would change, read from the state before it runs.
// Every command that changes the topology is listed here: a change not
// stamped would be left out of the deltas (TestPullDeltaMatchesFull replays
// every kind of command against whole topologies).
func (s *state) touches(cmd *zppb.MetaCommand) touched {
	switch c := cmd.GetCmd().(type) {
	case *zppb.MetaCommand_RegisterNode:
		return touched{nodes: []string{c.RegisterNode.GetAddr()}}
	case *zppb.MetaCommand_SetNodeState:
		return touched{nodes: []string{c.SetNodeState.GetAddr()}}
	case *zppb.MetaCommand_RemoveNodes:
		return touched{nodes: c.RemoveNodes.GetNodes()}
	case *zppb.MetaCommand_CreateTable:
		return touched{tables: []string{c.CreateTable.GetTable().GetName()}}
	case *zppb.MetaCommand_DropTable:
		return touched{tables: []string{c.DropTable.GetName()}}
	case *zppb.MetaCommand_SetQuota:
		return touched{tables: []string{c.SetQuota.GetTable()}}
	case *zppb.MetaCommand_FinishRestore:
		return touched{tables: []string{c.FinishRestore.GetTable()}}
	case *zppb.MetaCommand_SetTableCredentials:
		return touched{tables: []string{c.SetTableCredentials.GetTable()}}
	case *zppb.MetaCommand_SetMasters:
		var tt touched
		for _, ch := range c.SetMasters.GetChanges() {
			tt.parts = append(tt.parts, partRef{ch.GetTable(), ch.GetPartition()})
		}
		return tt
	case *zppb.MetaCommand_StepMove:
		if m := s.moves[c.StepMove.GetId()]; m != nil {
			if m.Kind == zppb.MoveKind_SPLIT {
				// Ranges and the partition count change.
				return touched{tables: []string{m.Table}}
			}
			return touched{parts: []partRef{{m.Table, m.Partition}}}
		}
	case *zppb.MetaCommand_CordonNodes:
		return touched{nodes: c.CordonNodes.GetNodes()}
	case *zppb.MetaCommand_CancelMoves:
		// The rollbacks change the partitions of the moves cancelled.
		var tt touched
		for _, m := range s.moves {
			if !topo.Terminal(m.State) && (c.CancelMoves.GetAll() || slices.Contains(c.CancelMoves.GetIds(), m.Id)) {
				if m.Kind == zppb.MoveKind_SPLIT {
					tt.tables = append(tt.tables, m.Table)
					continue
				}
				tt.parts = append(tt.parts, partRef{m.Table, m.Partition})
			}
		}
		return tt
	}
	return touched{}
}

// stamp records that what tt names changed at the current epoch.
func (s *state) stamp(tt touched) {
	for _, name := range tt.tables {
		if t := s.tables[name]; t != nil {
			s.tableEpochs[name] = s.epoch
			s.stampWhole(name, t, s.epoch)
		} else {
			delete(s.tableEpochs, name)
			delete(s.tableMetaEpochs, name)
			delete(s.partEpochs, name)
		}
	}
	for _, p := range tt.parts {
		if s.tables[p.table] == nil {
			continue
		}
		s.tableEpochs[p.table] = s.epoch
		if pe := s.partEpochs[p.table]; int(p.partition) < len(pe) {
			pe[p.partition] = s.epoch
		} else {
			// Not recorded: the whole table counts as changed.
			delete(s.partEpochs, p.table)
		}
	}
	for _, addr := range tt.nodes {
		if s.nodes[addr] != nil {
			s.nodeEpochs[addr] = s.epoch
		} else {
			delete(s.nodeEpochs, addr)
			s.nodesRemoved = s.epoch
		}
	}
}

// stampWhole records that t, named name, changed as a whole at epoch: its
// own fields and every partition.
func (s *state) stampWhole(name string, t *zppb.Table, epoch uint64) {
	s.tableMetaEpochs[name] = epoch
	pe := make([]uint64, len(t.GetPartitions()))
	for i := range pe {
		pe[i] = epoch
	}
	s.partEpochs[name] = pe
}

// Pull answers a PULL of every table by a caller holding the topology of
// epoch since: a delta carrying only what changed after it, or the whole
// topology when since is 0 or newer than this member's state (the caller
// read a member further ahead; a delta cannot go backwards). A table
// changed is carried whole. Tables come without their credentials
// (tableauth.Strip).
func (f *FSM) Pull(since uint64) *zppb.PullResponse { return f.pull(pullKey{since: since}) }

// PullPartitions answers as Pull a caller that merges tables by partition
// (PullRequest.partition_deltas): a table of which only partitions changed
// comes as a partial table with those partitions.
func (f *FSM) PullPartitions(since uint64) *zppb.PullResponse {
	return f.pull(pullKey{since: since, partial: true})
}

func (f *FSM) pull(key pullKey) *zppb.PullResponse {
	f.mu.RLock()
	defer f.mu.RUnlock()
	head := f.st.pullHead(key.since)
	head.Topology.Nodes = cloneAll(head.Topology.Nodes)
	tables := f.st.pullTables(key)
	head.Topology.Tables = cloneAll(tables.Topology.Tables)
	head.Tables = tables.Tables
	head.PartialTables = cloneAll(tables.PartialTables)
	return head
}

// PullShared answers a PULL as Pull (partial: PullPartitions) does, in two
// parts: head, the epoch and the nodes (copies, for the leader to add its
// heartbeats to), and shared, the tables and their stamps encoded as a
// zppb.Response whose pull field carries them. Appended to the encoding of a
// Response carrying head (proto.Message's unknown fields), they decode as
// Pull's answer: a message field that occurs twice is merged and repeated
// fields are concatenated.
//
// shared is encoded once per (since, partial, epoch) and the same bytes go
// to every caller asking the same: after a change, a thousand nodes PULL
// the same delta within a second. It must not be modified. With creds
// (a node's PULL, PullRequest.credentials) the tables carry their
// credentials; without, they are stripped.
func (f *FSM) PullShared(since uint64, partial, creds bool) (head *zppb.PullResponse, shared []byte) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := f.st
	head = st.pullHead(since)
	head.Topology.Nodes = cloneAll(head.Topology.Nodes)
	key := pullKey{since, partial, creds}
	if !head.Delta {
		key = pullKey{creds: creds}
	}
	shared = f.shared.get(st.epoch, key, func() []byte {
		// Encoded under the read lock: the tables are the state's own,
		// not copies.
		b, err := proto.Marshal(&zppb.Response{Result: &zppb.Response_Pull{Pull: st.pullTables(key)}})
		if err != nil {
			// Only an invalid UTF-8 string fails, and every name was
			// validated before it got into the state.
			panic(fmt.Sprintf("fsm: encode PULL answer: %v", err))
		}
		return b
	})
	return head, shared
}

// pullHead is the part of the answer to a PULL since `since` that is not
// in pullTables: the epoch, the delta flags and the nodes (not copied).
func (s *state) pullHead(since uint64) *zppb.PullResponse {
	if since == 0 || since > s.epoch {
		return &zppb.PullResponse{Topology: &zppb.Topology{Epoch: s.epoch, Nodes: s.sortedNodes()}}
	}
	// Removed nodes cannot be told by the nodes that changed: then the
	// whole list.
	resp := &zppb.PullResponse{Topology: &zppb.Topology{Epoch: s.epoch}, Delta: true, NodesChanged: s.nodesRemoved > since}
	if resp.NodesChanged {
		resp.Topology.Nodes = s.sortedNodes()
		return resp
	}
	// Only the few changed nodes are sorted: sorting all of them on every
	// PULL was most of a thousand-node leader's PULL work.
	for addr, n := range s.nodes {
		if changed := s.nodeEpochs[addr]; changed == 0 || changed > since {
			resp.Topology.Nodes = append(resp.Topology.Nodes, n)
		}
	}
	slices.SortFunc(resp.Topology.Nodes, func(a, b *zppb.Node) int { return cmp.Compare(a.Addr, b.Addr) })
	return resp
}

// pullTables is the tables part of the answer to a PULL since `since`: the
// tables (not copied) and, in a delta, their stamps, and with partial the
// tables of which only partitions changed as partial tables; without
// creds, the tables are stripped of their credentials.
func (s *state) pullTables(key pullKey) *zppb.PullResponse {
	resp := s.pullTablesWithCreds(key.since, key.partial)
	if !key.creds {
		resp.Topology.Tables = tableauth.StripAll(resp.Topology.Tables)
		resp.PartialTables = tableauth.StripAll(resp.PartialTables)
	}
	return resp
}

func (s *state) pullTablesWithCreds(since uint64, partial bool) *zppb.PullResponse {
	tables := s.sortedTables()
	if since == 0 || since > s.epoch {
		return &zppb.PullResponse{Topology: &zppb.Topology{Tables: tables}}
	}
	resp := &zppb.PullResponse{Topology: &zppb.Topology{}, Tables: make([]*zppb.TableStamp, 0, len(tables))}
	for _, t := range tables {
		changed := s.tableEpochs[t.Name]
		if changed == 0 {
			changed = s.epoch // not recorded: assume the newest
		}
		resp.Tables = append(resp.Tables, &zppb.TableStamp{Name: t.Name, CreatedEpoch: t.CreatedEpoch, ChangedEpoch: changed})
		if changed <= since {
			continue
		}
		if partial {
			if pt := s.partialTable(t, since); pt != nil {
				resp.PartialTables = append(resp.PartialTables, pt)
				continue
			}
		}
		resp.Topology.Tables = append(resp.Topology.Tables, t)
	}
	return resp
}

// partitionsField is zppb.Table's partitions.
var partitionsField = (&zppb.Table{}).ProtoReflect().Descriptor().Fields().ByName("partitions")

// partialTable is t with only the partitions changed after since, sharing
// t's messages; nil when its own fields changed after since or when what
// changed is not recorded.
func (s *state) partialTable(t *zppb.Table, since uint64) *zppb.Table {
	meta, pe := s.tableMetaEpochs[t.Name], s.partEpochs[t.Name]
	if meta == 0 || meta > since || len(pe) != len(t.Partitions) {
		return nil
	}
	// Every field but the partitions, whatever fields Table gets.
	pt := &zppb.Table{}
	t.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd != partitionsField {
			pt.ProtoReflect().Set(fd, v)
		}
		return true
	})
	for i, p := range t.Partitions {
		if pe[i] > since {
			pt.Partitions = append(pt.Partitions, p)
		}
	}
	return pt
}

// maxSharedPulls bounds the encoded answers kept for one epoch: the
// callers of one epoch hold a few epochs (most the one before), and at
// 1,000 nodes and 100,000 replicas an answer is up to 2 MB (the whole
// topology).
const maxSharedPulls = 16

// sharedPulls holds the encoded tables parts of the PULL answers of one
// epoch by since and partial (zero: the whole topology). The state of an epoch never
// changes, so they stay right until the epoch does, when they are dropped.
type sharedPulls struct {
	mu      sync.Mutex
	epoch   uint64
	answers map[pullKey]*sharedPull
}

// pullKey is what a PULL answer depends on besides the epoch.
type pullKey struct {
	since   uint64
	partial bool
	creds   bool
}

// sharedPull is one encoded answer; the first caller encodes it while the
// others wait.
type sharedPull struct {
	once sync.Once
	b    []byte
}

// get returns the answer for (epoch, key), encoding it when absent; past
// maxSharedPulls it encodes without keeping.
func (c *sharedPulls) get(epoch uint64, key pullKey, encode func() []byte) []byte {
	c.mu.Lock()
	if c.epoch != epoch || c.answers == nil {
		c.epoch, c.answers = epoch, make(map[pullKey]*sharedPull)
	}
	a := c.answers[key]
	if a == nil {
		if len(c.answers) >= maxSharedPulls {
			c.mu.Unlock()
			return encode()
		}
		a = &sharedPull{}
		c.answers[key] = a
	}
	c.mu.Unlock()
	a.once.Do(func() { a.b = encode() })
	return a.b
}

// reset drops every answer: a restored snapshot may have other stamps at
// the same epoch.
func (c *sharedPulls) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch, c.answers = 0, nil
}
