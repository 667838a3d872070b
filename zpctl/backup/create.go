package backup

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/dbsync"
)

// Cluster is what Create asks of the cluster; *client.Client has it.
type Cluster interface {
	Pull(ctx context.Context, table string) (*client.Topology, error)
	Info(ctx context.Context, nodeAddr string, section client.InfoSection, table string) (client.Info, error)
}

// Conn is a connection to a node that carries the cluster secret: the
// full-sync requests are for the cluster's own servers
// (docs/security.md).
type Conn interface {
	dbsync.Caller
	Close() error
}

// Dialer opens a Conn to a node.
type Dialer func(ctx context.Context, addr string) (Conn, error)

// MaxSyncLag is how many records a slave may be behind its master (as
// the master last saw it) and still count as in sync: a backup or export
// asks such a slave rather than the master. Its checkpoint is consistent
// whatever its lag, and is refused when it lacks a write the master had
// applied when the slaves were ranked (candidate.floor).
const MaxSyncLag = 1000

// Defaults of Options.
const (
	DefaultParallel   = 2
	DefaultAttempts   = 6
	DefaultRetryPause = time.Second
)

// Options configures Create.
type Options struct {
	Cluster Cluster
	Dial    Dialer
	// Table is the table to back up.
	Table  string
	Target Target
	// Name is the backup's name in Target. Required.
	Name string
	// IncrementalFrom names a complete backup in Target whose table files
	// are linked rather than fetched again.
	IncrementalFrom string
	// Rate limits the bytes fetched per second, all partitions together;
	// 0 is unlimited.
	Rate uint64
	// Parallel is how many partitions are fetched at once; default
	// DefaultParallel.
	Parallel int
	// Attempts bounds the tries of one partition, each from the next
	// replica; default DefaultAttempts. RetryPause is the wait before a
	// round of tries after every replica failed once (a failover takes
	// a moment); default DefaultRetryPause.
	Attempts   int
	RetryPause time.Duration
	// Progress, when set, is kept up to date for the caller to show.
	Progress *Progress
	// Log, when set, is told of each partition's source and of retries.
	Log func(line string)
	// Logger receives dbsync's log; default discard.
	Logger *slog.Logger
}

// Progress is how far a Create has come; its methods are safe to call
// from any goroutine while Create runs.
type Progress struct {
	mu         sync.Mutex
	partitions int
	done       int
	current    map[uint32]byteCounter
	sources    map[uint32]string
}

// byteCounter is what Progress sums: a partition's dbsync.Progress, or
// the bytes a restore served.
type byteCounter interface {
	Bytes() (total, fetched, reused uint64)
}

// ProgressSnapshot is Progress at one moment. BytesTotal grows as
// partitions start (each one's size is known once its checkpoint is
// taken); BytesDone counts bytes fetched and reused.
type ProgressSnapshot struct {
	Partitions, PartitionsDone int
	BytesTotal, BytesDone      uint64
	BytesCopied                uint64
	// Sources maps each partition being fetched, or fetched, to its node.
	Sources map[uint32]string
}

// Snapshot returns the progress now.
func (p *Progress) Snapshot() ProgressSnapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := ProgressSnapshot{Partitions: p.partitions, PartitionsDone: p.done, Sources: make(map[uint32]string, len(p.sources))}
	for id, addr := range p.sources {
		s.Sources[id] = addr
	}
	for _, dp := range p.current {
		total, fetched, reused := dp.Bytes()
		s.BytesTotal += total
		s.BytesDone += fetched + reused
		s.BytesCopied += fetched
	}
	return s
}

func (p *Progress) begin(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partitions, p.done = n, 0
	p.current = make(map[uint32]byteCounter)
	p.sources = make(map[uint32]string)
}

func (p *Progress) attempt(id uint32, addr string, dp *dbsync.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.current[id], p.sources[id] = dp, addr
}

// attemptBytes counts one byteCounter for the whole operation.
func (p *Progress) attemptBytes(c byteCounter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.current[^uint32(0)] = c
}

func (p *Progress) partitionDone() {
	p.mu.Lock()
	p.done++
	p.mu.Unlock()
}

