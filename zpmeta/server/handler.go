package server

import (
	"context"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// replyMargin is the most a request's deadline is shortened by to leave time
// for the answer to travel back.
const replyMargin = 100 * time.Millisecond

// handle is the rpc.Handler of the meta commands.
func (s *Server) handle(ctx context.Context, req *zppb.Request) *zppb.Response {
	var cancel context.CancelFunc
	if dl, ok := ctx.Deadline(); ok {
		// Give up a little before the caller does, so that it gets our
		// answer (NO_LEADER, TIMEOUT) rather than its own timeout.
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-min(time.Until(dl)/5, replyMargin)))
	} else {
		ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
	}
	defer cancel()
	resp, err := s.dispatch(ctx, req)
	if err != nil {
		resp = status.Response(err)
	}
	if resp.Epoch == 0 {
		resp.Epoch = s.fsm.Epoch()
	}
	return resp
}

// dispatch runs one meta command. A server outside the Raft configuration
// (one waiting to be added, or one removed) answers only LIST_META: its
// state is empty or stale, and it will never see a leader.
func (s *Server) dispatch(ctx context.Context, req *zppb.Request) (resp *zppb.Response, err error) {
	if err := s.authorize(ctx, req); err != nil {
		return nil, err
	}
	if _, ok := req.GetCmd().(*zppb.Request_ListMeta); !ok && !s.isMember() {
		return nil, status.New(zppb.Code_UNAVAILABLE, "%s is not a member of the meta group (not added yet, or removed): ask another meta server", s.cfg.Addr)
	}
	switch c := req.GetCmd().(type) {
	case *zppb.Request_Pull:
		resp, err = s.pull(ctx, c.Pull)
	case *zppb.Request_ListTables:
		resp = s.listTables()
	case *zppb.Request_ListNodes:
		resp = s.listNodesOfLeader(ctx, req)
	case *zppb.Request_ListMeta:
		resp, err = s.listMeta(ctx)
	case *zppb.Request_Ping:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.ping(ctx, c.Ping) })
	case *zppb.Request_Starting:
		resp = s.onLeader(ctx, req, func(context.Context) (*zppb.Response, error) { return s.starting(c.Starting) })
	case *zppb.Request_CreateTable:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.createTable(ctx, c.CreateTable) })
	case *zppb.Request_DropTable:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.dropTable(ctx, c.DropTable) })
	case *zppb.Request_AddSlave:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.addSlave(ctx, c.AddSlave) })
	case *zppb.Request_RemoveSlave:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.removeSlave(ctx, c.RemoveSlave) })
	case *zppb.Request_SetMaster:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.setMaster(ctx, c.SetMaster) })
	case *zppb.Request_Migrate:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.migrate(ctx, c.Migrate) })
	case *zppb.Request_Split:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.split(ctx, c.Split) })
	case *zppb.Request_Rebalance:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.rebalance(ctx, c.Rebalance) })
	case *zppb.Request_PlanMoves:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.planMoves(c.PlanMoves) })
	case *zppb.Request_CancelMove:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.cancelMove(ctx, c.CancelMove) })
	case *zppb.Request_MoveStatus:
		// Progress comes from the nodes; any member can ask them, but
		// the leader's view of the moves is the current one.
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.moveStatus(ctx, c.MoveStatus) })
	case *zppb.Request_SetQuota:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.setQuota(ctx, c.SetQuota) })
	case *zppb.Request_FinishRestore:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.finishRestore(ctx, c.FinishRestore) })
	case *zppb.Request_TableAuth:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.tableAuth(ctx, c.TableAuth) })
	case *zppb.Request_RemoveNodes:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.removeNodes(ctx, c.RemoveNodes) })
	case *zppb.Request_CordonNodes:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.cordonNodes(ctx, c.CordonNodes) })
	case *zppb.Request_Schedule:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.scheduleRequest(ctx, c.Schedule) })
	case *zppb.Request_AddMeta:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.addMeta(ctx, c.AddMeta) })
	case *zppb.Request_RemoveMeta:
		resp = s.onLeader(ctx, req, func(ctx context.Context) (*zppb.Response, error) { return s.removeMeta(ctx, c.RemoveMeta) })
	case nil:
		err = status.New(zppb.Code_INVALID_ARGUMENT, status.NoCommand)
	default:
		err = status.New(zppb.Code_INVALID_ARGUMENT, "%T is not a meta command", c)
	}
	return resp, err
}

// admitNodeWork waits until fewer than GOMAXPROCS PULLs are running, and
// returns the function that ends this one. A thousand nodes PULLing after
// a change made a thousand runnable goroutines, and Raft's heartbeats
// waited behind them in the Go scheduler's queue. A request waiting here is
// parked, not runnable. PINGs are not admitted so (see pingHeartbeat).
func (s *Server) admitNodeWork(ctx context.Context) (func(), error) {
	select {
	case s.nodeWork <- struct{}{}:
		return func() { <-s.nodeWork }, nil
	case <-ctx.Done():
		return nil, status.New(zppb.Code_TIMEOUT, "meta too busy: %v", ctx.Err())
	}
}

