package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/placement"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/fsm"
)

// The scheduler runs on the leader and decides only through Raft: each
// decision is an AddMoves entry (origin "scheduler", a reason on every move,
// an event in the state), and it plans from the replicated state alone
// (moves in flight included), so a new leader resumes where the old one
// stopped and nothing is decided twice. Two duties, in priority order:
//
//   - repair: a node DOWN for the schedule's down-timeout has its replicas
//     rebuilt on other nodes (MIGRATE from the dead node), and a partition
//     with fewer replicas than its table asks for gets them back (ADDSLAVE);
//     targets are chosen by lib/placement's rules (zone, rack, weight),
//     never a node that does not receive (topo.Receives);
//   - automatic split: a partition of a table with a split_size whose
//     master reports more data than that is split (autosplit.go); sizes
//     come with PINGs, not through Raft, so a state that does not change
//     is looked at again for them every splitCheckEvery;
//   - master balance: when no move at all is in flight, the switchovers
//     lib/placement plans to spread masters by weight, a batch at a time.
//
// Limits: at most max-moves scheduler moves in flight, partitions with a
// move in flight are left alone, and the move loop runs at most
// max-moves-per-node moves involving one node. Paused, it decides nothing.

// scheduleTick is how often the leader looks for work.
const scheduleTick = time.Second

// missingPrefix names the placeholder nodes that stand, in a repair plan,
// for the replicas a partition lacks: the planner moves replicas off
// nodes that are not UP, so a move from a placeholder is a replica to add.
// No node address can start with it (lib/topo.ValidateNodeAddr).
const missingPrefix = "\x00missing-"

// scheduleLoop runs the scheduler until ctx ends (leadership lost). A plan
// runs the placement planner over every partition (a good part of a second
// at 100,000 replicas), so it plans again only when the state changed or a
// DOWN node's down-timeout ran out since the last plan.
func (s *Server) scheduleLoop(ctx context.Context) {
	t := time.NewTicker(scheduleTick)
	defer t.Stop()
	var (
		planned    bool
		applied    uint64
		due        time.Time
		splitCheck time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		a := s.fsm.Applied()
		if planned && !replan(applied, a, due, now) {
			if now.Sub(splitCheck) >= splitCheckEvery {
				splitCheck = now
				if err := s.autoSplitOnce(ctx, now); err != nil && ctx.Err() == nil && !errors.Is(err, errEpochMoved) {
					s.logger.Warn("scheduler", "err", err)
				}
			}
			continue
		}
		splitCheck = now
		applied = a
		var err error
		due, err = s.scheduleOnce(ctx, now)
		planned = err == nil
		// A state that changed under the plan is planned again next tick.
		if err != nil && ctx.Err() == nil && !errors.Is(err, errEpochMoved) {
			s.logger.Warn("scheduler", "err", err)
		}
	}
}

// replan reports whether a plan made when the state had had applied
// commands, with the next down-timeout running out at due (zero: none),
// may be out of date now that it has had current.
func replan(applied, current uint64, due, now time.Time) bool {
	return current != applied || !due.IsZero() && !now.Before(due)
}

// scheduleOnce makes the decisions the state calls for now, if any, and
// returns when the next down-timeout runs out (zero: none pending).
func (s *Server) scheduleOnce(ctx context.Context, now time.Time) (due time.Time, err error) {
	v, err := s.surveySchedule(now, false)
	if err != nil {
		return time.Time{}, err
	}
	for _, d := range v.down {
		if at := time.UnixMilli(d.RepairAtUnixMs); d.RepairAtUnixMs > 0 && at.After(now) && (due.IsZero() || at.Before(due)) {
			due = at
		}
	}
	if v.settings.Paused {
		return due, nil
	}
	if len(v.repairs) > 0 {
		return due, s.queueScheduled(ctx, v.repairs, v.epoch, "repair", v.repairSummary, now)
	}
	if len(v.splits) > 0 {
		s.fillSplitPointsBySize(ctx, v.splits)
		return due, s.queueScheduled(ctx, v.splits, v.epoch, "split", v.splitSummary, now)
	}
	if len(v.switchovers) > 0 && v.activeMoves == 0 {
		return due, s.queueScheduled(ctx, v.switchovers, v.epoch, "balance", v.balanceSummary, now)
	}
	return due, nil
}

