package client

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string // substring; "" means valid
	}{
		{name: "minimal", opts: Options{MetaAddrs: []string{"127.0.0.1:1"}}},
		{name: "no meta", opts: Options{}, wantErr: "MetaAddrs is empty"},
		{name: "bad addr", opts: Options{MetaAddrs: []string{"nohost"}}, wantErr: `"nohost"`},
		{name: "duplicate addr", opts: Options{MetaAddrs: []string{"a:1", "a:1"}}, wantErr: "listed twice"},
		{name: "negative timeout", opts: Options{MetaAddrs: []string{"a:1"}, DefaultTimeout: -1}, wantErr: "DefaultTimeout"},
		{name: "backoff above cap", opts: Options{MetaAddrs: []string{"a:1"}, RetryBackoff: time.Second, MaxRetryBackoff: time.Millisecond}, wantErr: "MaxRetryBackoff"},
		{name: "negative max value", opts: Options{MetaAddrs: []string{"a:1"}, MaxValueSize: -5}, wantErr: "MaxValueSize"},
		{name: "several problems at once", opts: Options{MetaAddrs: []string{"x"}, PoolConnsPerAddr: -1}, wantErr: "PoolConnsPerAddr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.setDefaults()
			err := o.validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				if o.DefaultTimeout != DefaultTimeout || o.RetryBackoff != DefaultRetryBackoff || o.Logger == nil {
					t.Fatalf("defaults not applied: %+v", o)
				}
				return
			}
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validate = %v, want ErrInvalidOptions mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewFailsWithoutMeta(t *testing.T) {
	cl := sharedCluster(t)
	cl.stopMetas()
	_, err := New(testCtx(t), Options{MetaAddrs: cl.MetaAddrs(), DialTimeout: time.Second})
	if !errors.Is(err, ErrMetaUnreachable) {
		t.Fatalf("New = %v, want ErrMetaUnreachable", err)
	}
	c, err := New(testCtx(t), Options{MetaAddrs: cl.MetaAddrs(), LazyPull: true})
	if err != nil {
		t.Fatalf("New with LazyPull: %v", err)
	}
	c.Close()
}

// Every key goes to the master of its partition, with no detour.
func TestRoutingSendsEachKeyToItsMaster(t *testing.T) {
	cl := sharedCluster(t)
	const parts = 8
	tb := cl.addTable("", parts, 1).Name
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	cl.resetCalls()
	for id := range uint32(parts) {
		key := keyIn(t, parts, id, "route")
		before := make([]int, len(cl.Nodes))
		for i, n := range cl.Nodes {
			before[i] = n.Tap().Calls("set")
		}
		if err := c.Set(ctx, tb, key, key, 0); err != nil {
			t.Fatalf("Set %q: %v", key, err)
		}
		want := cl.masterOf(tb, key)
		for i, n := range cl.Nodes {
			sent := n.Tap().Calls("set") > before[i]
			if sent != (n == want) {
				t.Errorf("partition %d: node %s got the SET=%v, master is %s", id, n.Addr, sent, want.Addr)
			}
		}
		got, err := c.Get(ctx, tb, key)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("Get %q = %q, %v", key, got, err)
		}
	}
	// No node was ever asked for a key it does not master.
	if sets, gets := cl.calls("set"), cl.calls("get"); sets != parts || gets != parts {
		t.Fatalf("%d sets, %d gets sent for %d keys: some were misrouted", sets, gets, parts)
	}
}

