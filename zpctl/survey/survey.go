// Package survey takes a picture of a cluster in one pass: the meta
// group's state, the topology, and INFO from every node, asked in
// parallel. checkup, stats, table describe/dump and the TUI all read the
// same picture, so they agree on what they show.
package survey

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// Snapshot is the cluster as zpctl saw it at one moment. Any part may be
// missing, with the error that says why: a survey of a sick cluster is
// when it matters most.
type Snapshot struct {
	Taken time.Time
	// Meta is every meta server's own account; nil only when Options
	// skipped it. MetaErr is set when none answered.
	Meta    *client.MetaStatus
	MetaErr error
	// Topology is one meta server's copy; nil when none answered.
	Topology    *client.Topology
	TopologyErr error
	// Nodes are the topology's nodes, sorted by address, with what each
	// answered to INFO.
	Nodes []NodeReport
	// Moves are the topology moves the meta leader reports (MOVE_STATUS,
	// the finished ones it remembers too), by id, when Options.Moves asked
	// for them; MovesErr is why they are missing.
	Moves    []client.Move
	MovesErr error
	// Schedule is the meta leader's scheduler status when Options.Schedule
	// asked for it; ScheduleErr is why it is missing (an older meta
	// leader has no scheduler).
	Schedule    *client.ScheduleStatus
	ScheduleErr error
	// Security is what the cluster requires (admin token, cluster
	// secret) when Options.Security asked; SecurityErr why it is not
	// known.
	Security    *client.Security
	SecurityErr error
	// Certificates are those the meta servers and UP nodes presented,
	// when Options.Security asked and the client connects over TLS.
	Certificates []client.Certificate
}

// NodeReport is one node: as the meta servers know it, and as it
// describes itself.
type NodeReport struct {
	client.Node
	// Info holds the INFO sections that answered.
	Info client.Info
	// Err is why a section did not answer; nil when all did.
	Err error
}

