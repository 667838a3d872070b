package client

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// NoExpiry is what TTL returns for a key that never expires.
const NoExpiry time.Duration = -1

// Set stores value under key. ttl 0 means the key never expires; a positive
// ttl is rounded up to whole milliseconds (the protocol's unit), so that a
// tiny TTL never turns into "no expiry".
func (c *core) Set(ctx context.Context, table string, key, value []byte, ttl time.Duration) error {
	ttlMs, err := ttlMillis(ttl)
	if err == nil {
		err = c.checkKeyValue(table, key, value)
	}
	if err != nil {
		return fmt.Errorf("client: set: %w", err)
	}
	id := newRequestID()
	_, err = c.exec(ctx, "set", table, key, true, func() *zppb.Request {
		return &zppb.Request{RequestId: id, Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: table, Key: key, Value: value, TtlMs: ttlMs}}}
	})
	return err
}

// Get returns the value of key, or an error matching status.ErrNotFound
// when the key does not exist or has expired. A present empty value is a
// non-nil empty slice.
func (c *core) Get(ctx context.Context, table string, key []byte) ([]byte, error) {
	if err := checkTableKey(table, key); err != nil {
		return nil, fmt.Errorf("client: get: %w", err)
	}
	resp, err := c.exec(ctx, "get", table, key, false, func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: table, Key: key}}}
	})
	if err != nil {
		return nil, err
	}
	v := resp.GetGet().GetValue()
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Del deletes key and reports whether it existed. A retry after a lost
// answer gets the first attempt's report (see the package documentation on
// request ids).
func (c *core) Del(ctx context.Context, table string, key []byte) (bool, error) {
	if err := checkTableKey(table, key); err != nil {
		return false, fmt.Errorf("client: del: %w", err)
	}
	id := newRequestID()
	resp, err := c.exec(ctx, "del", table, key, true, func() *zppb.Request {
		return &zppb.Request{RequestId: id, Cmd: &zppb.Request_Del{Del: &zppb.DelRequest{Table: table, Key: key}}}
	})
	if err != nil {
		return false, err
	}
	return resp.GetDel().GetDeleted() > 0, nil
}

// IncrBy adds delta to the integer stored under key (a missing key counts
// as 0) and returns the new value. Errors match status.ErrNotInteger when
// the value is not a decimal integer and status.ErrOverflow when the result
// would not fit in int64.
//
// Like every write it carries a request id, so a retry after a lost answer
// (a failover) gets the first attempt's value instead of incrementing
// twice.
func (c *core) IncrBy(ctx context.Context, table string, key []byte, delta int64) (int64, error) {
	if err := checkTableKey(table, key); err != nil {
		return 0, fmt.Errorf("client: incrby: %w", err)
	}
	id := newRequestID()
	resp, err := c.exec(ctx, "incrby", table, key, true, func() *zppb.Request {
		return &zppb.Request{RequestId: id, Cmd: &zppb.Request_Incrby{Incrby: &zppb.IncrByRequest{Table: table, Key: key, Delta: delta}}}
	})
	if err != nil {
		return 0, err
	}
	return resp.GetIncrby().GetValue(), nil
}

// Exists reports whether key exists (and has not expired).
func (c *core) Exists(ctx context.Context, table string, key []byte) (bool, error) {
	if err := checkTableKey(table, key); err != nil {
		return false, fmt.Errorf("client: exists: %w", err)
	}
	resp, err := c.exists(ctx, table, key)
	if err != nil {
		if status.Code(err) == zppb.Code_NOT_FOUND {
			// Tolerate nodes that answer a missing key with NOT_FOUND.
			return false, nil
		}
		return false, err
	}
	return resp.GetExists().GetExists(), nil
}

func (c *core) exists(ctx context.Context, table string, key []byte) (*zppb.Response, error) {
	return c.exec(ctx, "exists", table, key, false, func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_Exists{Exists: &zppb.ExistsRequest{Table: table, Key: key}}}
	})
}

// TTL returns the time key has left to live, NoExpiry (-1) when it never
// expires, and an error matching status.ErrNotFound when it does not exist.
// The resolution is a millisecond.
func (c *core) TTL(ctx context.Context, table string, key []byte) (time.Duration, error) {
	if err := checkTableKey(table, key); err != nil {
		return 0, fmt.Errorf("client: ttl: %w", err)
	}
	resp, err := c.exec(ctx, "ttl", table, key, false, func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_Ttl{Ttl: &zppb.TTLRequest{Table: table, Key: key}}}
	})
	if err != nil {
		return 0, err
	}
	ms := resp.GetTtl().GetTtlMs()
	if ms < 0 {
		return NoExpiry, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// checkTableKey rejects what every node would reject, without a round trip.
func checkTableKey(table string, key []byte) error {
	if table == "" {
		return status.New(zppb.Code_INVALID_ARGUMENT, "empty table name")
	}
	return checkKey(key)
}

func checkKey(key []byte) error {
	if len(key) == 0 {
		return status.New(zppb.Code_EMPTY_KEY, "empty key")
	}
	if len(key) > keyspace.MaxKeySize {
		return status.New(zppb.Code_KEY_TOO_LARGE, "key of %d bytes, limit %d", len(key), keyspace.MaxKeySize)
	}
	return nil
}

func (c *core) checkValue(value []byte) error {
	if c.opts.MaxValueSize > 0 && len(value) > c.opts.MaxValueSize {
		return status.New(zppb.Code_VALUE_TOO_LARGE, "value of %d bytes, limit %d", len(value), c.opts.MaxValueSize)
	}
	return nil
}

func (c *core) checkKeyValue(table string, key, value []byte) error {
	if err := checkTableKey(table, key); err != nil {
		return err
	}
	return c.checkValue(value)
}

// ttlMillis converts a TTL to the protocol's milliseconds, rounding up.
func ttlMillis(ttl time.Duration) (int64, error) {
	if ttl < 0 {
		return 0, status.New(zppb.Code_INVALID_ARGUMENT, "negative ttl %v", ttl)
	}
	ms := int64(ttl / time.Millisecond)
	if ttl%time.Millisecond != 0 {
		ms++
	}
	return ms, nil
}

// newRequestID returns the id that every attempt of one write carries: a
// node that already logged it answers a retry as it answered the first
// attempt instead of writing again.
func newRequestID() []byte {
	id := make([]byte, 16)
	rand.Read(id)
	return id
}