func TestDataCommands(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 4, 2).Name
	c := newTestClient(t, cl, func(o *Options) { o.MaxValueSize = 1024 })
	ctx := testCtx(t)

	if err := c.Set(ctx, tb, []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, tb, []byte("n"), []byte("41"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, tb, []byte("ttl"), []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, tb, []byte("empty"), nil, 0); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		run     func() (any, error)
		want    any
		wantErr error
	}{
		{"get", func() (any, error) { v, err := c.Get(ctx, tb, []byte("k")); return string(v), err }, "v", nil},
		{"get empty value is found", func() (any, error) { v, err := c.Get(ctx, tb, []byte("empty")); return v != nil && len(v) == 0, err }, true, nil},
		{"get missing", func() (any, error) { _, err := c.Get(ctx, tb, []byte("nope")); return nil, err }, nil, status.ErrNotFound},
		{"exists", func() (any, error) { return c.Exists(ctx, tb, []byte("k")) }, true, nil},
		{"exists missing", func() (any, error) { return c.Exists(ctx, tb, []byte("nope")) }, false, nil},
		{"incrby", func() (any, error) { return c.IncrBy(ctx, tb, []byte("n"), 1) }, int64(42), nil},
		{"incrby missing starts at 0", func() (any, error) { return c.IncrBy(ctx, tb, []byte("fresh"), -3) }, int64(-3), nil},
		{"incrby not integer", func() (any, error) { _, err := c.IncrBy(ctx, tb, []byte("k"), 1); return nil, err }, nil, status.ErrNotInteger},
		{"ttl none", func() (any, error) { return c.TTL(ctx, tb, []byte("k")) }, NoExpiry, nil},
		{"ttl set", func() (any, error) {
			d, err := c.TTL(ctx, tb, []byte("ttl"))
			return d > 59*time.Minute && d <= time.Hour, err
		}, true, nil},
		{"ttl missing", func() (any, error) { _, err := c.TTL(ctx, tb, []byte("nope")); return nil, err }, nil, status.ErrNotFound},
		{"del", func() (any, error) { return c.Del(ctx, tb, []byte("k")) }, true, nil},
		{"del again", func() (any, error) { return c.Del(ctx, tb, []byte("k")) }, false, nil},
		{"unknown table", func() (any, error) { _, err := c.Get(ctx, "nosuch", []byte("k")); return nil, err }, nil, status.ErrTableNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.run()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// Input the client can judge never reaches a node.
func TestInputRejectedBeforeSending(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 2, 1).Name
	c := newTestClient(t, cl, func(o *Options) { o.MaxValueSize = 8 })
	cl.resetCalls()
	ctx := testCtx(t)
	big := bytes.Repeat([]byte("k"), keyspace.MaxKeySize+1)
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"empty key", c.Set(ctx, tb, nil, []byte("v"), 0), status.ErrEmptyKey},
		{"key too large", c.Set(ctx, tb, big, []byte("v"), 0), status.ErrKeyTooLarge},
		{"value too large", c.Set(ctx, tb, []byte("k"), []byte("123456789"), 0), status.ErrValueTooLarge},
		{"negative ttl", c.Set(ctx, tb, []byte("k"), []byte("v"), -time.Second), status.ErrInvalidArgument},
		{"empty table", c.Set(ctx, "", []byte("k"), []byte("v"), 0), status.ErrInvalidArgument},
		{"mset bad key", c.MSet(ctx, tb, []KeyValue{{Key: []byte("a"), Value: nil}, {Key: nil}}, 0), status.ErrEmptyKey},
		{"cross slot batch", c.WriteBatch(ctx, tb, []BatchOp{PutOp([]byte("{a}1"), nil, 0), PutOp([]byte("{b}1"), nil, 0)}), status.ErrCrossSlot},
		{"scan empty hashtag", func() error { _, _, err := c.Scan(ctx, tb, nil, nil, 0); return err }(), status.ErrInvalidArgument},
		{"scan negative count", func() error { _, _, err := c.Scan(ctx, tb, []byte("a"), nil, -1); return err }(), status.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.want) {
				t.Fatalf("err = %v, want %v", tt.err, tt.want)
			}
		})
	}
	for _, cmd := range []string{"set", "mset", "write_batch", "scan"} {
		if n := cl.calls(cmd); n != 0 {
			t.Errorf("%d %s requests reached a node", n, cmd)
		}
	}
}

func TestTTLRoundsUp(t *testing.T) {
	tests := []struct {
		ttl  time.Duration
		want int64
	}{
		{0, 0},
		{time.Nanosecond, 1},
		{time.Millisecond, 1},
		{1500 * time.Microsecond, 2},
		{time.Hour, 3_600_000},
	}
	for _, tt := range tests {
		if got, err := ttlMillis(tt.ttl); err != nil || got != tt.want {
			t.Errorf("ttlMillis(%v) = %d, %v; want %d", tt.ttl, got, err, tt.want)
		}
	}
}

func TestWriteBatchAndScan(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 8, 1).Name
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	cl.resetCalls()

	var ops []BatchOp
	for i := range 250 {
		ops = append(ops, PutOp(fmt.Appendf(nil, "{user1}.%04d", i), []byte{byte(i)}, 0))
	}
	ops = append(ops, DeleteOp([]byte("{user1}.0003")))
	if err := c.WriteBatch(ctx, tb, ops); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, tb, []byte("{user2}.x"), []byte("other tag"), 0); err != nil {
		t.Fatal(err)
	}

	var keys []string
	for kv, err := range c.ScanAll(ctx, tb, []byte("user1"), 100) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, string(kv.Key))
	}
	if len(keys) != 249 {
		t.Fatalf("scanned %d keys, want 249", len(keys))
	}
	for i := 1; i < len(keys); i++ {
		if keys[i-1] >= keys[i] {
			t.Fatalf("keys out of order: %q then %q", keys[i-1], keys[i])
		}
	}
	if n := cl.calls("scan"); n != 3 {
		t.Fatalf("%d scan pages, want 3", n)
	}

	// Stopping the walk early stops paging.
	before := cl.calls("scan")
	for range c.ScanAll(ctx, tb, []byte("user1"), 10) {
		break
	}
	if n := cl.calls("scan") - before; n != 1 {
		t.Fatalf("early break fetched %d pages, want 1", n)
	}
}

