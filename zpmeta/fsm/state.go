package fsm

import (
	"cmp"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/placement"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Result is what applying one command gives: the value of
// raft.ApplyFuture.Response() for every entry.
type Result struct {
	// Epoch is the epoch after the command.
	Epoch uint64
	// Changed reports whether the command changed the state (and so the
	// epoch). A valid command that asks for what already is changes nothing.
	Changed bool
	// Table is the table as created, for CreateTable.
	Table *zppb.Table
	// Moves are the moves queued, with their ids, for AddMoves; the moves
	// cancelled, for CancelMoves.
	Moves []*zppb.Move
	// NotCancelled are the moves CancelMoves named but left as they are.
	NotCancelled []*zppb.Move
	// Err is why the command was rejected; the state is then unchanged.
	Err error
}

// state is the topology. It is owned by FSM, which locks around it; the
// methods here are deterministic functions of the state and the command,
// which is what keeps the members identical.
type state struct {
	epoch      uint64
	tables     map[string]*zppb.Table
	nodes      map[string]*zppb.Node
	moves      map[uint64]*zppb.Move
	nextMoveID uint64
	// tableEpochs and nodeEpochs are the epoch of each table's and node's
	// last change, and nodesRemoved that of the last removal of nodes, so
	// that PULL can answer a delta (delta.go).
	tableEpochs map[string]uint64
	// tableMetaEpochs is the epoch of each table's last change of its own
	// fields (creation, quota), and partEpochs that of each partition's
	// (by id), so that a delta may carry only the partitions changed.
	// Neither is in the snapshot: a restored state counts every partition
	// as changed at its table's last change.
	tableMetaEpochs map[string]uint64
	partEpochs      map[string][]uint64
	nodeEpochs      map[string]uint64
	nodesRemoved    uint64
	// schedule is the scheduler's settings (nil: all defaults) and events
	// its last decisions (schedule.go).
	schedule *zppb.Schedule
	events   []*zppb.ScheduleEvent
}

func newState() *state {
	return &state{tables: make(map[string]*zppb.Table), nodes: make(map[string]*zppb.Node),
		moves: make(map[uint64]*zppb.Move), tableEpochs: make(map[string]uint64), nodeEpochs: make(map[string]uint64),
		tableMetaEpochs: make(map[string]uint64), partEpochs: make(map[string][]uint64)}
}

// apply validates cmd against the state and applies it. It mutates nothing
// unless the whole command is valid.
func (s *state) apply(cmd *zppb.MetaCommand) Result {
	var err error
	var changed bool
	var table *zppb.Table
	var moves, notCancelled []*zppb.Move
	// What a change touches is read before the command runs: a finished
	// move may be pruned by it.
	touched := s.touches(cmd)
	switch c := cmd.GetCmd().(type) {
	case *zppb.MetaCommand_RegisterNode:
		changed, err = s.registerNode(c.RegisterNode)
	case *zppb.MetaCommand_SetNodeState:
		changed, err = s.setNodeState(c.SetNodeState)
	case *zppb.MetaCommand_CreateTable:
		table, err = s.createTable(c.CreateTable)
		changed = err == nil
	case *zppb.MetaCommand_DropTable:
		err = s.dropTable(c.DropTable)
		changed = err == nil
	case *zppb.MetaCommand_SetMasters:
		err = s.setMasters(c.SetMasters)
		changed = err == nil
	case *zppb.MetaCommand_AddMoves:
		// Queueing moves changes no topology: no epoch bump.
		moves, err = s.addMoves(c.AddMoves)
		if err == nil {
			s.recordEvent(c.AddMoves.GetEvent(), moves)
		}
	case *zppb.MetaCommand_StepMove:
		changed, err = s.stepMove(c.StepMove)
	case *zppb.MetaCommand_RemoveNodes:
		err = s.removeNodes(c.RemoveNodes)
		changed = err == nil
	case *zppb.MetaCommand_SetQuota:
		changed, err = s.setQuota(c.SetQuota)
	case *zppb.MetaCommand_FinishRestore:
		changed, err = s.finishRestore(c.FinishRestore)
	case *zppb.MetaCommand_CancelMoves:
		changed, moves, notCancelled, err = s.cancelMoves(c.CancelMoves)
	case *zppb.MetaCommand_CordonNodes:
		changed, err = s.cordonNodes(c.CordonNodes)
	case *zppb.MetaCommand_SetSchedule:
		err = s.setSchedule(c.SetSchedule)
	case *zppb.MetaCommand_SetTableCredentials:
		err = s.setTableCredentials(c.SetTableCredentials)
		changed = err == nil
	default:
		err = status.New(zppb.Code_INVALID_ARGUMENT, "unknown meta command %T", c)
	}
	if err != nil {
		return Result{Epoch: s.epoch, Err: err}
	}
	if changed {
		s.epoch++
		s.stamp(touched)
		if table != nil {
			// The creation is the change that made this epoch.
			table.CreatedEpoch = s.epoch
			table = proto.Clone(table).(*zppb.Table)
		}
	}
	return Result{Epoch: s.epoch, Changed: changed, Table: table, Moves: moves, NotCancelled: notCancelled}
}

// nodeChange returns the RegisterNode command that makes the node's record
// say what want says (a PING's attributes), nil when it already does.
func (s *state) nodeChange(want *zppb.RegisterNodeCommand) (*zppb.RegisterNodeCommand, error) {
	if err := topo.ValidateNodeAddr(want.GetAddr()); err != nil {
		return nil, err
	}
	if ra := want.GetRedisAddr(); ra != "" {
		if err := topo.ValidateNodeAddr(ra); err != nil {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "RESP address: %v", err)
		}
	}
	c := &zppb.RegisterNodeCommand{Addr: want.GetAddr(), Zone: want.GetZone(), Rack: want.GetRack(),
		Weight: cmp.Or(want.GetWeight(), topo.DefaultWeight), RedisAddr: want.GetRedisAddr()}
	if n := s.nodes[c.Addr]; n != nil && n.Zone == c.Zone && n.Rack == c.Rack && n.Weight == c.Weight && n.RedisAddr == c.RedisAddr {
		return nil, nil
	}
	return c, nil
}