// queueScheduled queues the scheduler's moves with their event, and tells
// the log.
func (s *Server) queueScheduled(ctx context.Context, moves []*zppb.Move, epoch uint64, kind, summary string, now time.Time) error {
	ev := &zppb.ScheduleEvent{UnixMs: now.UnixMilli(), Kind: kind, Message: summary}
	res, err := s.queueMovesEvent(ctx, moves, epoch, ev)
	if err != nil {
		if status.Code(err) == zppb.Code_STALE_EPOCH {
			return nil // the state moved on: plan again next tick
		}
		return fmt.Errorf("%s: %w", kind, err)
	}
	s.logger.Info("scheduler", "decision", kind, "moves", len(res.GetMoves().GetMoves()), "why", summary)
	return nil
}

// scheduleView is what the scheduler sees in the state at one epoch: what
// it would queue now and what SCHEDULE reports.
type scheduleView struct {
	settings fsm.Settings
	schedule *zppb.Schedule
	events   []*zppb.ScheduleEvent
	epoch    uint64

	down              []*zppb.DownNode
	underReplicated   []*zppb.PartitionShortfall
	activeMoves       int // not ended, any origin
	schedulerInFlight int

	repairs       []*zppb.Move
	repairSummary string
	// repairBlocked says why under-replicated partitions get no repair.
	repairBlocked string

	switchovers    []*zppb.Move
	imbalance      int // switchovers balance would make, budget aside
	balanceSummary string

	splits       []*zppb.Move
	splitSummary string
}

// errEpochMoved is returned when the state changed between two reads.
var errEpochMoved = errors.New("the epoch moved while reading the state")

// surveySchedule reads the state and plans. Master balance, a plan over
// every partition, is left out while moves are in flight (it waits for
// them anyway) unless whole asks for the whole view (SCHEDULE).
func (s *Server) surveySchedule(now time.Time, whole bool) (*scheduleView, error) {
	nodes, epoch := s.fsm.Nodes()
	tables, tepoch := s.fsm.Tables()
	if epoch != tepoch {
		return nil, errEpochMoved
	}
	sc, events := s.fsm.Schedule()
	v := &scheduleView{settings: fsm.Resolve(sc), schedule: sc, events: events, epoch: epoch}

	type part struct {
		table string
		id    uint32
	}
	busy := make(map[part]bool)
	for _, m := range s.fsm.Moves(false) {
		v.activeMoves++
		busy[part{m.Table, m.Partition}] = true
		if m.Origin == "scheduler" {
			v.schedulerInFlight++
		}
	}

	// Which DOWN nodes are dead for good (past the down-timeout).
	dead := make(map[string]string) // addr -> why
	held := make(map[string]uint32)
	for _, t := range tables {
		for _, p := range t.Partitions {
			for _, a := range topo.ReplicasOf(p) {
				held[a]++
			}
		}
	}
	leaderSince := s.live.leaderSince()
	for _, n := range nodes {
		if n.State != zppb.NodeState_DOWN {
			continue
		}
		since := time.UnixMilli(n.DownSinceUnixMs)
		if n.DownSinceUnixMs == 0 {
			// Marked DOWN by a leader that did not record when: count
			// from this leader's start.
			since = leaderSince
		}
		dn := &zppb.DownNode{Addr: n.Addr, DownSinceUnixMs: n.DownSinceUnixMs, Replicas: held[n.Addr]}
		if after := v.settings.RepairDownAfter; after >= 0 {
			at := since.Add(after)
			dn.RepairAtUnixMs = at.UnixMilli()
			if !now.Before(at) {
				dead[n.Addr] = fmt.Sprintf("node %s DOWN for %s (down-timeout %s)", n.Addr, now.Sub(since).Round(time.Second), after)
			}
		}
		v.down = append(v.down, dn)
	}

	v.planRepairs(nodes, tables, dead, func(table string, id uint32) bool { return busy[part{table, id}] })
	s.planAutoSplits(v, nodes, tables, func(k partKey) bool { return busy[part{k.table, k.id}] }, now)
	if whole || v.activeMoves == 0 {
		v.planBalance(nodes, tables)
	}
	return v, nil
}

