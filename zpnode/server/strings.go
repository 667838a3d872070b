package server

import (
	"cmp"
	"context"
	"math/big"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// String commands beyond plain SET/GET (Redis's string family). Every
// read-modify-write runs in replica.UpdateAnswer: atomic with the key's
// other writes, logged under the request id, and answered to a retry from
// the record (see docs/protocol.md, "Exactly once").

// set stores a value. A SET that reads nothing first takes the fast path,
// a record submitted as is (which pipelines share a group commit through,
// see prepare); conditions, keep_ttl and return_old make it a
// read-modify-write.
func (s *Server) set(ctx context.Context, id []byte, req *zppb.SetRequest) (*zppb.Response, error) {
	if readsOld(req) {
		return s.setReading(ctx, id, req)
	}
	t, err := s.submitSet(ctx, id, req)
	if err != nil {
		return nil, err
	}
	if _, err = t.Wait(ctx); err != nil {
		return nil, writeError(err)
	}
	return setResponse(true, false, nil), nil
}

func setResponse(applied, oldFound bool, old []byte) *zppb.Response {
	return &zppb.Response{Result: &zppb.Response_Set{Set: &zppb.SetResponse{Applied: applied, Old: old, OldFound: oldFound}}}
}

func (s *Server) checkSet(req *zppb.SetRequest) error {
	return cmp.Or(checkKey(req.Key), s.checkValue(req.Value), checkSetOptions(req))
}

// submitSet checks a SET that reads nothing and queues its record at the
// partition's master replica, without waiting for it.
func (s *Server) submitSet(ctx context.Context, id []byte, req *zppb.SetRequest) (*replica.Ticket, error) {
	if err := s.checkSet(req); err != nil {
		return nil, err
	}
	r, err := s.routeWrite(ctx, req.Table, req.Key)
	if err != nil {
		return nil, err
	}
	now := r.NowMs()
	exp, err := setExpiry(now, req, 0)
	if err != nil {
		return nil, err
	}
	s.quota.charge(req.Table, len(req.Value))
	rec := &zppb.WriteRecord{Mutations: []*zppb.Mutation{storeMutation(req.Key, req.Value, exp, now)}}
	t, err := r.Submit(id, rec)
	return t, writeError(err)
}

// setExpiry is the expiry a SET gives its key; cur is the key's current
// one, which keep_ttl keeps.
func setExpiry(nowMs int64, req *zppb.SetRequest, cur int64) (int64, error) {
	switch {
	case req.KeepTtl:
		return cur, nil
	case req.ExpireAtMs != 0:
		return req.ExpireAtMs, nil
	}
	return absoluteExpiry("set", nowMs, req.TtlMs)
}

// storeMutation writes value under key with expiry exp (0: none), or
// deletes the key when exp has passed already (EXAT/PXAT in the past):
// the key would be gone at once, and a DELETE leaves nothing to sweep.
func storeMutation(key, value []byte, exp, nowMs int64) *zppb.Mutation {
	if exp != 0 && exp <= nowMs {
		return &zppb.Mutation{Kind: zppb.Mutation_DELETE, Key: key}
	}
	return &zppb.Mutation{Kind: zppb.Mutation_PUT, Key: key, Value: value, ExpireAtMs: exp}
}

// setReading is a SET that reads the key first: NX/XX, KEEPTTL, GET. Its
// record's result is 1 when the key had a value, result_value that value
// (with return_old), so a retry gets the old value of the first attempt.
func (s *Server) setReading(ctx context.Context, id []byte, req *zppb.SetRequest) (*zppb.Response, error) {
	if err := s.checkSet(req); err != nil {
		return nil, err
	}
	r, err := s.routeWrite(ctx, req.Table, req.Key)
	if err != nil {
		return nil, err
	}
	s.quota.charge(req.Table, len(req.Value))
	a, err := r.UpdateAnswer(ctx, id, func(v replica.View) (*zppb.WriteRecord, error) {
		return setOp(r.NowMs(), v, req)
	})
	if err != nil {
		return nil, writeError(err)
	}
	if req.ReturnOld {
		s.quota.charge(req.Table, len(a.Value))
	}
	return setAnswer(req, a), nil
}

// setOp is any SET as a read-modify-write of v at nowMs: the record to
// log (no mutation when the condition refuses).
func setOp(nowMs int64, v reader, req *zppb.SetRequest) (*zppb.WriteRecord, error) {
	// Like Redis, an expiry out of range fails whatever the key holds.
	if _, err := setExpiry(nowMs, req, 0); err != nil {
		return nil, err
	}
	rec := &zppb.WriteRecord{}
	var oldExp int64
	if readsOld(req) {
		old, exp, err := v.Get(req.Key)
		found := err == nil
		if err = ignoreNotFound(err); err != nil {
			return nil, err
		}
		if req.ReturnOld && found {
			rec.Result, rec.ResultValue = 1, old
		}
		if !setConditionHolds(req.Condition, found) {
			return rec, nil // refused: nothing written
		}
		oldExp = exp
	}
	exp, err := setExpiry(nowMs, req, oldExp)
	if err != nil {
		return nil, err
	}
	rec.Mutations = []*zppb.Mutation{storeMutation(req.Key, req.Value, exp, nowMs)}
	return rec, nil
}

// setAnswer is a SET's response from its answer.
func setAnswer(req *zppb.SetRequest, a replica.Answer) *zppb.Response {
	if !req.ReturnOld {
		return setResponse(a.Wrote, false, nil)
	}
	return setResponse(a.Wrote, a.Result == 1, a.Value)
}

// getEx reads a key and changes its expiry or deletes it (GETEX, GETDEL),
// answering the value it read. The record's result_value is that value.
func (s *Server) getEx(ctx context.Context, id []byte, req *zppb.GetExRequest) (*zppb.Response, error) {
	if err := cmp.Or(checkKey(req.Key), checkGetExChange(req)); err != nil {
		return nil, err
	}
	if req.Change == nil {
		return s.get(&zppb.GetRequest{Table: req.Table, Key: req.Key}, false)
	}
	r, err := s.routeWrite(ctx, req.Table, req.Key)
	if err != nil {
		return nil, err
	}
	a, err := r.UpdateAnswer(ctx, id, func(v replica.View) (*zppb.WriteRecord, error) {
		return getExOp(r.NowMs(), v, req)
	})
	if err != nil {
		return nil, writeError(err)
	}
	s.quota.charge(req.Table, len(a.Value))
	return getResponse(a.Value), nil
}

func getResponse(v []byte) *zppb.Response {
	return &zppb.Response{Result: &zppb.Response_Get{Get: &zppb.GetResponse{Value: v}}}
}

// getExOp is GETEX with a change (or GETDEL) as a read-modify-write of v:
// NOT_FOUND for a missing key, else a record whose result_value is the
// value read.
func getExOp(now int64, v reader, req *zppb.GetExRequest) (*zppb.WriteRecord, error) {
	// Like Redis, an expiry out of range fails even for a missing key.
	if c, ok := req.Change.(*zppb.GetExRequest_TtlMs); ok {
		if _, err := absoluteExpiry("getex", now, c.TtlMs); err != nil {
			return nil, err
		}
	}
	val, exp, err := v.Get(req.Key)
	if err != nil {
		return nil, notFound(err)
	}
	var m *zppb.Mutation
	switch c := req.Change.(type) {
	case *zppb.GetExRequest_Delete:
		m = &zppb.Mutation{Kind: zppb.Mutation_DELETE, Key: req.Key}
	case *zppb.GetExRequest_Persist:
		if exp != 0 {
			m = storeMutation(req.Key, val, 0, now)
		}
	case *zppb.GetExRequest_TtlMs:
		at, err := absoluteExpiry("getex", now, c.TtlMs)
		if err != nil {
			return nil, err
		}
		m = storeMutation(req.Key, val, at, now)
	case *zppb.GetExRequest_ExpireAtMs:
		m = storeMutation(req.Key, val, c.ExpireAtMs, now)
	}
	rec := &zppb.WriteRecord{Result: 1, ResultValue: val}
	if m != nil {
		rec.Mutations = []*zppb.Mutation{m}
	}
	return rec, nil
}

// setRange is SETRANGE and APPEND: both keep the key's expiry and answer
// the new length (the record's result).
func (s *Server) setRange(ctx context.Context, id []byte, req *zppb.SetRangeRequest) (*zppb.Response, error) {
	if err := s.checkSetRange(req); err != nil {
		return nil, err
	}
	r, err := s.routeWrite(ctx, req.Table, req.Key)
	if err != nil {
		return nil, err
	}
	s.quota.charge(req.Table, len(req.Value))
	n, err := r.Update(ctx, id, func(v replica.View) (*zppb.WriteRecord, error) {
		return s.setRangeOp(v, req)
	})
	if err != nil {
		return nil, writeError(err)
	}
	return setRangeResponse(n), nil
}

func setRangeResponse(n int64) *zppb.Response {
	return &zppb.Response{Result: &zppb.Response_SetRange{SetRange: &zppb.SetRangeResponse{Length: n}}}
}

// setRangeOp is SETRANGE or APPEND as a read-modify-write of v; the
// record's result is the new length.
func (s *Server) setRangeOp(v reader, req *zppb.SetRangeRequest) (*zppb.WriteRecord, error) {
	cur, exp, err := v.Get(req.Key)
	found := err == nil
	if err = ignoreNotFound(err); err != nil {
		return nil, err
	}
	var val []byte
	switch {
	case len(req.Value) == 0 && (found || !req.Append):
		// Nothing changes; APPEND of nothing to a missing key still
		// creates it empty, as in Redis.
		return &zppb.WriteRecord{Result: int64(len(cur))}, nil
	case req.Append:
		if err := s.checkStringLength(int64(len(cur)), len(req.Value)); err != nil {
			return nil, err
		}
		val = append(append(make([]byte, 0, len(cur)+len(req.Value)), cur...), req.Value...)
	default:
		end := int(req.Offset) + len(req.Value)
		val = make([]byte, max(len(cur), end))
		copy(val, cur)
		copy(val[req.Offset:], req.Value)
	}
	return &zppb.WriteRecord{Result: int64(len(val)), Mutations: []*zppb.Mutation{{
		Kind: zppb.Mutation_PUT, Key: req.Key, Value: val, ExpireAtMs: exp,
	}}}, nil
}

// checkSetRange is SETRANGE/APPEND's input check, before any read.
func (s *Server) checkSetRange(req *zppb.SetRangeRequest) error {
	if err := cmp.Or(checkKey(req.Key), s.checkValue(req.Value), checkOffset(req)); err != nil {
		return err
	}
	if !req.Append && len(req.Value) > 0 {
		// SETRANGE's result length does not depend on the key: refuse it
		// before reading, as Redis does (an empty value writes nothing, so
		// any offset is fine).
		return s.checkStringLength(req.Offset, len(req.Value))
	}
	return nil
}

var (
	errNotFloat = status.New(zppb.Code_INVALID_ARGUMENT, "value is not a valid float")
	errNaNOrInf = status.New(zppb.Code_INVALID_ARGUMENT, "increment would produce NaN or Infinity")
)

// incrByFloat adds a float to the number under key, keeping its expiry.
// The record's result_value is the new value as stored.
func (s *Server) incrByFloat(ctx context.Context, id []byte, req *zppb.IncrByFloatRequest) (*zppb.Response, error) {
	if err := checkKey(req.Key); err != nil {
		return nil, err
	}
	delta, ok := parseLongDouble(req.Delta)
	if !ok {
		return nil, errNotFloat
	}
	r, err := s.routeWrite(ctx, req.Table, req.Key)
	if err != nil {
		return nil, err
	}
	a, err := r.UpdateAnswer(ctx, id, func(v replica.View) (*zppb.WriteRecord, error) {
		return incrByFloatOp(v, req.Key, delta)
	})
	if err != nil {
		return nil, writeError(err)
	}
	return incrByFloatResponse(a.Value), nil
}

func incrByFloatResponse(v []byte) *zppb.Response {
	return &zppb.Response{Result: &zppb.Response_IncrbyFloat{IncrbyFloat: &zppb.IncrByFloatResponse{Value: string(v)}}}
}

// incrByFloatOp adds delta to the number under key in v; the record's
// result_value is the new value.
func incrByFloatOp(v reader, key []byte, delta *big.Float) (*zppb.WriteRecord, error) {
	cur, exp, err := v.Get(key)
	n, _ := parseLongDouble("0")
	switch {
	case err == nil:
		var ok bool
		if n, ok = parseLongDouble(string(cur)); !ok {
			return nil, errNotFloat
		}
	case ignoreNotFound(err) != nil:
		return nil, err
	}
	sum, ok := addLongDouble(n, delta)
	if !ok {
		return nil, errNaNOrInf
	}
	val := []byte(formatLongDouble(sum))
	return &zppb.WriteRecord{Result: 1, ResultValue: val, Mutations: []*zppb.Mutation{{
		Kind: zppb.Mutation_PUT, Key: key, Value: val, ExpireAtMs: exp,
	}}}, nil
}

// msetNX writes keys of one slot only if none of them exists, in one
// record (MSETNX).
func (s *Server) msetNX(ctx context.Context, id []byte, req *zppb.MSetRequest) (*zppb.Response, error) {
	keys := make([][]byte, len(req.Kvs))
	n := 0
	for i, kv := range req.Kvs {
		if err := s.checkValue(kv.Value); err != nil {
			return nil, err
		}
		keys[i] = kv.Key
		n += len(kv.Key) + len(kv.Value)
	}
	if err := checkKeys(keys); err != nil {
		return nil, err
	}
	r, err := s.routeWrite(ctx, req.Table, keys[0])
	if err != nil {
		return nil, err
	}
	s.quota.charge(req.Table, n-len(keys[0]))
	a, err := r.UpdateAnswer(ctx, id, func(v replica.View) (*zppb.WriteRecord, error) {
		return msetNXOp(r.NowMs(), v, req)
	})
	if err != nil {
		return nil, writeError(err)
	}
	return msetNXResponse(a.Wrote), nil
}

func msetNXResponse(applied bool) *zppb.Response {
	return &zppb.Response{Result: &zppb.Response_Mset{Mset: &zppb.MSetResponse{Applied: applied}}}
}

// msetNXOp writes req's keys in v unless one of them exists.
func msetNXOp(now int64, v reader, req *zppb.MSetRequest) (*zppb.WriteRecord, error) {
	for _, kv := range req.Kvs {
		_, _, err := v.Get(kv.Key)
		if err == nil {
			return &zppb.WriteRecord{}, nil // one exists: nothing is written
		}
		if err = ignoreNotFound(err); err != nil {
			return nil, err
		}
	}
	exp := expireAt(now, req.TtlMs)
	rec := &zppb.WriteRecord{Result: 1, Mutations: make([]*zppb.Mutation, len(req.Kvs))}
	for i, kv := range req.Kvs {
		// A key named twice gets its last value, as in Redis.
		rec.Mutations[i] = &zppb.Mutation{Kind: zppb.Mutation_PUT, Key: kv.Key, Value: kv.Value, ExpireAtMs: exp}
	}
	return rec, nil
}

// reader is what a read-modify-write reads: the replica's View, or a
// MULTI's view of it with the transaction's earlier writes (txView).
type reader interface {
	Get(key []byte) (value []byte, expireAtMs int64, err error)
}
