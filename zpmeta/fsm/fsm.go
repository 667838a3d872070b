// Package fsm is the meta servers' replicated state machine: the cluster
// topology (tables, partitions, nodes, the epoch) as a hashicorp/raft FSM.
//
// Every change is a zppb.MetaCommand in the Raft log. The leader checks a
// request against its state with a Prepare method, which returns the command
// to propose; Apply checks the command again against the state it meets, so
// an entry that became invalid in between (or a corrupt one) is rejected alike
// on every member and changes nothing. Every change bumps the epoch.
//
// Reads return copies and may run concurrently with Apply.
package fsm

import (
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/placement"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// FSM implements raft.FSM over the topology.
type FSM struct {
	logger *slog.Logger

	mu sync.RWMutex
	st *state
	// applied counts the commands applied without error and the
	// restores: a reader that saw the same count saw the same state.
	applied uint64
	// shared holds the encoded PULL answers of the current epoch
	// (PullShared).
	shared sharedPulls
}

var _ raft.FSM = (*FSM)(nil)

// New returns an FSM with an empty topology at epoch 0.
func New(logger *slog.Logger) *FSM {
	if logger == nil {
		logger = slog.Default()
	}
	return &FSM{logger: logger, st: newState()}
}

// Apply applies one committed log entry and returns a Result.
func (f *FSM) Apply(l *raft.Log) any {
	cmd := &zppb.MetaCommand{}
	if err := proto.Unmarshal(l.Data, cmd); err != nil {
		f.mu.RLock()
		defer f.mu.RUnlock()
		f.logger.Error("undecodable meta command; skipped", "index", l.Index, "err", err)
		return Result{Epoch: f.st.epoch, Err: status.New(zppb.Code_INVALID_ARGUMENT, "undecodable meta command: %v", err)}
	}
	return f.ApplyCommand(cmd)
}

// ApplyCommand applies a decoded command; Apply is this after decoding.
func (f *FSM) ApplyCommand(cmd *zppb.MetaCommand) (res Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer func() {
		// The state methods validate before they mutate and do not
		// panic on any input; this is the last line, so that a bug
		// rejects one entry instead of taking the member down.
		if r := recover(); r != nil {
			f.logger.Error("meta command panicked", "panic", r, "stack", string(debug.Stack()))
			res = Result{Epoch: f.st.epoch, Err: status.New(zppb.Code_ERROR, "meta command panicked: %v", r)}
		}
	}()
	res = f.st.apply(cmd)
	if res.Err != nil {
		f.logger.Debug("meta command rejected", "cmd", withoutVerifiers(cmd), "err", res.Err)
	} else {
		f.applied++
	}
	return res
}

// Applied returns how many commands have changed (or may have changed) the
// state, restores included: the scheduler plans again only when it moved.
func (f *FSM) Applied() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied
}

// Snapshot captures the state. Raft calls it on the FSM goroutine, so no Apply
// runs meanwhile; the bytes are taken now and written by Persist later.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	// Deterministic: the maps of change epochs in a stable order, so that
	// the same state gives the same bytes.
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(f.st.snapshot())
	if err != nil {
		return nil, fmt.Errorf("fsm: marshal snapshot: %w", err)
	}
	return &snapshot{data: b}, nil
}

// Restore replaces the state with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("fsm: read snapshot: %w", err)
	}
	snap := &zppb.MetaSnapshot{}
	if err := proto.Unmarshal(b, snap); err != nil {
		return fmt.Errorf("fsm: unmarshal snapshot: %w", err)
	}
	st, err := stateFromSnapshot(snap)
	if err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	f.mu.Lock()
	f.st = st
	f.applied++
	f.shared.reset()
	f.mu.Unlock()
	f.logger.Info("topology restored from snapshot", "epoch", st.epoch, "tables", len(st.tables), "nodes", len(st.nodes))
	return nil
}

// snapshot is a marshalled MetaSnapshot.
type snapshot struct{ data []byte }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		sink.Cancel()
		return fmt.Errorf("fsm: write snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

// placeTable is placement.PlaceTable; a test holds it up.
var placeTable = placement.PlaceTable

// PrepareCreateTable checks req against the state (arguments, then
// expected_epoch, then the name), places the table on the UP nodes, and
// returns the command to propose. It fills req's defaults.
func (f *FSM) PrepareCreateTable(req *zppb.CreateTableRequest) (*zppb.MetaCommand, error) {
	if req == nil {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "create table without a request")
	}
	if err := NormalizeCreateTable(req); err != nil {
		return nil, err
	}
	// Placement takes seconds for thousands of partitions on a thousand
	// nodes: it works on copies, outside the lock, which would otherwise
	// hold up Apply and, behind it, every PING and PULL. Apply checks the
	// placement against the state it meets.
	f.mu.RLock()
	if err := f.st.checkCreateTable(req.Name, req.Partitions, req.Replicas, req.MinSyncReplicas, req.ExpectedEpoch); err != nil {
		f.mu.RUnlock()
		return nil, err
	}
	var up []*zppb.Node
	for _, n := range f.st.sortedNodes() {
		if topo.Receives(n) {
			up = append(up, proto.Clone(n).(*zppb.Node))
		}
	}
	tables := cloneAll(f.st.sortedTables())
	f.mu.RUnlock()
	parts, err := placeTable(up, tables, req.Partitions, req.Replicas)
	if err != nil {
		return nil, err
	}
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_CreateTable{CreateTable: &zppb.CreateTableCommand{
		Table: &zppb.Table{
			Name:            req.Name,
			PartitionCount:  req.Partitions,
			Replicas:        req.Replicas,
			MinSyncReplicas: req.MinSyncReplicas,
			Partitions:      parts,
			Quota:           req.Quota,
			Restoring:       req.Restoring,
			SplitSize:       req.SplitSize,
		},
		ExpectedEpoch: req.ExpectedEpoch,
	}}}, nil
}

