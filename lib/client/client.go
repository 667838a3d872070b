package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"iter"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Client talks to one cluster. It is safe for concurrent use; create one
// per process and share it, since it holds the topology cache and the
// connection pools. Its methods come in three groups, each an interface a
// caller can hold on its own (a service that only reads and writes keys
// takes a KV): KV, the data path straight to the nodes; Cluster, the
// administration through the meta servers; Maintenance, the questions and
// orders sent to nodes directly.
type Client struct {
	KV
	Cluster
	Maintenance

	c *core
}

// KV reads and writes keys: each call goes to the master of the key's
// partition as the cached topology names it (see the package doc for
// retries and outcomes).
type KV interface {
	// Get returns key's value; status.ErrNotFound when it has none.
	Get(ctx context.Context, table string, key []byte) ([]byte, error)
	// Set writes key, expiring after ttl when ttl > 0.
	Set(ctx context.Context, table string, key, value []byte, ttl time.Duration) error
	// SetWith is SET with its options (NX/XX, GET, KEEPTTL, expiry).
	SetWith(ctx context.Context, table string, key, value []byte, opts SetOptions) (SetResult, error)
	// GetSet writes key and returns the value it replaced.
	GetSet(ctx context.Context, table string, key, value []byte) (old []byte, found bool, err error)
	// GetDel deletes key and returns the value it had.
	GetDel(ctx context.Context, table string, key []byte) ([]byte, error)
	// Del deletes key and reports whether it existed.
	Del(ctx context.Context, table string, key []byte) (bool, error)
	// Exists reports whether key has a value.
	Exists(ctx context.Context, table string, key []byte) (bool, error)
	// TTL returns the time key has left; see the method for its sentinels.
	TTL(ctx context.Context, table string, key []byte) (time.Duration, error)
	// IncrBy adds delta to key's integer value and returns the result.
	IncrBy(ctx context.Context, table string, key []byte, delta int64) (int64, error)
	// IncrByFloat adds delta to key's number and returns the result.
	IncrByFloat(ctx context.Context, table string, key []byte, delta float64) (float64, error)
	// Append appends value to key's and returns the new length.
	Append(ctx context.Context, table string, key, value []byte) (int64, error)
	// Expire sets key's expiry to ttl from now, under cond.
	Expire(ctx context.Context, table string, key []byte, ttl time.Duration, cond ExpireCondition) (bool, error)
	// ExpireAt sets key's expiry to t, under cond.
	ExpireAt(ctx context.Context, table string, key []byte, t time.Time, cond ExpireCondition) (bool, error)
	// Persist removes key's expiry.
	Persist(ctx context.Context, table string, key []byte) (bool, error)
	// MGet reads keys, in any partitions.
	MGet(ctx context.Context, table string, keys [][]byte) ([]Result, error)
	// MSet writes kvs, in any partitions, each partition's share at once.
	MSet(ctx context.Context, table string, kvs []KeyValue, ttl time.Duration) error
	// WriteBatch applies ops, all in one slot, atomically.
	WriteBatch(ctx context.Context, table string, ops []BatchOp) error
	// Scan reads a page of the table (or of one hash tag's keys).
	Scan(ctx context.Context, table string, hashtag, cursor []byte, count int) (kvs []KeyValue, next []byte, err error)
	// ScanAll iterates over the whole table (or one hash tag's keys).
	ScanAll(ctx context.Context, table string, hashtag []byte, pageSize int) iter.Seq2[KeyValue, error]
	// ScanPartition reads a page of every key of one partition: the
	// steps of a whole-table scan.
	ScanPartition(ctx context.Context, table string, id uint32, cursor []byte, count int, keysOnly bool) (kvs []KeyValue, next []byte, err error)
	// FlushTable deletes every key of a table, as a write of each
	// partition.
	FlushTable(ctx context.Context, table string) error
	// Locate says which partition and replicas hold key.
	Locate(ctx context.Context, table string, key []byte) (Location, error)
	// SlotMap returns the map routing table's keys to partitions.
	SlotMap(ctx context.Context, table string) (*keyspace.SlotMap, error)
}

