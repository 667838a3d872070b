package clienttest

import (
	"cmp"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// The fake meta servers queue topology moves (ADD_SLAVE, REMOVE_SLAVE,
// SET_MASTER, MIGRATE, REBALANCE) and answer CANCEL_MOVE, MOVE_STATUS and
// REMOVE_NODES like the real leader (docs/topology.md), with the same
// checks and status codes, and change the topology at the same steps:
// the target joins as a slave when it starts catching up, the partition
// goes SLOWDOWN and STUCK, the handover makes the target master (term +1)
// and the source is removed last; a failed or cancelled move is rolled
// back. Each step that changes the topology bumps the epoch.
//
// Unlike the real leader, the fakes do not run moves in the background:
// every MOVE_STATUS answer first advances each unfinished move one step of
// its script (see MoveScript), so a test decides what happens and a
// client that follows its moves sees every state.

// MoveStep is one state a move goes through, with the progress MOVE_STATUS
// reports while it is in it.
type MoveStep struct {
	State                   zppb.MoveState
	BytesCopied, BytesTotal uint64
	RecordsBehind           uint64
	BytesPerSec             float64
	EtaMs                   int64
	// StuckMs is how long the partition was STUCK; kept once set.
	StuckMs int64
	// Error is the move's error, for FAILED and CANCELLED.
	Error string
}

// MoveScript returns the states a newly queued move goes through after
// PENDING, given the partition as it was when the move was queued. The
// last step should be terminal (DONE, FAILED or CANCELLED); a move whose
// script runs out stays in its last state.
type MoveScript func(m *zppb.Move, p *zppb.Partition) []MoveStep

// DefaultMoveScript is the real state machine's path for each kind, with
// some progress on the way: a migration or added slave copies 1000 bytes
// in two steps; a master hands over through SLOWDOWN and STUCK (80 ms).
func DefaultMoveScript(m *zppb.Move, p *zppb.Partition) []MoveStep {
	copying := []MoveStep{
		{State: zppb.MoveState_MOVE_CATCHING_UP, BytesTotal: 1000, RecordsBehind: 500},
		{State: zppb.MoveState_MOVE_CATCHING_UP, BytesCopied: 500, BytesTotal: 1000, BytesPerSec: 1000, EtaMs: 500, RecordsBehind: 300},
	}
	handover := []MoveStep{
		{State: zppb.MoveState_MOVE_SLOWDOWN, RecordsBehind: 20},
		{State: zppb.MoveState_MOVE_STUCK},
	}
	switch m.GetKind() {
	case zppb.MoveKind_MIGRATE:
		steps := slices.Clone(copying)
		if p.GetMaster() == m.GetFrom() {
			steps = append(steps, handover...)
			return append(steps, MoveStep{State: zppb.MoveState_MOVE_REMOVING, StuckMs: 80}, MoveStep{State: zppb.MoveState_MOVE_DONE})
		}
		return append(steps, MoveStep{State: zppb.MoveState_MOVE_REMOVING}, MoveStep{State: zppb.MoveState_MOVE_DONE})
	case zppb.MoveKind_SETMASTER:
		steps := append([]MoveStep{{State: zppb.MoveState_MOVE_CATCHING_UP}}, handover...)
		return append(steps, MoveStep{State: zppb.MoveState_MOVE_DONE, StuckMs: 80})
	case zppb.MoveKind_ADDSLAVE:
		return append(slices.Clone(copying), MoveStep{State: zppb.MoveState_MOVE_DONE})
	}
	return []MoveStep{{State: zppb.MoveState_MOVE_DONE}}
}

// FailingMoveScript is DefaultMoveScript cut short after step steps
// (counted from 1), failing with msg there: the move is rolled back.
func FailingMoveScript(step int, msg string) MoveScript {
	return func(m *zppb.Move, p *zppb.Partition) []MoveStep {
		steps := DefaultMoveScript(m, p)
		steps = steps[:min(max(step-1, 0), len(steps)-1)]
		return append(steps, MoveStep{State: zppb.MoveState_MOVE_FAILED, Error: msg})
	}
}

// Rebalancer plans a REBALANCE against the topology: the moves to queue,
// without ids.
type Rebalancer func(req *zppb.RebalanceRequest, topo *zppb.Topology) ([]*zppb.Move, error)

// fakeMove is a queued move and what is left of its script.
type fakeMove struct {
	move *zppb.Move
	rest []MoveStep
}

// SetMoveScript decides how moves queued from now on progress; nil
// restores DefaultMoveScript.
func (c *Cluster) SetMoveScript(s MoveScript) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.moveScript = s
}