func (s *state) registerNode(c *zppb.RegisterNodeCommand) (bool, error) {
	change, err := s.nodeChange(c)
	if err != nil || change == nil {
		return false, err
	}
	n := s.nodes[change.Addr]
	if n == nil {
		n = &zppb.Node{Addr: change.Addr, State: zppb.NodeState_UP}
		s.nodes[n.Addr] = n
	}
	n.Zone, n.Rack, n.Weight, n.RedisAddr = change.Zone, change.Rack, change.Weight, change.RedisAddr
	return true, nil
}

// cordonNodes sets the cordoned flag of the nodes, all or none.
func (s *state) cordonNodes(c *zppb.CordonNodesCommand) (changed bool, err error) {
	if len(c.GetNodes()) == 0 {
		return false, status.New(zppb.Code_INVALID_ARGUMENT, "no nodes")
	}
	for _, a := range c.GetNodes() {
		if s.nodes[a] == nil {
			return false, status.New(zppb.Code_NODE_NOT_FOUND, "node %q is not registered", a)
		}
	}
	for _, a := range c.GetNodes() {
		if n := s.nodes[a]; n.Cordoned != c.GetCordoned() {
			n.Cordoned = c.GetCordoned()
			changed = true
		}
	}
	return changed, nil
}

func (s *state) setNodeState(c *zppb.SetNodeStateCommand) (bool, error) {
	n := s.nodes[c.GetAddr()]
	if n == nil {
		return false, status.New(zppb.Code_NODE_NOT_FOUND, "node %q is not registered", c.GetAddr())
	}
	switch c.GetState() {
	case zppb.NodeState_UP, zppb.NodeState_DOWN:
	default:
		return false, status.New(zppb.Code_INVALID_ARGUMENT, "node state %v: want UP or DOWN", c.GetState())
	}
	if n.State == c.GetState() {
		return false, nil
	}
	n.State = c.GetState()
	n.DownEpoch, n.DownSinceUnixMs = 0, 0
	if n.State == zppb.NodeState_DOWN {
		// apply bumps the epoch for this change: the decision is that
		// epoch, which the node can only learn from after it.
		n.DownEpoch = s.epoch + 1
		n.DownSinceUnixMs = c.GetNowMs()
	}
	return true, nil
}

