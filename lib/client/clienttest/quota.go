package clienttest

import (
	"cmp"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Per-table quotas and the slow log, as the fakes know them. The meta
// servers keep a table's quota in the topology (set at CREATE_TABLE and by
// SET_QUOTA, with the real leader's checks); the nodes do not enforce it.
// INFO slowlog answers an empty slow log.

// normQuota is q as the topology keeps it: nil when unlimited.
func normQuota(q *zppb.Quota) *zppb.Quota {
	if q.GetOpsPerSec() == 0 && q.GetBytesPerSec() == 0 {
		return nil
	}
	return proto.Clone(q).(*zppb.Quota)
}

// setQuota answers SET_QUOTA like the real leader: TABLE_NOT_FOUND,
// STALE_EPOCH, or the epoch after the change (the same epoch when the
// quota was already that).
func (c *Cluster) setQuota(r *zppb.SetQuotaRequest) *zppb.Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := staleEpoch(r.GetExpectedEpoch(), c.topo.Epoch); err != nil {
		return c.errorLocked(err)
	}
	i := slices.IndexFunc(c.topo.Tables, func(tb *zppb.Table) bool { return tb.Name == r.GetTable() })
	if i < 0 {
		return c.errorLocked(status.New(zppb.Code_TABLE_NOT_FOUND, "table %q does not exist", r.GetTable()))
	}
	if q := normQuota(r.GetQuota()); !proto.Equal(c.topo.Tables[i].Quota, q) {
		c.topo.Tables[i].Quota = q
		c.topo.Epoch++
	}
	epoch := c.topo.Epoch
	return &zppb.Response{Epoch: epoch, Result: &zppb.Response_SetQuota{SetQuota: &zppb.SetQuotaResponse{Epoch: epoch}}}
}

// setQuotaNoBump sets a table's quota in place, for CREATE_TABLE, whose
// epoch bump already covers it.
func (c *Cluster) setQuotaNoBump(table string, q *zppb.Quota) *zppb.Table {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tb := range c.topo.Tables {
		if tb.Name == table {
			tb.Quota = normQuota(q)
			return proto.Clone(tb).(*zppb.Table)
		}
	}
	return nil
}

// slowlogOf returns the node's slow log for table (all when empty), newest
// first.
func (n *Node) slowlogOf(table string) []*zppb.SlowlogEntry {
	n.dataMu.Lock()
	defer n.dataMu.Unlock()
	var out []*zppb.SlowlogEntry
	for _, e := range n.slowlog {
		if table == "" || e.GetTable() == table {
			out = append(out, proto.Clone(e).(*zppb.SlowlogEntry))
		}
	}
	slices.SortStableFunc(out, func(a, b *zppb.SlowlogEntry) int { return cmp.Compare(b.GetTimeMs(), a.GetTimeMs()) })
	return out
}
