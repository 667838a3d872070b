package suite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/zpbench/report"
	"github.com/zeppelin-kv/zeppelin/zpbench/runner"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// Memory (issue 15): a fresh 1-node zpnode loaded with MemoryKeys records,
// its RSS and what the node reports it is made of, after the load and
// after a GET pass; then, when asked, a soak: a mixed run of Soak with
// the RSS sampled, to see whether it keeps growing.

// MemoryResult is the memory part of a run.
type MemoryResult struct {
	Keys       uint64 `json:"keys"`
	ValueSize  int    `json:"value_size"`
	Partitions uint32 `json:"partitions"`
	// Commands started the node; LoadCommand loads what the suite loaded.
	Commands    []string           `json:"commands"`
	Load        *runner.LoadResult `json:"load,omitempty"`
	LoadCommand string             `json:"load_command,omitempty"`
	// Reads is the GET pass after the load (warms the block cache), and
	// its command.
	Reads        *report.Report `json:"reads,omitempty"`
	ReadsCommand string         `json:"reads_command,omitempty"`
	// Snapshots are the node's memory after the load and after the reads.
	Snapshots []MemSnapshot `json:"snapshots"`
	Soak      *SoakResult   `json:"soak,omitempty"`
	Err       string        `json:"error,omitempty"`
}

// MemSnapshot is a node's memory at one point, from its metrics, in bytes.
type MemSnapshot struct {
	When string `json:"when,omitempty"`
	// AtSec is the time since the soak started (soak samples only).
	AtSec float64 `json:"at_s,omitempty"`
	// RSS is process_resident_memory_bytes.
	RSS uint64 `json:"rss"`
	// BlockCache is zeppelin_node_block_cache_usage_bytes.
	BlockCache uint64 `json:"block_cache"`
	// Memtables is zeppelin_node_memtable_bytes (over every replica).
	Memtables uint64 `json:"memtables"`
	// TableReaders is zeppelin_node_table_readers_bytes: the SST readers'
	// index and filter blocks outside the block cache.
	TableReaders uint64 `json:"table_readers"`
	// GoHeap is go_memstats_heap_inuse_bytes.
	GoHeap uint64 `json:"go_heap"`
	// GoLive is go_gc_heap_live_bytes: what the last GC found live. The
	// heap in use swings up to GOGC (100%) above it between collections.
	GoLive uint64 `json:"go_live"`
	// GoHeld is what the Go runtime holds from the OS and has not handed
	// back: go_memstats_sys_bytes less go_memstats_heap_released_bytes.
	GoHeld uint64 `json:"go_held"`
	// RequestIDs is zeppelin_node_request_ids: the write request ids the
	// node remembers for retries, most of the live Go heap under writes
	// until every replica holds its 65,536.
	RequestIDs uint64 `json:"request_ids"`
	// MallocTrims and MallocTrimSeconds are zeppelin_node_malloc_trims_total
	// and zeppelin_node_malloc_trim_seconds_total: how often the node handed
	// the C allocator's free memory back, and what that cost.
	MallocTrims       uint64  `json:"malloc_trims"`
	MallocTrimSeconds float64 `json:"malloc_trim_s"`
}

// Other is the RSS that neither RocksDB's caches and table readers nor the
// Go runtime account for: C allocator slack (memtables flushed and freed
// included), RocksDB's other buffers, thread stacks, code. Negative when
// what Go holds is not all resident.
func (m MemSnapshot) Other() int64 {
	return int64(m.RSS) - int64(m.BlockCache) - int64(m.Memtables) - int64(m.TableReaders) - int64(m.GoHeld)
}

// SoakResult is the mixed run and its RSS samples.
type SoakResult struct {
	Duration  time.Duration `json:"duration"`
	Sample    time.Duration `json:"sample"`
	ReadRatio float64       `json:"read_ratio"`
	Conns     int           `json:"conns"`
	Command   string        `json:"command"`
	Report    report.Report `json:"report"`
	Samples   []MemSnapshot `json:"samples"`
	// Start, Peak and End RSS over the samples.
	StartRSS uint64 `json:"start_rss"`
	PeakRSS  uint64 `json:"peak_rss"`
	EndRSS   uint64 `json:"end_rss"`
	Growth   Growth `json:"growth"`
	// GrowthLive is the same fit of the Go heap the GCs found live, and
	// GrowthOther of Other: the block cache and the memtables fill up to
	// their bounds and the Go heap in use swings with each GC on a healthy
	// node, so a leak shows in one of these two.
	GrowthLive  Growth `json:"growth_go_live"`
	GrowthOther Growth `json:"growth_other"`
	Err         string `json:"error,omitempty"`
}

