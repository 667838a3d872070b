package redisfront

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// nodeID is a node's 40-hex Redis Cluster id: the SHA-1 of its cluster
// address, so every node names every other alike, and a node keeps its id
// across restarts.
func nodeID(addr string) string {
	sum := sha1.Sum([]byte(addr))
	return hex.EncodeToString(sum[:])
}

// shard is one partition as Redis Cluster sees it: a slot range, its
// master and slaves (those with a RESP address).
type shard struct {
	begin, end int // inclusive
	master     *zppb.Node
	slaves     []*zppb.Node
}

// shards returns the partitions of table in slot order (which, once a table
// is split, is not the order of their ids); a partition whose master is
// unknown or has no RESP address has a nil master. A table that cannot be
// routed (its ranges do not cover every slot once) has none.
func (c *conn) shards(tp *zppb.Topology, table string) []shard {
	nodes := make(map[string]*zppb.Node, len(tp.GetNodes()))
	for _, n := range tp.GetNodes() {
		if n.RedisAddr != "" {
			nodes[n.Addr] = n
		}
	}
	var out []shard
	for _, tb := range tp.GetTables() {
		if tb.Name != table {
			continue
		}
		slots, err := topo.SlotMap(tb)
		if err != nil {
			continue
		}
		for _, r := range slots.Ranges() {
			p := tb.Partitions[r.Partition]
			sh := shard{begin: int(r.Begin), end: int(r.End) - 1, master: nodes[p.Master]}
			for _, s := range p.Slaves {
				if n := nodes[s]; n != nil {
					sh.slaves = append(sh.slaves, n)
				}
			}
			out = append(out, sh)
		}
	}
	return out
}

// cmdCluster is CLUSTER SLOTS, SHARDS, NODES, INFO, MYID, KEYSLOT,
// COUNTKEYSINSLOT and GETKEYSINSLOT, for the connection's table.
func cmdCluster(c *conn, args [][]byte) entry {
	sub := strings.ToLower(string(args[1]))
	arity := map[string]int{"slots": 2, "shards": 2, "nodes": 2, "info": 2, "myid": 2, "keyslot": 3, "countkeysinslot": 3, "getkeysinslot": 4}
	n, known := arity[sub]
	if !known {
		return fail(errUnknownSubcommand("cluster", args[1]))
	}
	if len(args) != n {
		return fail(errArity("cluster|" + sub))
	}
	switch sub {
	case "slots":
		return local(clusterSlots)
	case "shards":
		return local(clusterShards)
	case "nodes":
		return local(clusterNodes)
	case "info":
		return local(clusterInfo)
	case "myid":
		return local(func(c *conn) { c.w.WriteBulkString(nodeID(c.s.b.Addr())) })
	case "keyslot":
		slot := keyspace.Slot(args[2])
		return local(func(c *conn) { c.w.WriteInt(int64(slot)) })
	case "countkeysinslot", "getkeysinslot":
		slot, err := strconv.ParseInt(string(args[2]), 10, 64)
		if err != nil || slot < 0 || slot >= keyspace.Slots {
			return fail("ERR Invalid slot")
		}
		limit := -1
		if sub == "getkeysinslot" {
			n, err := strconv.ParseInt(string(args[3]), 10, 64)
			if err != nil || n < 0 {
				return fail("ERR Invalid number of keys")
			}
			limit = int(min(n, 1<<20))
		}
		return local(func(c *conn) {
			keys, count, err := c.s.b.KeysInSlot(c.table, uint16(slot), limit)
			switch {
			case err != nil:
				c.w.WriteError("ERR " + err.Error())
			case sub == "countkeysinslot":
				c.w.WriteInt(int64(count))
			default:
				c.w.WriteArrayLen(len(keys))
				for _, k := range keys {
					c.w.WriteBulk(k)
				}
			}
		})
	}
	return fail(errUnknownSubcommand("cluster", args[1]))
}

func (c *conn) writeNode(n *zppb.Node) {
	host, port := splitHostPort(n.RedisAddr)
	c.w.WriteArrayLen(3)
	c.w.WriteBulkString(host)
	c.w.WriteInt(int64(port))
	c.w.WriteBulkString(nodeID(n.Addr))
}

// clusterSlots lists each partition's slot range with its master first,
// then its slaves.
func clusterSlots(c *conn) {
	var served []shard
	for _, sh := range c.shards(c.s.b.Topology(), c.table) {
		if sh.master != nil {
			served = append(served, sh)
		}
	}
	c.w.WriteArrayLen(len(served))
	for _, sh := range served {
		c.w.WriteArrayLen(3 + len(sh.slaves))
		c.w.WriteInt(int64(sh.begin))
		c.w.WriteInt(int64(sh.end))
		c.writeNode(sh.master)
		for _, s := range sh.slaves {
			c.writeNode(s)
		}
	}
}