// PrepareDropTable checks req against the state and returns the command to
// propose.
func (f *FSM) PrepareDropTable(req *zppb.DropTableRequest) (*zppb.MetaCommand, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if err := f.st.checkDropTable(req.GetName(), req.GetExpectedEpoch()); err != nil {
		return nil, err
	}
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_DropTable{DropTable: &zppb.DropTableCommand{
		Name: req.GetName(), ExpectedEpoch: req.GetExpectedEpoch(),
	}}}, nil
}

// PrepareRegisterNode returns the command that registers the node of a PING
// or updates its zone, rack, weight or RESP address, or nil when the state
// already agrees.
func (f *FSM) PrepareRegisterNode(req *zppb.PingRequest) (*zppb.MetaCommand, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	c, err := f.st.nodeChange(&zppb.RegisterNodeCommand{Addr: req.GetAddr(), Zone: req.GetZone(),
		Rack: req.GetRack(), Weight: req.GetWeight(), RedisAddr: req.GetRedisAddr()})
	if err != nil || c == nil {
		return nil, err
	}
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_RegisterNode{RegisterNode: c}}, nil
}

// SetMasters returns the command that hands partitions to new masters.
func SetMasters(reason string, changes ...*zppb.MasterChange) *zppb.MetaCommand {
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_SetMasters{SetMasters: &zppb.SetMastersCommand{Changes: changes, Reason: reason}}}
}

// SetQuota returns the command that changes a table's quota and, when
// splitSize is not nil, its automatic split size (with q nil, that
// alone).
func SetQuota(table string, q *zppb.Quota, splitSize *uint64, expectedEpoch uint64) *zppb.MetaCommand {
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_SetQuota{SetQuota: &zppb.SetQuotaCommand{Table: table, Quota: q, SplitSize: splitSize, ExpectedEpoch: expectedEpoch}}}
}

// FinishRestore returns the command that opens table, created restoring,
// to data commands; createdEpoch, when non-zero, names its incarnation.
func FinishRestore(table string, createdEpoch uint64) *zppb.MetaCommand {
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_FinishRestore{FinishRestore: &zppb.FinishRestoreCommand{Table: table, CreatedEpoch: createdEpoch}}}
}

// SetNodeState returns the command that marks a node UP or DOWN, decided
// at nowMs (Unix ms).
func SetNodeState(addr string, st zppb.NodeState, nowMs int64) *zppb.MetaCommand {
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_SetNodeState{SetNodeState: &zppb.SetNodeStateCommand{Addr: addr, State: st, NowMs: nowMs}}}
}

// SentAfterDown reports whether a PING that carried epoch (the epoch its
// sender had applied) was sent after n was marked DOWN, however late it
// arrived: only such a PING from n brings it back UP, and only such a PING
// from a slave counts for the failover of the partitions n mastered. The
// topology of n.DownEpoch exists only from the decision on, so a sender that
// has applied it sent its PING after. A node that is not DOWN passes, and so
// does one marked DOWN before down_epoch was recorded (0).
func SentAfterDown(n *zppb.Node, epoch uint64) bool {
	return n == nil || n.State != zppb.NodeState_DOWN || epoch >= n.DownEpoch
}

// Epoch returns the current epoch.
func (f *FSM) Epoch() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.epoch
}

// Topology returns a copy of the topology, with only the named table when
// table is not empty (TABLE_NOT_FOUND when there is none). The tables are
// without their credentials (tableauth.Strip).
func (f *FSM) Topology(table string) (*zppb.Topology, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	topo := &zppb.Topology{Epoch: f.st.epoch, Nodes: cloneAll(f.st.sortedNodes())}
	if table == "" {
		topo.Tables = cloneAll(tableauth.StripAll(f.st.sortedTables()))
		return topo, nil
	}
	t := f.st.tables[table]
	if t == nil {
		err := status.New(zppb.Code_TABLE_NOT_FOUND, "table %q does not exist", table)
		err.Epoch = f.st.epoch
		return nil, err
	}
	topo.Tables = []*zppb.Table{proto.Clone(tableauth.Strip(t)).(*zppb.Table)}
	return topo, nil
}

