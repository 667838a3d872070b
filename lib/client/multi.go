package client

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Bounds of one MGET/MSET request; a call with more is split, and the
// requests go out in parallel. They keep a request well under the frame
// limit and keep one huge call from holding a node's connection for long.
const (
	maxKeysPerRequest  = 1000
	maxBytesPerRequest = 16 << 20
)

// KeyValue is a key and its value.
type KeyValue struct {
	Key   []byte
	Value []byte
}

// Result is the answer for one key of MGet.
type Result struct {
	Key []byte
	// Value is the key's value when Found; nil otherwise.
	Value []byte
	// Found is false for a key that does not exist: not an error.
	Found bool
	// Err is set when the key could not be read; Found and Value mean
	// nothing then.
	Err error
}

// MGet reads keys and returns one Result per key, in the order of keys.
// Keys are grouped by the master of their partition and each group is read
// with one request (or a few, for large calls), all in parallel; keys that
// are moved or waiting are retried on their own while the rest are done.
//
// A missing key is a Result with Found false, not an error. When some keys
// could not be read before ctx ended (or were refused), the results are
// still returned, with Err set on those keys, and the error is a
// *MultiError naming them. Input errors and an unknown table fail the whole
// call, with nil results.
func (c *core) MGet(ctx context.Context, table string, keys [][]byte) ([]Result, error) {
	if table == "" {
		return nil, fmt.Errorf("client: mget: %w", status.New(zppb.Code_INVALID_ARGUMENT, "empty table name"))
	}
	for i, k := range keys {
		if err := checkKey(k); err != nil {
			return nil, fmt.Errorf("client: mget: key %d: %w", i, err)
		}
	}
	results := make([]Result, len(keys))
	for i, k := range keys {
		results[i].Key = k
	}
	if len(keys) == 0 {
		return results, nil
	}
	errs, err := c.runMulti(ctx, &multiCmd{
		op:        "mget",
		table:     table,
		n:         len(keys),
		partition: byKey(keys),
		size:      func(i int) int { return len(keys[i]) },
		build: func(idx []int) *zppb.Request {
			r := &zppb.MGetRequest{Table: table, Keys: make([][]byte, len(idx))}
			for j, i := range idx {
				r.Keys[j] = keys[i]
			}
			return &zppb.Request{Cmd: &zppb.Request_Mget{Mget: r}}
		},
		results: func(resp *zppb.Response) []*zppb.KeyResult { return resp.GetMget().GetResults() },
		settle: func(i int, kr *zppb.KeyResult, kerr error) error {
			switch kr.GetCode() {
			case zppb.Code_OK:
				results[i].Found = true
				results[i].Value = kr.GetValue()
				if results[i].Value == nil {
					results[i].Value = []byte{}
				}
				return nil
			case zppb.Code_NOT_FOUND:
				return nil
			}
			return kerr
		},
	})
	if err != nil {
		return nil, err
	}
	for i, e := range errs {
		results[i].Err = e
	}
	return results, multiError("mget", keys, errs)
}

// MSet writes every key-value pair of kvs with the same ttl (0 = never
// expires). It is not atomic: keys are grouped by the master of their
// partition, the groups are written in parallel, and keys that are moved
// or waiting are retried on their own. The error is nil when every key was
// written; otherwise it is a *MultiError naming the keys that were not (the
// others were). Input errors and an unknown table fail the whole call
// before anything is written.
func (c *core) MSet(ctx context.Context, table string, kvs []KeyValue, ttl time.Duration) error {
	ttlMs, err := ttlMillis(ttl)
	if err != nil {
		return fmt.Errorf("client: mset: %w", err)
	}
	if table == "" {
		return fmt.Errorf("client: mset: %w", status.New(zppb.Code_INVALID_ARGUMENT, "empty table name"))
	}
	keys := make([][]byte, len(kvs))
	for i, kv := range kvs {
		if err := c.checkKeyValue(table, kv.Key, kv.Value); err != nil {
			return fmt.Errorf("client: mset: key %d: %w", i, err)
		}
		keys[i] = kv.Key
	}
	if len(kvs) == 0 {
		return nil
	}
	id := newRequestID()
	errs, err := c.runMulti(ctx, &multiCmd{
		op:        "mset",
		table:     table,
		write:     true,
		n:         len(keys),
		partition: byKey(keys),
		size:      func(i int) int { return len(kvs[i].Key) + len(kvs[i].Value) },
		build: func(idx []int) *zppb.Request {
			r := &zppb.MSetRequest{Table: table, Kvs: make([]*zppb.KeyValue, len(idx)), TtlMs: ttlMs}
			for j, i := range idx {
				r.Kvs[j] = &zppb.KeyValue{Key: kvs[i].Key, Value: kvs[i].Value}
			}
			return &zppb.Request{RequestId: id, Cmd: &zppb.Request_Mset{Mset: r}}
		},
		results: func(resp *zppb.Response) []*zppb.KeyResult { return resp.GetMset().GetResults() },
		settle:  settleWrite,
	})
	if err != nil {
		return err
	}
	return multiError("mset", keys, errs)
}