func health(n *zppb.Node) string {
	if n.State == zppb.NodeState_DOWN {
		return "fail"
	}
	return "online"
}

// clusterShards is CLUSTER SHARDS: one shard per partition.
func clusterShards(c *conn) {
	shards := c.shards(c.s.b.Topology(), c.table)
	c.w.WriteArrayLen(len(shards))
	for _, sh := range shards {
		c.w.WriteMapLen(2)
		c.w.WriteBulkString("slots")
		c.w.WriteArrayLen(2)
		c.w.WriteInt(int64(sh.begin))
		c.w.WriteInt(int64(sh.end))
		c.w.WriteBulkString("nodes")
		var nodes []*zppb.Node
		if sh.master != nil {
			nodes = append(nodes, sh.master)
		}
		nodes = append(nodes, sh.slaves...)
		c.w.WriteArrayLen(len(nodes))
		for i, n := range nodes {
			host, port := splitHostPort(n.RedisAddr)
			role := "replica"
			if i == 0 && sh.master != nil {
				role = "master"
			}
			c.w.WriteMapLen(7)
			c.w.WriteBulkString("id")
			c.w.WriteBulkString(nodeID(n.Addr))
			c.w.WriteBulkString("port")
			c.w.WriteInt(int64(port))
			c.w.WriteBulkString("ip")
			c.w.WriteBulkString(host)
			c.w.WriteBulkString("endpoint")
			c.w.WriteBulkString(host)
			c.w.WriteBulkString("role")
			c.w.WriteBulkString(role)
			c.w.WriteBulkString("replication-offset")
			c.w.WriteInt(0)
			c.w.WriteBulkString("health")
			c.w.WriteBulkString(health(n))
		}
	}
}

// clusterNodes is CLUSTER NODES. A Zeppelin node masters some partitions
// and replicates others, which Redis's one-role-per-node format cannot
// say: every node is listed as a master with the slots it masters (the
// shards and slots replies show the slaves).
func clusterNodes(c *conn) {
	topo := c.s.b.Topology()
	slots := make(map[string][]string)
	for _, sh := range c.shards(topo, c.table) {
		if sh.master == nil {
			continue
		}
		r := strconv.Itoa(sh.begin)
		if sh.end != sh.begin {
			r += "-" + strconv.Itoa(sh.end)
		}
		slots[sh.master.Addr] = append(slots[sh.master.Addr], r)
	}
	var b strings.Builder
	now := time.Now().UnixMilli()
	for _, n := range topo.GetNodes() {
		if n.RedisAddr == "" {
			continue
		}
		flags := "master"
		if n.Addr == c.s.b.Addr() {
			flags = "myself,master"
		}
		link := "connected"
		if n.State == zppb.NodeState_DOWN {
			flags += ",fail"
			link = "disconnected"
		}
		fmt.Fprintf(&b, "%s %s@0 %s - 0 %d %d %s", nodeID(n.Addr), n.RedisAddr, flags, now, topo.Epoch, link)
		for _, r := range slots[n.Addr] {
			b.WriteString(" " + r)
		}
		b.WriteString("\n")
	}
	c.w.WriteVerbatim("txt", []byte(b.String()))
}

// clusterInfo is CLUSTER INFO: the state is ok when every slot of the
// table has a master with a RESP address.
func clusterInfo(c *conn) {
	topo := c.s.b.Topology()
	assigned, masters := 0, map[string]bool{}
	for _, sh := range c.shards(topo, c.table) {
		if sh.master != nil {
			assigned += sh.end - sh.begin + 1
			masters[sh.master.Addr] = true
		}
	}
	known := 0
	for _, n := range topo.GetNodes() {
		if n.RedisAddr != "" {
			known++
		}
	}
	state := "ok"
	if assigned < keyspace.Slots {
		state = "fail"
	}
	text := fmt.Sprintf("cluster_state:%s\r\ncluster_slots_assigned:%d\r\ncluster_slots_ok:%d\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\n"+
		"cluster_known_nodes:%d\r\ncluster_size:%d\r\ncluster_current_epoch:%d\r\ncluster_my_epoch:%d\r\n"+
		"cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n",
		state, assigned, assigned, known, len(masters), topo.GetEpoch(), topo.GetEpoch())
	c.w.WriteVerbatim("txt", []byte(text))
}
