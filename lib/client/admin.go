package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TableSpec describes a table to create.
type TableSpec struct {
	Name string
	// Partitions is fixed at creation: 1 to 16384 (keyspace.Slots).
	Partitions uint32
	// Replicas counts the master: 3 is a master and two slaves; 0 means
	// topo.DefaultReplicas.
	Replicas uint32
	// MinSyncReplicas is how many slaves must persist a write before it is
	// acknowledged; 0 is asynchronous replication. Below Replicas.
	MinSyncReplicas uint32
	// ExpectedEpoch, when non-zero, makes the creation fail with
	// status.ErrStaleEpoch unless it is the current epoch: a
	// compare-and-set for tools that decided on a topology they read.
	ExpectedEpoch uint64
	// Quota limits the table's traffic; the zero value is unlimited.
	Quota Quota
	// Passwords protect the table: its data commands then need one of
	// them (Options.TablePasswords). The meta leader keeps only their
	// argon2id verifiers. None: the table is open.
	Passwords [][]byte
	// Restoring creates the table closed to data commands (nodes answer
	// WAIT) until FinishRestore: a restore fills it first.
	Restoring bool
	// SplitSize splits a partition automatically once its master holds
	// more than this many bytes (docs/topology.md, "Split"); 0, off, or
	// at least topo.MinSplitSize.
	SplitSize uint64
}

// validate checks the spec with the meta servers' own rules (lib/topo), so
// that a bad one fails here, with their words.
func (s TableSpec) validate() error {
	if err := topo.ValidateTableShape(s.Name, s.Partitions, topo.Replicas(s.Replicas), s.MinSyncReplicas); err != nil {
		return err
	}
	return topo.ValidateSplitSize(s.SplitSize)
}

// CreateTable creates a table and returns it as the meta leader placed it.
// Errors match status.ErrTableExists, status.ErrNotEnoughNodes,
// status.ErrStaleEpoch, status.ErrInvalidArgument. The command needs the
// Raft leader and is retried through elections until ctx ends. When an
// earlier attempt failed after it may have reached the leader, a
// TABLE_EXISTS answer may be this call's own doing: the error then also
// wraps ErrUnknownOutcome.
func (c *core) CreateTable(ctx context.Context, spec TableSpec) (Table, error) {
	if err := spec.validate(); err != nil {
		return Table{}, fmt.Errorf("client: create table: %w", err)
	}
	resp, ambiguous, err := c.callMeta(ctx, "create table "+spec.Name, func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_CreateTable{CreateTable: &zppb.CreateTableRequest{
			Name:            spec.Name,
			Partitions:      spec.Partitions,
			Replicas:        spec.Replicas,
			MinSyncReplicas: spec.MinSyncReplicas,
			ExpectedEpoch:   spec.ExpectedEpoch,
			Quota:           spec.Quota.pb(),
			Passwords:       spec.Passwords,
			Restoring:       spec.Restoring,
			SplitSize:       spec.SplitSize,
		}}}
	}, true)
	if err != nil {
		if ambiguous && (status.Code(err) == zppb.Code_TABLE_EXISTS || !isStatus(err)) {
			err = fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		}
		return Table{}, err
	}
	cr := resp.GetCreateTable()
	c.sawEpoch(cr.GetEpoch())
	c.refreshInBackground(cr.GetEpoch())
	return tableFromPB(cr.GetTable()), nil
}