func multiError(op string, keys [][]byte, errs []error) error {
	var me *MultiError
	for i, e := range errs {
		if e == nil {
			continue
		}
		if me == nil {
			me = &MultiError{Op: op, Total: len(keys)}
		}
		me.Errs = append(me.Errs, KeyError{Index: i, Key: keys[i], Err: e})
	}
	if me == nil {
		return nil
	}
	return me
}

// settleWrite settles an item of a write: OK is a success, any other
// final answer the item's error.
func settleWrite(_ int, kr *zppb.KeyResult, kerr error) error {
	if kr.GetCode() == zppb.Code_OK {
		return nil
	}
	return kerr
}

// multiCmd describes a command on many items to runMulti: the keys of
// MGET and MSET, the partitions of FLUSH_TABLE. Each item goes to the
// master of its partition and gets its own result.
type multiCmd struct {
	op    string
	table string
	// write says that the command changes data, so that failed items
	// report whether they may have been applied.
	write bool
	// n is the number of items.
	n int
	// partition returns the partition of item i in the table as tr has
	// it; an error is the item's final error.
	partition func(tr *tableRoute, i int) (uint32, error)
	// size is what item i adds to a request, for splitting large calls.
	size func(i int) int
	// build makes the request for the items at idx.
	build func(idx []int) *zppb.Request
	// results returns the per-item results of an OK response.
	results func(*zppb.Response) []*zppb.KeyResult
	// settle takes an item's final answer (any code but the retried ones)
	// and returns nil when it is a success, else the item's error (kerr is
	// the answer as an error, ready to return).
	settle func(i int, kr *zppb.KeyResult, kerr error) error
}

// byKey routes item i by keys[i].
func byKey(keys [][]byte) func(*tableRoute, int) (uint32, error) {
	return func(tr *tableRoute, i int) (uint32, error) { return tr.slots.Partition(keys[i]), nil }
}

// batch is one request of a round of runMulti.
type batch struct {
	addr string
	idx  []int
	size int
	resp *zppb.Response
	err  error
}