// Tables returns copies of the tables sorted by name, and the epoch,
// without their credentials (tableauth.Strip).
func (f *FSM) Tables() ([]*zppb.Table, uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return cloneAll(tableauth.StripAll(f.st.sortedTables())), f.st.epoch
}

// SplitSizedTables returns copies of the tables with a split_size (the
// automatic split's), passwords stripped, and the epoch: the scheduler
// looks at them every few seconds, and copying every table for it would
// cost a cluster of many partitions that splits none.
func (f *FSM) SplitSizedTables() ([]*zppb.Table, uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []*zppb.Table
	for _, t := range f.st.sortedTables() {
		if t.SplitSize > 0 {
			out = append(out, t)
		}
	}
	return cloneAll(tableauth.StripAll(out)), f.st.epoch
}

// Credentials returns copies of a table's credentials (verifiers
// included) and its created_epoch; TABLE_NOT_FOUND when there is none.
func (f *FSM) Credentials(table string) ([]*zppb.TableCredential, uint64, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t := f.st.tables[table]
	if t == nil {
		return nil, 0, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q does not exist", table)
	}
	return cloneAll(t.Credentials), t.CreatedEpoch, nil
}

// SetTableCredentials returns the command that adds and removes (by id)
// passwords of the table created at createdEpoch.
func SetTableCredentials(table string, createdEpoch uint64, add []*zppb.TableCredential, remove []string) *zppb.MetaCommand {
	return &zppb.MetaCommand{Cmd: &zppb.MetaCommand_SetTableCredentials{SetTableCredentials: &zppb.SetTableCredentialsCommand{
		Table: table, CreatedEpoch: createdEpoch, Add: add, Remove: remove}}}
}

// Nodes returns copies of the nodes sorted by address, and the epoch.
func (f *FSM) Nodes() ([]*zppb.Node, uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return cloneAll(f.st.sortedNodes()), f.st.epoch
}

// Node returns a copy of the node at addr, or nil.
func (f *FSM) Node(addr string) *zppb.Node {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if n := f.st.nodes[addr]; n != nil {
		return proto.Clone(n).(*zppb.Node)
	}
	return nil
}

// Orphan is a partition whose master is a DOWN node.
type Orphan struct {
	Table     string
	Partition *zppb.Partition
	Master    *zppb.Node
}

// Orphans returns copies of the partitions whose master is DOWN, with that
// master, and the addresses of the UP nodes. It copies nothing else: the
// leader asks on every check for a failover, and copying the whole
// topology (100,000 replicas) each time would cost it a core.
func (f *FSM) Orphans() ([]Orphan, map[string]bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	up := make(map[string]bool, len(f.st.nodes))
	var down map[string]*zppb.Node
	for addr, n := range f.st.nodes {
		switch n.State {
		case zppb.NodeState_UP:
			up[addr] = true
		case zppb.NodeState_DOWN:
			if down == nil {
				down = make(map[string]*zppb.Node)
			}
			down[addr] = n
		}
	}
	if down == nil {
		return nil, up
	}
	var out []Orphan
	for _, t := range f.st.sortedTables() {
		for _, p := range t.Partitions {
			if m := down[p.Master]; m != nil {
				out = append(out, Orphan{Table: t.Name, Partition: proto.Clone(p).(*zppb.Partition), Master: proto.Clone(m).(*zppb.Node)})
			}
		}
	}
	return out, up
}

func cloneAll[M proto.Message](ms []M) []M {
	out := make([]M, len(ms))
	for i, m := range ms {
		out[i] = proto.Clone(m).(M)
	}
	return out
}

// withoutVerifiers is cmd as it may be logged: a command carrying table
// password verifiers is copied without their salts and hashes.
func withoutVerifiers(cmd *zppb.MetaCommand) *zppb.MetaCommand {
	var creds []*zppb.TableCredential
	switch c := cmd.GetCmd().(type) {
	case *zppb.MetaCommand_CreateTable:
		creds = c.CreateTable.GetTable().GetCredentials()
	case *zppb.MetaCommand_SetTableCredentials:
		creds = c.SetTableCredentials.GetAdd()
	}
	if len(creds) == 0 {
		return cmd
	}
	cmd = proto.Clone(cmd).(*zppb.MetaCommand)
	switch c := cmd.GetCmd().(type) {
	case *zppb.MetaCommand_CreateTable:
		c.CreateTable.Table.Credentials = publicAll(c.CreateTable.Table.Credentials)
	case *zppb.MetaCommand_SetTableCredentials:
		c.SetTableCredentials.Add = publicAll(c.SetTableCredentials.Add)
	}
	return cmd
}

func publicAll(creds []*zppb.TableCredential) []*zppb.TableCredential {
	out := make([]*zppb.TableCredential, len(creds))
	for i, c := range creds {
		out[i] = tableauth.Public(c)
	}
	return out
}
