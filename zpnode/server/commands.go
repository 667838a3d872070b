package server

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"math"
	"strconv"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// Scan page sizes.
const (
	defaultScanCount = 100
	maxScanCount     = 1000
)

func notFound(err error) error {
	if errors.Is(err, engine.ErrNotFound) {
		return status.New(zppb.Code_NOT_FOUND, "key not found")
	}
	return err
}

func (s *Server) get(req *zppb.GetRequest, stale bool) (*zppb.Response, error) {
	if err := checkKey(req.Key); err != nil {
		return nil, err
	}
	r, err := s.routeRead(req.Table, req.Key, stale)
	if err != nil {
		return nil, err
	}
	v, _, err := r.Get(req.Key)
	if err != nil {
		return nil, notFound(err)
	}
	s.quota.charge(req.Table, len(v))
	return &zppb.Response{Result: &zppb.Response_Get{Get: &zppb.GetResponse{Value: v}}}, nil
}

// del deletes the keys of one slot that exist, in one record whose result
// is their count.
func (s *Server) del(ctx context.Context, id []byte, req *zppb.DelRequest) (*zppb.Response, error) {
	keys, err := keysOf(req.Key, req.Keys)
	if err == nil {
		err = checkKeys(keys)
	}
	if err != nil {
		return nil, err
	}
	r, err := s.routeWrite(ctx, req.Table, keys[0])
	if err != nil {
		return nil, err
	}
	deleted, err := r.Update(ctx, id, func(v replica.View) (*zppb.WriteRecord, error) {
		return delOp(v, keys)
	})
	if err != nil {
		return nil, writeError(err)
	}
	return delResponse(deleted), nil
}

func delResponse(n int64) *zppb.Response {
	return &zppb.Response{Result: &zppb.Response_Del{Del: &zppb.DelResponse{Deleted: n}}}
}

// delOp deletes the keys that exist in v; the record's result is their
// count.
func delOp(v reader, keys [][]byte) (*zppb.WriteRecord, error) {
	rec := &zppb.WriteRecord{}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if seen[string(k)] {
			continue
		}
		seen[string(k)] = true
		if _, _, err := v.Get(k); err != nil {
			if err = ignoreNotFound(err); err != nil {
				return nil, err
			}
			continue
		}
		rec.Mutations = append(rec.Mutations, &zppb.Mutation{Kind: zppb.Mutation_DELETE, Key: k})
	}
	rec.Result = int64(len(rec.Mutations))
	return rec, nil
}

func ignoreNotFound(err error) error {
	if errors.Is(err, engine.ErrNotFound) {
		return nil
	}
	return err
}

// exists counts the keys of one slot that exist, a key named twice
// counting twice (EXISTS, TOUCH).
func (s *Server) exists(req *zppb.ExistsRequest, stale bool) (*zppb.Response, error) {
	keys, err := keysOf(req.Key, req.Keys)
	if err == nil {
		err = checkKeys(keys)
	}
	if err != nil {
		return nil, err
	}
	r, err := s.routeRead(req.Table, keys[0], stale)
	if err != nil {
		return nil, err
	}
	n := int64(0)
	for _, k := range keys {
		_, _, err = r.Get(k)
		if err == nil {
			n++
		} else if err = ignoreNotFound(err); err != nil {
			return nil, err
		}
	}
	return &zppb.Response{Result: &zppb.Response_Exists{Exists: &zppb.ExistsResponse{Exists: n > 0, Count: n}}}, nil
}

func (s *Server) ttl(req *zppb.TTLRequest, stale bool) (*zppb.Response, error) {
	if err := checkKey(req.Key); err != nil {
		return nil, err
	}
	r, err := s.routeRead(req.Table, req.Key, stale)
	if err != nil {
		return nil, err
	}
	_, exp, err := r.Get(req.Key)
	if err != nil {
		return nil, notFound(err)
	}
	return ttlResponse(exp, r.NowMs()), nil
}

// ttlResponse answers TTL for a key expiring at exp (0: never).
func ttlResponse(exp, nowMs int64) *zppb.Response {
	left, at := int64(-1), int64(-1)
	if exp != 0 {
		left, at = max(exp-nowMs, 0), exp
	}
	return &zppb.Response{Result: &zppb.Response_Ttl{Ttl: &zppb.TTLResponse{TtlMs: left, ExpireAtMs: at}}}
}

func (s *Server) incrBy(ctx context.Context, id []byte, req *zppb.IncrByRequest) (*zppb.Response, error) {
	if err := checkKey(req.Key); err != nil {
		return nil, err
	}
	r, err := s.routeWrite(ctx, req.Table, req.Key)
	if err != nil {
		return nil, err
	}
	result, err := r.Update(ctx, id, func(v replica.View) (*zppb.WriteRecord, error) {
		return incrByOp(v, req)
	})
	if err != nil {
		return nil, writeError(err)
	}
	return incrByResponse(result), nil
}