// Options configures Take.
type Options struct {
	// Table limits INFO to one table; empty asks for all.
	Table string
	// Sections are the INFO sections asked of each node; nil asks all.
	// An empty, non-nil slice asks none.
	Sections []client.InfoSection
	// NodeTimeout bounds the INFO calls, so that one hung node does not
	// use up the caller's whole deadline; 0 leaves ctx's.
	NodeTimeout time.Duration
	// SkipMeta leaves Meta nil: LIST_META asks every member, which a
	// command that only needs the topology can spare.
	SkipMeta bool
	// Moves asks the meta leader for the topology moves (MOVE_STATUS).
	Moves bool
	// Schedule asks the meta leader for its scheduler's status.
	Schedule bool
	// Security probes what the cluster requires (client.Security).
	Security bool
	// Starting asks the meta leader (LIST_NODES) which nodes are starting
	// and how far they got (client.Node.Starting); without it no node
	// has it.
	Starting bool
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Take surveys the cluster: LIST_META, MOVE_STATUS (if asked) and PULL in
// parallel, then INFO of every node the topology lists, in parallel. It never fails: what could
// not be had is recorded as an error in the snapshot.
func Take(ctx context.Context, c *client.Client, opts Options) *Snapshot {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Snapshot{Taken: now()}
	var wg sync.WaitGroup
	if !opts.SkipMeta {
		wg.Go(func() { s.Meta, s.MetaErr = c.ListMeta(ctx) })
	}
	if opts.Moves {
		wg.Go(func() { s.Moves, s.MovesErr = c.MoveStatus(ctx, true) })
	}
	if opts.Schedule {
		wg.Go(func() { s.Schedule, s.ScheduleErr = c.Schedule(ctx, client.ScheduleChange{}) })
	}
	var listed []client.Node
	if opts.Starting {
		wg.Go(func() { listed, _, _ = c.ListNodes(ctx) })
	}
	s.Topology, s.TopologyErr = c.Pull(ctx, "")
	if s.Topology != nil {
		sections := opts.Sections
		if sections == nil {
			sections = client.AllInfoSections
		}
		addrs := make([]string, len(s.Topology.Nodes))
		for i, n := range s.Topology.Nodes {
			addrs[i] = n.Addr
		}
		var infos []client.NodeInfo
		if len(sections) > 0 {
			ictx, cancel := ctx, context.CancelFunc(func() {})
			if opts.NodeTimeout > 0 {
				ictx, cancel = context.WithTimeout(ctx, opts.NodeTimeout)
			}
			infos = c.InfoNodes(ictx, addrs, opts.Table, sections...)
			cancel()
		}
		for i, n := range s.Topology.Nodes {
			nr := NodeReport{Node: n}
			if infos != nil {
				nr.Info, nr.Err = infos[i].Info, infos[i].Err
			}
			s.Nodes = append(s.Nodes, nr)
		}
		slices.SortFunc(s.Nodes, func(a, b NodeReport) int { return cmp.Compare(a.Addr, b.Addr) })
	}
	if opts.Security {
		probe := ""
		for _, n := range s.Nodes {
			if n.State == "UP" && n.Err == nil {
				probe = n.Addr
				break
			}
		}
		if sec, err := c.Security(ctx, probe); err != nil {
			s.SecurityErr = err
		} else {
			s.Security = &sec
		}
	}
	wg.Wait()
	setStarting(s.Nodes, listed)
	if opts.Security {
		var addrs []string
		if s.Meta != nil {
			for _, m := range s.Meta.Members {
				addrs = append(addrs, m.Addr)
			}
		}
		for _, n := range s.Nodes {
			if n.State == "UP" {
				addrs = append(addrs, n.Addr)
			}
		}
		// Unreachable servers are other checks' business.
		s.Certificates, _ = c.Certificates(ctx, addrs)
	}
	return s
}

// setStarting sets the nodes' start-up progress from listed, the meta
// leader's LIST_NODES (none when it was not asked or did not answer): a
// PULL has none.
func setStarting(nodes []NodeReport, listed []client.Node) {
	starting := make(map[string]*client.StartupProgress)
	for _, n := range listed {
		if n.Starting != nil {
			starting[n.Addr] = n.Starting
		}
	}
	for i := range nodes {
		nodes[i].Starting = starting[nodes[i].Addr]
	}
}

// StartupText is how far a starting node got: "opened 4,512 of 10,000
// replicas, 902/s, ETA 6s".
func StartupText(p client.StartupProgress) string {
	s := "opened " + output.Count(uint64(p.Opened)) + " of " + output.Count(uint64(p.Total)) + " replicas"
	if eta, ok := p.ETA(); ok {
		s += fmt.Sprintf(", %s/s, ETA %s", output.Count(uint64(p.PerSecond())), eta.Round(time.Second))
	}
	return s
}

// Epoch is the newest epoch the survey saw, from the meta servers or the
// topology.
func (s *Snapshot) Epoch() uint64 {
	var e uint64
	if s.Meta != nil {
		e = s.Meta.Epoch
	}
	if s.Topology != nil {
		e = max(e, s.Topology.Epoch)
	}
	return e
}

// Tables are the topology's tables, sorted by name; nil without a
// topology.
func (s *Snapshot) Tables() []client.Table {
	if s.Topology == nil {
		return nil
	}
	out := slices.Clone(s.Topology.Tables)
	slices.SortFunc(out, func(a, b client.Table) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Table returns the named table.
func (s *Snapshot) Table(name string) (client.Table, bool) {
	if s.Topology != nil {
		if tb := s.Topology.Table(name); tb != nil {
			return *tb, true
		}
	}
	return client.Table{}, false
}

// Node returns the report of the node at addr, or nil when the topology
// has no such node.
func (s *Snapshot) Node(addr string) *NodeReport {
	for i := range s.Nodes {
		if s.Nodes[i].Addr == addr {
			return &s.Nodes[i]
		}
	}
	return nil
}

// ReplicaInfo returns what the node at addr reported about its replica of
// a partition, or nil.
func (s *Snapshot) ReplicaInfo(addr, table string, partition uint32) *client.ReplicaInfo {
	n := s.Node(addr)
	if n == nil {
		return nil
	}
	for i, ri := range n.Info.Replication {
		if ri.Table == table && ri.Partition == partition {
			return &n.Info.Replication[i]
		}
	}
	return nil
}

// RunningVersion is the version the node runs: what it answered to INFO,
// else what its PINGs told the meta leader; empty when neither is known.
// The TUI and checkup read it here.
func (r NodeReport) RunningVersion() string {
	if r.Info.Server != nil && r.Info.Server.Version != "" {
		return r.Info.Server.Version
	}
	return r.Version
}