// setMasters applies every change of c or, when one is invalid, none.
func (s *state) setMasters(c *zppb.SetMastersCommand) error {
	if len(c.GetChanges()) == 0 {
		return status.New(zppb.Code_INVALID_ARGUMENT, "no master changes")
	}
	type target struct {
		p     *zppb.Partition
		slave int
	}
	targets := make([]target, 0, len(c.GetChanges()))
	seen := make(map[*zppb.Partition]bool)
	for _, ch := range c.GetChanges() {
		t := s.tables[ch.GetTable()]
		if t == nil {
			return status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found", ch.GetTable())
		}
		if ch.GetPartition() >= uint32(len(t.Partitions)) {
			return status.New(zppb.Code_INVALID_ARGUMENT, "table %q has no partition %d", ch.GetTable(), ch.GetPartition())
		}
		p := t.Partitions[ch.GetPartition()]
		if seen[p] {
			return status.New(zppb.Code_INVALID_ARGUMENT, "partition %s/%d changed twice", ch.GetTable(), ch.GetPartition())
		}
		seen[p] = true
		if p.Term != ch.GetExpectedTerm() {
			return status.New(zppb.Code_STALE_EPOCH, "partition %s/%d is at term %d, not %d", ch.GetTable(), ch.GetPartition(), p.Term, ch.GetExpectedTerm())
		}
		i := slices.Index(p.Slaves, ch.GetNewMaster())
		if i < 0 {
			return status.New(zppb.Code_INVALID_ARGUMENT, "%q is not a slave of partition %s/%d", ch.GetNewMaster(), ch.GetTable(), ch.GetPartition())
		}
		targets = append(targets, target{p, i})
	}
	for _, t := range targets {
		old := t.p.Master
		t.p.Master = t.p.Slaves[t.slave]
		if old == "" {
			t.p.Slaves = slices.Delete(t.p.Slaves, t.slave, t.slave+1)
		} else {
			t.p.Slaves[t.slave] = old
		}
		t.p.Term++
		// A failover ends any SLOWDOWN/STUCK of a move in progress, and
		// the PREPARE of a split (the new master logs no fence); the move
		// notices the new term and fails.
		t.p.State = zppb.PartitionState_ACTIVE
		t.p.Split = nil
	}
	return nil
}

// checkCreateTable checks a request against the state, in the order a client
// can act on: bad arguments, then a stale epoch, then a name clash.
func (s *state) checkCreateTable(name string, partitions, replicas, minSync uint32, expectedEpoch uint64) error {
	if err := topo.ValidateTableShape(name, partitions, replicas, minSync); err != nil {
		return err
	}
	if err := checkEpoch(expectedEpoch, s.epoch); err != nil {
		return err
	}
	if s.tables[name] != nil {
		return status.New(zppb.Code_TABLE_EXISTS, "table %q exists", name)
	}
	return nil
}

func (s *state) createTable(c *zppb.CreateTableCommand) (*zppb.Table, error) {
	t := c.GetTable()
	if t == nil {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "create table without a table")
	}
	if err := s.checkCreateTable(t.GetName(), t.GetPartitionCount(), t.GetReplicas(), t.GetMinSyncReplicas(), c.GetExpectedEpoch()); err != nil {
		return nil, err
	}
	if err := topo.ValidateSplitSize(t.GetSplitSize()); err != nil {
		return nil, err
	}
	// The placement came from the leader; check it rather than trust it.
	if len(t.GetPartitions()) != int(t.GetPartitionCount()) {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "table %q has %d partitions placed, declares %d", t.GetName(), len(t.GetPartitions()), t.GetPartitionCount())
	}
	for i, p := range t.GetPartitions() {
		if p.GetId() != uint32(i) {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "partition %d has id %d", i, p.GetId())
		}
		replicas := append([]string{p.GetMaster()}, p.GetSlaves()...)
		if len(replicas) != int(t.GetReplicas()) {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "partition %d has %d replicas, table wants %d", i, len(replicas), t.GetReplicas())
		}
		for j, a := range replicas {
			if s.nodes[a] == nil {
				return nil, status.New(zppb.Code_INVALID_ARGUMENT, "partition %d is placed on unknown node %q", i, a)
			}
			if slices.Contains(replicas[:j], a) {
				return nil, status.New(zppb.Code_INVALID_ARGUMENT, "partition %d has two replicas on %q", i, a)
			}
		}
	}
	if err := checkCredentials(t.GetName(), t.GetCredentials()); err != nil {
		return nil, err
	}
	t = proto.Clone(t).(*zppb.Table)
	t.Protected = len(t.Credentials) > 0
	for _, p := range t.Partitions {
		p.State = zppb.PartitionState_ACTIVE
		p.Term = placement.InitialTerm
	}
	// A new table is laid out evenly, and says so: ranges recorded now
	// stay true when a split gives partitions ranges out of id order. A
	// member of an older release applying the same entry records none,
	// and its readers derive the same ranges (topo.SlotRange).
	topo.SetEvenSlotRanges(t.Partitions)
	s.tables[t.Name] = t
	return t, nil
}