func TestLocate(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 16, 2)
	c := newTestClient(t, cl)
	key := []byte("foo")
	loc, err := c.Locate(testCtx(t), tb.Name, key)
	if err != nil {
		t.Fatal(err)
	}
	p := tb.Partitions[keyspace.Partition(key, 16)]
	if loc.Slot != 12182 || loc.Partition != p.Id || loc.Master != p.Master || len(loc.Slaves) != 1 || loc.Slaves[0] != p.Slaves[0] || loc.Epoch != c.Epoch() || loc.Epoch < tb.CreatedEpoch {
		t.Fatalf("Locate = %+v, want slot 12182 partition %d master %s slaves %v", loc, p.Id, p.Master, p.Slaves)
	}
	if _, err := c.Locate(testCtx(t), "nosuch", key); !errors.Is(err, status.ErrTableNotFound) {
		t.Fatalf("Locate unknown table: %v", err)
	}
}

func TestClosedClient(t *testing.T) {
	cl := sharedCluster(t)
	tb := cl.addTable("", 1, 1).Name
	c := newTestClient(t, cl)
	c.Close()
	if err := c.Set(testCtx(t), tb, []byte("k"), nil, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
	if _, err := c.MGet(testCtx(t), tb, [][]byte{[]byte("k")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("MGet after Close: %v", err)
	}
	if _, _, err := c.ListTables(testCtx(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("ListTables after Close: %v", err)
	}
}

func TestProbeKeysCoverEveryPartition(t *testing.T) {
	// After splits: ids out of slot order, ranges of unequal sizes.
	split, err := keyspace.NewSlotMap([]keyspace.Range{{Partition: 0, Begin: 0, End: 100}, {Partition: 1, Begin: 8192, End: 16384}, {Partition: 2, Begin: 100, End: 8192}})
	if err != nil {
		t.Fatal(err)
	}
	maps := []*keyspace.SlotMap{split}
	for _, n := range []uint32{1, 3, 16, 1000, keyspace.Slots} {
		maps = append(maps, keyspace.EvenSlotMap(n))
	}
	for _, m := range maps {
		n := uint32(m.Len())
		keys := probeKeys(m)
		for id, k := range keys {
			if got := m.Partition(k); got != uint32(id) {
				t.Fatalf("%v: probe %q of partition %d routes to %d", m.Ranges()[:min(n, 3)], k, id, got)
			}
		}
		for _, id := range []uint32{0, n / 2, n - 1} {
			if k := partitionKey(m, id); m.Partition(k) != id {
				t.Fatalf("%v: partitionKey(%d) = %q routes to %d", m.Ranges()[:min(n, 3)], id, k, m.Partition(k))
			}
		}
	}
}

// Walking every partition with ScanPartition lists every key of the table
// once, across hashtags, with or without values.
func TestScanPartition(t *testing.T) {
	cl := sharedCluster(t)
	const parts = 4
	tb := cl.addTable("", parts, 1).Name
	c := newTestClient(t, cl)
	ctx := testCtx(t)
	want := map[string]string{}
	for i := range 120 {
		k, v := fmt.Sprintf("k%03d", i), fmt.Sprintf("v%d", i)
		if i%3 == 0 {
			k = fmt.Sprintf("{tag%d}.%03d", i%5, i)
		}
		want[k] = v
		if err := c.Set(ctx, tb, []byte(k), []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, keysOnly := range []bool{false, true} {
		got := map[string]string{}
		for id := range uint32(parts) {
			var cursor []byte
			for {
				kvs, next, err := c.ScanPartition(ctx, tb, id, cursor, 7, keysOnly)
				if err != nil {
					t.Fatal(err)
				}
				for _, kv := range kvs {
					if _, dup := got[string(kv.Key)]; dup {
						t.Fatalf("%q returned twice", kv.Key)
					}
					if l := keyspace.Partition(kv.Key, parts); l != id {
						t.Fatalf("%q of partition %d returned by partition %d", kv.Key, l, id)
					}
					got[string(kv.Key)] = string(kv.Value)
				}
				if next == nil {
					break
				}
				cursor = next
			}
		}
		if len(got) != len(want) {
			t.Fatalf("keysOnly %v: %d keys, want %d", keysOnly, len(got), len(want))
		}
		for k, v := range want {
			if keysOnly {
				v = ""
			}
			if got[k] != v {
				t.Fatalf("keysOnly %v: %q = %q, want %q", keysOnly, k, got[k], v)
			}
		}
	}
	if _, _, err := c.ScanPartition(ctx, tb, parts, nil, 0, true); status.Code(err) != zppb.Code_INVALID_ARGUMENT {
		t.Fatalf("partition out of range: %v", err)
	}
	if _, _, err := c.ScanPartition(ctx, "nosuch", 0, nil, 0, true); !errors.Is(err, status.ErrTableNotFound) {
		t.Fatalf("unknown table: %v", err)
	}
}