// SetRebalancer replaces the planner of REBALANCE; nil restores
// SimpleRebalance.
func (c *Cluster) SetRebalancer(r Rebalancer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rebalancer = r
}

// Moves returns copies of every move queued, by id, as MOVE_STATUS last
// reported them.
func (c *Cluster) Moves() []*zppb.Move {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*zppb.Move, len(c.moves))
	for i, fm := range c.moves {
		out[i] = proto.Clone(fm.move).(*zppb.Move)
	}
	return out
}

// StepMoves advances every unfinished move one step, as a MOVE_STATUS
// does.
func (c *Cluster) StepMoves() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stepMovesLocked()
}

func terminal(st zppb.MoveState) bool {
	return st == zppb.MoveState_MOVE_DONE || st == zppb.MoveState_MOVE_FAILED || st == zppb.MoveState_MOVE_CANCELLED
}

func (c *Cluster) partitionLocked(table string, id uint32) (*zppb.Partition, error) {
	for _, tb := range c.topo.Tables {
		if tb.Name != table {
			continue
		}
		for _, p := range tb.Partitions {
			if p.Id == id {
				return p, nil
			}
		}
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "table %q has no partition %d", table, id)
	}
	return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q does not exist", table)
}

func (c *Cluster) upNodeLocked(addr string) error {
	for _, n := range c.topo.Nodes {
		if n.Addr == addr {
			if n.State != zppb.NodeState_UP {
				return status.New(zppb.Code_INVALID_ARGUMENT, "node %q is %v", addr, n.State)
			}
			return nil
		}
	}
	return status.New(zppb.Code_NODE_NOT_FOUND, "node %q is not registered", addr)
}

func staleEpoch(expected, current uint64) error {
	if expected != 0 && expected != current {
		err := status.New(zppb.Code_STALE_EPOCH, "expected epoch %d, current is %d", expected, current)
		err.Epoch = current
		return err
	}
	return nil
}