// DropTable drops a table and returns the epoch that dropped it.
// expectedEpoch, when non-zero, makes it fail with status.ErrStaleEpoch
// unless it is the current epoch. Errors match status.ErrTableNotFound; as
// with CreateTable, one after an ambiguous attempt also wraps
// ErrUnknownOutcome.
func (c *core) DropTable(ctx context.Context, name string, expectedEpoch uint64) (uint64, error) {
	if name == "" {
		return 0, fmt.Errorf("client: drop table: %w", status.New(zppb.Code_INVALID_ARGUMENT, "empty table name"))
	}
	resp, ambiguous, err := c.callMeta(ctx, "drop table "+name, func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_DropTable{DropTable: &zppb.DropTableRequest{Name: name, ExpectedEpoch: expectedEpoch}}}
	}, true)
	if err != nil {
		if ambiguous && (status.Code(err) == zppb.Code_TABLE_NOT_FOUND || !isStatus(err)) {
			err = fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		}
		return 0, err
	}
	epoch := resp.GetDropTable().GetEpoch()
	c.sawEpoch(epoch)
	// Wait for a topology without the table before returning: with the
	// table still cached, this client's next call on it would reach a node
	// that has not yet learned of the drop and be answered from the
	// dropped table. If no member has the epoch in time, refresh later.
	if _, err := c.refreshWait(ctx, epoch); err != nil {
		c.refreshInBackground(epoch)
	}
	return epoch, nil
}

// ListTables returns the tables, sorted by name, and the epoch of the meta
// server's copy (any member answers from its own copy, which may lag the
// leader's by a moment).
func (c *core) ListTables(ctx context.Context) ([]Table, uint64, error) {
	resp, _, err := c.callMeta(ctx, "list tables", func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_ListTables{ListTables: &zppb.ListTablesRequest{}}}
	}, false)
	if err != nil {
		return nil, 0, err
	}
	lt := resp.GetListTables()
	tables := tablesFromPB(lt.GetTables())
	slices.SortFunc(tables, func(a, b Table) int { return cmp.Compare(a.Name, b.Name) })
	return tables, lt.GetEpoch(), nil
}

// ListNodes returns the data nodes, sorted by address, and the epoch, as the
// meta leader has them: a follower forwards the request, since heartbeats
// and versions (Node.LastHeartbeatUnixMs, Node.Version) are the leader's
// memory. When no leader answers, a member answers from its own copy,
// without them.
func (c *core) ListNodes(ctx context.Context) ([]Node, uint64, error) {
	resp, _, err := c.callMeta(ctx, "list nodes", func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_ListNodes{ListNodes: &zppb.ListNodesRequest{}}}
	}, false)
	if err != nil {
		return nil, 0, err
	}
	ln := resp.GetListNodes()
	nodes := nodesFromPB(ln.GetNodes())
	slices.SortFunc(nodes, func(a, b Node) int { return cmp.Compare(a.Addr, b.Addr) })
	return nodes, ln.GetEpoch(), nil
}