// planRepairs finds the partitions short of replicas and plans their repair
// with lib/placement: dead nodes' replicas and placeholders for the missing
// ones move to eligible nodes; every other move the planner would make is
// left to expand.
func (v *scheduleView) planRepairs(nodes []*zppb.Node, tables []*zppb.Table, dead map[string]string, busy func(string, uint32) bool) {
	var pnodes []placement.Node
	eligible := 0
	for _, n := range nodes {
		// Nodes that do not receive (DOWN for now, cordoned) are
		// draining for the plan: nothing lands on them.
		pn := placement.NodeFromProto(n)
		pn.Up, pn.Draining = pn.Up && dead[n.Addr] == "", !topo.Receives(n)
		if pn.Up && !pn.Draining {
			eligible++
		}
		pnodes = append(pnodes, pn)
	}
	placeholders := 0
	var ptables []placement.Table
	why := make(map[string]string) // "table/id" -> reason
	var blocked []string
	for _, t := range tables {
		pt := placement.FromProto(t)
		want := int(t.GetReplicas())
		short := false
		for i, p := range pt.Partitions {
			if p.Master == "" {
				continue
			}
			have := 1 + len(p.Slaves)
			live := have
			for _, a := range append([]string{p.Master}, p.Slaves...) {
				if dead[a] != "" {
					live--
				}
			}
			if live < want {
				v.underReplicated = append(v.underReplicated, &zppb.PartitionShortfall{Table: t.Name, Partition: uint32(i), Replicas: uint32(live), Want: uint32(want)})
				short = true
			}
			for k := have; k < want; k++ {
				ph := fmt.Sprintf("%s%d", missingPrefix, k-have+1)
				pt.Partitions[i].Slaves = append(pt.Partitions[i].Slaves, ph)
				placeholders = max(placeholders, k-have+1)
				why[fmt.Sprintf("%s/%d", t.Name, i)] = fmt.Sprintf("%s/%d has %d of %d replicas", t.Name, i, have, want)
			}
		}
		most := 0
		for _, p := range pt.Partitions {
			most = max(most, 1+len(p.Slaves))
		}
		if most > eligible {
			// The planner cannot place this table's replicas at all;
			// leave it out so that the others are repaired.
			if short {
				blocked = append(blocked, fmt.Sprintf("table %s wants %d replicas, %d nodes receive", t.Name, most, eligible))
			}
			continue
		}
		ptables = append(ptables, pt)
	}
	for k := 1; k <= placeholders; k++ {
		pnodes = append(pnodes, placement.Node{Addr: fmt.Sprintf("%s%d", missingPrefix, k)})
	}
	v.repairBlocked = strings.Join(blocked, "; ")
	if len(v.underReplicated) == 0 {
		return
	}
	plan, err := placement.Rebalance(pnodes, ptables, placement.Options{})
	if err != nil {
		v.repairBlocked = strings.TrimPrefix(strings.Join([]string{v.repairBlocked, err.Error()}, "; "), "; ")
		return
	}
	receives := make(map[string]bool)
	for _, n := range nodes {
		receives[n.Addr] = topo.Receives(n)
	}
	partition := partitions(tables)
	budget := v.settings.MaxMoves - v.schedulerInFlight
	var dueTo []string
	for _, m := range plan.Moves {
		if budget <= 0 {
			break
		}
		if !receives[m.To] || busy(m.Table, m.Partition) {
			continue
		}
		mv := &zppb.Move{Table: m.Table, Partition: m.Partition, To: m.To, Origin: "scheduler"}
		switch {
		case strings.HasPrefix(m.From, missingPrefix):
			mv.Kind = zppb.MoveKind_ADDSLAVE
			mv.Reason = why[fmt.Sprintf("%s/%d", m.Table, m.Partition)] + ": add a replica"
		case dead[m.From] != "" && partition(m.Table, m.Partition).Master != m.From:
			// A dead master waits for failover: a move from it would
			// wait for a handover it cannot make.
			mv.Kind, mv.From = zppb.MoveKind_MIGRATE, m.From
			mv.Reason = dead[m.From] + ": re-replicate"
		default:
			continue
		}
		v.repairs = append(v.repairs, mv)
		if !slices.Contains(dueTo, mv.Reason) {
			dueTo = append(dueTo, mv.Reason)
		}
		budget--
	}
	if len(v.repairs) > 0 {
		v.repairSummary = fmt.Sprintf("%d replica(s) rebuilt: %s", len(v.repairs), strings.Join(firstN(dueTo, 3), "; "))
	}
}

