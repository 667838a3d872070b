package bulkload

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/backup"
)

// ErrTooManyBadLines: more bad lines than Options.MaxErrors; nothing was
// ingested.
var ErrTooManyBadLines = errors.New("bulkload: too many bad lines")

// Defaults.
const (
	DefaultMemory   = 256 << 20
	DefaultParallel = 4
	// ChunkSize is the size of the chunks a table file is staged in.
	ChunkSize = 4 << 20
	attempts  = 6
)

// Cluster is what a bulk load asks of the cluster: its topology and the
// table's slot map (lib/client).
type Cluster interface {
	Pull(ctx context.Context, table string) (*client.Topology, error)
	SlotMap(ctx context.Context, table string) (*keyspace.SlotMap, error)
}

// Input is one file to load.
type Input struct {
	Name string
	// Open opens it; Size is its size on disk for progress (0: unknown).
	Open func() (io.ReadCloser, error)
	Size int64
}

// Options configures Load.
type Options struct {
	Cluster Cluster
	// Dial connects to nodes with the cluster secret (bulk load calls are
	// peer-only, as a restore's).
	Dial   backup.Dialer
	Table  string
	Inputs []Input
	// Format overrides the format each file's name says.
	Format    Format
	Limits    Limits
	MaxErrors int64
	// Memory bounds the records held in memory; beyond it sorted runs
	// are spilled to TempDir.
	Memory  int64
	TempDir string
	// Parallel is how many partitions are written and shipped at once.
	Parallel int
	// CallTimeout bounds each call to a node; default 1 minute.
	CallTimeout time.Duration
	// Bad is told of every bad line (the first MaxErrors+1 at most).
	Bad func(BadLine)
	// Log is told of each partition's outcome and of retries.
	Log func(string)
	// Progress counts input bytes read, then table file bytes shipped;
	// Phase names the current phase ("read", "ship").
	ReadBytes, ShipBytes *atomic.Int64
	Phase                func(phase string, total int64)
}

// Result is what a load did.
type Result struct {
	Records    int64             `json:"records"`    // distinct keys ingested
	Duplicates int64             `json:"duplicates"` // input records overwritten by a later one of the same key
	BadLines   int64             `json:"bad_lines"`
	Expired    int64             `json:"expired"` // records already expired, skipped
	Bytes      int64             `json:"bytes"`   // table file bytes
	Spilled    int64             `json:"spilled_bytes"`
	Partitions []PartitionResult `json:"partitions"`
}

// PartitionResult is one partition's ingestion.
type PartitionResult struct {
	ID      uint32 `json:"id"`
	Records int64  `json:"records"`
	Master  string `json:"master"`
	Term    uint64 `json:"term"`
	LSN     uint64 `json:"lsn"`
	// Staged lists the replicas that hold the file (a slave missing
	// fetches it from the master when it applies the record).
	Staged []string `json:"staged"`
	Bytes  int64    `json:"bytes"`
	Err    string   `json:"error,omitempty"`
	// Where the partition's time went: writing its table file, staging
	// it on the replicas, the master's ingestion (logged, applied and
	// replicated as min_sync_replicas asks).
	WriteSeconds  float64 `json:"write_seconds"`
	StageSeconds  float64 `json:"stage_seconds"`
	IngestSeconds float64 `json:"ingest_seconds"`
}

