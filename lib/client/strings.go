package client

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// SetCondition says when SetWith writes.
type SetCondition int

const (
	// SetAlways writes whatever the key holds.
	SetAlways SetCondition = iota
	// SetIfAbsent writes only a key that does not exist (Redis NX).
	SetIfAbsent
	// SetIfPresent writes only a key that exists (Redis XX).
	SetIfPresent
)

// SetOptions are the options of SetWith. The zero value is a plain Set
// without expiry.
type SetOptions struct {
	Condition SetCondition
	// TTL (rounded up to milliseconds) or ExpireAt gives the key an
	// expiry; KeepTTL keeps the one it has. At most one of the three.
	TTL      time.Duration
	ExpireAt time.Time
	KeepTTL  bool
	// ReturnOld asks for the value the key held (Redis SET ... GET) in
	// SetResult.Old; it makes the SET read before it writes.
	ReturnOld bool
}

// SetResult is what SetWith did.
type SetResult struct {
	// Applied is false when the condition refused the write.
	Applied bool
	// Old is the value the key held before, when OldFound (with
	// ReturnOld).
	Old      []byte
	OldFound bool
}

// SetWith stores value under key with options (SET NX/XX/EX/PXAT/KEEPTTL
// ... GET) and reports whether it wrote and what the key held before. A
// retry after a lost answer gets the first attempt's report.
func (c *core) SetWith(ctx context.Context, table string, key, value []byte, opts SetOptions) (SetResult, error) {
	req, err := setRequest(table, key, value, opts)
	if err == nil {
		err = c.checkKeyValue(table, key, value)
	}
	if err != nil {
		return SetResult{}, fmt.Errorf("client: set: %w", err)
	}
	resp, err := c.write(ctx, "set", table, key, func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_Set{Set: req}}
	})
	if err != nil {
		return SetResult{}, err
	}
	r := resp.GetSet()
	return SetResult{Applied: r.GetApplied(), Old: presentValue(r.GetOld(), r.GetOldFound()), OldFound: r.GetOldFound()}, nil
}

func setRequest(table string, key, value []byte, opts SetOptions) (*zppb.SetRequest, error) {
	ttlMs, err := ttlMillis(opts.TTL)
	if err != nil {
		return nil, err
	}
	req := &zppb.SetRequest{Table: table, Key: key, Value: value, TtlMs: ttlMs, KeepTtl: opts.KeepTTL, ReturnOld: opts.ReturnOld}
	if !opts.ExpireAt.IsZero() {
		if req.ExpireAtMs = opts.ExpireAt.UnixMilli(); req.ExpireAtMs <= 0 {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "expiry %v before 1970", opts.ExpireAt)
		}
	}
	switch opts.Condition {
	case SetAlways:
	case SetIfAbsent:
		req.Condition = zppb.SetRequest_IF_ABSENT
	case SetIfPresent:
		req.Condition = zppb.SetRequest_IF_PRESENT
	default:
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "unknown set condition %d", opts.Condition)
	}
	return req, nil
}

// GetSet stores value under key, clearing its expiry, and returns the value
// it held (found false when none).
func (c *core) GetSet(ctx context.Context, table string, key, value []byte) (old []byte, found bool, err error) {
	r, err := c.SetWith(ctx, table, key, value, SetOptions{ReturnOld: true})
	return r.Old, r.OldFound, err
}

// GetDel deletes key and returns the value it held, or an error matching
// status.ErrNotFound.
func (c *core) GetDel(ctx context.Context, table string, key []byte) ([]byte, error) {
	return c.getEx(ctx, "getdel", table, key, &zppb.GetExRequest_Delete{Delete: true})
}

func (c *core) getEx(ctx context.Context, op, table string, key []byte, change *zppb.GetExRequest_Delete) ([]byte, error) {
	if err := checkTableKey(table, key); err != nil {
		return nil, fmt.Errorf("client: %s: %w", op, err)
	}
	resp, err := c.write(ctx, op, table, key, func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_Getex{Getex: &zppb.GetExRequest{Table: table, Key: key, Change: change}}}
	})
	if err != nil {
		return nil, err
	}
	return presentValue(resp.GetGet().GetValue(), true), nil
}

// ExpireCondition says when Expire and ExpireAt change an expiry (Redis
// 7.0's NX, XX, GT, LT; no expiry counts as infinite).
type ExpireCondition int

const (
	ExpireAlways ExpireCondition = iota
	// ExpireIfNone: only a key without expiry (NX).
	ExpireIfNone
	// ExpireIfSet: only a key with an expiry (XX).
	ExpireIfSet
	// ExpireIfLater: only when the new expiry is later (GT).
	ExpireIfLater
	// ExpireIfEarlier: only when the new expiry is earlier (LT).
	ExpireIfEarlier
)

