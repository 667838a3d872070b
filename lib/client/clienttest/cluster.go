// Package clienttest runs fake meta servers and nodes in-process, in the
// manner of net/http/httptest. It is a second implementation of the
// servers, and tests must not check behaviour against it: lib/client's
// and zpctl's tests run on real servers (lib/inproc). Its only users left
// are zpctl's move-progress tests (zpctl/cmd/operation_test.go), whose
// scripted move states are still to be ported, and Serve (server.go), which
// serves a handler under test over TCP and fakes nothing. The fakes speak the real protocol over lib/rpc on
// 127.0.0.1 and behave like the real servers where routing is concerned:
// meta servers answer PULL and LIST from one shared topology; nodes keep an
// in-memory store, serve the partitions the topology says they master and
// answer MOVE for the others, with per-key results for MGET and MSET, and
// answer every INFO section from the topology and what they served (see
// info.go). Meta servers also queue and run topology moves in step with
// MOVE_STATUS (moves.go), and keep tables' quotas (quota.go). Anything else (WAIT, dropped connections,
// lagging epochs) is scripted with hooks.
package clienttest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Cluster is a set of fake meta servers and nodes sharing one topology.
type Cluster struct {
	Metas []*Meta
	Nodes []*Node

	mu   sync.Mutex
	topo *zppb.Topology
	lsn  map[partKey]uint64 // writes applied per partition

	// Topology moves (moves.go), by id.
	moves      []*fakeMove
	nextMoveID uint64
	moveScript MoveScript
	rebalancer Rebalancer
}

// NewCluster starts metas meta servers and nodes nodes, all stopped when
// the test ends. The topology starts at epoch 1 with every node UP and no
// table.
func NewCluster(tb testing.TB, metas, nodes int) *Cluster {
	tb.Helper()
	c := &Cluster{topo: &zppb.Topology{Epoch: 1}}
	for range nodes {
		n := &Node{scripted: newScripted(), cluster: c, data: map[string]map[string]entry{}, started: time.Now()}
		n.srv, n.Addr = serve(tb, n.handle, n.track)
		c.Nodes = append(c.Nodes, n)
		c.topo.Nodes = append(c.topo.Nodes, &zppb.Node{Addr: n.Addr, State: zppb.NodeState_UP, Weight: 100})
	}
	for range metas {
		m := &Meta{scripted: newScripted(), cluster: c}
		m.srv, m.Addr = serve(tb, m.handle, m.track)
		c.Metas = append(c.Metas, m)
	}
	return c
}

// MetaAddrs returns the meta servers' addresses.
func (c *Cluster) MetaAddrs() []string {
	out := make([]string, len(c.Metas))
	for i, m := range c.Metas {
		out[i] = m.Addr
	}
	return out
}

// Node returns the node listening on addr, or nil.
func (c *Cluster) Node(addr string) *Node {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// Topology returns a copy of the current topology.
func (c *Cluster) Topology() *zppb.Topology {
	c.mu.Lock()
	defer c.mu.Unlock()
	return proto.Clone(c.topo).(*zppb.Topology)
}

// Epoch returns the current epoch.
func (c *Cluster) Epoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.topo.Epoch
}

// Update changes the topology with fn and bumps the epoch, like any
// topology change in the real cluster. It returns the new epoch.
func (c *Cluster) Update(fn func(t *zppb.Topology)) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(c.topo)
	c.topo.Epoch++
	return c.topo.Epoch
}

// AddTable creates a table whose partition i is mastered by node i mod the
// node count, with the next node (if any) as its slave, and returns it.
func (c *Cluster) AddTable(name string, partitions uint32) *zppb.Table {
	return c.addTable(name, partitions, 0, 0)
}

func (c *Cluster) addTable(name string, partitions, replicas, minSync uint32) *zppb.Table {
	tb := &zppb.Table{Name: name, PartitionCount: partitions, Replicas: replicas, MinSyncReplicas: minSync}
	if tb.Replicas == 0 {
		tb.Replicas = uint32(min(len(c.Nodes), 2))
	}
	for i := range partitions {
		p := &zppb.Partition{Id: i, Master: c.Nodes[int(i)%len(c.Nodes)].Addr, Term: 1}
		for r := 1; r < int(tb.Replicas) && r < len(c.Nodes); r++ {
			p.Slaves = append(p.Slaves, c.Nodes[(int(i)+r)%len(c.Nodes)].Addr)
		}
		tb.Partitions = append(tb.Partitions, p)
	}
	var out *zppb.Table
	c.Update(func(t *zppb.Topology) {
		tb.CreatedEpoch = t.Epoch + 1
		t.Tables = append(t.Tables, tb)
		out = proto.Clone(tb).(*zppb.Table)
	})
	return out
}

// SetMaster makes addr the master of a partition and returns the new
// epoch.
func (c *Cluster) SetMaster(table string, id uint32, addr string) uint64 {
	return c.Update(func(t *zppb.Topology) {
		for _, tb := range t.Tables {
			if tb.Name == table {
				tb.Partitions[id].Master = addr
				tb.Partitions[id].Term++
			}
		}
	})
}

// DropTable removes a table from the topology (nodes keep its data, which
// is unreachable once the table is gone).
func (c *Cluster) DropTable(name string) uint64 {
	return c.Update(func(t *zppb.Topology) {
		t.Tables = slices.DeleteFunc(t.Tables, func(tb *zppb.Table) bool { return tb.Name == name })
	})
}

// table returns the topology's table and the epoch, read together.
func (c *Cluster) table(name string) (*zppb.Table, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tb := range c.topo.Tables {
		if tb.Name == name {
			return proto.Clone(tb).(*zppb.Table), c.topo.Epoch
		}
	}
	return nil, c.topo.Epoch
}

// cmdName names the command of req, for call counts: "get", "pull" ...
func cmdName(req *zppb.Request) string {
	switch req.GetCmd().(type) {
	case *zppb.Request_Set:
		return "set"
	case *zppb.Request_Get:
		return "get"
	case *zppb.Request_Del:
		return "del"
	case *zppb.Request_Mget:
		return "mget"
	case *zppb.Request_Mset:
		return "mset"
	case *zppb.Request_Incrby:
		return "incrby"
	case *zppb.Request_Exists:
		return "exists"
	case *zppb.Request_Ttl:
		return "ttl"
	case *zppb.Request_WriteBatch:
		return "writebatch"
	case *zppb.Request_Scan:
		return "scan"
	case *zppb.Request_Info:
		return "info"
	case *zppb.Request_FlushTable:
		return "flush_table"
	case *zppb.Request_Pull:
		return "pull"
	case *zppb.Request_Ping:
		return "ping"
	case *zppb.Request_CreateTable:
		return "create_table"
	case *zppb.Request_DropTable:
		return "drop_table"
	case *zppb.Request_ListTables:
		return "list_tables"
	case *zppb.Request_ListNodes:
		return "list_nodes"
	case *zppb.Request_ListMeta:
		return "list_meta"
	case *zppb.Request_AddSlave:
		return "add_slave"
	case *zppb.Request_RemoveSlave:
		return "remove_slave"
	case *zppb.Request_SetMaster:
		return "set_master"
	case *zppb.Request_Migrate:
		return "migrate"
	case *zppb.Request_Rebalance:
		return "rebalance"
	case *zppb.Request_CancelMove:
		return "cancel_move"
	case *zppb.Request_MoveStatus:
		return "move_status"
	case *zppb.Request_RemoveNodes:
		return "remove_nodes"
	case *zppb.Request_SetQuota:
		return "set_quota"
	}
	return fmt.Sprintf("%T", req.GetCmd())
}