// finishRestore clears a table's restoring flag; a table without one is
// left as it is (a retry of a FINISH_RESTORE that went through).
func (s *state) finishRestore(c *zppb.FinishRestoreCommand) (bool, error) {
	t := s.tables[c.GetTable()]
	if t == nil || (c.GetCreatedEpoch() != 0 && c.GetCreatedEpoch() != t.GetCreatedEpoch()) {
		return false, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q does not exist", c.GetTable())
	}
	if !t.Restoring {
		return false, nil
	}
	t.Restoring = false
	return true, nil
}

func (s *state) setQuota(c *zppb.SetQuotaCommand) (bool, error) {
	if err := checkEpoch(c.GetExpectedEpoch(), s.epoch); err != nil {
		return false, err
	}
	t := s.tables[c.GetTable()]
	if t == nil {
		return false, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q does not exist", c.GetTable())
	}
	changed := false
	if c.SplitSize != nil {
		if err := topo.ValidateSplitSize(c.GetSplitSize()); err != nil {
			return false, err
		}
		changed = t.SplitSize != c.GetSplitSize()
		t.SplitSize = c.GetSplitSize()
		if c.Quota == nil {
			return changed, nil // the split size alone
		}
	}
	q := c.GetQuota()
	if q.GetOpsPerSec() == 0 && q.GetBytesPerSec() == 0 {
		q = nil // unlimited
	}
	if proto.Equal(t.Quota, q) {
		return changed, nil
	}
	if q == nil {
		t.Quota = nil
	} else {
		t.Quota = proto.Clone(q).(*zppb.Quota)
	}
	return true, nil
}

// checkCredentials checks a table's passwords (verifiers) as they would
// be: each valid, no two with one id, at most tableauth.MaxCredentials.
func checkCredentials(table string, creds []*zppb.TableCredential) error {
	if len(creds) > tableauth.MaxCredentials {
		return status.New(zppb.Code_INVALID_ARGUMENT, "table %q would have %d passwords, at most %d", table, len(creds), tableauth.MaxCredentials)
	}
	for i, c := range creds {
		if err := tableauth.Validate(c); err != nil {
			return err
		}
		for _, o := range creds[:i] {
			if o.GetId() == c.GetId() {
				return status.New(zppb.Code_INVALID_ARGUMENT, "table %q has password %s twice", table, c.GetId())
			}
		}
	}
	return nil
}

// setTableCredentials adds and removes a table's passwords, all or none.
// The last password cannot be removed: a table once protected stays so
// (opening it by mistake would be worse than having to add one first).
func (s *state) setTableCredentials(c *zppb.SetTableCredentialsCommand) error {
	t := s.tables[c.GetTable()]
	if t == nil || (c.GetCreatedEpoch() != 0 && c.GetCreatedEpoch() != t.GetCreatedEpoch()) {
		return status.New(zppb.Code_TABLE_NOT_FOUND, "table %q does not exist", c.GetTable())
	}
	if len(c.GetAdd()) == 0 && len(c.GetRemove()) == 0 {
		return status.New(zppb.Code_INVALID_ARGUMENT, "no password to add or remove")
	}
	var creds []*zppb.TableCredential
	for _, id := range c.GetRemove() {
		if !slices.ContainsFunc(t.Credentials, func(cr *zppb.TableCredential) bool { return cr.GetId() == id }) {
			return status.New(zppb.Code_NOT_FOUND, "table %q has no password %s", c.GetTable(), id)
		}
	}
	for _, cr := range t.Credentials {
		if !slices.Contains(c.GetRemove(), cr.GetId()) {
			creds = append(creds, cr)
		}
	}
	for _, cr := range c.GetAdd() {
		creds = append(creds, proto.Clone(cr).(*zppb.TableCredential))
	}
	if len(creds) == 0 {
		return status.New(zppb.Code_INVALID_ARGUMENT, "table %q would be left without a password: add the new one before removing the last", c.GetTable())
	}
	if err := checkCredentials(c.GetTable(), creds); err != nil {
		return err
	}
	t.Credentials, t.Protected = creds, true
	return nil
}