func incrByResponse(n int64) *zppb.Response {
	return &zppb.Response{Result: &zppb.Response_Incrby{Incrby: &zppb.IncrByResponse{Value: n}}}
}

// incrByOp adds req.Delta to the integer under the key in v, keeping its
// expiry as Redis does; the record's result is the new value.
func incrByOp(v reader, req *zppb.IncrByRequest) (*zppb.WriteRecord, error) {
	cur, exp, err := v.Get(req.Key)
	var n int64
	switch {
	case errors.Is(err, engine.ErrNotFound):
		exp = 0
	case err != nil:
		return nil, err
	default:
		var ok bool
		if n, ok = parseInteger(cur); !ok {
			return nil, status.New(zppb.Code_NOT_INTEGER, "value is not an integer or out of range")
		}
	}
	if (req.Delta > 0 && n > math.MaxInt64-req.Delta) || (req.Delta < 0 && n < math.MinInt64-req.Delta) {
		return nil, status.New(zppb.Code_OVERFLOW, "incrementing %d by %d overflows int64", n, req.Delta)
	}
	result := n + req.Delta
	return &zppb.WriteRecord{Mutations: []*zppb.Mutation{{
		Kind: zppb.Mutation_PUT, Key: req.Key, Value: strconv.AppendInt(nil, result, 10), ExpireAtMs: exp,
	}}, Result: result}, nil
}

// keyResult turns a per-key failure into its result entry.
func keyResult(err error) *zppb.KeyResult {
	resp := status.Response(err)
	return &zppb.KeyResult{Code: resp.Code, Msg: resp.Msg, Master: resp.Master}
}

func (s *Server) mget(req *zppb.MGetRequest, stale bool) (*zppb.Response, error) {
	if len(req.Keys) == 0 {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "MGET without keys")
	}
	if _, ok := s.topo.Load().tables[req.Table]; !ok {
		return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found", req.Table)
	}
	results := make([]*zppb.KeyResult, len(req.Keys))
	for i, k := range req.Keys {
		results[i] = s.mgetOne(req.Table, k, stale)
	}
	return &zppb.Response{Result: &zppb.Response_Mget{Mget: &zppb.MGetResponse{Results: results}}}, nil
}

func (s *Server) mgetOne(table string, key []byte, stale bool) *zppb.KeyResult {
	if err := checkKey(key); err != nil {
		return keyResult(err)
	}
	r, err := s.routeRead(table, key, stale)
	if err != nil {
		return keyResult(err)
	}
	v, _, err := r.Get(key)
	if err != nil {
		return keyResult(notFound(err))
	}
	s.quota.charge(table, len(v))
	return &zppb.KeyResult{Value: v}
}

// mset writes the keys of each partition in one atomic record; keys this
// node cannot take get their own result and the rest are written.
func (s *Server) mset(ctx context.Context, id []byte, req *zppb.MSetRequest) (*zppb.Response, error) {
	if len(req.Kvs) == 0 {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "MSET without keys")
	}
	if err := checkTTL(req.TtlMs); err != nil {
		return nil, err
	}
	if req.IfAbsent {
		return s.msetNX(ctx, id, req)
	}
	if _, ok := s.topo.Load().tables[req.Table]; !ok {
		return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found", req.Table)
	}
	// Bad input anywhere fails the whole request before anything is written.
	for _, kv := range req.Kvs {
		if err := cmp.Or(checkKey(kv.Key), s.checkValue(kv.Value)); err != nil {
			return nil, err
		}
	}
	results := make([]*zppb.KeyResult, len(req.Kvs))
	type group struct {
		r       *replica.Replica
		indexes []int
	}
	groups := make(map[*replica.Replica]*group)
	var order []*group
	for i, kv := range req.Kvs {
		r, err := s.routeWrite(ctx, req.Table, kv.Key)
		if err != nil {
			results[i] = keyResult(err)
			continue
		}
		g := groups[r]
		if g == nil {
			g = &group{r: r}
			groups[r] = g
			order = append(order, g)
		}
		g.indexes = append(g.indexes, i)
		s.quota.charge(req.Table, len(kv.Value))
	}
	for _, g := range order {
		exp := expireAt(g.r.NowMs(), req.TtlMs)
		rec := &zppb.WriteRecord{Mutations: make([]*zppb.Mutation, 0, len(g.indexes))}
		for _, i := range g.indexes {
			kv := req.Kvs[i]
			rec.Mutations = append(rec.Mutations, &zppb.Mutation{Kind: zppb.Mutation_PUT, Key: kv.Key, Value: kv.Value, ExpireAtMs: exp})
		}
		err := writeError(g.r.Write(ctx, partID(id, rec), rec))
		for _, i := range g.indexes {
			if err != nil {
				results[i] = keyResult(err)
			} else {
				results[i] = &zppb.KeyResult{}
			}
		}
	}
	return &zppb.Response{Result: &zppb.Response_Mset{Mset: &zppb.MSetResponse{Results: results}}}, nil
}

