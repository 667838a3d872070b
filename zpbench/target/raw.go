package target

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// ErrNoMaster is the outcome of an operation whose partition has no master
// in the route the raw path knows.
var ErrNoMaster = errors.New("no master known for the partition")

// minRefreshInterval spaces the topology PULLs the raw path makes when a
// node's answer shows its route is stale, so that a failover does not turn
// every failed request into a PULL.
const minRefreshInterval = 100 * time.Millisecond

// router tells the raw path where a key goes.
type router interface {
	// route returns the address of key's master and its partition; ""
	// when no master is known.
	route(key []byte) (addr string, partition uint32)
	// moved records a MOVE answer for partition: master is the node the
	// answer named, "" when it named none.
	moved(partition uint32, master string)
}

// routes is one immutable routing table.
type routes struct {
	masters []string // by partition id
	// slots routes keys to partitions by their slot ranges.
	slots *keyspace.SlotMap
}

// tableRouter routes by the cluster topology, PULLed from the meta servers.
type tableRouter struct {
	table string
	log   *slog.Logger
	cur   atomic.Pointer[routes]
	// pull fetches the table's routes from the meta servers.
	pull func(ctx context.Context) (*routes, error)

	mu          sync.Mutex // serialises updates
	lastRefresh time.Time
	refreshing  bool
}

func newTableRouter(ctx context.Context, cl *client.Client, table string, log *slog.Logger) (*tableRouter, error) {
	r := &tableRouter{table: table, log: log, pull: func(ctx context.Context) (*routes, error) { return pullRoutes(ctx, cl, table) }}
	if err := r.refresh(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// pullRoutes asks the meta servers for table's masters.
func pullRoutes(ctx context.Context, cl *client.Client, table string) (*routes, error) {
	topo, err := cl.Pull(ctx, table)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", table, err)
	}
	for _, t := range topo.Tables {
		if t.Name != table {
			continue
		}
		rt := &routes{masters: make([]string, len(t.Partitions))}
		ranges := make([]keyspace.Range, len(t.Partitions))
		for i, p := range t.Partitions {
			if p.ID != uint32(i) {
				return nil, fmt.Errorf("pull %s: partition %d listed at %d", table, p.ID, i)
			}
			rt.masters[i] = p.Master
			ranges[i] = keyspace.Range{Partition: p.ID, Begin: p.SlotBegin, End: p.SlotEnd}
		}
		var err error
		if rt.slots, err = keyspace.NewSlotMap(ranges); err != nil {
			return nil, fmt.Errorf("pull %s: %w", table, err)
		}
		return rt, nil
	}
	return nil, fmt.Errorf("pull %s: %w", table, status.ErrTableNotFound)
}

func (r *tableRouter) refresh(ctx context.Context) error {
	rt, err := r.pull(ctx)
	if err != nil {
		return err
	}
	r.cur.Store(rt)
	return nil
}

func (r *tableRouter) route(key []byte) (string, uint32) {
	rt := r.cur.Load()
	p := rt.slots.Partition(key)
	return rt.masters[p], p
}

func (r *tableRouter) moved(partition uint32, master string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.cur.Load()
	if master != "" && int(partition) < len(cur.masters) {
		if cur.masters[partition] != master {
			next := &routes{masters: append([]string(nil), cur.masters...), slots: cur.slots}
			next.masters[partition] = master
			r.cur.Store(next)
		}
		return
	}
	// The node does not know the master: only meta does.
	if r.refreshing || time.Since(r.lastRefresh) < minRefreshInterval {
		return
	}
	r.refreshing, r.lastRefresh = true, time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.refresh(ctx); err != nil {
			r.log.Warn("topology refresh failed", "table", r.table, "err", err)
		}
		r.mu.Lock()
		r.refreshing = false
		r.mu.Unlock()
	}()
}

// fixedRouter sends everything to one address: the no-op server.
type fixedRouter struct{ addr string }

func (f fixedRouter) route([]byte) (string, uint32) { return f.addr, 0 }
func (f fixedRouter) moved(uint32, string)          {}

// rawTarget sends protocol requests over rpc connections it dials itself,
// one set of connections per session.
type rawTarget struct {
	kind, name string
	table      string
	password   []byte // the table's, sent with every request; nil: none
	router     router
	closer     func() error
	// tls, when set, is the config every connection dials with.
	tls *tls.Config
}

// NewNoop returns a target for zpbench's no-op server at addr: the same
// requests as the raw Zeppelin path, all to one address. table is only put
// in the requests.
func NewNoop(addr, table string) Target {
	return &rawTarget{kind: "noop", name: "noop " + addr, table: table, router: fixedRouter{addr}}
}

func (t *rawTarget) Kind() string           { return t.kind }
func (t *rawTarget) Name() string           { return t.name }
func (t *rawTarget) Pipelining() Pipelining { return Batch }

func (t *rawTarget) Close() error {
	if t.closer != nil {
		return t.closer()
	}
	return nil
}

func (t *rawTarget) NewSession(context.Context) (Session, error) {
	return &rawSession{t: t, conns: make(map[string]*rpc.Conn)}, nil
}

