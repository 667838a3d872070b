package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// multi runs the commands of a MultiRequest (Redis MULTI/EXEC) on keys of
// one slot as one read-modify-write of the partition: one
// replica.UpdateAnswer, so one binlog record with every command's
// mutations, atomic with the partition's other writes. Each command reads
// through a txView, which sees the writes of the commands before it.
//
// The record's result_value is the MultiResponse, so a retry with the same
// request id — on this master or a slave promoted after a failover — gets
// the first attempt's answers without running anything again.
func (s *Server) multi(ctx context.Context, id []byte, req *zppb.MultiRequest) (*zppb.Response, error) {
	keys, n, err := s.checkMulti(req)
	if err != nil {
		return nil, err
	}
	r, err := s.routeWrite(ctx, req.Table, keys[0])
	if err != nil {
		return nil, err
	}
	s.quota.charge(req.Table, n)
	a, err := r.UpdateAnswer(ctx, id, func(v replica.View) (*zppb.WriteRecord, error) {
		tx := &txView{base: v, now: r.NowMs(), local: make(map[string]*zppb.Mutation)}
		out := &zppb.MultiResponse{Results: make([]*zppb.Response, len(req.Cmds))}
		rec := &zppb.WriteRecord{Result: 1}
		for i, c := range req.Cmds {
			resp, muts, err := s.multiOne(tx, c)
			if err != nil {
				var se *status.Error
				if !errors.As(err, &se) {
					// The store failed, not the command: nothing of the
					// transaction is written.
					return nil, err
				}
				// A command's own error (INCRBY of a string, say) is its
				// answer; the others still run, as in Redis.
				resp = status.Response(err)
			}
			tx.apply(muts)
			rec.Mutations = append(rec.Mutations, muts...)
			out.Results[i] = resp
		}
		b, err := proto.Marshal(out)
		if err != nil {
			return nil, fmt.Errorf("server: marshal MULTI answers: %w", err)
		}
		rec.ResultValue = b
		return rec, nil
	})
	if err != nil {
		return nil, writeError(err)
	}
	out := &zppb.MultiResponse{}
	if err := proto.Unmarshal(a.Value, out); err != nil {
		return nil, fmt.Errorf("server: MULTI answers do not parse: %w", err)
	}
	return &zppb.Response{Result: &zppb.Response_Multi{Multi: out}}, nil
}

// checkMulti checks a MultiRequest before anything runs: known commands of
// its table, none with its own request id, and every key in one slot. It
// returns the keys and the bytes the commands write (for the quota).
func (s *Server) checkMulti(req *zppb.MultiRequest) (keys [][]byte, n int, err error) {
	if len(req.Cmds) == 0 {
		return nil, 0, status.New(zppb.Code_INVALID_ARGUMENT, "MULTI without commands")
	}
	for i, c := range req.Cmds {
		if len(c.RequestId) != 0 {
			return nil, 0, status.New(zppb.Code_INVALID_ARGUMENT, "MULTI command %d has its own request id", i)
		}
		table, ks, size, ok := multiKeys(c)
		if !ok {
			return nil, 0, status.New(zppb.Code_INVALID_ARGUMENT, "MULTI command %d: %T cannot run in MULTI", i, c.Cmd)
		}
		if table != req.Table {
			return nil, 0, status.New(zppb.Code_INVALID_ARGUMENT, "MULTI command %d is on table %q, not %q", i, table, req.Table)
		}
		keys = append(keys, ks...)
		n += size
	}
	if len(keys) == 0 {
		return nil, 0, status.New(zppb.Code_INVALID_ARGUMENT, "MULTI names no key")
	}
	return keys, n, checkKeys(keys)
}