// Create takes a backup of opts.Table into opts.Target under opts.Name:
// every partition's checkpoint from one replica (an in-sync slave when
// there is one), then the manifest. It returns the manifest written; on
// error there is none, and running Create again with the same name
// resumes. A partition whose replica fails or stops holding it is
// fetched again from another one, up to opts.Attempts times.
func Create(ctx context.Context, opts Options) (*Manifest, error) {
	if opts.Cluster == nil || opts.Dial == nil || opts.Target == nil || opts.Table == "" || opts.Name == "" {
		return nil, errors.New("backup: Options.Cluster, Dial, Target, Table and Name are required")
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	if opts.Attempts <= 0 {
		opts.Attempts = DefaultAttempts
	}
	if opts.RetryPause <= 0 {
		opts.RetryPause = DefaultRetryPause
	}
	if opts.Progress == nil {
		opts.Progress = &Progress{}
	}
	if opts.Log == nil {
		opts.Log = func(string) {}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	started := time.Now().UTC()
	topo, err := opts.Cluster.Pull(ctx, opts.Table)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	tb := topo.Table(opts.Table)
	if tb == nil {
		return nil, fmt.Errorf("backup: %w", status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found", opts.Table))
	}
	var prev *Manifest
	if opts.IncrementalFrom != "" {
		b, err := opts.Target.ReadManifest(ctx, opts.IncrementalFrom)
		if err != nil {
			return nil, fmt.Errorf("backup: --incremental-from %s: %w", opts.IncrementalFrom, err)
		}
		if prev, err = parseManifest(b); err != nil {
			return nil, fmt.Errorf("backup: --incremental-from %s: %w", opts.IncrementalFrom, err)
		}
		if prev.Table.PartitionCount != tb.PartitionCount {
			return nil, fmt.Errorf("backup: --incremental-from %s has %d partitions, table %s %d",
				opts.IncrementalFrom, prev.Table.PartitionCount, opts.Table, tb.PartitionCount)
		}
	}
	complete, err := opts.Target.Prepare(ctx, opts.Name)
	if err != nil {
		return nil, err
	}
	if complete {
		return nil, fmt.Errorf("%w: %s in %s", ErrExists, opts.Name, opts.Target)
	}
	c := &creator{opts: opts, table: tb, prev: prev}
	if opts.Rate > 0 {
		// The burst bounds a fetch (dbsync lowers its chunk to it): a
		// quarter second's worth keeps the pace smooth.
		burst := int(min(max(opts.Rate/4, 16<<10), dbsync.DefaultChunkSize))
		c.limiter = rate.NewLimiter(rate.Limit(opts.Rate), burst)
	}
	parts, err := c.run(ctx)
	if err != nil {
		return nil, err
	}
	m := &Manifest{
		Format: FormatVersion,
		Name:   opts.Name,
		Table: TableSettings{Name: tb.Name, PartitionCount: tb.PartitionCount, Replicas: tb.Replicas,
			MinSyncReplicas: tb.MinSyncReplicas, CreatedEpoch: tb.CreatedEpoch,
			QuotaOpsPerSec: tb.Quota.OpsPerSec, QuotaBytesPerSec: tb.Quota.BytesPerSec, SplitSize: tb.SplitSize},
		Epoch:           topo.Epoch,
		StartedAt:       started,
		ToolVersion:     buildinfo.Version,
		IncrementalFrom: opts.IncrementalFrom,
		Partitions:      parts,
	}
	for _, p := range c.results {
		m.BytesCopied += p.BytesFetched
		m.BytesReused += p.BytesReused
	}
	for _, p := range parts {
		m.Bytes += p.Bytes
	}
	m.FinishedAt = time.Now().UTC()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := opts.Target.WriteManifest(ctx, opts.Name, append(b, '\n')); err != nil {
		return nil, err
	}
	return m, nil
}

// creator is one Create at work.
type creator struct {
	opts    Options
	table   *client.Table
	prev    *Manifest
	limiter *rate.Limiter

	mu      sync.Mutex
	results []dbsync.Result
}

// run fetches every partition, opts.Parallel at a time; the first
// partition to fail for good stops the others.
func (c *creator) run(ctx context.Context) ([]Partition, error) {
	n := c.table.PartitionCount
	c.opts.Progress.begin(int(n))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	parts := make([]Partition, n)
	ids := make(chan uint32)
	var wg sync.WaitGroup
	for range min(c.opts.Parallel, int(n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				p, err := c.partition(ctx, id)
				if err != nil {
					cancel(err)
					continue
				}
				parts[id] = p
				c.opts.Progress.partitionDone()
			}
		}()
	}
feed:
	for id := range n {
		select {
		case ids <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(ids)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return parts, nil
}

// candidate is a replica a partition may be fetched from.
type candidate struct {
	addr, role string
	// floor, for a slave, is the lsn its master's DB had applied when the
	// candidates were ranked (0: unknown, the master unreachable): every
	// write the master had acknowledged then is at or below it. A slave's
	// snapshot below it misses some of them, and is refused (accept).
	floor uint64
}

// ErrBehind is a slave's snapshot refused for missing writes its master
// had acknowledged when the backup or export of the partition began.
var ErrBehind = errors.New("snapshot behind its master")

// accept says whether cand's snapshot of partition id, at lsn, will do.
func (cand candidate) accept(id uint32, lsn uint64) error {
	if lsn < cand.floor {
		return fmt.Errorf("partition %d: %w: %s (%s) is at lsn %d, its master had applied %d", id, ErrBehind, cand.addr, cand.role, lsn, cand.floor)
	}
	return nil
}

// partition fetches partition id from the best replica, and from the
// next ones when that fails.
func (c *creator) partition(ctx context.Context, id uint32) (Partition, error) {
	dir := partitionDir(id)
	dest, err := c.opts.Target.LocalDir(c.opts.Name, dir)
	if err != nil {
		return Partition{}, err
	}
	var reuse []string
	prefer := ""
	if c.prev != nil {
		for _, pp := range c.prev.Partitions {
			if pp.ID != id {
				continue
			}
			prevDir, err := c.opts.Target.LocalDir(c.prev.Name, pp.Dir)
			if err != nil {
				return Partition{}, err
			}
			reuse, prefer = []string{prevDir}, pp.Source
		}
	}
	failed := make(map[string]bool)
	var lastErr error
	for attempt := 0; attempt < c.opts.Attempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return Partition{}, err
		}
		cands, err := c.candidates(ctx, id, prefer, failed)
		if err == nil && len(cands) == 0 {
			err = fmt.Errorf("no replica of partition %d left to try", id)
		}
		if err != nil {
			// Every replica failed once, or the topology is unavailable:
			// give a failover a moment, then try them all again.
			lastErr = err
			clear(failed)
			if serr := sleep(ctx, c.opts.RetryPause); serr != nil {
				return Partition{}, serr
			}
			continue
		}
		cand := cands[0]
		p, err := c.fetch(ctx, id, cand, dest, reuse)
		if err == nil {
			p.Dir = dir
			return p, nil
		}
		if ctx.Err() != nil {
			return Partition{}, ctx.Err()
		}
		lastErr = err
		if !retryable(err) {
			return Partition{}, err
		}
		failed[cand.addr] = true
		c.opts.Log(fmt.Sprintf("partition %d: %s failed (%s); trying another replica", id, cand.addr, briefErr(err)))
	}
	return Partition{}, fmt.Errorf("backup: partition %d: gave up after %d attempts: %w", id, c.opts.Attempts, lastErr)
}

// retryable tells the failures another replica may not have from those
// it would have too.
func retryable(err error) bool {
	switch status.Code(err) {
	case zppb.Code_UNAUTHENTICATED, zppb.Code_TABLE_NOT_FOUND:
		return false
	}
	return !errors.Is(err, dbsync.ErrInUse)
}

func briefErr(err error) string {
	var se *status.Error
	if errors.As(err, &se) {
		return se.Code.String() + ": " + se.Msg
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// candidates orders the replicas of partition id to fetch it from: the
// one the previous backup used (its files can be linked) when it is in
// sync, in-sync slaves (to spare the master), the master, then slaves
// that lag (an older but consistent checkpoint). Nodes in failed, and
// nodes meta has DOWN, are left out.
func (c *creator) candidates(ctx context.Context, id uint32, prefer string, failed map[string]bool) ([]candidate, error) {
	return replicasOf(ctx, c.opts.Cluster, c.opts.Table, c.table.CreatedEpoch, id, prefer, failed)
}

// replicasOf orders the replicas of partition id of table (the
// incarnation created at createdEpoch) for a checkpoint, as
// creator.candidates says.
func replicasOf(ctx context.Context, cl Cluster, table string, createdEpoch uint64, id uint32, prefer string, failed map[string]bool) ([]candidate, error) {
	topo, err := cl.Pull(ctx, table)
	if err != nil {
		return nil, err
	}
	tb := topo.Table(table)
	if tb == nil {
		return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found", table)
	}
	if tb.CreatedEpoch != createdEpoch {
		return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q was dropped and created again meanwhile", table)
	}
	if int(id) >= len(tb.Partitions) {
		return nil, fmt.Errorf("table %q has no partition %d", table, id)
	}
	p := tb.Partitions[id]
	down := make(map[string]bool)
	for _, n := range topo.Nodes {
		if n.State == "DOWN" {
			down[n.Addr] = true
		}
	}
	inSync := make(map[string]bool)
	lag := make(map[string]uint64)
	var floor uint64
	if p.Master != "" && !down[p.Master] {
		if info, err := cl.Info(ctx, p.Master, client.InfoReplication, table); err == nil {
			for _, r := range info.Replication {
				if r.Partition != id || r.Role != "master" {
					continue
				}
				floor = r.AppliedLSN
				for _, peer := range r.Peers {
					inSync[peer.Addr] = peer.State == "streaming" && peer.LagRecords <= MaxSyncLag
					lag[peer.Addr] = peer.LagRecords
				}
			}
		}
	}
	rank := func(cd candidate) int {
		switch {
		case cd.addr == prefer && (cd.role == "master" || inSync[cd.addr]):
			return 0
		case cd.role == "slave" && inSync[cd.addr]:
			return 1
		case cd.role == "master":
			return 2
		}
		return 3
	}
	var out []candidate
	if p.Master != "" {
		out = append(out, candidate{addr: p.Master, role: "master"})
	}
	for _, s := range p.Slaves {
		out = append(out, candidate{addr: s, role: "slave", floor: floor})
	}
	out = slices.DeleteFunc(out, func(cd candidate) bool { return failed[cd.addr] || down[cd.addr] })
	slices.SortStableFunc(out, func(a, b candidate) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return cmp.Compare(lag[a.addr], lag[b.addr]) // the freshest slave first
	})
	return out, nil
}

// fetch copies partition id's checkpoint from cand into dest.
func (c *creator) fetch(ctx context.Context, id uint32, cand candidate, dest string, reuse []string) (Partition, error) {
	conn, err := c.opts.Dial(ctx, cand.addr)
	if err != nil {
		return Partition{}, err
	}
	defer conn.Close()
	dp := &dbsync.Progress{}
	c.opts.Progress.attempt(id, cand.addr, dp)
	c.opts.Log(fmt.Sprintf("partition %d: from %s (%s)", id, cand.addr, cand.role))
	res, err := dbsync.Run(ctx, dbsync.Options{
		Dest:      dest,
		Reuse:     reuse,
		Table:     c.opts.Table,
		Partition: id,
		Slave:     "backup",
		Master:    conn,
		Backup:    true,
		Accept:    func(_, lsn uint64) error { return cand.accept(id, lsn) },
		Limiter:   c.limiter,
		Progress:  dp,
		Logger:    c.opts.Logger,
	})
	if err != nil {
		return Partition{}, err
	}
	c.mu.Lock()
	c.results = append(c.results, res)
	c.mu.Unlock()
	begin, end := keyspace.SlotRange(id, c.table.PartitionCount)
	p := Partition{ID: id, SlotBegin: begin, SlotEnd: end, Term: res.Term, LSN: res.LSN,
		Source: cand.addr, SourceRole: cand.role, TakenAt: time.Now().UTC()}
	for _, f := range res.Files {
		p.Files = append(p.Files, File{Name: f.GetName(), Size: f.GetSize(), CRC32C: f.GetCrc32C()})
		p.Bytes += f.GetSize()
	}
	return p, nil
}