func (s *Server) writeBatch(ctx context.Context, id []byte, req *zppb.WriteBatchRequest) error {
	if err := s.checkWriteBatch(req); err != nil {
		return err
	}
	r, err := s.routeWrite(ctx, req.Table, req.Ops[0].Key)
	if err != nil {
		return err
	}
	// One operation for the batch (admitted by route with the first key);
	// every key and value counts as bytes.
	n := len(req.Ops[0].Value)
	for _, op := range req.Ops[1:] {
		n += len(op.Key) + len(op.Value)
	}
	s.quota.charge(req.Table, n)
	return writeError(r.Write(ctx, id, &zppb.WriteRecord{Mutations: batchMutations(r.NowMs(), req)}))
}

func (s *Server) checkWriteBatch(req *zppb.WriteBatchRequest) error {
	if len(req.Ops) == 0 {
		return status.New(zppb.Code_INVALID_ARGUMENT, "empty write batch")
	}
	for _, op := range req.Ops {
		if err := cmp.Or(checkKey(op.Key), s.checkValue(op.Value), checkTTL(op.TtlMs)); err != nil {
			return err
		}
		if op.Kind != zppb.BatchOp_PUT && op.Kind != zppb.BatchOp_DELETE {
			return status.New(zppb.Code_INVALID_ARGUMENT, "unknown batch operation %d", op.Kind)
		}
		if err := checkSameSlot(req.Ops[0].Key, op.Key); err != nil {
			return err
		}
	}
	return nil
}

// batchMutations returns the mutations of a WRITEBATCH that
// checkWriteBatch accepted, at now.
func batchMutations(now int64, req *zppb.WriteBatchRequest) []*zppb.Mutation {
	muts := make([]*zppb.Mutation, len(req.Ops))
	for i, op := range req.Ops {
		m := &zppb.Mutation{Key: op.Key}
		if op.Kind == zppb.BatchOp_DELETE {
			m.Kind = zppb.Mutation_DELETE
		} else {
			m.Kind, m.Value, m.ExpireAtMs = zppb.Mutation_PUT, op.Value, expireAt(now, op.TtlMs)
		}
		muts[i] = m
	}
	return muts
}

func (s *Server) scan(req *zppb.ScanRequest, stale bool) (*zppb.Response, error) {
	if len(req.Cursor) > keyspace.MaxKeySize {
		return nil, status.New(zppb.Code_KEY_TOO_LARGE, "cursor over %d bytes", keyspace.MaxKeySize)
	}
	count := int(req.Count)
	switch {
	case count == 0:
		count = defaultScanCount
	case count > maxScanCount:
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "scan count %d over %d", count, maxScanCount)
	}
	var (
		r   *replica.Replica
		err error
	)
	if req.Partition != nil {
		if len(req.Hashtag) != 0 {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "scan takes a hashtag or a partition, not both")
		}
		r, err = s.routePartitionRead(req.Table, *req.Partition, stale)
	} else {
		if len(req.Hashtag) == 0 {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "scan needs a hashtag or a partition")
		}
		if len(req.Hashtag) > keyspace.MaxKeySize {
			return nil, status.New(zppb.Code_KEY_TOO_LARGE, "hashtag over %d bytes", keyspace.MaxKeySize)
		}
		if bytes.ContainsAny(req.Hashtag, "{}") {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "hashtag %q contains a brace", req.Hashtag)
		}
		// Keys with this hashtag live in the partition of "{hashtag}".
		probe := append(append([]byte{'{'}, req.Hashtag...), '}')
		r, err = s.routeRead(req.Table, probe, stale)
	}
	if err != nil {
		return nil, err
	}
	var kvs []*zppb.KeyValue
	var next []byte
	if req.Partition != nil {
		kvs, next, err = r.ScanAll(req.Cursor, count, req.KeysOnly)
	} else {
		kvs, next, err = r.Scan(req.Hashtag, req.Cursor, count)
	}
	if err != nil {
		return nil, err
	}
	n := 0
	for _, kv := range kvs {
		n += len(kv.Key) + len(kv.Value)
	}
	s.quota.charge(req.Table, n)
	return &zppb.Response{Result: &zppb.Response_Scan{Scan: &zppb.ScanResponse{Kvs: kvs, NextCursor: next}}}, nil
}