// multiKeys returns the table, keys and written bytes of a command MULTI
// can run; ok is false for any other.
func multiKeys(req *zppb.Request) (table string, keys [][]byte, size int, ok bool) {
	switch c := req.Cmd.(type) {
	case *zppb.Request_Set:
		return c.Set.Table, [][]byte{c.Set.Key}, len(c.Set.Value), true
	case *zppb.Request_Get:
		return c.Get.Table, [][]byte{c.Get.Key}, 0, true
	case *zppb.Request_Getex:
		return c.Getex.Table, [][]byte{c.Getex.Key}, 0, true
	case *zppb.Request_Del:
		ks, err := keysOf(c.Del.Key, c.Del.Keys)
		return c.Del.Table, ks, 0, err == nil
	case *zppb.Request_Exists:
		ks, err := keysOf(c.Exists.Key, c.Exists.Keys)
		return c.Exists.Table, ks, 0, err == nil
	case *zppb.Request_Ttl:
		return c.Ttl.Table, [][]byte{c.Ttl.Key}, 0, true
	case *zppb.Request_Incrby:
		return c.Incrby.Table, [][]byte{c.Incrby.Key}, 0, true
	case *zppb.Request_IncrbyFloat:
		return c.IncrbyFloat.Table, [][]byte{c.IncrbyFloat.Key}, 0, true
	case *zppb.Request_SetRange:
		return c.SetRange.Table, [][]byte{c.SetRange.Key}, len(c.SetRange.Value), true
	case *zppb.Request_Expire:
		return c.Expire.Table, [][]byte{c.Expire.Key}, 0, true
	case *zppb.Request_Mget:
		return c.Mget.Table, c.Mget.Keys, 0, len(c.Mget.Keys) > 0
	case *zppb.Request_Mset:
		for _, kv := range c.Mset.Kvs {
			keys = append(keys, kv.Key)
			size += len(kv.Value)
		}
		return c.Mset.Table, keys, size, len(keys) > 0
	case *zppb.Request_WriteBatch:
		for _, op := range c.WriteBatch.Ops {
			keys = append(keys, op.Key)
			size += len(op.Value)
		}
		return c.WriteBatch.Table, keys, size, len(keys) > 0
	}
	return "", nil, 0, false
}