func (s *state) checkDropTable(name string, expectedEpoch uint64) error {
	if err := topo.ValidateTableName(name); err != nil {
		return err
	}
	if err := checkEpoch(expectedEpoch, s.epoch); err != nil {
		return err
	}
	if s.tables[name] == nil {
		return status.New(zppb.Code_TABLE_NOT_FOUND, "table %q does not exist", name)
	}
	return nil
}

func (s *state) dropTable(c *zppb.DropTableCommand) error {
	if err := s.checkDropTable(c.GetName(), c.GetExpectedEpoch()); err != nil {
		return err
	}
	delete(s.tables, c.GetName())
	s.cancelTableMoves(c.GetName(), 0)
	return nil
}

// sortedTables returns the tables sorted by name, not copied.
func (s *state) sortedTables() []*zppb.Table {
	out := make([]*zppb.Table, 0, len(s.tables))
	for _, t := range s.tables {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *zppb.Table) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// sortedNodes returns the nodes sorted by address, not copied.
func (s *state) sortedNodes() []*zppb.Node {
	out := make([]*zppb.Node, 0, len(s.nodes))
	for _, n := range s.nodes {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *zppb.Node) int { return cmp.Compare(a.Addr, b.Addr) })
	return out
}

// snapshot returns the whole state as a message, sharing the state's
// messages: marshal it before the state changes.
func (s *state) snapshot() *zppb.MetaSnapshot {
	return &zppb.MetaSnapshot{Epoch: s.epoch, Tables: s.sortedTables(), Nodes: s.sortedNodes(), Moves: s.sortedMoves(), NextMoveId: s.nextMoveID,
		TableChangedEpochs: maps.Clone(s.tableEpochs), NodeChangedEpochs: maps.Clone(s.nodeEpochs), NodesRemovedEpoch: s.nodesRemoved,
		Schedule: s.schedule, ScheduleEvents: s.events}
}

// stateFromSnapshot rebuilds a state, rejecting a snapshot that could not
// have come from a state.
func stateFromSnapshot(snap *zppb.MetaSnapshot) (*state, error) {
	s := newState()
	s.epoch = snap.GetEpoch()
	for _, n := range snap.GetNodes() {
		if n.GetAddr() == "" || s.nodes[n.GetAddr()] != nil {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "snapshot has an empty or duplicate node %q", n.GetAddr())
		}
		s.nodes[n.Addr] = n
	}
	for _, t := range snap.GetTables() {
		if t.GetName() == "" || s.tables[t.GetName()] != nil {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "snapshot has an empty or duplicate table %q", t.GetName())
		}
		s.tables[t.Name] = t
	}
	for _, m := range snap.GetMoves() {
		if m.GetId() == 0 || s.moves[m.GetId()] != nil || m.GetId() > snap.GetNextMoveId() {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "snapshot has a bad or duplicate move %d", m.GetId())
		}
		s.moves[m.Id] = m
	}
	s.nextMoveID = snap.GetNextMoveId()
	s.schedule, s.events = snap.GetSchedule(), snap.GetScheduleEvents()
	// A snapshot without change epochs (from a meta before PULL deltas)
	// says nothing about when things changed: everything counts as changed
	// at its epoch, so a delta against an older epoch carries it all.
	s.nodesRemoved = cmp.Or(snap.GetNodesRemovedEpoch(), s.epoch)
	stamped := func(e uint64) uint64 {
		if e == 0 || e > s.epoch {
			return s.epoch
		}
		return e
	}
	for name, t := range s.tables {
		s.tableEpochs[name] = stamped(snap.GetTableChangedEpochs()[name])
		s.stampWhole(name, t, s.tableEpochs[name])
	}
	for addr := range s.nodes {
		s.nodeEpochs[addr] = stamped(snap.GetNodeChangedEpochs()[addr])
	}
	return s, nil
}
