package client

import (
	"bytes"
	"context"
	"fmt"
	"iter"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// MaxScanCount is the most keys one Scan page returns.
const MaxScanCount = 1000

// Scan returns one page of the keys whose hashtag is exactly hashtag, in key
// order, with their values. All of them live in one partition, which is
// what makes a consistent ordered scan possible without touching the whole
// cluster. cursor nil starts at the beginning; pass the returned next to
// continue; next is nil when the scan is done. count 0 means the server's
// default (100); counts above MaxScanCount are lowered to it.
func (c *core) Scan(ctx context.Context, table string, hashtag, cursor []byte, count int) (kvs []KeyValue, next []byte, err error) {
	routeKey, err := hashtagKey(table, hashtag)
	if err == nil && count < 0 {
		err = status.New(zppb.Code_INVALID_ARGUMENT, "negative count %d", count)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("client: scan: %w", err)
	}
	count = min(count, MaxScanCount)
	resp, err := c.exec(ctx, "scan", table, routeKey, false, func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_Scan{Scan: &zppb.ScanRequest{Table: table, Hashtag: hashtag, Cursor: cursor, Count: uint32(count)}}}
	})
	if err != nil {
		return nil, nil, err
	}
	kvs, next = scanPage(resp.GetScan())
	return kvs, next, nil
}

// ScanAll walks every page of Scan and yields each key-value pair. On a
// failure it yields the error (with a zero KeyValue) and stops. A deadline on ctx
// bounds the whole walk; without one, each page gets DefaultTimeout.
// pageSize is Scan's count.
//
//	for kv, err := range c.ScanAll(ctx, "users", []byte("user1000"), 0) {
//		if err != nil { ... }
//	}
func (c *core) ScanAll(ctx context.Context, table string, hashtag []byte, pageSize int) iter.Seq2[KeyValue, error] {
	return func(yield func(KeyValue, error) bool) {
		var cursor []byte
		for {
			kvs, next, err := c.Scan(ctx, table, hashtag, cursor, pageSize)
			if err != nil {
				yield(KeyValue{}, err)
				return
			}
			for _, kv := range kvs {
				if !yield(kv, nil) {
					return
				}
			}
			if next == nil {
				return
			}
			if cursor != nil && bytes.Equal(next, cursor) {
				// A server that hands back the cursor it was given would
				// make this loop forever.
				yield(KeyValue{}, fmt.Errorf("client: scan: %w", status.New(zppb.Code_ERROR, "cursor did not advance")))
				return
			}
			cursor = next
		}
	}
}

// ScanPartition returns one page of every key of partition id of table, in
// the store's order (by hashtag, then key), from the partition's master:
// a whole-table scan walks the partitions 0 to PartitionCount-1 with it
// (as Redis SCAN and KEYS walk a node's slots). keysOnly leaves the values
// out. cursor nil starts at the beginning; pass the returned next to
// continue; next is nil when the partition is done. count is Scan's. A key
// written or deleted during the walk may or may not be returned; one that
// exists throughout is returned once, the partition's move to another
// master included (the cursor is the last key returned).
func (c *core) ScanPartition(ctx context.Context, table string, id uint32, cursor []byte, count int, keysOnly bool) (kvs []KeyValue, next []byte, err error) {
	const op = "scan partition"
	switch {
	case table == "":
		err = status.New(zppb.Code_INVALID_ARGUMENT, "empty table name")
	case count < 0:
		err = status.New(zppb.Code_INVALID_ARGUMENT, "negative count %d", count)
	case c.closed.Load():
		err = ErrClosed
	}
	if err != nil {
		return nil, nil, fmt.Errorf("client: %s: %w", op, err)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	tr, err := c.tableFor(ctx, table)
	if err != nil {
		return nil, nil, fmt.Errorf("client: %s: %w", op, err)
	}
	if id >= tr.n {
		return nil, nil, fmt.Errorf("client: %s: %w", op, status.New(zppb.Code_INVALID_ARGUMENT, "partition %d: table %q has %d", id, table, tr.n))
	}
	count = min(count, MaxScanCount)
	resp, err := c.exec(ctx, op, table, partitionKey(tr.slots, id), false, func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_Scan{Scan: &zppb.ScanRequest{Table: table, Partition: &id, Cursor: cursor, Count: uint32(count), KeysOnly: keysOnly}}}
	})
	if err != nil {
		return nil, nil, err
	}
	kvs, next = scanPage(resp.GetScan())
	return kvs, next, nil
}

// scanPage is a SCAN answer's keys and the cursor to go on from, nil at
// the end.
func scanPage(sr *zppb.ScanResponse) ([]KeyValue, []byte) {
	kvs := make([]KeyValue, len(sr.GetKvs()))
	for i, kv := range sr.GetKvs() {
		kvs[i] = KeyValue{Key: kv.GetKey(), Value: kv.GetValue()}
	}
	if len(sr.GetNextCursor()) == 0 {
		return kvs, nil
	}
	return kvs, sr.GetNextCursor()
}

// hashtagKey returns a key whose slot is hashtag's, to route a scan.
func hashtagKey(table string, hashtag []byte) ([]byte, error) {
	if table == "" {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "empty table name")
	}
	if len(hashtag) == 0 {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "empty hashtag")
	}
	if bytes.IndexByte(hashtag, '}') >= 0 {
		// A key's hashtag ends at the first '}', so no key has this one.
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "hashtag %q contains '}'", hashtag)
	}
	key := make([]byte, 0, len(hashtag)+2)
	key = append(key, '{')
	key = append(key, hashtag...)
	return append(key, '}'), checkKey(key)
}