// multiOne runs one command of a MULTI on tx with the same checks and
// answers as on its own: its response and the mutations it makes.
func (s *Server) multiOne(tx *txView, req *zppb.Request) (*zppb.Response, []*zppb.Mutation, error) {
	now := tx.now
	// run turns an op's record into the command's answer and mutations.
	run := func(rec *zppb.WriteRecord, err error, answer func(a replica.Answer) *zppb.Response) (*zppb.Response, []*zppb.Mutation, error) {
		if err != nil {
			return nil, nil, err
		}
		a := replica.Answer{Result: rec.GetResult(), Value: rec.GetResultValue(), Wrote: len(rec.GetMutations()) > 0}
		return answer(a), rec.GetMutations(), nil
	}
	switch c := req.Cmd.(type) {
	case *zppb.Request_Set:
		if err := s.checkSet(c.Set); err != nil {
			return nil, nil, err
		}
		rec, err := setOp(now, tx, c.Set)
		return run(rec, err, func(a replica.Answer) *zppb.Response { return setAnswer(c.Set, a) })
	case *zppb.Request_Get:
		if err := checkKey(c.Get.Key); err != nil {
			return nil, nil, err
		}
		v, _, err := tx.Get(c.Get.Key)
		if err != nil {
			return nil, nil, notFound(err)
		}
		return getResponse(v), nil, nil
	case *zppb.Request_Getex:
		if err := cmp.Or(checkKey(c.Getex.Key), checkGetExChange(c.Getex)); err != nil {
			return nil, nil, err
		}
		if c.Getex.Change == nil {
			return s.multiOne(tx, &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: c.Getex.Table, Key: c.Getex.Key}}})
		}
		rec, err := getExOp(now, tx, c.Getex)
		return run(rec, err, func(a replica.Answer) *zppb.Response { return getResponse(a.Value) })
	case *zppb.Request_Del:
		keys, _ := keysOf(c.Del.Key, c.Del.Keys)
		rec, err := delOp(tx, keys)
		return run(rec, err, func(a replica.Answer) *zppb.Response { return delResponse(a.Result) })
	case *zppb.Request_Exists:
		keys, _ := keysOf(c.Exists.Key, c.Exists.Keys)
		n := int64(0)
		for _, k := range keys {
			if _, _, err := tx.Get(k); err == nil {
				n++
			} else if err = ignoreNotFound(err); err != nil {
				return nil, nil, err
			}
		}
		return &zppb.Response{Result: &zppb.Response_Exists{Exists: &zppb.ExistsResponse{Exists: n > 0, Count: n}}}, nil, nil
	case *zppb.Request_Ttl:
		_, exp, err := tx.Get(c.Ttl.Key)
		if err != nil {
			return nil, nil, notFound(err)
		}
		return ttlResponse(exp, now), nil, nil
	case *zppb.Request_Incrby:
		rec, err := incrByOp(tx, c.Incrby)
		return run(rec, err, func(a replica.Answer) *zppb.Response { return incrByResponse(a.Result) })
	case *zppb.Request_IncrbyFloat:
		delta, ok := parseLongDouble(c.IncrbyFloat.Delta)
		if !ok {
			return nil, nil, errNotFloat
		}
		rec, err := incrByFloatOp(tx, c.IncrbyFloat.Key, delta)
		return run(rec, err, func(a replica.Answer) *zppb.Response { return incrByFloatResponse(a.Value) })
	case *zppb.Request_SetRange:
		if err := s.checkSetRange(c.SetRange); err != nil {
			return nil, nil, err
		}
		rec, err := s.setRangeOp(tx, c.SetRange)
		return run(rec, err, func(a replica.Answer) *zppb.Response { return setRangeResponse(a.Result) })
	case *zppb.Request_Expire:
		if err := checkExpireRequest(c.Expire); err != nil {
			return nil, nil, err
		}
		rec, err := expireOp(now, tx, c.Expire)
		return run(rec, err, func(a replica.Answer) *zppb.Response { return expireResponse(a.Result == 1) })
	case *zppb.Request_Mget:
		results := make([]*zppb.KeyResult, len(c.Mget.Keys))
		for i, k := range c.Mget.Keys {
			v, _, err := tx.Get(k)
			if err != nil {
				results[i] = keyResult(notFound(err))
			} else {
				results[i] = &zppb.KeyResult{Value: v}
			}
		}
		return &zppb.Response{Result: &zppb.Response_Mget{Mget: &zppb.MGetResponse{Results: results}}}, nil, nil
	case *zppb.Request_Mset:
		if err := checkMSet(s, c.Mset); err != nil {
			return nil, nil, err
		}
		if c.Mset.IfAbsent {
			rec, err := msetNXOp(now, tx, c.Mset)
			return run(rec, err, func(a replica.Answer) *zppb.Response { return msetNXResponse(a.Wrote) })
		}
		exp := expireAt(now, c.Mset.TtlMs)
		muts := make([]*zppb.Mutation, len(c.Mset.Kvs))
		results := make([]*zppb.KeyResult, len(c.Mset.Kvs))
		for i, kv := range c.Mset.Kvs {
			muts[i] = &zppb.Mutation{Kind: zppb.Mutation_PUT, Key: kv.Key, Value: kv.Value, ExpireAtMs: exp}
			results[i] = &zppb.KeyResult{}
		}
		return &zppb.Response{Result: &zppb.Response_Mset{Mset: &zppb.MSetResponse{Results: results}}}, muts, nil
	case *zppb.Request_WriteBatch:
		if err := s.checkWriteBatch(c.WriteBatch); err != nil {
			return nil, nil, err
		}
		return &zppb.Response{}, batchMutations(now, c.WriteBatch), nil
	}
	return nil, nil, status.New(zppb.Code_INVALID_ARGUMENT, "%T cannot run in MULTI", req.Cmd)
}

// checkMSet checks MSET's values and expiry (its keys are checked with the
// transaction's).
func checkMSet(s *Server, req *zppb.MSetRequest) error {
	if err := checkTTL(req.TtlMs); err != nil {
		return err
	}
	for _, kv := range req.Kvs {
		if err := s.checkValue(kv.Value); err != nil {
			return err
		}
	}
	return nil
}

// txView is a MULTI's view of a partition: the replica's View under the
// writes of the transaction's earlier commands, so that each command reads
// what the ones before it wrote.
type txView struct {
	base  reader
	now   int64
	local map[string]*zppb.Mutation
}

func (t *txView) Get(key []byte) ([]byte, int64, error) {
	if m, ok := t.local[string(key)]; ok {
		if m.Kind == zppb.Mutation_DELETE || (m.ExpireAtMs != 0 && m.ExpireAtMs <= t.now) {
			return nil, 0, engine.ErrNotFound
		}
		return m.Value, m.ExpireAtMs, nil
	}
	return t.base.Get(key)
}

func (t *txView) apply(muts []*zppb.Mutation) {
	for _, m := range muts {
		t.local[string(m.Key)] = m
	}
}