// planBalance plans the switchovers that spread masters by weight over the
// nodes that receive. Replica moves the planner would make are expand's.
func (v *scheduleView) planBalance(nodes []*zppb.Node, tables []*zppb.Table) {
	if len(tables) == 0 {
		return
	}
	plan, err := placement.Rebalance(balanceNodes(nodes, false), balanceTables(tables), placement.Options{})
	if status.Code(err) == zppb.Code_NOT_ENOUGH_NODES {
		// A DOWN node a partition still counts on: plan as if it were
		// UP and leave out what would go to it.
		plan, err = placement.Rebalance(balanceNodes(nodes, true), balanceTables(tables), placement.Options{})
	}
	if err != nil {
		return
	}
	receives := make(map[string]bool)
	for _, n := range nodes {
		receives[n.Addr] = topo.Receives(n)
	}
	partition := partitions(tables)
	budget := v.settings.MaxMoves - v.schedulerInFlight
	counts := make(map[string]int)
	for _, m := range plan.MasterMoves {
		if !receives[m.To] || !slices.Contains(partition(m.Table, m.Partition).Slaves, m.To) {
			continue
		}
		v.imbalance++
		if !v.settings.MasterBalance || budget <= 0 {
			continue
		}
		v.switchovers = append(v.switchovers, &zppb.Move{Kind: zppb.MoveKind_SETMASTER, Table: m.Table, Partition: m.Partition, To: m.To,
			Origin: "scheduler", Reason: "master balance: masters spread by weight over the nodes that receive"})
		counts[m.To]++
		budget--
	}
	if len(v.switchovers) > 0 {
		var to []string
		for _, a := range slices.Sorted(maps.Keys(counts)) {
			to = append(to, fmt.Sprintf("%d to %s", counts[a], a))
		}
		v.balanceSummary = fmt.Sprintf("master balance: %d switchover(s), %s", len(v.switchovers), strings.Join(to, ", "))
	}
}

// partitions looks up the partitions the planner's moves name, which are
// those of tables: one map of the tables, rather than one entry per
// replica of every partition.
func partitions(tables []*zppb.Table) func(table string, id uint32) *zppb.Partition {
	byName := make(map[string]*zppb.Table, len(tables))
	for _, t := range tables {
		byName[t.Name] = t
	}
	return func(table string, id uint32) *zppb.Partition { return byName[table].Partitions[id] }
}

// balanceNodes is the planner's view for master balance: cordoned nodes
// keep what they hold (they are not draining), and DOWN ones count as UP
// when asked, so that a partition that needs them stays plannable.
func balanceNodes(nodes []*zppb.Node, downAsUp bool) []placement.Node {
	out := make([]placement.Node, len(nodes))
	for i, n := range nodes {
		out[i] = placement.NodeFromProto(n)
		out[i].Up = out[i].Up || downAsUp
	}
	return out
}

func balanceTables(tables []*zppb.Table) []placement.Table {
	var out []placement.Table
	for _, t := range tables {
		pt := placement.FromProto(t)
		if !slices.ContainsFunc(pt.Partitions, func(p placement.Replicas) bool { return p.Master == "" }) {
			out = append(out, pt)
		}
	}
	return out
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}

// doing says in one line what the scheduler is doing, or why not.
func (v *scheduleView) doing() string {
	switch {
	case v.settings.Paused:
		return "paused: no automatic scheduling (zpctl schedule resume)"
	case v.schedulerInFlight > 0:
		return fmt.Sprintf("%d scheduler move(s) in flight", v.schedulerInFlight)
	case len(v.repairs) > 0:
		return "repairing: " + v.repairSummary
	case len(v.underReplicated) > 0 && v.repairBlocked != "":
		return fmt.Sprintf("%d partition(s) under-replicated, not repairable: %s", len(v.underReplicated), v.repairBlocked)
	case len(v.splits) > 0:
		return v.splitSummary
	case len(v.switchovers) > 0 && v.activeMoves > 0:
		return fmt.Sprintf("master balance waits for %d move(s) in flight", v.activeMoves)
	case len(v.switchovers) > 0:
		return v.balanceSummary
	case v.imbalance > 0 && !v.settings.MasterBalance:
		return fmt.Sprintf("masters imbalanced (%d switchover(s) would fix it), master balance is off", v.imbalance)
	}
	for _, d := range v.down {
		if d.RepairAtUnixMs > 0 && d.Replicas > 0 {
			return fmt.Sprintf("waiting: node %s is DOWN, its replicas are rebuilt at %s", d.Addr, time.UnixMilli(d.RepairAtUnixMs).UTC().Format(time.RFC3339))
		}
	}
	return "idle: every partition has its replicas, masters are balanced"
}