// Pull asks a meta server for the topology, or for one table when table is
// not empty (status.ErrTableNotFound when it does not exist). A whole
// topology newer than the cache also replaces the cache.
func (c *core) Pull(ctx context.Context, table string) (*Topology, error) {
	if c.closed.Load() {
		return nil, fmt.Errorf("client: pull: %w", ErrClosed)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	topo, err := c.pullOnce(ctx, table, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("client: pull: %w", err)
	}
	if table == "" {
		c.topo.install(topo)
	}
	return topologyFromPB(topo), nil
}

// MetaStatus is the meta group as its members see it.
type MetaStatus struct {
	// Leader is the leader's address as reported by the member with the
	// most current view (highest Raft term, the leader itself, highest
	// commit index); empty when none knows one. Members come from the same
	// view.
	Leader string `json:"leader"`
	// Epoch is the highest topology epoch any member reported.
	Epoch uint64 `json:"epoch"`
	// Members are the Raft configuration's members, then any configured
	// address the configuration does not list.
	Members []MetaMember `json:"members"`
}

// MetaMember is one meta server and what it said about itself.
type MetaMember struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
	// Suffrage is "voter" or "nonvoter"; empty for a configured address
	// that no reachable member lists in the Raft configuration.
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
	// LeaderSeen is the leader this member itself reports; members that
	// name different leaders (or none) are mid-election or cut off.
	LeaderSeen string `json:"leader_seen"`
	// Reachable reports whether the member answered LIST_META; Error says
	// why not.
	Reachable bool   `json:"reachable"`
	Error     string `json:"error"`
	// Its own Raft state ("Leader", "Follower", "Candidate" ...), term,
	// indexes and topology epoch, when it answered.
	State        string `json:"state"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	Epoch        uint64 `json:"epoch"`
	// Version is the member's version (lib/buildinfo.Version), when it
	// answered; empty from a binary that predates version reporting.
	Version string `json:"version"`
}

// ListMeta asks every meta server (the configured ones and any member of
// the Raft configuration they report) for its state, in parallel, so that
// the caller sees who is down. It returns an error wrapping
// ErrMetaUnreachable, with the status filled in as far as known, when none
// answered.
func (c *core) ListMeta(ctx context.Context) (*MetaStatus, error) {
	if c.closed.Load() {
		return nil, fmt.Errorf("client: list meta: %w", ErrClosed)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()

	type answer struct {
		addr string
		resp *zppb.ListMetaResponse
		err  error
	}
	ask := func(addrs []string) []answer {
		out := make([]answer, len(addrs))
		var wg sync.WaitGroup
		for i, a := range addrs {
			wg.Go(func() {
				out[i].addr = a
				resp, err := c.pool.Call(ctx, a, &zppb.Request{Cmd: &zppb.Request_ListMeta{ListMeta: &zppb.ListMetaRequest{}}})
				if err == nil {
					err = status.FromResponse(resp)
				}
				out[i].resp, out[i].err = resp.GetListMeta(), err
			})
		}
		wg.Wait()
		return out
	}

	answers := ask(c.metas)
	var best *zppb.ListMetaResponse
	for _, a := range answers {
		if a.err == nil && (best == nil || newerView(a.resp, best)) {
			best = a.resp
		}
	}
	asked := make(map[string]bool, len(c.metas))
	for _, a := range c.metas {
		asked[a] = true
	}
	var more []string
	for _, m := range best.GetMembers() {
		if m.GetAddr() != "" && !asked[m.GetAddr()] {
			more = append(more, m.GetAddr())
			asked[m.GetAddr()] = true
		}
	}
	answers = append(answers, ask(more)...)

	st := &MetaStatus{Leader: best.GetLeader()}
	matched := make([]bool, len(answers))
	fill := func(m *MetaMember) {
		for i, a := range answers {
			byAddr := a.addr == m.Addr
			self := a.resp.GetSelf()
			bySelf := a.err == nil && self != "" && (self == m.ID || self == m.Addr)
			if !byAddr && !bySelf {
				continue
			}
			matched[i] = true
			if a.err != nil {
				if !m.Reachable {
					m.Error = a.err.Error()
				}
				continue
			}
			m.answered(a.resp)
		}
	}
	for _, pm := range best.GetMembers() {
		m := memberOf(pm)
		if !m.Leader && st.Leader != "" && (st.Leader == m.Addr || st.Leader == m.ID) {
			m.Leader = true
		}
		fill(&m)
		if !m.Reachable && m.Error == "" {
			m.Error = "not asked: no address"
		}
		st.Members = append(st.Members, m)
	}
	var lastErr error
	for i, a := range answers {
		if a.err != nil {
			lastErr = fmt.Errorf("meta %s: %w", a.addr, a.err)
		} else {
			st.Epoch = max(st.Epoch, a.resp.GetEpoch())
		}
		if matched[i] {
			continue
		}
		// A configured address that the configuration does not list (or no
		// member answered at all).
		m := MetaMember{Addr: a.addr}
		if a.err != nil {
			m.Error = a.err.Error()
		} else {
			m.ID = a.resp.GetSelf()
			m.answered(a.resp)
		}
		st.Members = append(st.Members, m)
	}
	if best == nil {
		return st, fmt.Errorf("client: list meta: %w: %w", ErrMetaUnreachable, lastErr)
	}
	return st, nil
}

// AddMeta adds the meta server at addr to the Raft group, as a voter or,
// with nonvoter, as a non-voting member (an existing member gets that
// suffrage), and returns the membership after the change as the leader
// has it (only the leader's own state filled in: use ListMeta to ask
// every member). The server must be running and not bootstrapped (zpmeta
// --bootstrap=false). Adding a member again changes nothing, so the call is
// retried through elections and lost answers until ctx ends. Errors match
// status.ErrInvalidArgument for a malformed address, one that does not
// answer as a meta server or belongs to another group, or a demotion of
// the last voter.
func (c *core) AddMeta(ctx context.Context, addr string, nonvoter bool) (*MetaStatus, error) {
	return c.changeMeta(ctx, "add meta "+addr, addr, func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_AddMeta{AddMeta: &zppb.AddMetaRequest{Addr: addr, Nonvoter: nonvoter}}}
	})
}

// RemoveMeta removes the meta server at addr from the Raft group and returns
// the membership after the change. Removing a server that is not a member
// changes nothing and succeeds; removing the leader makes it hand
// leadership over first. Errors match status.ErrInvalidArgument for a
// malformed address or the last voter.
func (c *core) RemoveMeta(ctx context.Context, addr string) (*MetaStatus, error) {
	return c.changeMeta(ctx, "remove meta "+addr, addr, func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_RemoveMeta{RemoveMeta: &zppb.RemoveMetaRequest{Addr: addr}}}
	})
}

// changeMeta sends a membership change. Both changes are idempotent, so an
// ambiguous attempt needs no ErrUnknownOutcome: the retry tells.
func (c *core) changeMeta(ctx context.Context, op, addr string, build func() *zppb.Request) (*MetaStatus, error) {
	if addr == "" {
		return nil, fmt.Errorf("client: %s: %w", op, status.New(zppb.Code_INVALID_ARGUMENT, "empty meta server address"))
	}
	resp, _, err := c.callMeta(ctx, op, build, true)
	if err != nil {
		return nil, err
	}
	return membership(resp.GetMetaMembers()), nil
}

// membership is the group as the leader answered a change: the members,
// of which only the leader is known to be reachable (it answered).
func membership(lm *zppb.ListMetaResponse) *MetaStatus {
	st := &MetaStatus{Leader: lm.GetLeader(), Epoch: lm.GetEpoch()}
	for _, pm := range lm.GetMembers() {
		m := memberOf(pm)
		if self := lm.GetSelf(); self != "" && (self == m.ID || self == m.Addr) {
			m.answered(lm)
		}
		st.Members = append(st.Members, m)
	}
	return st
}

// memberOf is a member of the Raft configuration as a server listed it.
func memberOf(pm *zppb.MetaMember) MetaMember {
	return MetaMember{ID: pm.GetId(), Addr: pm.GetAddr(), Suffrage: pm.GetSuffrage(), Leader: pm.GetLeader()}
}

// answered fills in what the member said about itself.
func (m *MetaMember) answered(resp *zppb.ListMetaResponse) {
	m.Reachable, m.Error = true, ""
	m.LeaderSeen = resp.GetLeader()
	m.State, m.Term = resp.GetState(), resp.GetTerm()
	m.CommitIndex, m.AppliedIndex, m.Epoch = resp.GetCommitIndex(), resp.GetAppliedIndex(), resp.GetEpoch()
	m.Version = resp.GetVersion()
}

// newerView reports whether member answer a knows the configuration better
// than b: a higher term, then within a term the leader (a follower may not
// have a membership change yet), then the higher commit index.
func newerView(a, b *zppb.ListMetaResponse) bool {
	if a.GetTerm() != b.GetTerm() {
		return a.GetTerm() > b.GetTerm()
	}
	if aLeads, bLeads := a.GetState() == "Leader", b.GetState() == "Leader"; aLeads != bLeads {
		return aLeads
	}
	return a.GetCommitIndex() > b.GetCommitIndex()
}

func isStatus(err error) bool {
	var se *status.Error
	return errors.As(err, &se)
}