// checkMovesLocked checks a batch of new moves as the real leader does,
// filling in a SETMASTER's From.
func (c *Cluster) checkMovesLocked(moves []*zppb.Move, expectedEpoch uint64) error {
	if len(moves) == 0 {
		return status.New(zppb.Code_INVALID_ARGUMENT, "no moves")
	}
	if err := staleEpoch(expectedEpoch, c.topo.Epoch); err != nil {
		return err
	}
	busy := map[partKey]uint64{}
	for _, fm := range c.moves {
		if !terminal(fm.move.State) {
			busy[partKey{fm.move.Table, fm.move.Partition}] = fm.move.Id
		}
	}
	for _, m := range moves {
		p, err := c.partitionLocked(m.Table, m.Partition)
		if err != nil {
			return err
		}
		k := partKey{m.Table, m.Partition}
		if id, ok := busy[k]; ok {
			return status.New(zppb.Code_INVALID_ARGUMENT, "partition %s/%d has move %d in progress", m.Table, m.Partition, id)
		}
		replicas := append([]string{p.Master}, p.Slaves...)
		switch m.Kind {
		case zppb.MoveKind_MIGRATE:
			if !slices.Contains(replicas, m.From) {
				return status.New(zppb.Code_INVALID_ARGUMENT, "%q holds no replica of %s/%d", m.From, m.Table, m.Partition)
			}
			if slices.Contains(replicas, m.To) {
				return status.New(zppb.Code_INVALID_ARGUMENT, "%q already holds a replica of %s/%d", m.To, m.Table, m.Partition)
			}
			if err := c.upNodeLocked(m.To); err != nil {
				return err
			}
		case zppb.MoveKind_SETMASTER:
			if !slices.Contains(p.Slaves, m.To) {
				return status.New(zppb.Code_INVALID_ARGUMENT, "%q is not a slave of %s/%d", m.To, m.Table, m.Partition)
			}
			if err := c.upNodeLocked(m.To); err != nil {
				return err
			}
			m.From = p.Master
		case zppb.MoveKind_ADDSLAVE:
			if slices.Contains(replicas, m.To) {
				return status.New(zppb.Code_INVALID_ARGUMENT, "%q already holds a replica of %s/%d", m.To, m.Table, m.Partition)
			}
			if err := c.upNodeLocked(m.To); err != nil {
				return err
			}
		case zppb.MoveKind_REMOVESLAVE:
			if !slices.Contains(p.Slaves, m.From) {
				return status.New(zppb.Code_INVALID_ARGUMENT, "%q is not a slave of %s/%d", m.From, m.Table, m.Partition)
			}
		default:
			return status.New(zppb.Code_INVALID_ARGUMENT, "unknown move kind %v", m.Kind)
		}
		busy[k] = 0
	}
	return nil
}

// queueMoves checks and queues moves and answers with them as queued.
func (c *Cluster) queueMoves(moves []*zppb.Move, expectedEpoch uint64) *zppb.Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkMovesLocked(moves, expectedEpoch); err != nil {
		return c.errorLocked(err)
	}
	script := c.moveScript
	if script == nil {
		script = DefaultMoveScript
	}
	now := time.Now().UnixMilli()
	var out []*zppb.Move
	for _, m := range moves {
		c.nextMoveID++
		m.Id, m.State, m.Error, m.CreatedMs, m.UpdatedMs = c.nextMoveID, zppb.MoveState_MOVE_PENDING, "", now, now
		p, _ := c.partitionLocked(m.Table, m.Partition)
		c.moves = append(c.moves, &fakeMove{move: m, rest: script(proto.Clone(m).(*zppb.Move), proto.Clone(p).(*zppb.Partition))})
		out = append(out, proto.Clone(m).(*zppb.Move))
	}
	return movesResponse(out, c.topo.Epoch)
}

func movesResponse(moves []*zppb.Move, epoch uint64) *zppb.Response {
	return &zppb.Response{Epoch: epoch, Result: &zppb.Response_Moves{Moves: &zppb.MovesResponse{Moves: moves, Epoch: epoch}}}
}

func (c *Cluster) errorLocked(err error) *zppb.Response {
	resp := status.Response(err)
	resp.Epoch = c.topo.Epoch
	return resp
}

// stepMovesLocked advances every unfinished move one step of its script.
func (c *Cluster) stepMovesLocked() {
	now := time.Now().UnixMilli()
	for _, fm := range c.moves {
		if terminal(fm.move.State) || len(fm.rest) == 0 {
			continue
		}
		next := fm.rest[0]
		fm.rest = fm.rest[1:]
		c.transitionLocked(fm.move, next, now)
	}
}