// Leaking reports whether the live Go heap or the memory outside Go and the
// caches kept growing in the second half.
func (s *SoakResult) Leaking() bool {
	return s.GrowthLive.Growing || s.GrowthOther.Growing
}

// Growth says whether RSS kept growing in the second half of a soak.
type Growth struct {
	// Enough is false with fewer than minGrowthSamples samples in the
	// second half: nothing is concluded then.
	Enough bool `json:"enough"`
	// SlopePerMin is the least-squares slope of RSS over the second
	// half's samples, in bytes per minute; Over is that slope over the
	// second half's length.
	SlopePerMin float64 `json:"slope_bytes_per_min"`
	Over        float64 `json:"second_half_bytes"`
	// Threshold is what Over must exceed to count as growth: the larger of
	// growthShare of the RSS at mid-run and growthFloor.
	Threshold float64 `json:"threshold_bytes"`
	Growing   bool    `json:"growing"`
}

// Growth detection: a value (RSS, or a part of it) grows in the second half
// of the soak when its trend adds more than 2% of the mid-run RSS (at least
// 4 MiB, so that allocator noise on a small node does not count) over the
// second half.
const (
	minGrowthSamples = 3
	growthShare      = 0.02
	growthFloor      = 4 << 20
)

// growthOf fits RSS over the second half of samples (by time).
func growthOf(samples []MemSnapshot) Growth {
	return growthOfValue(samples, func(m MemSnapshot) float64 { return float64(m.RSS) })
}

// growthOfValue fits value over the second half of samples (by time).
func growthOfValue(samples []MemSnapshot, value func(MemSnapshot) float64) Growth {
	if len(samples) < 2 {
		return Growth{}
	}
	first, last := samples[0].AtSec, samples[len(samples)-1].AtSec
	mid := first + (last-first)/2
	var half []MemSnapshot
	for _, s := range samples {
		if s.AtSec >= mid {
			half = append(half, s)
		}
	}
	if len(half) < minGrowthSamples {
		return Growth{}
	}
	// Least squares: slope = cov(t, rss) / var(t).
	var mt, mr float64
	for _, s := range half {
		mt += s.AtSec
		mr += value(s)
	}
	n := float64(len(half))
	mt, mr = mt/n, mr/n
	var cov, vt float64
	for _, s := range half {
		dt := s.AtSec - mt
		cov += dt * (value(s) - mr)
		vt += dt * dt
	}
	if vt == 0 {
		return Growth{}
	}
	slope := cov / vt // bytes per second
	g := Growth{Enough: true, SlopePerMin: slope * 60, Over: slope * (last - mid)}
	g.Threshold = max(growthShare*float64(half[0].RSS), growthFloor)
	g.Growing = g.Over > g.Threshold
	return g
}

// rssRange returns the first, largest and last RSS of samples.
func rssRange(samples []MemSnapshot) (start, peak, end uint64) {
	if len(samples) == 0 {
		return 0, 0, 0
	}
	for _, s := range samples {
		peak = max(peak, s.RSS)
	}
	return samples[0].RSS, peak, samples[len(samples)-1].RSS
}

// memSnapshot reads a node's memory from its metrics.
func memSnapshot(ctx context.Context, metricsAddr string) (MemSnapshot, error) {
	text, err := scrape(ctx, metricsAddr)
	if err != nil {
		return MemSnapshot{}, err
	}
	var m MemSnapshot
	var missing []string
	var sys, released uint64
	for _, f := range []struct {
		name string
		dst  *uint64
	}{
		{"process_resident_memory_bytes", &m.RSS},
		{"zeppelin_node_block_cache_usage_bytes", &m.BlockCache},
		{"zeppelin_node_memtable_bytes", &m.Memtables},
		{"zeppelin_node_table_readers_bytes", &m.TableReaders},
		{"go_memstats_heap_inuse_bytes", &m.GoHeap},
		{"go_gc_heap_live_bytes", &m.GoLive},
		{"go_memstats_sys_bytes", &sys},
		{"go_memstats_heap_released_bytes", &released},
		{"zeppelin_node_request_ids", &m.RequestIDs},
	} {
		v, ok := promSum(text, f.name)
		if !ok {
			missing = append(missing, f.name)
		}
		*f.dst = uint64(v)
	}
	if len(missing) > 0 {
		return m, fmt.Errorf("%s: no %v", metricsAddr, missing)
	}
	m.GoHeld = sys - min(released, sys)
	trims, ok := promSum(text, "zeppelin_node_malloc_trims_total")
	if !ok {
		return m, fmt.Errorf("%s: no zeppelin_node_malloc_trims_total", metricsAddr)
	}
	m.MallocTrims = uint64(trims)
	m.MallocTrimSeconds, _ = promSum(text, "zeppelin_node_malloc_trim_seconds_total")
	return m, nil
}

