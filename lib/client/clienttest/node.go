package clienttest

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Node is a fake data node with an in-memory store. It serves the keys of
// the partitions the cluster's topology says it masters and answers MOVE,
// naming the topology's master, for the others.
type Node struct {
	scripted
	Addr    string
	cluster *Cluster
	srv     *rpc.Server

	started time.Time

	dataMu sync.Mutex
	data   map[string]map[string]entry // table -> key -> entry
	stats  map[string]*nodeStats       // table -> requests served
	// slowlog stays empty: tests of slow logs use real nodes.
	slowlog []*zppb.SlowlogEntry
	// answered remembers the answer to each write by request id, as a
	// real node does, so a retry is not applied twice.
	answered map[string]*zppb.Response
}

type entry struct {
	value    []byte
	expireAt time.Time // zero: never
}

func (e entry) live(now time.Time) bool { return e.expireAt.IsZero() || now.Before(e.expireAt) }

// Stop closes the node: connections drop and new ones are refused.
func (n *Node) Stop() { n.srv.Close() }

func (n *Node) handle(_ context.Context, req *zppb.Request) *zppb.Response {
	if resp := n.before(req); resp != nil {
		return resp
	}
	resp := n.Handle(req)
	n.account(req, resp)
	return resp
}

// Handle is the default behaviour, for hooks that add to it.
func (n *Node) Handle(req *zppb.Request) *zppb.Response {
	if info := req.GetInfo(); info != nil {
		return n.info(info)
	}
	if len(req.RequestId) > 0 {
		// Like a real node, a share of a split multi-key call is told
		// from a retry by its keys.
		_, keys := tableAndKeys(req)
		id := string(req.RequestId) + string(bytes.Join(keys, []byte{0}))
		n.dataMu.Lock()
		prev := n.answered[id]
		n.dataMu.Unlock()
		if prev != nil {
			return prev
		}
		resp := n.apply(req)
		if resp.Code == zppb.Code_OK {
			n.dataMu.Lock()
			if n.answered == nil {
				n.answered = make(map[string]*zppb.Response)
			}
			n.answered[id] = resp
			n.dataMu.Unlock()
		}
		return resp
	}
	return n.apply(req)
}

