// Package topodelta applies a meta server's PULL answer to the topology a
// node or client holds: a whole topology replaces it, a delta (PULL with
// since_epoch, see proto/meta.proto PullResponse) is merged into it.
package topodelta

import (
	"fmt"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Apply returns the topology resp brings to a caller that holds cur and
// asked for changes since cur's epoch. A whole topology (an answer without
// the delta flag: since_epoch 0, or a meta that predates deltas) is
// returned as is. A delta keeps cur's tables that it does not carry, drops
// those it no longer names, and keeps cur's nodes unless it carries them.
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
	out := &zppb.Topology{Epoch: topo.GetEpoch(), Nodes: cur.GetNodes(), Tables: make([]*zppb.Table, 0, len(resp.GetTables()))}
	if resp.GetNodesChanged() {
		out.Nodes = topo.GetNodes()
	}
	for _, st := range resp.GetTables() {
		t := changed[st.GetName()]
		if t == nil {
			t = held[st.GetName()]
			if t == nil || t.GetCreatedEpoch() != st.GetCreatedEpoch() {
				return nil, fmt.Errorf("delta to epoch %d leaves out table %q (created at epoch %d), which the topology of epoch %d lacks",
					topo.GetEpoch(), st.GetName(), st.GetCreatedEpoch(), cur.GetEpoch())
			}
		}
		out.Tables = append(out.Tables, t)
	}
	return out, nil
}