// Load reads every input, then writes and ingests one table file per
// partition. Bad lines beyond MaxErrors stop it before anything is
// ingested (ErrTooManyBadLines). Each partition is ingested whole or not
// at all; a failed partition fails the load, the others ingested stay.
func Load(ctx context.Context, opts Options) (Result, error) {
	var res Result
	if opts.Memory <= 0 {
		opts.Memory = DefaultMemory
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = time.Minute
	}
	for _, p := range []**atomic.Int64{&opts.ReadBytes, &opts.ShipBytes} {
		if *p == nil {
			*p = &atomic.Int64{}
		}
	}
	if opts.Log == nil {
		opts.Log = func(string) {}
	}
	if opts.Bad == nil {
		opts.Bad = func(BadLine) {}
	}
	if opts.Phase == nil {
		opts.Phase = func(string, int64) {}
	}
	slots, err := opts.Cluster.SlotMap(ctx, opts.Table)
	if err != nil {
		return res, err
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "zpctl-bulkload-")
	if err != nil {
		return res, fmt.Errorf("bulkload: %w", err)
	}
	defer os.RemoveAll(tmp)

	// Read, route and sort.
	var total int64
	for _, in := range opts.Inputs {
		total += in.Size
	}
	opts.Phase("read", total)
	s := newSorter(tmp, slots.Len(), runtime.GOMAXPROCS(0), opts.Memory)
	for i, in := range opts.Inputs {
		if err := readInput(ctx, opts, in, i, slots, s, &res); err != nil {
			return res, err
		}
	}
	res.Spilled = s.spilledBytes()

	// Write, ship and ingest each partition.
	id := newLoadID()
	opts.Phase("ship", 0)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, opts.Parallel)
	)
	res.Partitions = make([]PartitionResult, slots.Len())
	// Each partition's range, by id: what its file is routed for.
	ranges := make([]keyspace.Range, slots.Len())
	for _, r := range slots.Ranges() {
		ranges[r.Partition] = r
	}
	for p := range uint32(slots.Len()) {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		pr := &res.Partitions[p]
		pr.ID = p
		// Each partition's records are its own in the sorter: their
		// table files are written, like they are shipped, in parallel.
		wg.Go(func() {
			defer func() { <-sem }()
			if !s.has(p) {
				s.release(p)
				return
			}
			path := filepath.Join(tmp, fmt.Sprintf("p%d.sst", p))
			defer os.Remove(path)
			n, dups, err := writeAndShip(ctx, opts, s, fmt.Sprintf("%s-p%d", id, p), ranges[p], path, pr)
			mu.Lock()
			defer mu.Unlock()
			res.Duplicates += dups
			if err != nil {
				pr.Err = err.Error()
				firstErr = cmpErr(firstErr, fmt.Errorf("partition %d: %w", p, err))
				opts.Log(fmt.Sprintf("partition %d: FAILED, nothing of it ingested: %v", p, err))
				return
			}
			res.Records += n
			opts.Log(fmt.Sprintf("partition %d: %d keys ingested at %s (term %d, lsn %d; written in %.2fs, staged %.2fs after, ingested in %.2fs)",
				p, n, pr.Master, pr.Term, pr.LSN, pr.WriteSeconds, pr.StageSeconds, pr.IngestSeconds))
		})
	}
	wg.Wait()
	for _, pr := range res.Partitions {
		res.Bytes += pr.Bytes
	}
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return res, firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func newLoadID() string {
	var b [8]byte
	rand.Read(b[:])
	return "bl" + hex.EncodeToString(b[:])
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

func readInput(ctx context.Context, opts Options, in Input, fileIndex int, slots *keyspace.SlotMap, s *sorter, res *Result) error {
	f := opts.Format
	if f == "" {
		f = FormatOf(in.Name)
	}
	if f == "" {
		f = TSV
	}
	rc, err := in.Open()
	if err != nil {
		return fmt.Errorf("bulkload: %w", err)
	}
	defer rc.Close()
	// A record's place in the input: the file, then its place in the
	// file (its section's, then its own in the section).
	base := uint64(fileIndex) << 44
	if bounds := sections(rc, f, len(s.shards)); bounds != nil {
		return readSections(ctx, opts, in.Name, rc.(io.ReaderAt), bounds, f, base, slots, s, res)
	}
	// Records go to the sorter as they are parsed (it copies them, and
	// sorts in the background).
	return Parse(in.Name, countingReader{rc, opts.ReadBytes}, f, opts.Limits,
		adder(ctx, s.shards[0], slots, base),
		func(b BadLine) error {
			res.BadLines++
			opts.Bad(b)
			if res.BadLines > opts.MaxErrors {
				return tooManyBadLines(res.BadLines, opts.MaxErrors)
			}
			return nil
		})
}

// adder returns the function that routes parsed records to sh, numbering
// them from seq+1.
func adder(ctx context.Context, sh *shard, slots *keyspace.SlotMap, seq uint64) func(Record) error {
	return func(rec Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		seq++
		return sh.add(slots.Partition(rec.Key), rec, seq)
	}
}

func tooManyBadLines(n, limit int64) error {
	return fmt.Errorf("%w: %d (--max-errors %d); nothing was ingested", ErrTooManyBadLines, n, limit)
}

// minSectionBytes is the least input worth reading in sections.
const minSectionBytes = 8 << 20

// sections splits a plain (not gzip) regular file of TSV or JSON lines,
// which can be read at any offset, at line boundaries into n sections to
// be read at once: their bounds, or nil when the input is read whole.
// CSV is not split: a quoted field may hold a newline.
func sections(r io.Reader, f Format, n int) []int64 {
	file, ok := r.(*os.File)
	if !ok || n < 2 || f != TSV && f != JSONL {
		return nil
	}
	fi, err := file.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() < minSectionBytes {
		return nil
	}
	size := fi.Size()
	var magic [2]byte
	if _, err := file.ReadAt(magic[:], 0); err != nil || magic[0] == 0x1f && magic[1] == 0x8b {
		return nil
	}
	bounds := []int64{0}
	buf := make([]byte, 64<<10)
	for k := 1; k < n; k++ {
		// Section k starts after the first newline at or after its
		// share of the file.
		pos := max(size*int64(k)/int64(n), bounds[len(bounds)-1])
		for pos < size {
			m, err := file.ReadAt(buf, pos)
			if i := bytes.IndexByte(buf[:m], '\n'); i >= 0 {
				pos += int64(i) + 1
				break
			}
			pos += int64(m)
			if err != nil {
				pos = size
			}
		}
		bounds = append(bounds, min(pos, size))
	}
	return append(bounds, size)
}

// readSections reads the sections of an input at once, each into its own
// shard of the sorter. Bad lines are reported once all are read, in the
// input's order, numbered as lines of the whole file.
func readSections(ctx context.Context, opts Options, name string, r io.ReaderAt, bounds []int64, f Format, base uint64, slots *keyspace.SlotMap, s *sorter, res *Result) error {
	type section struct {
		lines int64
		bad   []BadLine
		err   error
	}
	secs := make([]section, len(bounds)-1)
	var bad atomic.Int64
	errTooMany := errors.New("too many bad lines")
	var wg sync.WaitGroup
	for k := range secs {
		sec, sh := &secs[k], s.shards[k]
		wg.Go(func() {
			in := io.NewSectionReader(r, bounds[k], bounds[k+1]-bounds[k])
			sec.lines, sec.err = parse(name, bufio.NewReaderSize(countingReader{in, opts.ReadBytes}, 1<<20), f, opts.Limits,
				adder(ctx, sh, slots, base+uint64(k)<<40),
				func(b BadLine) error {
					sec.bad = append(sec.bad, b)
					if bad.Add(1) > opts.MaxErrors {
						return errTooMany
					}
					return nil
				})
		})
	}
	wg.Wait()
	var before int64
	for _, sec := range secs {
		for _, b := range sec.bad {
			if res.BadLines > opts.MaxErrors {
				break
			}
			b.Line += before
			res.BadLines++
			opts.Bad(b)
		}
		before += sec.lines
	}
	for _, sec := range secs {
		if sec.err != nil && !errors.Is(sec.err, errTooMany) {
			return sec.err
		}
	}
	if bad.Load() > opts.MaxErrors {
		return tooManyBadLines(res.BadLines, opts.MaxErrors)
	}
	return nil
}

// writeAndShip writes partition rg.Partition's table file at path and
// ships it as it is written.
func writeAndShip(ctx context.Context, opts Options, s *sorter, id string, rg keyspace.Range, path string, pr *PartitionResult) (n, dups int64, err error) {
	p := rg.Partition
	w, err := engine.CreateSST(path)
	if err != nil {
		s.release(p)
		return 0, 0, err
	}
	tf := newTableFile(path)
	shipped := make(chan error, 1)
	go func() { shipped <- ship(ctx, opts, id, rg, tf, pr) }()
	t0 := time.Now()
	dups, err = writePartition(s, p, w, tf.grown)
	s.release(p)
	tf.finish(ctx, w.Count(), err)
	pr.WriteSeconds = time.Since(t0).Seconds()
	if serr := <-shipped; err == nil {
		err = serr
	}
	return int64(w.Count()), dups, err
}

// writePartition writes partition p's records with w, calling grew now
// and then as the file grows, and finishes the file.
func writePartition(s *sorter, p uint32, w *engine.SSTWriter, grew func()) (dups int64, err error) {
	dups, err = s.merge(p, func(e *entry) error {
		if err := w.Put(e.userKey(), e.value, e.exp); err != nil {
			return err
		}
		if w.Count()%1024 == 0 {
			grew()
		}
		return nil
	})
	if err != nil {
		w.Abort()
		return dups, err
	}
	_, err = w.Finish()
	return dups, err
}

// ship stages the table file on the partition's replicas as it is
// written and has the master ingest it once it is finished, retrying with
// a fresh topology when the master changed.
func ship(ctx context.Context, opts Options, id string, rg keyspace.Range, tf *tableFile, pr *PartitionResult) error {
	p := rg.Partition
	staged := map[string]bool{}
	defer func() {
		if pr.LSN != 0 {
			return
		}
		// Not ingested: drop what was staged.
		for addr := range staged {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.CallTimeout)
			callNode(actx, opts, addr, &zppb.Request{Cmd: &zppb.Request_BulkStage{BulkStage: &zppb.BulkStageRequest{
				Table: opts.Table, Partition: p, Id: id, Abort: true}}})
			cancel()
		}
	}()
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
		topo, err := opts.Cluster.Pull(ctx, opts.Table)
		if err != nil {
			lastErr = err
			continue
		}
		part, err := findPartition(topo, opts.Table, p)
		if err != nil {
			return err
		}
		if part.Master == "" {
			lastErr = fmt.Errorf("no master")
			continue
		}
		// Staged on every replica at once; the master must have it, a
		// slave that failed fetches it from the master when it applies
		// the record.
		targets := []string{part.Master}
		for _, sl := range part.Slaves {
			if !staged[sl] {
				targets = append(targets, sl)
			}
		}
		if staged[part.Master] {
			targets = targets[1:]
		}
		errs := make([]error, len(targets))
		var wg sync.WaitGroup
		for i, addr := range targets {
			wg.Go(func() { errs[i] = stage(ctx, opts, addr, p, id, tf) })
		}
		wg.Wait()
		// Staging on a replica ends with the file; the file's own
		// failure ends the partition.
		if err := tf.wait(ctx); err != nil {
			return fmt.Errorf("writing the table file: %w", err)
		}
		masterErr := error(nil)
		for i, addr := range targets {
			switch {
			case errs[i] == nil:
				staged[addr] = true
			case addr == part.Master:
				masterErr = errs[i]
			default:
				opts.Log(fmt.Sprintf("partition %d: staging on slave %s failed (it will fetch from the master): %v", p, addr, errs[i]))
			}
		}
		if masterErr != nil {
			lastErr = fmt.Errorf("staging on master %s: %w", part.Master, masterErr)
			if !retryable(masterErr) {
				return lastErr
			}
			continue
		}
		if pr.StageSeconds == 0 {
			pr.StageSeconds = time.Since(tf.finishedAt()).Seconds()
		}
		file := &zppb.IngestFile{Id: id, Size: uint64(tf.size), Crc32C: tf.crc, Records: tf.records}
		pr.Bytes = tf.size
		t0 := time.Now()
		cctx, cancel := context.WithTimeout(ctx, opts.CallTimeout)
		resp, err := callNode(cctx, opts, part.Master, &zppb.Request{Cmd: &zppb.Request_BulkIngest{BulkIngest: &zppb.BulkIngestRequest{
			Table: opts.Table, Partition: p, File: file, SlotBegin: rg.Begin, SlotEnd: rg.End}}})
		cancel()
		pr.IngestSeconds += time.Since(t0).Seconds()
		if err != nil {
			lastErr = fmt.Errorf("ingest at %s: %w", part.Master, err)
			if !retryable(err) {
				return lastErr
			}
			continue
		}
		pr.Master, pr.Term, pr.LSN, pr.Records = part.Master, resp.GetBulkIngest().GetTerm(), resp.GetBulkIngest().GetLsn(), int64(tf.records)
		for addr := range staged {
			pr.Staged = append(pr.Staged, addr)
		}
		return nil
	}
	return fmt.Errorf("gave up after %d attempts: %w", attempts, lastErr)
}