// rawSession holds one connection per node, dialled on first use and again
// after a failure. Calls from a worker's pipeline share them.
type rawSession struct {
	t *rawTarget

	mu     sync.Mutex
	conns  map[string]*rpc.Conn
	closed bool
}

func (s *rawSession) conn(ctx context.Context, addr string) (*rpc.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, rpc.ErrClosed
	}
	if c := s.conns[addr]; c != nil && !c.Closed() {
		return c, nil
	}
	c, err := rpc.DialTLS(ctx, addr, 0, s.t.tls)
	if err != nil {
		return nil, err
	}
	s.conns[addr] = c
	return c, nil
}

func (s *rawSession) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, c := range s.conns {
		c.Close()
	}
	return nil
}

func (s *rawSession) call(ctx context.Context, addr string, req *zppb.Request) (*zppb.Response, error) {
	c, err := s.conn(ctx, addr)
	if err != nil {
		return nil, err
	}
	req.TablePassword = s.t.password
	return c.Call(ctx, req)
}

// Do sends the single-key operations of ops as one pipeline: every request
// is queued on its connection before any response is awaited, so a batch
// bound for one node goes out in one write(2), as a go-redis pipeline does.
// Other operations (read-modify-write, scans, MGET/MSET) follow one by one.
func (s *rawSession) Do(ctx context.Context, ops []*workload.Op, out []Outcome) {
	if len(ops) == 1 {
		out[0] = s.do(ctx, ops[0])
		return
	}
	type inflight struct {
		p    *rpc.Pending
		addr string
		part uint32
		read bool
	}
	fl := make([]inflight, len(ops))
	done := make([]bool, len(ops))
	for i, op := range ops {
		req, key, read, ok := s.singleRequest(op)
		if !ok {
			continue
		}
		done[i] = true
		addr, part := s.t.router.route(key)
		if addr == "" {
			_, out[i] = s.send(ctx, addr, part, req)
			continue
		}
		c, err := s.conn(ctx, addr)
		var p *rpc.Pending
		if err == nil {
			req.TablePassword = s.t.password
			p, err = c.Send(ctx, req)
		}
		if err != nil {
			out[i] = Outcome{Err: fmt.Errorf("node %s: %w", addr, err)}
			continue
		}
		fl[i] = inflight{p, addr, part, read}
	}
	for i, op := range ops {
		switch {
		case fl[i].p != nil:
			resp, err := fl[i].p.Wait(ctx)
			out[i] = s.singleOutcome(fl[i].addr, fl[i].part, fl[i].read, resp, err)
		case !done[i]:
			out[i] = s.do(ctx, op)
		}
	}
}

func (s *rawSession) do(ctx context.Context, op *workload.Op) Outcome {
	if req, key, read, ok := s.singleRequest(op); ok {
		addr, part := s.t.router.route(key)
		resp, err := s.callTo(ctx, addr, part, req)
		return s.singleOutcome(addr, part, read, resp, err)
	}
	table := s.t.table
	switch op.Kind {
	case workload.ReadModifyWrite:
		o := s.single(ctx, op.Key, true, &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: table, Key: op.Key}}})
		if o.Err != nil {
			return o
		}
		w := s.single(ctx, op.Key, false, setRequest(table, op))
		w.Miss = o.Miss
		return w
	case workload.Scan:
		req := &zppb.Request{Cmd: &zppb.Request_Scan{Scan: &zppb.ScanRequest{Table: table, Hashtag: op.Hashtag, Cursor: op.Cursor, Count: uint32(op.Count)}}}
		addr, part := s.t.router.route(op.Key)
		resp, o := s.send(ctx, addr, part, req)
		if o.Err == nil && len(resp.GetScan().GetKvs()) < op.Count {
			o.Miss = true
		}
		return o
	case workload.MGet, workload.MSet:
		return s.multi(ctx, op)
	}
	return Outcome{Err: fmt.Errorf("raw target: unsupported operation %v", op.Kind)}
}

// singleRequest returns the one request of an operation that is one
// request to one key's master (GET, SET, INCRBY); ok is false for others.
func (s *rawSession) singleRequest(op *workload.Op) (req *zppb.Request, key []byte, read, ok bool) {
	table := s.t.table
	switch op.Kind {
	case workload.Get:
		return &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: table, Key: op.Key}}}, op.Key, true, true
	case workload.Set, workload.Insert:
		return setRequest(table, op), op.Key, false, true
	case workload.Incr:
		return &zppb.Request{Cmd: &zppb.Request_Incrby{Incrby: &zppb.IncrByRequest{Table: table, Key: op.Key, Delta: op.Delta}}}, op.Key, false, true
	}
	return nil, nil, false, false
}

func setRequest(table string, op *workload.Op) *zppb.Request {
	return &zppb.Request{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: table, Key: op.Key, Value: op.Value}}}
}

// single sends a one-key request to the master of key.
func (s *rawSession) single(ctx context.Context, key []byte, read bool, req *zppb.Request) Outcome {
	addr, part := s.t.router.route(key)
	resp, err := s.callTo(ctx, addr, part, req)
	return s.singleOutcome(addr, part, read, resp, err)
}