// scheduleRequest answers SCHEDULE: the settings it names change (one Raft
// entry, with an event), then the scheduler's view.
func (s *Server) scheduleRequest(ctx context.Context, req *zppb.ScheduleRequest) (*zppb.Response, error) {
	if changes := scheduleChanges(req); len(changes) > 0 {
		unlock, err := s.lockProposals(ctx)
		if err != nil {
			return nil, err
		}
		cur, _ := s.fsm.Schedule()
		next, err := applyScheduleRequest(cur, req)
		if err != nil {
			unlock()
			return nil, err
		}
		ev := &zppb.ScheduleEvent{UnixMs: time.Now().UnixMilli(), Kind: "settings", Message: "set " + strings.Join(changes, ", ")}
		_, err = s.propose(ctx, fsm.SetSchedule(next, ev))
		unlock()
		if err != nil {
			return nil, err
		}
		s.logger.Info("scheduler settings", "set", changes)
	}
	var v *scheduleView
	var err error
	for range 3 {
		if v, err = s.surveySchedule(time.Now(), true); !errors.Is(err, errEpochMoved) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	sc := v.schedule
	resolved := &zppb.Schedule{Paused: sc.Paused, DownTimeoutMs: v.settings.RepairDownAfter.Milliseconds(), MasterBalanceOff: !v.settings.MasterBalance,
		MaxMovesPerNode: uint32(cmp.Or(v.settings.MaxMovesPerNode, s.cfg.MaxMovesPerNode)), MaxMoves: uint32(v.settings.MaxMoves), FullsyncRate: sc.GetFullsyncRate()}
	return &zppb.Response{Epoch: v.epoch, Result: &zppb.Response_Schedule{Schedule: &zppb.ScheduleResponse{
		Schedule: resolved, Events: v.events, Epoch: v.epoch, UnderReplicated: v.underReplicated, Down: v.down,
		MovesInFlight: uint32(v.schedulerInFlight), MasterImbalance: uint32(v.imbalance), Doing: v.doing(),
	}}}, nil
}

// scheduleChanges names the settings req changes, for the event.
func scheduleChanges(req *zppb.ScheduleRequest) []string {
	var out []string
	if req.Paused != nil {
		out = append(out, fmt.Sprintf("paused=%t", req.GetPaused()))
	}
	if req.DownTimeoutMs != nil {
		out = append(out, fmt.Sprintf("down-timeout=%s", time.Duration(req.GetDownTimeoutMs())*time.Millisecond))
	}
	if req.MasterBalance != nil {
		out = append(out, fmt.Sprintf("master-balance=%t", req.GetMasterBalance()))
	}
	if req.MaxMovesPerNode != nil {
		out = append(out, fmt.Sprintf("max-moves-per-node=%d", req.GetMaxMovesPerNode()))
	}
	if req.MaxMoves != nil {
		out = append(out, fmt.Sprintf("max-moves=%d", req.GetMaxMoves()))
	}
	if req.FullsyncRate != nil {
		out = append(out, fmt.Sprintf("fullsync-rate=%d", req.GetFullsyncRate()))
	}
	return out
}

// applyScheduleRequest returns cur with req's changes, checked.
func applyScheduleRequest(cur *zppb.Schedule, req *zppb.ScheduleRequest) (*zppb.Schedule, error) {
	next := &zppb.Schedule{Paused: cur.GetPaused(), DownTimeoutMs: cur.GetDownTimeoutMs(), MasterBalanceOff: cur.GetMasterBalanceOff(),
		MaxMovesPerNode: cur.GetMaxMovesPerNode(), MaxMoves: cur.GetMaxMoves(), FullsyncRate: cur.GetFullsyncRate()}
	if req.Paused != nil {
		next.Paused = req.GetPaused()
	}
	if req.DownTimeoutMs != nil {
		// 0 would read as the default: "never" is negative.
		if req.GetDownTimeoutMs() == 0 {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "down-timeout 0: want a positive duration, or a negative one for never")
		}
		next.DownTimeoutMs = req.GetDownTimeoutMs()
	}
	if req.MasterBalance != nil {
		next.MasterBalanceOff = !req.GetMasterBalance()
	}
	if req.MaxMovesPerNode != nil {
		next.MaxMovesPerNode = req.GetMaxMovesPerNode()
	}
	if req.MaxMoves != nil {
		if req.GetMaxMoves() == 0 {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "max-moves 0: want at least 1 (zpctl schedule pause stops the scheduler)")
		}
		next.MaxMoves = req.GetMaxMoves()
	}
	if req.FullsyncRate != nil {
		if r := req.GetFullsyncRate(); r != 0 && r < fsm.MinFullSyncRate {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "fullsync-rate %d bytes/s: want 0 (unlimited) or at least %d", r, fsm.MinFullSyncRate)
		}
		next.FullsyncRate = req.GetFullsyncRate()
	}
	return next, nil
}