// memoryDef is the node the memory section measures.
var memoryDef = SystemDef{Name: "memory", Label: "zpnode: 1 node, 1 replica (memory)", Kind: "zeppelin", Nodes: 1, Replicas: 1}

// measureMemory starts a fresh 1-node zpnode in dir, loads it, reads it,
// snapshots its memory, and soaks it when cfg.Soak is set. The node is
// left to the caller's procs to stop. When no zpnode was measured before,
// m learns the RocksDB from this one.
func measureMemory(ctx context.Context, cfg *Config, g *procs, dir string, m *Machine) *MemoryResult {
	mr := &MemoryResult{Keys: cfg.MemoryKeys, ValueSize: cfg.ValueSize, Partitions: cfg.Partitions}
	err := func() error {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		cfg.Log.Info("starting", "system", memoryDef.Name)
		sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
		sys, err := startZeppelin(sctx, cfg, g, dir, memoryDef, cfg.Log)
		cancel()
		if sys != nil {
			mr.Commands = sys.commands
		}
		if err != nil {
			return fmt.Errorf("start: %w", err)
		}
		if m.RocksDB == nil {
			if m.RocksDB, err = rocksDBOf(ctx, sys.metricsAddrs[0]); err != nil {
				cfg.Log.Warn("RocksDB build not read", "err", err)
			}
		}
		mcfg := *cfg
		mcfg.Keyspace = cfg.MemoryKeys
		cfg.Log.Info("memory: loading", "records", cfg.MemoryKeys)
		lr, err := loadKeyspace(ctx, &mcfg, sys)
		if err != nil {
			return err
		}
		mr.Load = &lr
		mr.LoadCommand = fmt.Sprintf("zpbench load %s --keyspace %d --value-size %d --batch %d --conns %d --seed %d",
			targetArgs(cfg, sys), cfg.MemoryKeys, cfg.ValueSize, loadBatch, loadConns, cfg.Seed)
		snap, err := memSnapshot(ctx, sys.metricsAddrs[0])
		if err != nil {
			return err
		}
		snap.When = "after the load"
		mr.Snapshots = append(mr.Snapshots, snap)
		if cfg.MemoryReads > 0 {
			rep, err := runWorkload(ctx, &mcfg, sys, workload.Params{Name: "get"}, cfg.MemoryReads, nil)
			if err != nil {
				return fmt.Errorf("reads: %w", err)
			}
			mr.Reads = &rep
			mr.ReadsCommand = workloadCommand(&mcfg, sys, "get", cfg.MemoryReads)
			snap, err := memSnapshot(ctx, sys.metricsAddrs[0])
			if err != nil {
				return err
			}
			snap.When = fmt.Sprintf("after %s of GETs", cfg.MemoryReads)
			mr.Snapshots = append(mr.Snapshots, snap)
		}
		if cfg.Soak > 0 {
			mr.Soak = soak(ctx, &mcfg, sys)
			if mr.Soak.Err != "" {
				return errors.New("soak: " + mr.Soak.Err)
			}
		}
		return sys.crashed()
	}()
	if err != nil {
		mr.Err = err.Error()
	}
	return mr
}

