package redisfront

import (
	"crypto/rand"
	"encoding/binary"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/glob"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// SCAN, KEYS and RANDOMKEY walk the partitions of the connection's table
// that this node masters (its slots, as a Redis Cluster node scans its
// own keys), with the native partition SCAN.
//
// A SCAN cursor is the number of a walk this node keeps (scanCursors):
// which partitions it has finished and, for every partition it started,
// the last key it returned (partitions are read in the store's key
// order). Each call continues with a partition this node masters now and
// has not finished — the one in progress if it still masters it, else the
// lowest — from that partition's last key. So, on one node, within one
// walk:
//
//   - no key is returned twice, whatever moves (a partition that leaves
//     and comes back resumes after its last key);
//   - a key that exists throughout the walk, in a partition this node
//     masters throughout it, is returned;
//   - a partition that arrives during the walk is scanned in full (if it
//     is not already done); one that leaves it is not scanned further
//     here: its other keys are its new master's to return.
//
// Over the whole cluster (a client scanning every master, as with Redis
// Cluster) keys that exist throughout are returned at least once provided
// no walk ends while a partition it would have to pick up is moving to
// it; a key may come twice when its partition moved from one walk to
// another after the first returned it. See docs/redis.md, SCAN.

// Cursor registry bounds: walks are forgotten after scanIdle unused, and
// the least recently used goes when there are maxScans.
const (
	maxScans = 10000
	scanIdle = time.Hour
)

const errInvalidCursor = "ERR invalid cursor"

// scanWalk is one SCAN cursor's progress.
type scanWalk struct {
	table string
	done  map[uint32]bool
	last  map[uint32][]byte // the last key returned, per started partition
	cur   uint32
	inCur bool // cur is started and not done
	used  time.Time
}

// scanCursors are the walks in progress on this node.
type scanCursors struct {
	mu    sync.Mutex
	walks map[uint64]*scanWalk
}

func (sc *scanCursors) init() { sc.walks = make(map[uint64]*scanWalk) }

// take removes and returns walk id of table, nil when unknown.
func (sc *scanCursors) take(id uint64, table string) *scanWalk {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	w := sc.walks[id]
	if w == nil || w.table != table || time.Since(w.used) > scanIdle {
		return nil
	}
	delete(sc.walks, id)
	return w
}

// put keeps w under cursor id, or a new one when id is 0, and returns it.
func (sc *scanCursors) put(w *scanWalk, id uint64) uint64 {
	w.used = time.Now()
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if len(sc.walks) >= maxScans {
		var oldest uint64
		for id, o := range sc.walks {
			if oldest == 0 || o.used.Before(sc.walks[oldest].used) {
				oldest = id
			}
		}
		delete(sc.walks, oldest)
	}
	if id != 0 {
		sc.walks[id] = w
		return id
	}
	for {
		var b [8]byte
		rand.Read(b[:])
		// Below 2^63 and not 0: clients parse cursors as int64 or uint64.
		id := binary.BigEndian.Uint64(b[:]) & math.MaxInt64
		if _, used := sc.walks[id]; id != 0 && !used {
			sc.walks[id] = w
			return id
		}
	}
}

// mastered returns the ids of the partitions of table this node masters,
// in order.
func (c *conn) mastered(table string) []uint32 {
	var ids []uint32
	for _, tb := range c.s.b.Topology().GetTables() {
		if tb.Name != table {
			continue
		}
		for _, p := range tb.Partitions {
			if p.Master == c.s.b.Addr() {
				ids = append(ids, p.Id)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// scanPage reads up to count keys of partition id after cursor.
func (c *conn) scanPage(table string, id uint32, cursor []byte, count int) *zppb.Response {
	return c.call(&zppb.Request{Cmd: &zppb.Request_Scan{Scan: &zppb.ScanRequest{
		Table: table, Partition: &id, Cursor: cursor, Count: uint32(min(count, 1000)), KeysOnly: true,
	}}})
}

// step reads about count keys of the walk: what a SCAN call examines. It
// returns them, whether the walk is over, and an error reply.
func (c *conn) step(w *scanWalk, count int) (keys [][]byte, over bool, msg string) {
	for len(keys) < count {
		ids := c.mastered(w.table)
		if w.inCur && !slices.Contains(ids, w.cur) {
			w.inCur = false // moved away: its new master returns the rest
		}
		if !w.inCur {
			next := slices.IndexFunc(ids, func(id uint32) bool { return !w.done[id] })
			if next < 0 {
				return keys, true, ""
			}
			w.cur, w.inCur = ids[next], true
		}
		r := c.scanPage(w.table, w.cur, w.last[w.cur], count-len(keys))
		switch r.Code {
		case zppb.Code_OK:
		case zppb.Code_MOVE:
			// The topology changed under the call: look again.
			w.inCur = false
			if !slices.Contains(c.mastered(w.table), w.cur) {
				continue
			}
			return keys, false, ""
		default:
			if len(keys) > 0 {
				return keys, false, "" // answer what was read; the next call retries
			}
			return nil, false, c.statusError(r.Code, r.Msg, r.Master, -1)
		}
		sr := r.GetScan()
		for _, kv := range sr.GetKvs() {
			keys = append(keys, kv.Key)
		}
		if len(sr.GetKvs()) > 0 {
			w.last[w.cur] = sr.GetKvs()[len(sr.GetKvs())-1].Key
		}
		if len(sr.GetNextCursor()) == 0 {
			w.done[w.cur], w.inCur = true, false
		} else {
			// A short page with more to read (many expired keys): the
			// page's work is done.
			w.last[w.cur] = sr.GetNextCursor()
			if len(sr.GetKvs()) == 0 {
				return keys, false, ""
			}
		}
	}
	return keys, false, ""
}

// cmdScan is SCAN cursor [MATCH pattern] [COUNT n] [TYPE type], parsed as
// Redis's scanGenericCommand parses it.
func cmdScan(c *conn, args [][]byte) entry {
	cursor, err := strconv.ParseUint(string(args[1]), 10, 64)
	if err != nil {
		return fail(errInvalidCursor)
	}
	count := 10
	var pattern []byte
	typeName := ""
	for i := 2; i < len(args); i += 2 {
		opt := strings.ToLower(string(args[i]))
		if i+1 >= len(args) {
			return fail(errSyntax)
		}
		switch opt {
		case "count":
			n, err := strconv.ParseInt(string(args[i+1]), 10, 64)
			if err != nil {
				return fail(errNotInteger)
			}
			if n < 1 {
				return fail(errSyntax)
			}
			count = int(min(n, 1<<20))
		case "match":
			pattern = clone(args[i+1])
			if string(pattern) == "*" {
				pattern = nil
			}
		case "type":
			typeName = strings.ToLower(string(args[i+1]))
		default:
			return fail(errSyntax)
		}
	}
	table := c.table
	return local(func(c *conn) {
		var w *scanWalk
		if cursor == 0 {
			w = &scanWalk{table: table, done: map[uint32]bool{}, last: map[uint32][]byte{}}
		} else if w = c.s.scans.take(cursor, table); w == nil {
			c.w.WriteError(errInvalidCursor)
			return
		}
		keys, over, msg := c.step(w, count)
		if msg != "" {
			if cursor != 0 {
				c.s.scans.put(w, cursor) // the client retries the same cursor
			}
			c.w.WriteError(msg)
			return
		}
		next := uint64(0)
		if !over {
			next = c.s.scans.put(w, 0)
		}
		// Every value is a string: TYPE string keeps all, any other none.
		if typeName != "" && typeName != "string" {
			keys = nil
		}
		c.w.WriteArrayLen(2)
		c.w.WriteBulkString(strconv.FormatUint(next, 10))
		out := keys[:0]
		for _, k := range keys {
			if pattern == nil || glob.Match(pattern, k) {
				out = append(out, k)
			}
		}
		c.w.WriteArrayLen(len(out))
		for _, k := range out {
			c.w.WriteBulk(k)
		}
	})
}

// cmdKeys is KEYS pattern: the whole walk at once.
func cmdKeys(c *conn, args [][]byte) entry {
	pattern := clone(args[1])
	table := c.table
	return local(func(c *conn) {
		w := &scanWalk{table: table, done: map[uint32]bool{}, last: map[uint32][]byte{}}
		var out [][]byte
		for {
			keys, over, msg := c.step(w, 1000)
			if msg != "" {
				c.w.WriteError(msg)
				return
			}
			for _, k := range keys {
				if glob.Match(pattern, k) {
					out = append(out, k)
				}
			}
			if over {
				break
			}
		}
		c.w.WriteArrayLen(len(out))
		for _, k := range out {
			c.w.WriteBulk(k)
		}
	})
}

// cmdRandomKey is RANDOMKEY: a key of a random partition this node
// masters, the first after a random point of its key order (not uniform:
// a key after a wide gap of the order comes more often).
func cmdRandomKey(c *conn, args [][]byte) entry {
	table := c.table
	return local(func(c *conn) {
		ids := c.mastered(table)
		mrand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		for _, id := range ids {
			var b [8]byte
			rand.Read(b[:])
			for _, from := range [][]byte{b[:], nil} {
				r := c.scanPage(table, id, from, 1)
				if r.Code != zppb.Code_OK {
					break
				}
				if kvs := r.GetScan().GetKvs(); len(kvs) > 0 {
					c.w.WriteBulk(kvs[0].Key)
					return
				}
			}
		}
		c.w.WriteNull()
	})
}