func (n *Node) apply(req *zppb.Request) *zppb.Response {
	name, keys := tableAndKeys(req)
	tb, epoch := n.cluster.table(name)
	fail := func(code zppb.Code, msg string) *zppb.Response {
		return &zppb.Response{Code: code, Msg: msg, Epoch: epoch}
	}
	if tb == nil {
		return fail(zppb.Code_TABLE_NOT_FOUND, "table "+strconv.Quote(name))
	}
	for _, k := range keys {
		switch {
		case len(k) == 0:
			return fail(zppb.Code_EMPTY_KEY, "empty key")
		case len(k) > keyspace.MaxKeySize:
			return fail(zppb.Code_KEY_TOO_LARGE, "key too large")
		}
	}
	master := func(key []byte) string {
		return tb.Partitions[keyspace.Partition(key, tb.PartitionCount)].Master
	}
	ok := func(r *zppb.Response) *zppb.Response {
		r.Epoch = epoch
		return r
	}

	switch r := req.GetCmd().(type) {
	case *zppb.Request_Mget:
		out := &zppb.MGetResponse{}
		for _, k := range r.Mget.Keys {
			if m := master(k); m != n.Addr {
				out.Results = append(out.Results, &zppb.KeyResult{Code: zppb.Code_MOVE, Master: m})
			} else if v, found := n.get(name, k); found {
				out.Results = append(out.Results, &zppb.KeyResult{Value: v})
			} else {
				out.Results = append(out.Results, &zppb.KeyResult{Code: zppb.Code_NOT_FOUND})
			}
		}
		return ok(&zppb.Response{Result: &zppb.Response_Mget{Mget: out}})
	case *zppb.Request_Mset:
		if r.Mset.TtlMs < 0 {
			return fail(zppb.Code_INVALID_ARGUMENT, "negative ttl")
		}
		out := &zppb.MSetResponse{}
		for _, kv := range r.Mset.Kvs {
			if m := master(kv.Key); m != n.Addr {
				out.Results = append(out.Results, &zppb.KeyResult{Code: zppb.Code_MOVE, Master: m})
				continue
			}
			n.put(name, kv.Key, kv.Value, r.Mset.TtlMs)
			out.Results = append(out.Results, &zppb.KeyResult{})
		}
		return ok(&zppb.Response{Result: &zppb.Response_Mset{Mset: out}})
	case *zppb.Request_FlushTable:
		out := &zppb.FlushTableResponse{}
		for _, id := range r.FlushTable.Partitions {
			if id >= tb.PartitionCount {
				return fail(zppb.Code_INVALID_ARGUMENT, "no partition "+strconv.Itoa(int(id)))
			}
			if m := tb.Partitions[id].Master; m != n.Addr {
				out.Results = append(out.Results, &zppb.KeyResult{Code: zppb.Code_MOVE, Master: m})
				continue
			}
			n.flush(name, id, tb.PartitionCount)
			out.Results = append(out.Results, &zppb.KeyResult{})
		}
		return ok(&zppb.Response{Result: &zppb.Response_FlushTable{FlushTable: out}})
	}

	// Single-partition commands.
	if len(keys) == 0 {
		return fail(zppb.Code_INVALID_ARGUMENT, "no key")
	}
	slot := keyspace.Slot(keys[0])
	for _, k := range keys[1:] {
		if keyspace.Slot(k) != slot {
			return fail(zppb.Code_CROSS_SLOT, "keys in several slots")
		}
	}
	if m := master(keys[0]); m != n.Addr {
		return &zppb.Response{Code: zppb.Code_MOVE, Master: m, Epoch: epoch}
	}
	switch r := req.GetCmd().(type) {
	case *zppb.Request_Set:
		if r.Set.TtlMs < 0 {
			return fail(zppb.Code_INVALID_ARGUMENT, "negative ttl")
		}
		n.put(name, r.Set.Key, r.Set.Value, r.Set.TtlMs)
		return ok(&zppb.Response{})
	case *zppb.Request_Get:
		v, found := n.get(name, r.Get.Key)
		if !found {
			return fail(zppb.Code_NOT_FOUND, "")
		}
		return ok(&zppb.Response{Result: &zppb.Response_Get{Get: &zppb.GetResponse{Value: v}}})
	case *zppb.Request_Del:
		_, found := n.get(name, r.Del.Key)
		n.del(name, r.Del.Key)
		var d int64
		if found {
			d = 1
		}
		return ok(&zppb.Response{Result: &zppb.Response_Del{Del: &zppb.DelResponse{Deleted: d}}})
	case *zppb.Request_Incrby:
		n.dataMu.Lock()
		defer n.dataMu.Unlock()
		var cur int64
		if e, found := n.data[name][string(r.Incrby.Key)]; found && e.live(time.Now()) {
			v, err := strconv.ParseInt(string(e.value), 10, 64)
			if err != nil {
				return fail(zppb.Code_NOT_INTEGER, "not an integer")
			}
			cur = v
		}
		d := r.Incrby.Delta
		if (d > 0 && cur > math.MaxInt64-d) || (d < 0 && cur < math.MinInt64-d) {
			return fail(zppb.Code_OVERFLOW, "overflow")
		}
		cur += d
		n.putLocked(name, r.Incrby.Key, []byte(strconv.FormatInt(cur, 10)), 0)
		return ok(&zppb.Response{Result: &zppb.Response_Incrby{Incrby: &zppb.IncrByResponse{Value: cur}}})
	case *zppb.Request_Exists:
		_, found := n.get(name, r.Exists.Key)
		return ok(&zppb.Response{Result: &zppb.Response_Exists{Exists: &zppb.ExistsResponse{Exists: found}}})
	case *zppb.Request_Ttl:
		n.dataMu.Lock()
		e, found := n.data[name][string(r.Ttl.Key)]
		n.dataMu.Unlock()
		now := time.Now()
		if !found || !e.live(now) {
			return fail(zppb.Code_NOT_FOUND, "")
		}
		ms := int64(-1)
		if !e.expireAt.IsZero() {
			ms = e.expireAt.Sub(now).Milliseconds()
		}
		return ok(&zppb.Response{Result: &zppb.Response_Ttl{Ttl: &zppb.TTLResponse{TtlMs: ms}}})
	case *zppb.Request_WriteBatch:
		n.dataMu.Lock()
		defer n.dataMu.Unlock()
		for _, op := range r.WriteBatch.Ops {
			if op.Kind == zppb.BatchOp_DELETE {
				delete(n.data[name], string(op.Key))
			} else {
				n.putLocked(name, op.Key, op.Value, op.TtlMs)
			}
		}
		return ok(&zppb.Response{})
	case *zppb.Request_Scan:
		return ok(&zppb.Response{Result: &zppb.Response_Scan{Scan: n.scan(name, r.Scan)}})
	}
	return fail(zppb.Code_INVALID_ARGUMENT, "not a node command: "+cmdName(req))
}