// soak runs the mixed workload on sys for cfg.Soak, sampling the node's
// memory every cfg.SoakSample (and at the start and end).
func soak(ctx context.Context, cfg *Config, sys *system) *SoakResult {
	sr := &SoakResult{Duration: cfg.Soak, Sample: cfg.SoakSample, ReadRatio: cfg.SoakReadRatio, Conns: cfg.Conns,
		Command: workloadCommand(cfg, sys, "mixed", cfg.Soak) + fmt.Sprintf(" --read-ratio %g", cfg.SoakReadRatio)}
	cfg.Log.Info("memory: soak", "duration", cfg.Soak, "read-ratio", cfg.SoakReadRatio)
	var (
		mu      sync.Mutex
		sampErr error
	)
	sample := func(start time.Time) {
		m, err := memSnapshot(ctx, sys.metricsAddrs[0])
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			sampErr = err
			return
		}
		m.AtSec = time.Since(start).Seconds()
		sr.Samples = append(sr.Samples, m)
	}
	rep, err := runWorkload(ctx, cfg, sys, workload.Params{Name: "mixed", ReadRatio: cfg.SoakReadRatio}, cfg.Soak, func(start time.Time, done <-chan struct{}) {
		sample(start)
		t := time.NewTicker(cfg.SoakSample)
		defer t.Stop()
		for {
			select {
			case <-done:
				sample(start)
				return
			case <-t.C:
				sample(start)
			}
		}
	})
	sr.Report = rep
	mu.Lock()
	defer mu.Unlock()
	if err = errors.Join(err, sampErr); err != nil {
		sr.Err = err.Error()
	}
	sr.StartRSS, sr.PeakRSS, sr.EndRSS = rssRange(sr.Samples)
	sr.Growth = growthOf(sr.Samples)
	sr.GrowthLive = growthOfValue(sr.Samples, func(m MemSnapshot) float64 { return float64(m.GoLive) })
	sr.GrowthOther = growthOfValue(sr.Samples, func(m MemSnapshot) float64 { return float64(m.Other()) })
	cfg.Log.Info("memory: soak done", "ops/s", int(rep.OpsPerSec), "start", mib(sr.StartRSS), "peak", mib(sr.PeakRSS),
		"end", mib(sr.EndRSS), "growing", sr.Growth.Growing, "leaking", sr.Leaking())
	return sr
}

// runWorkload runs the workload p (its records, value size and seed from
// cfg) on sys for d at pipeline 1 with cfg.Conns connections. watch, when
// set, runs beside it from the start of the run until done closes.
func runWorkload(ctx context.Context, cfg *Config, sys *system, p workload.Params, d time.Duration,
	watch func(start time.Time, done <-chan struct{})) (report.Report, error) {
	sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	t, err := openTarget(sctx, cfg, sys, 1, cfg.Log)
	if err != nil {
		return report.Report{}, err
	}
	defer t.Close()
	p.Records, p.ValueSize, p.Batch, p.Seed = cfg.Keyspace, cfg.ValueSize, 1, cfg.Seed
	wl, err := workload.New(p)
	if err != nil {
		return report.Report{}, err
	}
	rn, err := runner.New(sctx, t, wl, runner.Config{Conns: cfg.Conns, Workers: cfg.Conns, Pipeline: 1, Timeout: cfg.Timeout})
	if err != nil {
		return report.Report{}, err
	}
	defer rn.Close()
	done := make(chan struct{})
	var wg sync.WaitGroup
	if watch != nil {
		start := time.Now()
		wg.Go(func() { watch(start, done) })
	}
	res, err := rn.Run(ctx, runner.Phase{Duration: d})
	close(done)
	wg.Wait()
	if err != nil {
		return report.Report{}, err
	}
	wr := report.Workload{Name: p.Name, Distribution: wl.DistributionName(), Records: cfg.Keyspace, ValueSize: cfg.ValueSize, Batch: 1, Seed: cfg.Seed}
	rc := report.Config{Conns: cfg.Conns, Workers: cfg.Conns, Pipeline: 1, DurationS: d.Seconds(), TimeoutS: cfg.Timeout.Seconds(), Rounds: 1}
	return report.New(report.Target{Kind: t.Kind(), Name: t.Name(), Pipelining: "window"}, wr, rc, res), nil
}

// workloadCommand is the zpbench command running name on sys for d, as
// runWorkload does.
func workloadCommand(cfg *Config, sys *system, name string, d time.Duration) string {
	return fmt.Sprintf("zpbench %s --workload %s --value-size %d --keyspace %d --conns %d --pipeline 1 --duration %s --warmup 0s --seed %d",
		targetArgs(cfg, sys), name, cfg.ValueSize, cfg.Keyspace, cfg.Conns, d, cfg.Seed)
}

// mib formats bytes in MiB.
func mib[T int64 | uint64 | float64](b T) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