// singleOutcome is the outcome of a one-key request.
func (s *rawSession) singleOutcome(addr string, part uint32, read bool, resp *zppb.Response, err error) Outcome {
	resp, o := s.check(addr, part, resp, err)
	if o.Err != nil {
		return o
	}
	return statusOutcome(resp, read)
}

// send sends req to addr and returns the response with a transport or
// status failure as the outcome (NOT_FOUND included: callers decide).
func (s *rawSession) send(ctx context.Context, addr string, part uint32, req *zppb.Request) (*zppb.Response, Outcome) {
	resp, err := s.callTo(ctx, addr, part, req)
	return s.check(addr, part, resp, err)
}

// callTo calls the master addr of partition part; an empty addr (no master
// known) fails without a call.
func (s *rawSession) callTo(ctx context.Context, addr string, part uint32, req *zppb.Request) (*zppb.Response, error) {
	if addr == "" {
		return nil, fmt.Errorf("partition %d: %w", part, ErrNoMaster)
	}
	return s.call(ctx, addr, req)
}

// check turns a call's result into an outcome (NOT_FOUND is not a failure
// here: callers decide) and notes MOVEs and missing masters for the router.
func (s *rawSession) check(addr string, part uint32, resp *zppb.Response, err error) (*zppb.Response, Outcome) {
	if err != nil {
		if errors.Is(err, ErrNoMaster) {
			s.t.router.moved(part, "")
			return nil, Outcome{Err: err}
		}
		return nil, Outcome{Err: fmt.Errorf("node %s: %w", addr, err)}
	}
	if resp.GetCode() == zppb.Code_MOVE || resp.GetCode() == zppb.Code_TABLE_NOT_FOUND {
		s.t.router.moved(part, resp.GetMaster())
	}
	if resp.GetCode() != zppb.Code_NOT_FOUND {
		if err := status.FromResponse(resp); err != nil {
			return resp, Outcome{Err: fmt.Errorf("node %s: %w", addr, err)}
		}
	}
	return resp, Outcome{}
}

// multi sends an MGET or MSET as one request per master, in parallel when
// the keys span several.
func (s *rawSession) multi(ctx context.Context, op *workload.Op) Outcome {
	addrs := make([]string, len(op.Keys))
	parts := make([]uint32, len(op.Keys))
	one := true
	for i, k := range op.Keys {
		addrs[i], parts[i] = s.t.router.route(k)
		one = one && addrs[i] == addrs[0]
	}
	if one {
		return s.multiTo(ctx, op, addrs[0], parts, nil)
	}
	groups := make(map[string][]int)
	for i, a := range addrs {
		groups[a] = append(groups[a], i)
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		res Outcome
	)
	for addr, idx := range groups {
		wg.Go(func() {
			o := s.multiTo(ctx, op, addr, parts, idx)
			mu.Lock()
			defer mu.Unlock()
			if res.Err == nil {
				res.Err = o.Err
			}
			res.Miss = res.Miss || o.Miss
		})
	}
	wg.Wait()
	return res
}

// multiTo sends the keys of op at idx (all of them when idx is nil) to addr.
func (s *rawSession) multiTo(ctx context.Context, op *workload.Op, addr string, parts []uint32, idx []int) Outcome {
	n := len(op.Keys)
	if idx != nil {
		n = len(idx)
	}
	at := func(j int) int {
		if idx == nil {
			return j
		}
		return idx[j]
	}
	var req *zppb.Request
	if op.Kind == workload.MGet {
		r := &zppb.MGetRequest{Table: s.t.table, Keys: make([][]byte, n)}
		for j := range n {
			r.Keys[j] = op.Keys[at(j)]
		}
		req = &zppb.Request{Cmd: &zppb.Request_Mget{Mget: r}}
	} else {
		r := &zppb.MSetRequest{Table: s.t.table, Kvs: make([]*zppb.KeyValue, n)}
		for j := range n {
			r.Kvs[j] = &zppb.KeyValue{Key: op.Keys[at(j)], Value: op.Value}
		}
		req = &zppb.Request{Cmd: &zppb.Request_Mset{Mset: r}}
	}
	resp, o := s.send(ctx, addr, parts[at(0)], req)
	if o.Err != nil {
		return o
	}
	results := resp.GetMget().GetResults()
	if op.Kind == workload.MSet {
		results = resp.GetMset().GetResults()
	}
	if len(results) != n {
		return Outcome{Err: fmt.Errorf("node %s: %w", addr, status.New(zppb.Code_ERROR, "%d results for %d keys", len(results), n))}
	}
	for j, kr := range results {
		switch kr.GetCode() {
		case zppb.Code_OK:
		case zppb.Code_NOT_FOUND:
			o.Miss = o.Miss || op.Kind == workload.MGet
		default:
			if kr.GetCode() == zppb.Code_MOVE {
				s.t.router.moved(parts[at(j)], kr.GetMaster())
			}
			if o.Err == nil {
				o.Err = fmt.Errorf("node %s: key %q: %w", addr, op.Keys[at(j)], status.New(kr.GetCode(), "%s", kr.GetMsg()))
			}
		}
	}
	return o
}
