// Package topodelta applies a meta server's PULL answer to the topology a
// node or client holds: a whole topology replaces it, a delta (PULL with
// since_epoch, see proto/meta.proto PullResponse) is merged into it.
package topodelta

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Apply returns the topology resp brings to a caller that holds cur and
// asked for changes since cur's epoch. A whole topology (an answer without
// the delta flag: since_epoch 0, or a meta that predates deltas) is
// returned as is. A delta keeps cur's tables that it does not carry and
// drops those it no longer names; a partial table (partial_tables) is
// cur's table with the partitions it carries replaced, by id. It replaces
// cur's nodes when it carries the whole list (nodes_changed), else updates
// and adds the nodes it carries, by address.
// The result shares messages with cur and resp; treat them all as
// immutable. An error means the delta does not fit cur (it names a table
// cur lacks, or one created anew): pull the whole topology instead.
func Apply(cur *zppb.Topology, resp *zppb.PullResponse) (*zppb.Topology, error) {
	topo := resp.GetTopology()
	if topo == nil {
		return nil, fmt.Errorf("PULL answer without a topology")
	}
	if !resp.GetDelta() {
		return topo, nil
	}
	if cur == nil {
		return nil, fmt.Errorf("delta to epoch %d without a topology to apply it to", topo.GetEpoch())
	}
	if topo.GetEpoch() < cur.GetEpoch() {
		return nil, fmt.Errorf("delta to epoch %d is older than the topology of epoch %d", topo.GetEpoch(), cur.GetEpoch())
	}
	changed := make(map[string]*zppb.Table, len(topo.GetTables()))
	for _, t := range topo.GetTables() {
		changed[t.GetName()] = t
	}
	held := make(map[string]*zppb.Table, len(cur.GetTables()))
	for _, t := range cur.GetTables() {
		held[t.GetName()] = t
	}
	out := &zppb.Topology{Epoch: topo.GetEpoch(), Nodes: mergeNodes(cur.GetNodes(), topo.GetNodes(), resp.GetNodesChanged()),
		Tables: make([]*zppb.Table, 0, len(resp.GetTables()))}
	partial := make(map[string]*zppb.Table, len(resp.GetPartialTables()))
	for _, t := range resp.GetPartialTables() {
		partial[t.GetName()] = t
	}
	for _, st := range resp.GetTables() {
		t := changed[st.GetName()]
		if t == nil {
			t = held[st.GetName()]
			if t == nil || t.GetCreatedEpoch() != st.GetCreatedEpoch() {
				return nil, fmt.Errorf("delta to epoch %d leaves out table %q (created at epoch %d), which the topology of epoch %d lacks",
					topo.GetEpoch(), st.GetName(), st.GetCreatedEpoch(), cur.GetEpoch())
			}
			if pt := partial[st.GetName()]; pt != nil {
				var err error
				if t, err = mergePartitions(t, pt); err != nil {
					return nil, fmt.Errorf("delta to epoch %d: %w", topo.GetEpoch(), err)
				}
			}
		}
		out.Tables = append(out.Tables, t)
	}
	return out, nil
}

// mergePartitions is held with the partitions of the partial table pt in
// place of its own, and pt's own fields.
func mergePartitions(held, pt *zppb.Table) (*zppb.Table, error) {
	if pt.GetCreatedEpoch() != held.GetCreatedEpoch() || pt.GetPartitionCount() != held.GetPartitionCount() {
		return nil, fmt.Errorf("partial table %q (created at epoch %d, %d partitions) does not fit the one held (created at epoch %d, %d partitions)",
			pt.GetName(), pt.GetCreatedEpoch(), pt.GetPartitionCount(), held.GetCreatedEpoch(), held.GetPartitionCount())
	}
	out := proto.CloneOf(pt)
	out.Partitions = slices.Clone(held.GetPartitions())
	for _, p := range pt.GetPartitions() {
		if int(p.GetId()) >= len(out.Partitions) {
			return nil, fmt.Errorf("partial table %q: partition %d of %d", pt.GetName(), p.GetId(), len(out.Partitions))
		}
		out.Partitions[p.GetId()] = p
	}
	return out, nil
}

// Pull asks call for every table as a delta against cur (the whole
// topology when cur is nil) and returns the topology it brings. A delta
// that does not fit cur is reported to misfit and asked again whole.
func Pull(ctx context.Context, cur *zppb.Topology, call func(context.Context, *zppb.PullRequest) (*zppb.PullResponse, error), misfit func(error)) (*zppb.Topology, error) {
	req := &zppb.PullRequest{SinceEpoch: cur.GetEpoch(), PartitionDeltas: true}
	for {
		resp, err := call(ctx, req)
		if err != nil {
			return nil, err
		}
		topo, err := Apply(cur, resp)
		if err == nil || req.SinceEpoch == 0 {
			return topo, err
		}
		misfit(err)
		req = &zppb.PullRequest{}
	}
}

// mergeNodes is the node list after a delta: changed itself when it is the
// whole list, else cur with changed merged in by address, sorted by
// address as meta sends it.
func mergeNodes(cur, changed []*zppb.Node, whole bool) []*zppb.Node {
	if whole {
		return changed
	}
	if len(changed) == 0 {
		return cur
	}
	byAddr := func(a, b *zppb.Node) int { return cmp.Compare(a.GetAddr(), b.GetAddr()) }
	if slices.IsSortedFunc(cur, byAddr) && slices.IsSortedFunc(changed, byAddr) {
		// As meta sends them: one pass, instead of a map and a sort of
		// every node on each delta.
		out := make([]*zppb.Node, 0, len(cur)+len(changed))
		i, j := 0, 0
		for i < len(cur) || j < len(changed) {
			switch {
			case j == len(changed) || i < len(cur) && byAddr(cur[i], changed[j]) < 0:
				out = append(out, cur[i])
				i++
			case i == len(cur) || byAddr(cur[i], changed[j]) > 0:
				out = append(out, changed[j])
				j++
			default: // the same node: the changed record wins
				out = append(out, changed[j])
				i++
				j++
			}
		}
		return out
	}
	return mergeUnsorted(cur, changed)
}

// mergeUnsorted is mergeNodes for lists not sorted by address.
func mergeUnsorted(cur, changed []*zppb.Node) []*zppb.Node {
	byAddr := make(map[string]*zppb.Node, len(cur)+len(changed))
	for _, n := range cur {
		byAddr[n.GetAddr()] = n
	}
	for _, n := range changed {
		byAddr[n.GetAddr()] = n
	}
	out := slices.Collect(maps.Values(byAddr))
	slices.SortFunc(out, func(a, b *zppb.Node) int { return cmp.Compare(a.GetAddr(), b.GetAddr()) })
	return out
}