// Cluster administers the cluster through the meta servers: tables, nodes,
// the meta group itself, topology moves and quotas.
type Cluster interface {
	// CreateTable creates a table and returns it as placed.
	CreateTable(ctx context.Context, spec TableSpec) (Table, error)
	// DropTable drops a table and returns the epoch that dropped it.
	DropTable(ctx context.Context, name string, expectedEpoch uint64) (uint64, error)
	// WaitTableWritable waits until every partition of a table takes
	// writes.
	WaitTableWritable(ctx context.Context, table string) error
	// ListTables returns the tables and the epoch of the answer.
	ListTables(ctx context.Context) ([]Table, uint64, error)
	// ListNodes returns the data nodes and the epoch of the answer.
	ListNodes(ctx context.Context) ([]Node, uint64, error)
	// Pull returns the topology, or one table's.
	Pull(ctx context.Context, table string) (*Topology, error)
	// ListMeta asks every meta server for its state.
	ListMeta(ctx context.Context) (*MetaStatus, error)
	// AddMeta adds a meta server to the Raft group.
	AddMeta(ctx context.Context, addr string, nonvoter bool) (*MetaStatus, error)
	// RemoveMeta removes a meta server from the Raft group.
	RemoveMeta(ctx context.Context, addr string) (*MetaStatus, error)
	// RemoveNodes forgets DOWN nodes that hold no replica.
	RemoveNodes(ctx context.Context, nodes []string, expectedEpoch uint64) (uint64, error)
	// CordonNodes cordons (or uncordons) nodes.
	CordonNodes(ctx context.Context, nodes []string, cordoned bool) (uint64, error)
	// SetQuota changes a table's quota.
	SetQuota(ctx context.Context, table string, q Quota, expectedEpoch uint64) (uint64, error)
	// SetSplitSize changes a table's automatic split size.
	SetSplitSize(ctx context.Context, table string, size, expectedEpoch uint64) (uint64, error)
	// FinishRestore opens a table created restoring to data commands.
	FinishRestore(ctx context.Context, table string, createdEpoch uint64) (uint64, error)
	// TablePasswords lists a table's passwords (ids and dates only).
	TablePasswords(ctx context.Context, table string) ([]TablePassword, error)
	// AddTablePassword adds a password to a table.
	AddTablePassword(ctx context.Context, table string, password []byte) (string, []TablePassword, error)
	// RemoveTablePassword removes a table's password, given or by id.
	RemoveTablePassword(ctx context.Context, table string, password []byte, id string) (string, []TablePassword, error)
	// AddSlave queues the move that adds a slave.
	AddSlave(ctx context.Context, table string, partition uint32, node string, expectedEpoch uint64) ([]Move, error)
	// RemoveSlave queues the move that removes a slave.
	RemoveSlave(ctx context.Context, table string, partition uint32, node string, expectedEpoch uint64) ([]Move, error)
	// SetMaster queues a planned switchover to a slave.
	SetMaster(ctx context.Context, table string, partition uint32, node string, expectedEpoch uint64) ([]Move, error)
	// Migrate queues the move of a replica to another node.
	Migrate(ctx context.Context, table string, partition uint32, from, to string, expectedEpoch uint64) ([]Move, error)
	// Split queues the split of a partition in two, or of every
	// partition of the table.
	Split(ctx context.Context, table string, partition, at uint32, all bool, expectedEpoch uint64) ([]Move, error)
	// PlanMoves asks the meta leader whether moves would be queued,
	// without queueing them.
	PlanMoves(ctx context.Context, moves []Move) ([]Move, uint64, error)
	// Rebalance plans and queues an expand, shrink or replace.
	Rebalance(ctx context.Context, mode RebalanceMode, nodes []string, dryRun bool, expectedEpoch uint64) ([]Move, error)
	// CancelMoves cancels moves, or every move not past its handover.
	CancelMoves(ctx context.Context, ids []uint64) (CancelResult, error)
	// MoveStatus lists the moves with their progress.
	MoveStatus(ctx context.Context, all bool) ([]Move, error)
	// Schedule changes scheduler settings and reports what it does.
	Schedule(ctx context.Context, ch ScheduleChange) (*ScheduleStatus, error)
}