// tableAndKeys returns the table of a data request and the keys it routes
// by (a scan routes by its hashtag).
func tableAndKeys(req *zppb.Request) (string, [][]byte) {
	switch r := req.GetCmd().(type) {
	case *zppb.Request_Set:
		return r.Set.Table, [][]byte{r.Set.Key}
	case *zppb.Request_Get:
		return r.Get.Table, [][]byte{r.Get.Key}
	case *zppb.Request_Del:
		return r.Del.Table, [][]byte{r.Del.Key}
	case *zppb.Request_Incrby:
		return r.Incrby.Table, [][]byte{r.Incrby.Key}
	case *zppb.Request_Exists:
		return r.Exists.Table, [][]byte{r.Exists.Key}
	case *zppb.Request_Ttl:
		return r.Ttl.Table, [][]byte{r.Ttl.Key}
	case *zppb.Request_Mget:
		return r.Mget.Table, r.Mget.Keys
	case *zppb.Request_Mset:
		keys := make([][]byte, len(r.Mset.Kvs))
		for i, kv := range r.Mset.Kvs {
			keys[i] = kv.Key
		}
		return r.Mset.Table, keys
	case *zppb.Request_WriteBatch:
		keys := make([][]byte, len(r.WriteBatch.Ops))
		for i, op := range r.WriteBatch.Ops {
			keys[i] = op.Key
		}
		return r.WriteBatch.Table, keys
	case *zppb.Request_Scan:
		return r.Scan.Table, [][]byte{append(append([]byte{'{'}, r.Scan.Hashtag...), '}')}
	case *zppb.Request_FlushTable:
		// Its partitions stand for keys, so that shares of one call are
		// told from retries as MSET's are.
		keys := make([][]byte, len(r.FlushTable.Partitions))
		for i, id := range r.FlushTable.Partitions {
			keys[i] = binary.BigEndian.AppendUint32(nil, id)
		}
		return r.FlushTable.Table, keys
	}
	return "", nil
}

func (n *Node) get(table string, key []byte) ([]byte, bool) {
	n.dataMu.Lock()
	defer n.dataMu.Unlock()
	e, ok := n.data[table][string(key)]
	if !ok || !e.live(time.Now()) {
		return nil, false
	}
	return e.value, true
}

func (n *Node) put(table string, key, value []byte, ttlMs int64) {
	n.dataMu.Lock()
	defer n.dataMu.Unlock()
	n.putLocked(table, key, value, ttlMs)
}

func (n *Node) putLocked(table string, key, value []byte, ttlMs int64) {
	if n.data[table] == nil {
		n.data[table] = make(map[string]entry)
	}
	e := entry{value: bytes.Clone(value)}
	if e.value == nil {
		e.value = []byte{}
	}
	if ttlMs > 0 {
		e.expireAt = time.Now().Add(time.Duration(ttlMs) * time.Millisecond)
	}
	n.data[table][string(key)] = e
}

// flush deletes the keys of partition id of table.
func (n *Node) flush(table string, id, partitions uint32) {
	n.dataMu.Lock()
	defer n.dataMu.Unlock()
	for k := range n.data[table] {
		if keyspace.Partition([]byte(k), partitions) == id {
			delete(n.data[table], k)
		}
	}
}

func (n *Node) del(table string, key []byte) {
	n.dataMu.Lock()
	defer n.dataMu.Unlock()
	delete(n.data[table], string(key))
}

// scan lists the live keys with the request's hashtag from the cursor
// (inclusive) on; next_cursor is the first key not returned.
func (n *Node) scan(table string, r *zppb.ScanRequest) *zppb.ScanResponse {
	count := int(r.Count)
	if count == 0 {
		count = 100
	}
	count = min(count, 1000)
	n.dataMu.Lock()
	now := time.Now()
	var keys []string
	for k, e := range n.data[table] {
		if e.live(now) && bytes.Equal(keyspace.HashTag([]byte(k)), r.Hashtag) && k >= string(r.Cursor) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := &zppb.ScanResponse{}
	for i, k := range keys {
		if i == count {
			out.NextCursor = []byte(k)
			break
		}
		out.Kvs = append(out.Kvs, &zppb.KeyValue{Key: []byte(k), Value: n.data[table][k].value})
	}
	n.dataMu.Unlock()
	return out
}