// transitionLocked moves m to step s, changing the topology as the real
// state machine does at that step.
func (c *Cluster) transitionLocked(m *zppb.Move, s MoveStep, nowMs int64) {
	from, to := m.State, s.State
	p, err := c.partitionLocked(m.Table, m.Partition)
	changed := false
	switch {
	case err != nil:
		// The table went away under the move.
	case to == zppb.MoveState_MOVE_FAILED || to == zppb.MoveState_MOVE_CANCELLED:
		changed = rollback(m, p)
	case from == zppb.MoveState_MOVE_PENDING && to == zppb.MoveState_MOVE_CATCHING_UP &&
		(m.Kind == zppb.MoveKind_MIGRATE || m.Kind == zppb.MoveKind_ADDSLAVE):
		p.Slaves = append(p.Slaves, m.To)
		changed = true
	case to == zppb.MoveState_MOVE_SLOWDOWN && from != to:
		p.State = zppb.PartitionState_SLOWDOWN
		m.Term = p.Term
		changed = true
	case to == zppb.MoveState_MOVE_STUCK && from != to:
		p.State = zppb.PartitionState_STUCK
		changed = true
	case from == zppb.MoveState_MOVE_STUCK:
		// The handover.
		if i := slices.Index(p.Slaves, m.To); i >= 0 {
			p.Master, p.Slaves[i] = m.To, p.Master
			p.Term++
		}
		p.State = zppb.PartitionState_ACTIVE
		changed = true
		if to == zppb.MoveState_MOVE_DONE && m.Kind == zppb.MoveKind_MIGRATE {
			p.Slaves = slices.DeleteFunc(p.Slaves, func(s string) bool { return s == m.From })
		}
	case to == zppb.MoveState_MOVE_DONE && (m.Kind == zppb.MoveKind_MIGRATE || m.Kind == zppb.MoveKind_REMOVESLAVE):
		if i := slices.Index(p.Slaves, m.From); i >= 0 {
			p.Slaves = slices.Delete(p.Slaves, i, i+1)
			changed = true
		}
	}
	if changed {
		c.topo.Epoch++
	}
	m.State, m.UpdatedMs = to, nowMs
	if s.Error != "" {
		m.Error = s.Error
	}
	m.BytesCopied, m.BytesTotal, m.RecordsBehind, m.BytesPerSec, m.EtaMs = s.BytesCopied, s.BytesTotal, s.RecordsBehind, s.BytesPerSec, s.EtaMs
	if s.StuckMs > 0 {
		m.StuckMs = s.StuckMs
	}
}

// rollback undoes what a move not past its handover did.
func rollback(m *zppb.Move, p *zppb.Partition) bool {
	changed := false
	if p.State != zppb.PartitionState_ACTIVE && (m.State == zppb.MoveState_MOVE_SLOWDOWN || m.State == zppb.MoveState_MOVE_STUCK) {
		p.State = zppb.PartitionState_ACTIVE
		changed = true
	}
	if (m.Kind == zppb.MoveKind_MIGRATE || m.Kind == zppb.MoveKind_ADDSLAVE) && m.State != zppb.MoveState_MOVE_PENDING {
		if i := slices.Index(p.Slaves, m.To); i >= 0 {
			p.Slaves = slices.Delete(p.Slaves, i, i+1)
			changed = true
		}
	}
	return changed
}

// moveStatus advances the moves and lists them.
func (c *Cluster) moveStatus(r *zppb.MoveStatusRequest) *zppb.Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stepMovesLocked()
	var out []*zppb.Move
	for _, fm := range c.moves {
		if r.GetAll() || !terminal(fm.move.State) {
			out = append(out, proto.Clone(fm.move).(*zppb.Move))
		}
	}
	return movesResponse(out, c.topo.Epoch)
}

