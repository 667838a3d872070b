package client

import (
	"context"
	"fmt"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// OpKind is what a BatchOp does.
type OpKind int

const (
	// OpPut stores Value under Key, expiring after TTL (0 = never).
	OpPut OpKind = iota
	// OpDelete deletes Key.
	OpDelete
)

// BatchOp is one operation of WriteBatch.
type BatchOp struct {
	Kind  OpKind
	Key   []byte
	Value []byte
	TTL   time.Duration
}

// PutOp returns an OpPut operation.
func PutOp(key, value []byte, ttl time.Duration) BatchOp {
	return BatchOp{Kind: OpPut, Key: key, Value: value, TTL: ttl}
}

// DeleteOp returns an OpDelete operation.
func DeleteOp(key []byte) BatchOp {
	return BatchOp{Kind: OpDelete, Key: key}
}

// WriteBatch applies ops atomically, in order: all of them or none. Every
// key must have the same slot, which keys get by sharing a hashtag
// ("{user1000}.following", "{user1000}.followers"); otherwise the call fails
// before sending with an error matching status.ErrCrossSlot. An empty batch
// does nothing. A batch is retried like SET: applying it twice leaves the
// same data (TTLs count from the last application).
func (c *core) WriteBatch(ctx context.Context, table string, ops []BatchOp) error {
	if table == "" {
		return fmt.Errorf("client: writebatch: %w", status.New(zppb.Code_INVALID_ARGUMENT, "empty table name"))
	}
	if len(ops) == 0 {
		return nil
	}
	pb := make([]*zppb.BatchOp, len(ops))
	slot := keyspace.Slot(ops[0].Key)
	for i, op := range ops {
		if err := checkKey(op.Key); err != nil {
			return fmt.Errorf("client: writebatch: op %d: %w", i, err)
		}
		if s := keyspace.Slot(op.Key); s != slot {
			return fmt.Errorf("client: writebatch: %w", status.New(zppb.Code_CROSS_SLOT,
				"op %d key %q is in slot %d, op 0 key %q in slot %d", i, op.Key, s, ops[0].Key, slot))
		}
		p := &zppb.BatchOp{Key: op.Key}
		switch op.Kind {
		case OpPut:
			ttlMs, err := ttlMillis(op.TTL)
			if err == nil {
				err = c.checkValue(op.Value)
			}
			if err != nil {
				return fmt.Errorf("client: writebatch: op %d: %w", i, err)
			}
			p.Kind, p.Value, p.TtlMs = zppb.BatchOp_PUT, op.Value, ttlMs
		case OpDelete:
			p.Kind = zppb.BatchOp_DELETE
		default:
			return fmt.Errorf("client: writebatch: op %d: %w", i, status.New(zppb.Code_INVALID_ARGUMENT, "unknown kind %d", op.Kind))
		}
		pb[i] = p
	}
	id := newRequestID()
	_, err := c.exec(ctx, "writebatch", table, ops[0].Key, true, func() *zppb.Request {
		return &zppb.Request{RequestId: id, Cmd: &zppb.Request_WriteBatch{WriteBatch: &zppb.WriteBatchRequest{Table: table, Ops: pb}}}
	})
	return err
}