// Maintenance asks nodes directly, one attempt each, what they say about
// themselves.
type Maintenance interface {
	// Info asks one node for one section of INFO.
	Info(ctx context.Context, nodeAddr string, section InfoSection, table string) (Info, error)
	// InfoNodes asks nodes for sections of INFO, in parallel.
	InfoNodes(ctx context.Context, addrs []string, table string, sections ...InfoSection) []NodeInfo
	// NodeLog asks one node for its last log records.
	NodeLog(ctx context.Context, nodeAddr string, lines int, level string) ([]LogLine, error)
	// Security probes what the meta servers and node require.
	Security(ctx context.Context, node string) (Security, error)
	// Certificates returns the TLS certificates servers present (none
	// without Options.TLS).
	Certificates(ctx context.Context, addrs []string) ([]Certificate, error)
}

// core is what the three faces of a Client share: the topology cache, the
// connection pools and the meta servers. Every public method of the package
// is a method of core, reached through the interface that groups it.
type core struct {
	opts  Options
	metas []string
	pool  *rpc.Pool
	topo  *topology
	log   *slog.Logger

	// baseCtx ends on Close: it bounds background PULLs and cuts short the
	// calls in flight.
	baseCtx context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  atomic.Bool
	// metaPref is the index of the meta server that answered last.
	metaPref atomic.Int32
	// seen is the newest epoch any server (or an admin write) reported:
	// the cluster has reached it even when the meta server asked next has
	// not.
	seen atomic.Uint64

	flightMu sync.Mutex
	flight   *pullFlight
	// pullGen is the generation of the latest PULL flight started.
	pullGen atomic.Uint64
	// lastPullFailure is when the last PULL failed; zero after a success.
	lastPullFailure time.Time
	// onJoin, when set by tests, runs (under flightMu) each time a refresh
	// joins a PULL in progress.
	onJoin func()
}

// New returns a Client for the cluster whose meta servers are
// opts.MetaAddrs. Unless opts.LazyPull is set it PULLs the topology first
// and fails when no meta server answers within ctx (or DefaultTimeout).
func New(ctx context.Context, opts Options) (*Client, error) {
	c, err := newCore(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Client{KV: c, Cluster: c, Maintenance: c, c: c}, nil
}

func newCore(ctx context.Context, opts Options) (*core, error) {
	opts.MetaAddrs = slices.Clone(opts.MetaAddrs)
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	baseCtx, cancel := context.WithCancel(context.Background())
	c := &core{
		opts:  opts,
		metas: opts.MetaAddrs,
		pool: rpc.NewPool(rpc.PoolOptions{
			ConnsPerAddr: opts.PoolConnsPerAddr,
			DialTimeout:  opts.DialTimeout,
			TLS:          staticTLS(opts.TLS),
		}),
		log:     opts.Logger.With("component", "zpclient"),
		baseCtx: baseCtx,
		cancel:  cancel,
	}
	c.topo = newTopology(c.log)
	// Spread clients over the meta servers rather than all starting with the
	// first one.
	c.metaPref.Store(int32(rand.IntN(len(c.metas))))
	if !opts.LazyPull {
		ctx, cancel := c.withTimeout(ctx)
		defer cancel()
		topo, err := c.pullOnce(ctx, "", 0, nil)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("client: initial pull: %w", err)
		}
		c.topo.install(topo)
	}
	return c, nil
}

