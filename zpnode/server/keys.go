package server

import (
	"cmp"
	"context"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// expire sets or removes the expiry of an existing key (EXPIRE, PEXPIRE,
// EXPIREAT, PEXPIREAT with NX/XX/GT/LT, PERSIST). An expiry that has
// passed deletes the key, as in Redis. The record's result is 1 (changed);
// a refusal writes nothing and answers 0.
//
// The record rewrites the whole value with its new expiry (mutations are
// whole values, so that replay and slaves need no read), which costs the
// value's size in the binlog.
func (s *Server) expire(ctx context.Context, id []byte, req *zppb.ExpireRequest) (*zppb.Response, error) {
	if err := cmp.Or(checkKey(req.Key), checkExpireRequest(req)); err != nil {
		return nil, err
	}
	r, err := s.routeWrite(ctx, req.Table, req.Key)
	if err != nil {
		return nil, err
	}
	changed, err := r.Update(ctx, id, func(v replica.View) (*zppb.WriteRecord, error) {
		return expireOp(r.NowMs(), v, req)
	})
	if err != nil {
		return nil, writeError(err)
	}
	return expireResponse(changed == 1), nil
}

func expireResponse(changed bool) *zppb.Response {
	return &zppb.Response{Result: &zppb.Response_Expire{Expire: &zppb.ExpireResponse{Changed: changed}}}
}

// expireOp changes the expiry of the key in v; the record's result is 1
// when it changed, and nil means nothing changed.
func expireOp(now int64, v reader, req *zppb.ExpireRequest) (*zppb.WriteRecord, error) {
	// Like Redis, an expiry out of range fails even for a missing key.
	if c, ok := req.Change.(*zppb.ExpireRequest_TtlMs); ok {
		if _, err := absoluteExpiry("expire", now, c.TtlMs); err != nil {
			return nil, err
		}
	}
	val, cur, err := v.Get(req.Key)
	if err != nil {
		return nil, ignoreNotFound(err) // no key: nothing changed
	}
	var when int64
	switch c := req.Change.(type) {
	case *zppb.ExpireRequest_Persist:
		if cur == 0 {
			return nil, nil
		}
		return &zppb.WriteRecord{Result: 1, Mutations: []*zppb.Mutation{storeMutation(req.Key, val, 0, now)}}, nil
	case *zppb.ExpireRequest_TtlMs:
		if when, err = absoluteExpiry("expire", now, c.TtlMs); err != nil {
			return nil, err
		}
	case *zppb.ExpireRequest_ExpireAtMs:
		when = c.ExpireAtMs
	}
	if !expireConditionHolds(req.Condition, cur, when) {
		return nil, nil
	}
	m := &zppb.Mutation{Kind: zppb.Mutation_DELETE, Key: req.Key}
	if when > now {
		m = storeMutation(req.Key, val, when, now)
	}
	return &zppb.WriteRecord{Result: 1, Mutations: []*zppb.Mutation{m}}, nil
}
