package clienttest

import (
	"slices"
	"strconv"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// The fake nodes answer every INFO section the way a real node does, from
// the topology and from what they served: replication positions are one
// log sequence number per partition, bumped by each write its master
// applies, and every slave is streaming and in step with its master. A
// test that needs lag, a broken slave or figures a fake does not keep (QPS)
// scripts them with a hook that edits Handle's answer.

// partKey names one partition of one table.
type partKey struct {
	table string
	id    uint32
}

// nodeStats counts one table's requests on a node.
type nodeStats struct {
	reads, writes, errors uint64
}

// LSN returns the log sequence number of a partition: how many writes its
// masters applied.
func (c *Cluster) LSN(table string, partition uint32) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lsn[partKey{table, partition}]
}

func (c *Cluster) bumpLSN(table string, partitions ...uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lsn == nil {
		c.lsn = make(map[partKey]uint64)
	}
	for _, id := range partitions {
		c.lsn[partKey{table, id}]++
	}
}

// written returns the partitions of table that a successful write request
// changed; nil for reads and failures.
func written(req *zppb.Request, resp *zppb.Response, n uint32) []uint32 {
	if resp.GetCode() != zppb.Code_OK || n == 0 {
		return nil
	}
	var keys [][]byte
	switch r := req.GetCmd().(type) {
	case *zppb.Request_Set:
		keys = [][]byte{r.Set.Key}
	case *zppb.Request_Del:
		if resp.GetDel().GetDeleted() == 0 {
			return nil
		}
		keys = [][]byte{r.Del.Key}
	case *zppb.Request_Incrby:
		keys = [][]byte{r.Incrby.Key}
	case *zppb.Request_WriteBatch:
		if len(r.WriteBatch.Ops) == 0 {
			return nil
		}
		keys = [][]byte{r.WriteBatch.Ops[0].Key}
	case *zppb.Request_Mset:
		for i, kv := range r.Mset.Kvs {
			if i < len(resp.GetMset().GetResults()) && resp.GetMset().GetResults()[i].GetCode() == zppb.Code_OK {
				keys = append(keys, kv.Key)
			}
		}
	case *zppb.Request_FlushTable:
		var ids []uint32
		for i, id := range r.FlushTable.Partitions {
			if i < len(resp.GetFlushTable().GetResults()) && resp.GetFlushTable().GetResults()[i].GetCode() == zppb.Code_OK {
				ids = append(ids, id)
			}
		}
		return ids
	default:
		return nil
	}
	var ids []uint32
	for _, k := range keys {
		if id := keyspace.Partition(k, n); !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// isWrite reports whether req changes data.
func isWrite(req *zppb.Request) bool {
	switch req.GetCmd().(type) {
	case *zppb.Request_Set, *zppb.Request_Del, *zppb.Request_Incrby, *zppb.Request_WriteBatch, *zppb.Request_Mset, *zppb.Request_FlushTable:
		return true
	}
	return false
}

// account counts a data request in the node's stats and bumps the LSN of
// the partitions it wrote.
func (n *Node) account(req *zppb.Request, resp *zppb.Response) {
	name, _ := tableAndKeys(req)
	if name == "" {
		return
	}
	tb, _ := n.cluster.table(name)
	if tb == nil {
		return
	}
	if ids := written(req, resp, tb.PartitionCount); len(ids) > 0 {
		n.cluster.bumpLSN(name, ids...)
	}
	n.dataMu.Lock()
	defer n.dataMu.Unlock()
	if n.stats == nil {
		n.stats = make(map[string]*nodeStats)
	}
	st := n.stats[name]
	if st == nil {
		st = &nodeStats{}
		n.stats[name] = st
	}
	switch {
	case resp.GetCode() != zppb.Code_OK && resp.GetCode() != zppb.Code_NOT_FOUND:
		st.errors++
	case isWrite(req):
		st.writes++
	default:
		st.reads++
	}
}

// info answers INFO like a real node: TABLE_NOT_FOUND for an unknown
// table, else the section asked for.
func (n *Node) info(r *zppb.InfoRequest) *zppb.Response {
	topo := n.cluster.Topology()
	var tables []*zppb.Table
	for _, tb := range topo.Tables {
		if r.GetTable() == "" || tb.Name == r.GetTable() {
			tables = append(tables, tb)
		}
	}
	if r.GetTable() != "" && len(tables) == 0 {
		return &zppb.Response{Code: zppb.Code_TABLE_NOT_FOUND, Msg: "table " + strconv.Quote(r.GetTable()), Epoch: topo.Epoch}
	}
	out := &zppb.InfoResponse{}
	switch r.GetSection() {
	case zppb.InfoSection_INFO_SERVER:
		si := &zppb.ServerInfo{Addr: n.Addr, Epoch: topo.Epoch, Version: "clienttest",
			UptimeMs: time.Since(n.started).Milliseconds(), LastPingMs: time.Now().UnixMilli()}
		for _, tb := range topo.Tables {
			si.Tables = append(si.Tables, tb.Name)
		}
		if len(n.cluster.Metas) > 0 {
			si.MetaLeader = n.cluster.Metas[0].Addr
		}
		out.Server = si
	case zppb.InfoSection_INFO_STATS:
		n.dataMu.Lock()
		for _, tb := range tables {
			st := n.stats[tb.Name]
			if st == nil {
				st = &nodeStats{}
			}
			out.Stats = append(out.Stats, &zppb.TableStats{Table: tb.Name, Ops: st.reads + st.writes,
				Reads: st.reads, Writes: st.writes, Errors: st.errors})
		}
		n.dataMu.Unlock()
	case zppb.InfoSection_INFO_CAPACITY:
		for _, tb := range tables {
			held := uint32(0)
			for _, p := range tb.Partitions {
				if p.Master == n.Addr || slices.Contains(p.Slaves, n.Addr) {
					held++
				}
			}
			if held == 0 {
				continue
			}
			used := n.bytes(tb.Name)
			out.Capacity = append(out.Capacity, &zppb.TableCapacity{Table: tb.Name, UsedBytes: used, DbBytes: used, Replicas: held})
		}
	case zppb.InfoSection_INFO_REPLICATION:
		for _, tb := range tables {
			for _, p := range tb.Partitions {
				master := p.Master == n.Addr
				if !master && !slices.Contains(p.Slaves, n.Addr) {
					continue
				}
				lsn := n.cluster.LSN(tb.Name, p.Id)
				ri := &zppb.ReplicaInfo{Table: tb.Name, Partition: p.Id, Role: "slave", Master: p.Master, State: "streaming",
					Term: p.Term, Lsn: lsn, AppliedLsn: lsn, FirstLsn: min(lsn, 1)}
				if master {
					ri.Role, ri.State, ri.MinSyncReplicas = "master", "serving", tb.MinSyncReplicas
					for _, s := range p.Slaves {
						ri.Peers = append(ri.Peers, &zppb.PeerPosition{Addr: s, Term: p.Term, Lsn: lsn, State: "streaming"})
					}
				}
				out.Replication = append(out.Replication, ri)
			}
		}
	case zppb.InfoSection_INFO_SLOWLOG:
		out.Slowlog = n.slowlogOf(r.GetTable())
	default:
		return &zppb.Response{Code: zppb.Code_INVALID_ARGUMENT, Msg: "unknown INFO section", Epoch: topo.Epoch}
	}
	return &zppb.Response{Epoch: topo.Epoch, Result: &zppb.Response_Info{Info: out}}
}

// bytes is what the node stores for table: keys and values.
func (n *Node) bytes(table string) uint64 {
	n.dataMu.Lock()
	defer n.dataMu.Unlock()
	var total uint64
	for k, e := range n.data[table] {
		total += uint64(len(k) + len(e.value))
	}
	return total
}