// Close ends the calls in flight (they fail with ErrClosed) and closes every
// connection. Later calls fail with ErrClosed.
func (c *Client) Close() error { return c.c.close() }

// Epoch returns the epoch of the cached topology; 0 before the first PULL.
func (c *Client) Epoch() uint64 { return c.c.topo.epoch() }

func (c *core) close() error {
	c.flightMu.Lock()
	already := c.closed.Swap(true)
	c.flightMu.Unlock()
	if already {
		return nil
	}
	c.cancel()
	c.wg.Wait()
	return c.pool.Close()
}

// attemptSendRate is the slowest transfer an attempt is given time for:
// a request of n bytes has Options.AttemptTimeout plus n/attemptSendRate
// seconds. Without it an attempt carrying a value of tens of MiB over a
// slow link (or to a loaded node) would time out every time, and its
// retries with it.
const attemptSendRate = 4 << 20

// attemptContext bounds one attempt at a node sending a request of size
// bytes, within the call's ctx, by Options.AttemptTimeout and the time to
// send it at attemptSendRate.
func (c *core) attemptContext(ctx context.Context, size int) (context.Context, context.CancelFunc) {
	if c.opts.AttemptTimeout < 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.opts.AttemptTimeout+time.Duration(size)*time.Second/attemptSendRate)
}

// attemptOutran reports whether a node's TIMEOUT or NOT_ENOUGH_REPLICAS
// answer came from the attempt's deadline while the call has time left:
// the request is then sent again with its id, and a write still waiting
// for slaves is waited for again rather than written twice.
func attemptOutran(ctx context.Context, code zppb.Code) bool {
	return (code == zppb.Code_TIMEOUT || code == zppb.Code_NOT_ENOUGH_REPLICAS) && !expired(ctx)
}

// withTimeout bounds ctx by DefaultTimeout when it has no deadline, and
// ends it on Close.
func (c *core) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if _, ok := ctx.Deadline(); ok {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, c.opts.DefaultTimeout)
	}
	stop := context.AfterFunc(c.baseCtx, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// ctxErr is what a call returns when ctx ended: ErrClosed when Close ended
// it, the deadline error with the last failure otherwise.
func (c *core) ctxErr(op string, ctx context.Context, last error) error {
	return c.endedErr(op, ctx, &failures{last: last})
}

// endedErr is ctxErr for a call that kept its failures.
func (c *core) endedErr(op string, ctx context.Context, f *failures) error {
	cause := ctx.Err()
	if c.closed.Load() {
		cause = ErrClosed
	}
	return f.ended(op, cause)
}

// expired reports whether ctx has ended or its deadline has passed. A
// socket deadline set from ctx can fire a moment before ctx's own timer, so
// ctx.Err alone would miss that the deadline caused a failure.
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// backoff is the pause between retries: exponential, capped, jittered.
type backoff struct {
	cur, max time.Duration
}

func (c *core) newBackoff() *backoff {
	return &backoff{cur: c.opts.RetryBackoff, max: c.opts.MaxRetryBackoff}
}

func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(2*b.cur, b.max)
	if d <= 1 {
		return d
	}
	// Between half and all of d: retries of clients that met the same
	// failover spread out instead of arriving together.
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d or until ctx ends, whichever is first.
func (c *core) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pause is the wait before a retry. With refresh it also starts (or joins)
// a PULL; the retry does not wait for it beyond the backoff, because with
// the meta servers unreachable a PULL can take far longer than it takes a
// restarted node to come back.
func (c *core) pause(ctx context.Context, bo *backoff, refresh bool, want uint64) error {
	if refresh {
		c.startRefresh(want)
	}
	return c.sleep(ctx, bo.next())
}

// staticTLS gives every dial cfg; nil (plain TCP) when cfg is nil.
func staticTLS(cfg *tls.Config) func() *tls.Config {
	if cfg == nil {
		return nil
	}
	return func() *tls.Config { return cfg }
}
