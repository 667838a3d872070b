package client

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Locate returns where key lives according to the cached topology (PULLed
// first when the table is not cached): the slot, the partition, its master
// and slaves. It does not ask any node.
func (c *core) Locate(ctx context.Context, table string, key []byte) (Location, error) {
	if err := checkTableKey(table, key); err != nil {
		return Location{}, fmt.Errorf("client: locate: %w", err)
	}
	if c.closed.Load() {
		return Location{}, fmt.Errorf("client: locate: %w", ErrClosed)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	tr, err := c.tableFor(ctx, table)
	if err != nil {
		return Location{}, fmt.Errorf("client: locate: %w", err)
	}
	rt := tr.route(key)
	p := tr.parts[rt.partition]
	return Location{
		Table:     table,
		Slot:      keyspace.Slot(key),
		Partition: rt.partition,
		Master:    rt.master,
		Slaves:    nonNil(p.slaves),
		State:     p.state.String(),
		Term:      p.term,
		Epoch:     tr.epoch,
	}, nil
}

// WaitTableWritable waits until the master of every partition of table
// serves it, e.g. after CreateTable, when nodes are still opening replicas.
// Each round sends, for every partition not yet confirmed, EXISTS for a key
// routed to that partition to its master: the probe writes nothing, and an
// answer other than OK or NOT_FOUND (WAIT, MOVE, TABLE_NOT_FOUND, a
// connection error, no master assigned) means "not yet". It returns nil
// once every partition answered, or an error naming the partitions still
// waiting, with the last failure, when ctx ends. A table the meta servers
// do not know fails at once with status.ErrTableNotFound.
//
// A read cannot prove that a master's write lease is valid; the probe
// shows that the master knows the table and has opened the partition.
func (c *core) WaitTableWritable(ctx context.Context, table string) error {
	if table == "" {
		return fmt.Errorf("client: wait writable: %w", status.New(zppb.Code_INVALID_ARGUMENT, "empty table name"))
	}
	if c.closed.Load() {
		return fmt.Errorf("client: wait writable: %w", ErrClosed)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	op := "wait writable " + table

	// The table may be newer than the cache: PULL until it shows up.
	tr, err := c.tableFor(ctx, table)
	if err != nil {
		return fmt.Errorf("client: %s: %w", op, err)
	}
	probes := probeKeys(tr.slots)
	pending := make([]uint32, tr.n)
	for i := range pending {
		pending[i] = uint32(i)
	}
	last := make([]error, tr.n)
	bo := c.newBackoff()
	for {
		if tr, err = c.tableFor(ctx, table); err != nil {
			if status.Code(err) == zppb.Code_TABLE_NOT_FOUND || ctx.Err() != nil {
				return fmt.Errorf("client: %s: %w", op, err)
			}
			if c.sleep(ctx, bo.next()) != nil {
				return c.ctxErr(op, ctx, err)
			}
			continue
		}
		if tr.n != uint32(len(probes)) {
			// Dropped and created again with another partition
			// count, or split.
			return c.WaitTableWritable(ctx, table)
		}
		var mu sync.Mutex
		var next []uint32
		refresh := false
		var wg sync.WaitGroup
		for _, id := range pending {
			wg.Go(func() {
				ok, again, err := c.probe(ctx, tr, id, probes[id])
				mu.Lock()
				defer mu.Unlock()
				if !ok {
					next = append(next, id)
					last[id] = err
					refresh = refresh || again
				}
			})
		}
		wg.Wait()
		if len(next) == 0 {
			return nil
		}
		for _, id := range next {
			if status.Code(last[id]) == zppb.Code_UNAUTHENTICATED {
				// The table has passwords and none of them was given
				// (Options.TablePasswords): waiting cannot help.
				return fmt.Errorf("client: %s: %w", op, last[id])
			}
		}
		slices.Sort(next)
		pending = next
		if c.pause(ctx, bo, refresh, 0) != nil {
			return c.ctxErr(op, ctx, fmt.Errorf("partitions %s not writable: %w", idList(pending), last[pending[0]]))
		}
	}
}

// probe asks the master of partition id about key. refresh reports that
// the topology should be PULLed again.
func (c *core) probe(ctx context.Context, tr *tableRoute, id uint32, key []byte) (ok, refresh bool, err error) {
	master := tr.parts[id].master
	if master == "" {
		return false, true, fmt.Errorf("%w: partition %d", ErrNoMaster, id)
	}
	resp, err := c.callNode(ctx, master, &zppb.Request{Cmd: &zppb.Request_Exists{Exists: &zppb.ExistsRequest{Table: tr.name, Key: key}}})
	if err != nil {
		return false, true, fmt.Errorf("node %s: %w", master, err)
	}
	c.noteEpoch(resp.GetEpoch())
	switch resp.GetCode() {
	case zppb.Code_OK, zppb.Code_NOT_FOUND:
		return true, false, nil
	case zppb.Code_MOVE:
		if m := resp.GetMaster(); m != "" && m != master && (resp.GetEpoch() == 0 || resp.GetEpoch() >= tr.epoch) {
			c.topo.setMaster(tr.name, id, m, resp.GetEpoch())
			return false, false, fmt.Errorf("node %s: %w", master, status.FromResponse(resp))
		}
		return false, true, fmt.Errorf("node %s: %w", master, status.FromResponse(resp))
	case zppb.Code_WAIT:
		return false, false, fmt.Errorf("node %s: %w", master, status.FromResponse(resp))
	default:
		return false, true, fmt.Errorf("node %s: %w", master, status.FromResponse(resp))
	}
}

// probeKeys returns, for each partition of a table routed by slots, a key
// that routes to it. Trying generated keys costs about n*ln(n) CRCs (n
// partitions of even ranges), well under a millisecond even for the
// largest tables.
func probeKeys(slots *keyspace.SlotMap) [][]byte {
	keys := make([][]byte, slots.Len())
	left := len(keys)
	for key := range generatedKeys() {
		if id := slots.Partition(key); keys[id] == nil {
			keys[id] = slices.Clone(key)
			if left--; left == 0 {
				break
			}
		}
	}
	return keys
}

// partitionKey returns a key that routes to partition id of a table routed
// by slots (id < slots.Len()), to send a partition's command to its master:
// about as many tries as there are slots per slot of the partition.
func partitionKey(slots *keyspace.SlotMap, id uint32) []byte {
	for key := range generatedKeys() {
		if slots.Partition(key) == id {
			return slices.Clone(key)
		}
	}
	panic("unreachable")
}

// generatedKeys yields __zp_probe:0, __zp_probe:1 ... in one buffer,
// overwritten from one key to the next.
func generatedKeys() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		buf := []byte("__zp_probe:")
		prefix := len(buf)
		for i := uint64(0); ; i++ {
			buf = strconv.AppendUint(buf[:prefix], i, 10)
			if !yield(buf) {
				return
			}
		}
	}
}

// idList formats partition ids for an error, eliding long lists.
func idList(ids []uint32) string {
	var b strings.Builder
	for i, id := range ids {
		if i == 8 {
			fmt.Fprintf(&b, " and %d more", len(ids)-i)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(id), 10))
	}
	return b.String()
}

// SlotMap returns the map by which table's keys go to partitions, from
// the cached topology (PULLed first when the table is not cached): a bulk
// load routes many keys with it without a call per key.
func (c *core) SlotMap(ctx context.Context, table string) (*keyspace.SlotMap, error) {
	if c.closed.Load() {
		return nil, fmt.Errorf("client: slot map: %w", ErrClosed)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	tr, err := c.tableFor(ctx, table)
	if err != nil {
		return nil, fmt.Errorf("client: slot map: %w", err)
	}
	return tr.slots, nil
}