// retryable: a refusal that another attempt (a fresh topology, a
// moment's wait) may not meet again.
func retryable(err error) bool {
	switch status.Code(err) {
	case zppb.Code_UNAUTHENTICATED, zppb.Code_TABLE_NOT_FOUND, zppb.Code_INVALID_ARGUMENT, zppb.Code_STALE_EPOCH:
		return false
	}
	return true
}

func findPartition(topo *client.Topology, table string, id uint32) (*client.Partition, error) {
	if tb := topo.Table(table); tb != nil {
		for j := range tb.Partitions {
			if tb.Partitions[j].ID == id {
				return &tb.Partitions[j], nil
			}
		}
	}
	return nil, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q has no partition %d", table, id)
}

// attachedCaller is a connection that sends a chunk as its request's
// attachment (lib/rpc), from the file and without a copy in user space.
type attachedCaller interface {
	CallAttached(ctx context.Context, req *zppb.Request, att rpc.Attachment) (*zppb.Response, error)
}

// stage uploads the table file to one replica, as it is written.
func stage(ctx context.Context, opts Options, addr string, p uint32, id string, tf *tableFile) error {
	f, err := os.Open(tf.path)
	if err != nil {
		return err
	}
	defer f.Close()
	conn, err := opts.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	ac, _ := conn.(attachedCaller)
	call := func(req *zppb.BulkStageRequest, att *rpc.Attachment) (*zppb.BulkStageResponse, error) {
		cctx, cancel := context.WithTimeout(ctx, opts.CallTimeout)
		defer cancel()
		r := &zppb.Request{Cmd: &zppb.Request_BulkStage{BulkStage: req}}
		var resp *zppb.Response
		var err error
		if att != nil {
			resp, err = ac.CallAttached(cctx, r, *att)
		} else {
			resp, err = conn.Call(cctx, r)
		}
		if err == nil {
			err = status.FromResponse(resp)
		}
		return resp.GetBulkStage(), err
	}
	// An empty first chunk starts the file and asks whether the node
	// takes chunks as attachments (an older one does not).
	attach := false
	if ac != nil {
		resp, err := call(&zppb.BulkStageRequest{Table: opts.Table, Partition: p, Id: id}, nil)
		if err != nil {
			return err
		}
		attach = resp.GetTakesAttachment()
	}
	var buf []byte
	var off int64
	for {
		k, last, err := tf.chunk(ctx, f, off, ChunkSize)
		if err != nil {
			return err
		}
		req := &zppb.BulkStageRequest{Table: opts.Table, Partition: p, Id: id, Offset: uint64(off), Last: last}
		if last {
			req.Size, req.Crc32C = uint64(tf.size), tf.crc
		}
		if attach {
			if _, err = f.Seek(off, io.SeekStart); err == nil {
				_, err = call(req, &rpc.Attachment{File: f, Size: k})
			}
		} else {
			if buf == nil {
				buf = make([]byte, ChunkSize)
			}
			if _, err = f.ReadAt(buf[:k], off); err == nil {
				req.Data = buf[:k]
				_, err = call(req, nil)
			}
		}
		if err != nil {
			return err
		}
		off += k
		opts.ShipBytes.Add(k)
		if last {
			return nil
		}
	}
}

func callNode(ctx context.Context, opts Options, addr string, req *zppb.Request) (*zppb.Response, error) {
	conn, err := opts.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	resp, err := conn.Call(ctx, req)
	if err == nil {
		err = status.FromResponse(resp)
	}
	return resp, err
}