// pull answers PULL: one table, or every table as a whole topology or as
// a delta against the caller's since_epoch.
func (s *Server) pull(ctx context.Context, req *zppb.PullRequest) (*zppb.Response, error) {
	done, err := s.admitNodeWork(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if req.GetTable() == "" {
		// The tables go out as bytes encoded once for every caller of
		// the same (since, epoch), appended as unknown fields: a thousand
		// nodes PULL the same delta after a change.
		head, shared := s.fsm.PullShared(req.GetSinceEpoch(), req.GetPartitionDeltas(), req.GetCredentials())
		s.fillLiveness(head.Topology.Nodes)
		resp := &zppb.Response{Epoch: head.Topology.Epoch, Result: &zppb.Response_Pull{Pull: head}}
		resp.ProtoReflect().SetUnknown(shared)
		return resp, nil
	}
	topo, err := s.fsm.Topology(req.GetTable())
	if err != nil {
		return nil, err
	}
	s.fillLiveness(topo.Nodes)
	return &zppb.Response{Epoch: topo.Epoch, Result: &zppb.Response_Pull{Pull: &zppb.PullResponse{Topology: topo}}}, nil
}

func (s *Server) listTables() *zppb.Response {
	tables, epoch := s.fsm.Tables()
	return &zppb.Response{Epoch: epoch, Result: &zppb.Response_ListTables{ListTables: &zppb.ListTablesResponse{Tables: tables, Epoch: epoch}}}
}

// maxListForward bounds how long a follower waits for the leader's answer to
// a LIST_NODES before it answers from its own state.
const maxListForward = time.Second

// listNodesOfLeader answers LIST_NODES with the leader's answer, which alone
// has the nodes' heartbeats and versions (fillLiveness): a follower
// forwards the request once. The list is a read any member can answer, so
// when the leader is unknown, unreachable or no leader any more, the
// follower answers from its own state rather than wait for an election.
func (s *Server) listNodesOfLeader(ctx context.Context, req *zppb.Request) *zppb.Response {
	if s.IsLeader() || req.Forwarded {
		return s.listNodes()
	}
	if leader := s.Leader(); leader != "" && leader != s.cfg.Addr {
		// A hung leader gets half the time at most, so that the own
		// answer still goes out within the caller's deadline.
		wait := maxListForward
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl)/2)
		}
		fctx, cancel := context.WithTimeout(ctx, wait)
		resp, err := s.forward(fctx, leader, req)
		cancel()
		if err == nil && resp.GetCode() == zppb.Code_OK {
			return resp
		}
		s.logger.Debug("LIST_NODES: the leader did not answer; answering without heartbeats", "leader", leader, "err", err, "code", resp.GetCode())
	}
	return s.listNodes()
}

func (s *Server) listNodes() *zppb.Response {
	nodes, epoch := s.fsm.Nodes()
	s.fillLiveness(nodes)
	s.fillStarting(nodes)
	return &zppb.Response{Epoch: epoch, Result: &zppb.Response_ListNodes{ListNodes: &zppb.ListNodesResponse{Nodes: nodes, Epoch: epoch}}}
}

// fillLiveness sets last_heartbeat_unix_ms, version and features from the leader's
// memory of the nodes' PINGs; a follower has none and leaves them empty.
func (s *Server) fillLiveness(nodes []*zppb.Node) {
	if !s.IsLeader() {
		return
	}
	for _, n := range nodes {
		if t := s.live.lastHeartbeat(n.Addr); !t.IsZero() {
			n.LastHeartbeatUnixMs = t.UnixMilli()
		}
		n.Version = s.live.version(n.Addr)
		n.Features = slices.Clone(s.live.featuresOf(n.Addr))
	}
}

// fillStarting sets the start-up progress of the starting nodes from the
// leader's memory of their STARTINGs. LIST_NODES only: a PULL delta
// leaves out the nodes that did not change, so a caller's merged view would
// keep a progress long over.
func (s *Server) fillStarting(nodes []*zppb.Node) {
	if !s.IsLeader() {
		return
	}
	now := time.Now()
	for _, n := range nodes {
		// Older than a down-timeout, the node stopped starting without
		// ever PINGing.
		n.Starting = s.live.startupProgress(n.Addr, now, s.cfg.DownTimeout)
	}
}

func (s *Server) listMeta(ctx context.Context) (*zppb.Response, error) {
	lm, err := s.metaMembers(ctx)
	if err != nil {
		return nil, err
	}
	return &zppb.Response{Epoch: lm.Epoch, Result: &zppb.Response_ListMeta{ListMeta: lm}}, nil
}

// metaMembers is the Raft configuration as this member has it, with its own
// state.
func (s *Server) metaMembers(ctx context.Context) (*zppb.ListMetaResponse, error) {
	cfg, _, err := s.configuration(ctx)
	if err != nil {
		return nil, err
	}
	leaderAddr, leaderID := s.raft.LeaderWithID()
	epoch := s.fsm.Epoch()
	lm := &zppb.ListMetaResponse{
		Leader:       string(leaderAddr),
		Epoch:        epoch,
		Self:         s.cfg.Addr,
		State:        s.raft.State().String(),
		Term:         s.raft.CurrentTerm(),
		CommitIndex:  s.raft.CommitIndex(),
		AppliedIndex: s.raft.AppliedIndex(),
		Version:      buildinfo.Version,
	}
	for _, srv := range cfg.Servers {
		lm.Members = append(lm.Members, &zppb.MetaMember{
			Id:       string(srv.ID),
			Addr:     string(srv.Address),
			Suffrage: suffrage(srv.Suffrage),
			Leader:   leaderID != "" && srv.ID == leaderID,
		})
	}
	return lm, nil
}

func suffrage(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return "voter"
	case raft.Nonvoter:
		return "nonvoter"
	case raft.Staging:
		return "staging"
	}
	return s.String()
}