// Expire gives key an expiry ttl from now; ttl <= 0 deletes it. It reports
// whether the expiry changed: false when the key does not exist or cond
// refused.
func (c *core) Expire(ctx context.Context, table string, key []byte, ttl time.Duration, cond ExpireCondition) (bool, error) {
	ms := int64(ttl / time.Millisecond)
	if ttl > 0 && ttl%time.Millisecond != 0 {
		ms++
	}
	return c.expire(ctx, "expire", table, key, cond, func(r *zppb.ExpireRequest) { r.Change = &zppb.ExpireRequest_TtlMs{TtlMs: ms} })
}

// ExpireAt makes key expire at t (millisecond resolution); a time not in
// the future deletes it. It reports whether the expiry changed.
func (c *core) ExpireAt(ctx context.Context, table string, key []byte, t time.Time, cond ExpireCondition) (bool, error) {
	return c.expire(ctx, "expireat", table, key, cond, func(r *zppb.ExpireRequest) { r.Change = &zppb.ExpireRequest_ExpireAtMs{ExpireAtMs: t.UnixMilli()} })
}

// Persist removes key's expiry and reports whether it had one.
func (c *core) Persist(ctx context.Context, table string, key []byte) (bool, error) {
	return c.expire(ctx, "persist", table, key, ExpireAlways, func(r *zppb.ExpireRequest) { r.Change = &zppb.ExpireRequest_Persist{Persist: true} })
}

func (c *core) expire(ctx context.Context, op, table string, key []byte, cond ExpireCondition, change func(*zppb.ExpireRequest)) (bool, error) {
	if err := checkTableKey(table, key); err != nil {
		return false, fmt.Errorf("client: %s: %w", op, err)
	}
	if cond < ExpireAlways || cond > ExpireIfEarlier {
		return false, fmt.Errorf("client: %s: %w", op, status.New(zppb.Code_INVALID_ARGUMENT, "unknown expire condition %d", cond))
	}
	// The client's conditions are numbered as the protocol's.
	req := &zppb.ExpireRequest{Table: table, Key: key, Condition: zppb.ExpireRequest_Condition(cond)}
	change(req)
	resp, err := c.write(ctx, op, table, key, func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_Expire{Expire: req}}
	})
	if err != nil {
		return false, err
	}
	return resp.GetExpire().GetChanged(), nil
}

// Append adds value at the end of key's value (creating the key when
// missing, keeping its expiry) and returns the new length.
func (c *core) Append(ctx context.Context, table string, key, value []byte) (int64, error) {
	if err := c.checkKeyValue(table, key, value); err != nil {
		return 0, fmt.Errorf("client: append: %w", err)
	}
	resp, err := c.write(ctx, "append", table, key, func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_SetRange{SetRange: &zppb.SetRangeRequest{Table: table, Key: key, Value: value, Append: true}}}
	})
	if err != nil {
		return 0, err
	}
	return resp.GetSetRange().GetLength(), nil
}

// IncrByFloat adds delta to the number stored under key (a missing key
// counts as 0), keeping its expiry, and returns the new value. The node
// computes as Redis does, in extended precision, and stores the value as
// Redis formats it; the float64 returned is that value rounded.
func (c *core) IncrByFloat(ctx context.Context, table string, key []byte, delta float64) (float64, error) {
	if err := checkTableKey(table, key); err != nil {
		return 0, fmt.Errorf("client: incrbyfloat: %w", err)
	}
	d := strconv.FormatFloat(delta, 'g', -1, 64)
	resp, err := c.write(ctx, "incrbyfloat", table, key, func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_IncrbyFloat{IncrbyFloat: &zppb.IncrByFloatRequest{Table: table, Key: key, Delta: d}}}
	})
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(resp.GetIncrbyFloat().GetValue(), 64)
	if err != nil {
		return 0, fmt.Errorf("client: incrbyfloat: node answered %q: %w", resp.GetIncrbyFloat().GetValue(), err)
	}
	return v, nil
}

// write sends a single-key write with a request id, the same on every
// attempt, so that a retry is answered rather than applied again.
func (c *core) write(ctx context.Context, op, table string, key []byte, build func() *zppb.Request) (*zppb.Response, error) {
	id := newRequestID()
	return c.exec(ctx, op, table, key, true, func() *zppb.Request {
		r := build()
		r.RequestId = id
		return r
	})
}

// presentValue makes a present empty value a non-nil empty slice, as Get does.
func presentValue(v []byte, found bool) []byte {
	if v == nil && found {
		return []byte{}
	}
	return v
}