// runMulti drives a command on many items. Each round routes the items
// still pending with the cached topology, sends one request per master
// (split by the request bounds) in parallel, and settles each item by its
// own result; items answered MOVE, WAIT, TABLE_NOT_FOUND or UNAVAILABLE,
// or whose request failed in transport, stay pending for the next round.
// Every command it drives is safe to send again (MSET and FLUSH_TABLE
// carry a request id, MGET reads), so a request lost in transport is
// simply sent again. It returns one error per item (nil = settled
// successfully), or a call error when the table does not exist or the
// client is closed. Failed requests mark routes stale as in exec.
func (c *core) runMulti(ctx context.Context, m *multiCmd) ([]error, error) {
	if c.closed.Load() {
		return nil, fmt.Errorf("client: %s: %w", m.op, ErrClosed)
	}
	gen := c.pullGen.Load()
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	n := m.n
	keyErrs := make([]error, n)
	fails := make([]failures, n) // each item's failed attempts
	for i := range fails {
		fails[i].write = m.write
	}
	part := make([]uint32, n) // each item's partition in the last round
	pending := make([]int, n)
	for i := range pending {
		pending[i] = i
	}
	bo := c.newBackoff()
	freeRounds := 0
	freshened := false
	for len(pending) > 0 {
		if ctx.Err() != nil {
			if c.closed.Load() {
				var f failures
				for _, i := range pending {
					if fails[i].ambiguous != nil {
						f = fails[i]
						break
					}
				}
				return nil, f.ended(m.op, ErrClosed)
			}
			for _, i := range pending {
				keyErrs[i] = c.endedErr(m.op, ctx, &fails[i])
			}
			break
		}
		tr, err := c.tableFor(ctx, m.table)
		if err != nil {
			if status.Code(err) == zppb.Code_TABLE_NOT_FOUND {
				return nil, fmt.Errorf("client: %s: %w", m.op, err)
			}
			if ctx.Err() == nil {
				for _, i := range pending {
					fails[i].add(err)
				}
			}
			c.sleep(ctx, bo.next())
			continue
		}
		if !freshened && slices.ContainsFunc(pending, func(i int) bool {
			p, err := m.partition(tr, i)
			return err == nil && tr.parts[p].stale
		}) {
			freshened = true
			c.freshen(ctx, gen)
			continue
		}

		var (
			next                    []int
			needRefresh, wait, prog bool
			batches                 []*batch
			open                    = make(map[string]*batch)
		)
		for _, i := range pending {
			p, err := m.partition(tr, i)
			if err != nil {
				keyErrs[i] = fmt.Errorf("client: %s: %w", m.op, err)
				prog = true
				continue
			}
			part[i] = p
			master := tr.parts[p].master
			if master == "" {
				fails[i].add(fmt.Errorf("%w: table %q partition %d", ErrNoMaster, m.table, p))
				next = append(next, i)
				needRefresh, wait = true, true
				continue
			}
			sz := m.size(i)
			b := open[master]
			if b == nil || len(b.idx) >= maxKeysPerRequest || (len(b.idx) > 0 && b.size+sz > maxBytesPerRequest) {
				b = &batch{addr: master}
				open[master] = b
				batches = append(batches, b)
			}
			b.idx = append(b.idx, i)
			b.size += sz
		}

		var wg sync.WaitGroup
		for _, b := range batches {
			wg.Go(func() {
				actx, acancel := c.attemptContext(ctx, b.size)
				defer acancel()
				b.resp, b.err = c.callNode(actx, b.addr, m.build(b.idx))
			})
		}
		wg.Wait()

		for _, b := range batches {
			if b.err != nil {
				err := atNode(b.addr, b.err)
				if !rpc.IsTransport(err) {
					for _, i := range b.idx {
						keyErrs[i] = fails[i].final(m.op, err)
					}
					prog = true
					continue
				}
				c.log.Debug("node call failed; retrying", "op", m.op, "node", b.addr, "keys", len(b.idx), "err", err)
				cut := expired(ctx)
				for _, i := range b.idx {
					c.routeFailed(m.table, part[i], b.addr, err)
					if cut {
						fails[i].addCut(err)
					} else {
						fails[i].add(err)
					}
				}
				next = append(next, b.idx...)
				wait = true // routeFailed started a PULL
				continue
			}
			for _, i := range b.idx {
				c.topo.clearStale(m.table, part[i], b.addr)
			}
			epoch := b.resp.GetEpoch()
			c.noteEpoch(epoch)
			if serr := status.FromResponse(b.resp); serr != nil {
				// Not tagged atNode: a whole batch refused for one item's
				// bytes proves nothing of another item's earlier attempt
				// (failures.final).
				serr = fmt.Errorf("node %s: %w", b.addr, serr)
				switch code := b.resp.GetCode(); {
				case code == zppb.Code_MOVE, code == zppb.Code_TABLE_NOT_FOUND, code == zppb.Code_UNAVAILABLE,
					code == zppb.Code_WAIT, attemptOutran(ctx, code):
					needRefresh = needRefresh || code == zppb.Code_MOVE || code == zppb.Code_TABLE_NOT_FOUND || code == zppb.Code_UNAVAILABLE
					wait = true
					for _, i := range b.idx {
						fails[i].add(serr)
					}
					next = append(next, b.idx...)
				default:
					for _, i := range b.idx {
						keyErrs[i] = fails[i].final(m.op, serr)
					}
					prog = true
				}
				continue
			}
			krs := m.results(b.resp)
			if len(krs) != len(b.idx) {
				serr := status.New(zppb.Code_ERROR, "node %s answered %d results for %d items", b.addr, len(krs), len(b.idx))
				for _, i := range b.idx {
					keyErrs[i] = fails[i].final(m.op, serr)
				}
				prog = true
				continue
			}
			for j, i := range b.idx {
				kr := krs[j]
				kerr := atNode(b.addr, &status.Error{Code: kr.GetCode(), Msg: kr.GetMsg(), Master: kr.GetMaster(), Epoch: epoch})
				switch kr.GetCode() {
				case zppb.Code_MOVE:
					fails[i].add(kerr)
					next = append(next, i)
					mm := kr.GetMaster()
					switch {
					case mm != "" && mm != b.addr && (epoch == 0 || epoch >= tr.epoch):
						c.topo.setMaster(m.table, part[i], mm, epoch)
						prog = true
					case mm != "" && mm != b.addr:
						wait = true // the node is behind us; see exec
					default:
						needRefresh, wait = true, true
					}
				case zppb.Code_WAIT:
					fails[i].add(kerr)
					next = append(next, i)
					wait = true
				case zppb.Code_TIMEOUT, zppb.Code_NOT_ENOUGH_REPLICAS:
					if !attemptOutran(ctx, kr.GetCode()) {
						if err := m.settle(i, kr, kerr); err != nil {
							keyErrs[i] = fails[i].final(m.op, err)
						}
						prog = true
						continue
					}
					fails[i].add(kerr)
					next = append(next, i)
					wait = true
				case zppb.Code_TABLE_NOT_FOUND, zppb.Code_UNAVAILABLE:
					fails[i].add(kerr)
					next = append(next, i)
					needRefresh, wait = true, true
				default:
					if err := m.settle(i, kr, kerr); err != nil {
						keyErrs[i] = fails[i].final(m.op, err)
					}
					prog = true
				}
			}
		}

		pending = next
		if len(pending) == 0 {
			break
		}
		if wait || !prog || freeRounds >= maxFreeMoves {
			freeRounds = 0
			c.pause(ctx, bo, needRefresh, 0)
		} else {
			// Only MOVEs to masters just learned: follow them at once.
			freeRounds++
		}
	}
	return keyErrs, nil
}