// cancelMove cancels one move or every move not past its handover.
func (c *Cluster) cancelMove(r *zppb.CancelMoveRequest) *zppb.Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now().UnixMilli()
	var out []*zppb.Move
	for _, fm := range c.moves {
		m := fm.move
		if terminal(m.State) || (r.GetId() != 0 && m.Id != r.GetId()) {
			continue
		}
		if m.State == zppb.MoveState_MOVE_REMOVING {
			if r.GetId() != 0 {
				return c.errorLocked(status.New(zppb.Code_INVALID_ARGUMENT, "move %d is past its handover and will finish", m.Id))
			}
			continue
		}
		c.transitionLocked(m, MoveStep{State: zppb.MoveState_MOVE_CANCELLED, Error: "cancelled by operator"}, now)
		fm.rest = nil
		out = append(out, proto.Clone(m).(*zppb.Move))
	}
	if r.GetId() != 0 && len(out) == 0 {
		return c.errorLocked(status.New(zppb.Code_INVALID_ARGUMENT, "no move %d in progress", r.GetId()))
	}
	return movesResponse(out, c.topo.Epoch)
}

// removeNodes forgets DOWN nodes that hold no replica.
func (c *Cluster) removeNodes(r *zppb.RemoveNodesRequest) *zppb.Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(r.GetNodes()) == 0 {
		return c.errorLocked(status.New(zppb.Code_INVALID_ARGUMENT, "no nodes to remove"))
	}
	if err := staleEpoch(r.GetExpectedEpoch(), c.topo.Epoch); err != nil {
		return c.errorLocked(err)
	}
	for _, addr := range r.GetNodes() {
		i := slices.IndexFunc(c.topo.Nodes, func(n *zppb.Node) bool { return n.Addr == addr })
		if i < 0 {
			return c.errorLocked(status.New(zppb.Code_NODE_NOT_FOUND, "node %q is not registered", addr))
		}
		if st := c.topo.Nodes[i].State; st != zppb.NodeState_DOWN {
			return c.errorLocked(status.New(zppb.Code_INVALID_ARGUMENT, "node %q is %v; only DOWN nodes can be removed", addr, st))
		}
		for _, tb := range c.topo.Tables {
			for _, p := range tb.Partitions {
				if p.Master == addr || slices.Contains(p.Slaves, addr) {
					return c.errorLocked(status.New(zppb.Code_INVALID_ARGUMENT, "node %q still holds a replica of %s/%d; move it first", addr, tb.Name, p.Id))
				}
			}
		}
	}
	c.topo.Nodes = slices.DeleteFunc(c.topo.Nodes, func(n *zppb.Node) bool { return slices.Contains(r.GetNodes(), n.Addr) })
	c.topo.Epoch++
	return &zppb.Response{Epoch: c.topo.Epoch, Result: &zppb.Response_RemoveNodes{RemoveNodes: &zppb.RemoveNodesResponse{Epoch: c.topo.Epoch}}}
}

// rebalance plans with the cluster's Rebalancer and queues the plan unless
// it is a dry run.
func (c *Cluster) rebalance(r *zppb.RebalanceRequest) *zppb.Response {
	c.mu.Lock()
	if err := staleEpoch(r.GetExpectedEpoch(), c.topo.Epoch); err != nil {
		defer c.mu.Unlock()
		return c.errorLocked(err)
	}
	plan := c.rebalancer
	if plan == nil {
		plan = SimpleRebalance
	}
	topo := proto.Clone(c.topo).(*zppb.Topology)
	epoch := c.topo.Epoch
	c.mu.Unlock()
	moves, err := plan(r, topo)
	if err != nil {
		resp := status.Response(err)
		resp.Epoch = epoch
		return resp
	}
	origin := map[zppb.RebalanceRequest_Mode]string{zppb.RebalanceRequest_EXPAND: "expand",
		zppb.RebalanceRequest_SHRINK: "shrink", zppb.RebalanceRequest_REPLACE: "replace"}[r.GetMode()]
	for _, m := range moves {
		m.Origin = cmp.Or(m.Origin, origin)
	}
	if r.GetDryRun() || len(moves) == 0 {
		return movesResponse(moves, epoch)
	}
	return c.queueMoves(moves, r.GetExpectedEpoch())
}

// SimpleRebalance is the fakes' default planner, not lib/placement's:
// REPLACE migrates every replica of nodes[0] to nodes[1]; SHRINK migrates
// each replica on the nodes to the UP node holding fewest replicas that
// lacks the partition; EXPAND migrates replicas from the UP node holding
// most to the one holding fewest until they differ by at most one. It
// ignores zones and masters.
func SimpleRebalance(r *zppb.RebalanceRequest, topo *zppb.Topology) ([]*zppb.Move, error) {
	type part struct {
		table string
		p     *zppb.Partition
	}
	var parts []part
	tables := slices.Clone(topo.Tables)
	slices.SortFunc(tables, func(a, b *zppb.Table) int { return cmp.Compare(a.Name, b.Name) })
	for _, tb := range tables {
		for _, p := range tb.Partitions {
			parts = append(parts, part{tb.Name, p})
		}
	}
	holds := func(p *zppb.Partition, addr string) bool { return p.Master == addr || slices.Contains(p.Slaves, addr) }
	load := map[string]int{}
	var up []string
	for _, n := range topo.Nodes {
		if n.State == zppb.NodeState_UP {
			up = append(up, n.Addr)
			load[n.Addr] = 0
		}
	}
	for _, pt := range parts {
		for _, a := range append([]string{pt.p.Master}, pt.p.Slaves...) {
			load[a]++
		}
	}
	migrate := func(pt part, from, to string) *zppb.Move {
		// The planned move shows in the partition, so the next pick sees it.
		if pt.p.Master == from {
			pt.p.Master = to
		} else if i := slices.Index(pt.p.Slaves, from); i >= 0 {
			pt.p.Slaves[i] = to
		}
		load[from]--
		load[to]++
		return &zppb.Move{Kind: zppb.MoveKind_MIGRATE, Table: pt.table, Partition: pt.p.Id, From: from, To: to}
	}
	var moves []*zppb.Move
	switch r.GetMode() {
	case zppb.RebalanceRequest_REPLACE:
		if len(r.GetNodes()) != 2 {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "REPLACE needs two nodes, got %d", len(r.GetNodes()))
		}
		from, to := r.Nodes[0], r.Nodes[1]
		if !slices.Contains(up, to) {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "node %q is not UP", to)
		}
		for _, pt := range parts {
			if holds(pt.p, from) {
				if holds(pt.p, to) {
					return nil, status.New(zppb.Code_INVALID_ARGUMENT, "%s/%d has replicas on both %s and %s", pt.table, pt.p.Id, from, to)
				}
				moves = append(moves, migrate(pt, from, to))
			}
		}
	case zppb.RebalanceRequest_SHRINK:
		if len(r.GetNodes()) == 0 {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "SHRINK needs nodes")
		}
		for _, pt := range parts {
			for _, from := range r.GetNodes() {
				if !holds(pt.p, from) {
					continue
				}
				to := ""
				for _, a := range up {
					if !slices.Contains(r.GetNodes(), a) && !holds(pt.p, a) && (to == "" || load[a] < load[to]) {
						to = a
					}
				}
				if to == "" {
					return nil, status.New(zppb.Code_NOT_ENOUGH_NODES, "no node left for %s/%d", pt.table, pt.p.Id)
				}
				moves = append(moves, migrate(pt, from, to))
			}
		}
	case zppb.RebalanceRequest_EXPAND:
		for {
			hi, lo := "", ""
			for _, a := range up {
				if hi == "" || load[a] > load[hi] {
					hi = a
				}
				if lo == "" || load[a] < load[lo] {
					lo = a
				}
			}
			if hi == "" || load[hi]-load[lo] <= 1 {
				break
			}
			i := slices.IndexFunc(parts, func(pt part) bool { return holds(pt.p, hi) && !holds(pt.p, lo) })
			if i < 0 {
				break
			}
			moves = append(moves, migrate(parts[i], hi, lo))
			parts = slices.Delete(parts, i, i+1) // one move per partition
		}
	}
	return moves, nil
}
