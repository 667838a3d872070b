// Package suite is `zpbench suite`, what `make bench` runs: it starts each
// system under test on loopback ports under a temporary directory (the
// no-op server, zpnode clusters of 1 and 3 nodes, Redis, a one-node Redis
// Cluster), measures SET and GET at each pipeline depth with each client
// that applies (zpbench's own protocol; redis-benchmark and go-redis's
// ClusterClient on zpnode's RESP front and Redis Cluster), stops every
// process it started (on failure too), runs the Go micro-benchmarks, and
// renders docs/benchmarks.md.
package suite

import (
	"context"
	"errors"
	"fmt"

	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/zpbench/report"
	"github.com/zeppelin-kv/zeppelin/zpbench/runner"
	"github.com/zeppelin-kv/zeppelin/zpbench/target"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// SystemDef is a system the suite can measure.
type SystemDef struct {
	// Name is the short key: --systems takes it, tables show it.
	Name string `json:"name"`
	// Label describes it in the docs.
	Label string `json:"label"`
	// Kind is "noop", "zeppelin", "redis" or "redis-cluster".
	Kind string `json:"kind"`
	// Nodes, Replicas and MinSync shape a Zeppelin cluster (one meta
	// server, Nodes nodes, a table with Replicas and min_sync_replicas).
	Nodes    int `json:"nodes,omitempty"`
	Replicas int `json:"replicas,omitempty"`
	MinSync  int `json:"min_sync_replicas,omitempty"`
	// Clients are the load generators that measure it (see Clients).
	Clients []string `json:"clients"`
}

// Systems are the systems the suite knows, in the order it runs them.
//
// Every zpnode serves RESP, but the RESP clients measure the 1-node and the
// 3-node async clusters only: min_sync_replicas=1 goes through the same
// front, and each system in a cell costs its measured time again.
// redis-benchmark also measures the plain Redis, the other side of issue
// 15's goals with that client.
var Systems = []SystemDef{
	{Name: "noop", Label: "no-op server (loopback ceiling)", Kind: "noop", Clients: []string{ClientZpbench}},
	{Name: "zpnode-1", Label: "zpnode: 1 node, 1 replica", Kind: "zeppelin", Nodes: 1, Replicas: 1,
		Clients: []string{ClientZpbench, ClientRedisBenchmark, ClientZpbenchCluster}},
	{Name: "zpnode-3-async", Label: "zpnode: 3 nodes, 3 replicas, async", Kind: "zeppelin", Nodes: 3, Replicas: 3,
		Clients: []string{ClientZpbench, ClientRedisBenchmark, ClientZpbenchCluster}},
	{Name: "zpnode-3-sync1", Label: "zpnode: 3 nodes, 3 replicas, min_sync_replicas=1", Kind: "zeppelin", Nodes: 3, Replicas: 3, MinSync: 1,
		Clients: []string{ClientZpbench}},
	{Name: "redis", Label: "Redis (AOF on, appendfsync everysec)", Kind: "redis", Clients: []string{ClientZpbench, ClientRedisBenchmark}},
	{Name: "redis-cluster", Label: "Redis Cluster, 1 node with all slots (AOF on, appendfsync everysec)", Kind: "redis-cluster",
		Clients: []string{ClientRedisBenchmark, ClientZpbenchCluster}},
}

// SystemNames returns the names of Systems.
func SystemNames() []string {
	out := make([]string, len(Systems))
	for i, s := range Systems {
		out[i] = s.Name
	}
	return out
}

// Config configures a suite run. Zero values get the defaults noted.
type Config struct {
	// BinDir holds zpmeta and zpnode. Required when a Zeppelin system
	// runs.
	BinDir string
	// NoopCommand starts the no-op server; the suite appends --addr,
	// --value-size and --log-level. Required when "noop" runs.
	NoopCommand []string
	// RedisServer is the redis-server binary; default: found in PATH.
	RedisServer string
	// RedisBenchmark is the redis-benchmark binary; default: found in
	// PATH.
	RedisBenchmark string
	// Clients are the load generators measured (see Clients), each on the
	// systems it applies to; default all.
	Clients []string
	// RepoDir is the repository root: paths under it are shown relative
	// to it in the commands of the docs. Empty shows them as they are.
	RepoDir string
	// WorkDir is where the temporary directory goes; default os.TempDir.
	WorkDir string
	// KeepWorkDir keeps data and logs after the run.
	KeepWorkDir bool
	// Systems are the names of the systems to run, in Systems order;
	// default all.
	Systems []string
	// Ops are the workloads measured per system; default set, get.
	Ops []string
	// Pipelines are the depths measured; default 1, 16.
	Pipelines []int
	// Duration is the measured time of each system in each cell, split
	// into Rounds rounds (default 10s, 4 rounds); Warmup runs once per
	// system and cell before the first round (default 2s).
	Duration, Warmup time.Duration
	Rounds           int
	// Conns is the number of connections (and workers); default 50.
	Conns int
	// ValueSize in bytes; default 100.
	ValueSize int
	// Keyspace is the number of records; default 100,000.
	Keyspace uint64
	// Table and Partitions of the Zeppelin benchmark table; default
	// "bench", 16.
	Table      string
	Partitions uint32
	// Timeout bounds each operation; default 5s.
	Timeout time.Duration
	// StartTimeout bounds starting a system (processes up, table
	// writable) and loading it; default 2 minutes.
	StartTimeout time.Duration
	// Seed of the operation streams; default 1, so runs send the same.
	Seed uint64
	// MemoryKeys, when not 0, adds the memory section: a fresh 1-node
	// zpnode (Partitions partitions, ValueSize values) loaded with that
	// many records, its RSS and breakdown after the load and after
	// MemoryReads of GETs (none when 0).
	MemoryKeys  uint64
	MemoryReads time.Duration
	// Soak, when not 0, then runs a mixed workload on that node for that
	// long (SoakReadRatio GETs, default 0.8; the rest SETs), sampling its
	// memory every SoakSample (default 5s).
	Soak          time.Duration
	SoakSample    time.Duration
	SoakReadRatio float64
	// Micro configures the Go micro-benchmarks.
	Micro MicroConfig
	// Command is how the suite was invoked, for the docs.
	Command string
	// Log receives progress: one line per cell.
	Log *slog.Logger
}

func (c *Config) setDefaults() {
	if len(c.Systems) == 0 {
		c.Systems = SystemNames()
	}
	if len(c.Clients) == 0 {
		c.Clients = ClientNames()
	}
	if len(c.Ops) == 0 {
		c.Ops = []string{"set", "get"}
	}
	if len(c.Pipelines) == 0 {
		c.Pipelines = []int{1, 16}
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.Rounds <= 0 {
		c.Rounds = 4
	}
	if c.Conns <= 0 {
		c.Conns = 50
	}
	if c.ValueSize <= 0 {
		c.ValueSize = 100
	}
	if c.Keyspace == 0 {
		c.Keyspace = 100_000
	}
	if c.Table == "" {
		c.Table = "bench"
	}
	if c.Partitions == 0 {
		c.Partitions = 16
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 2 * time.Minute
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.SoakSample <= 0 {
		c.SoakSample = 5 * time.Second
	}
	if c.SoakReadRatio <= 0 || c.SoakReadRatio > 1 {
		c.SoakReadRatio = 0.8
	}
}

func (c *Config) validate() error {
	var errs []error
	for _, name := range c.Systems {
		def, ok := systemDef(name)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("unknown system %q (want %s)", name, strings.Join(SystemNames(), ", ")))
		case def.Kind == "zeppelin" && c.BinDir == "":
			errs = append(errs, fmt.Errorf("system %s needs the directory of zpmeta and zpnode", name))
		case def.Kind == "noop" && len(c.NoopCommand) == 0:
			errs = append(errs, errors.New("system noop needs the no-op server command"))
		}
	}
	if c.MemoryKeys > 0 && c.BinDir == "" {
		errs = append(errs, errors.New("the memory section needs the directory of zpmeta and zpnode"))
	}
	if c.Soak > 0 && c.MemoryKeys == 0 {
		errs = append(errs, errors.New("the soak runs on the memory section's node: it needs memory keys"))
	}
	for _, name := range c.Clients {
		if !slices.Contains(ClientNames(), name) {
			errs = append(errs, fmt.Errorf("unknown client %q (want %s)", name, strings.Join(ClientNames(), ", ")))
		}
	}
	for _, op := range c.Ops {
		if _, err := workload.New(workload.Params{Name: op, Records: 1, Batch: 1}); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range c.Pipelines {
		if p < 1 {
			errs = append(errs, fmt.Errorf("pipeline %d below 1", p))
		}
	}
	return errors.Join(errs...)
}

func systemDef(name string) (SystemDef, bool) {
	for _, s := range Systems {
		if s.Name == name {
			return s, true
		}
	}
	return SystemDef{}, false
}

// Results is everything a suite run measured.
type Results struct {
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
	Machine  Machine        `json:"machine"`
	Settings Settings       `json:"settings"`
	Command  string         `json:"command"`
	Systems  []SystemResult `json:"systems"`
	Micro    *MicroResult   `json:"micro,omitempty"`
	Memory   *MemoryResult  `json:"memory,omitempty"`
}

// Settings are the parameters shared by every cell.
type Settings struct {
	Duration   time.Duration `json:"duration"`
	Warmup     time.Duration `json:"warmup"`
	Rounds     int           `json:"rounds"`
	Conns      int           `json:"conns"`
	Pipelines  []int         `json:"pipelines"`
	Ops        []string      `json:"ops"`
	Clients    []string      `json:"clients"`
	ValueSize  int           `json:"value_size"`
	Keyspace   uint64        `json:"keyspace"`
	Partitions uint32        `json:"partitions"`
	Seed       uint64        `json:"seed"`
}

// SystemResult is one system's part of the run.
type SystemResult struct {
	Def SystemDef `json:"def"`
	// Err says why the system could not be measured (or not completely).
	Err string `json:"error,omitempty"`
	// Commands started it.
	Commands []string `json:"commands"`
	Cells    []Cell   `json:"cells"`
	// Load is the loading of the keyspace before the read cells, and the
	// zpbench command that does the same.
	Load        *runner.LoadResult `json:"load,omitempty"`
	LoadCommand string             `json:"load_command,omitempty"`
	// BenchLoad is the loading of redis-benchmark's keys (key:<12 digits>)
	// before its GET cells, on the systems it reaches without --cluster.
	BenchLoad *runner.LoadResult `json:"bench_load,omitempty"`
	// MinSync is the min_sync_replicas probe of systems that have one.
	MinSync *Probe `json:"min_sync,omitempty"`
	// IdleCPU is the CPUs the system's processes used while idle, before
	// the first cell.
	IdleCPU float64 `json:"idle_cpu"`
	// Durability is what an acknowledged write survives, as the running
	// system reported it (zpnode's binlog fsync and RocksDB WAL, Redis's
	// AOF settings).
	Durability string `json:"durability"`
	// CPUSource says where its server CPU was read.
	CPUSource string `json:"cpu_source,omitempty"`
}

// Cell is one measurement: an operation at a pipeline depth, by one
// client.
type Cell struct {
	Op       string `json:"op"`
	Pipeline int    `json:"pipeline"`
	// Client is the load generator (see Clients); ClientLabel says how it
	// reached the system, e.g. "redis-benchmark --cluster".
	Client      string        `json:"client"`
	ClientLabel string        `json:"client_label"`
	Report      report.Report `json:"report"`
	// Err says why the cell could not be measured. Operations that failed
	// during the measurement are in Report (errors by code), not here.
	Err string `json:"error,omitempty"`
	// Command is the zpbench or redis-benchmark command line that
	// measures the same (redis-benchmark's of the first round).
	Command string `json:"command"`
	// CPU is how busy the machine was during the cell (all systems'
	// rounds), and how much of that was outside the suite.
	CPU CPUUse `json:"cpu"`
	// ServerCPU is the CPU the system's servers spent in this client's
	// measured rounds, and per operation; nil when it could not be read.
	ServerCPU *ServerCPU `json:"server_cpu,omitempty"`
}

// cpuMicros is the server's CPU per operation, formatted; "n/a" when
// unknown.
func (c *Cell) cpuMicros() string {
	if c.ServerCPU == nil || c.Report.Ops == 0 {
		return "n/a"
	}
	return fmtFloat(c.ServerCPU.MicrosPerOp)
}

// Run runs the suite. It returns the results gathered even when it fails;
// the error joins every failure to measure (a system that did not start, a
// cell that could not run). A system that fails to start is left out and
// the others are measured. Operations that failed during a measurement are
// results, not failures: see Results.MaxErrorRate.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.RedisServer == "" && (slices.Contains(cfg.Systems, "redis") || slices.Contains(cfg.Systems, "redis-cluster")) {
		p, err := exec.LookPath("redis-server")
		if err != nil {
			return nil, fmt.Errorf("redis-server not found (apt-get install -y redis-server): %w", err)
		}
		cfg.RedisServer = p
	}
	if cfg.RedisBenchmark == "" && usesClient(&cfg, ClientRedisBenchmark) {
		p, err := exec.LookPath("redis-benchmark")
		if err != nil {
			return nil, fmt.Errorf("redis-benchmark not found (apt-get install -y redis-tools, or --clients without it): %w", err)
		}
		cfg.RedisBenchmark = p
	}
	res := &Results{
		Started: time.Now(),
		Command: cfg.Command,
		Settings: Settings{Duration: cfg.Duration, Warmup: cfg.Warmup, Rounds: cfg.Rounds, Conns: cfg.Conns, Pipelines: cfg.Pipelines,
			Ops: cfg.Ops, Clients: cfg.Clients, ValueSize: cfg.ValueSize, Keyspace: cfg.Keyspace, Partitions: cfg.Partitions, Seed: cfg.Seed},
	}
	res.Machine = describeMachine(ctx, cfg.RedisServer, cfg.Micro.Dir)

	var errs []error
	// Micro-benchmarks first, while nothing else runs.
	if !cfg.Micro.Skip {
		cfg.Log.Info("running Go micro-benchmarks", "packages", strings.Join(cfg.Micro.packages(), " "))
		res.Micro = runMicro(ctx, cfg.Micro)
		if res.Micro.Err != "" {
			errs = append(errs, fmt.Errorf("micro-benchmarks: %s", res.Micro.Err))
		}
	}
	err := measure(ctx, &cfg, res)
	res.Finished = time.Now()
	return res, errors.Join(append(errs, err)...)
}

// measure starts every system, measures the cells with the systems in
// alternation, probes, and stops every process it started, whatever
// happened.
func measure(ctx context.Context, cfg *Config, res *Results) (err error) {
	dir, err := os.MkdirTemp(cfg.WorkDir, "zpbench-suite-")
	if err != nil {
		return err
	}
	if cfg.KeepWorkDir {
		cfg.Log.Info("keeping data and logs", "dir", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	defer newShower(cfg, dir).showResults(res)
	g := &procs{}
	defer func() {
		if serr := g.stopAll(); serr != nil {
			err = errors.Join(err, fmt.Errorf("stopping: %w", serr))
		}
	}()

	var (
		errs []error
		live []*system
		srs  []*SystemResult
	)
	fail := func(sr *SystemResult, err error) {
		if sr.Err == "" {
			sr.Err = err.Error()
		}
		errs = append(errs, fmt.Errorf("%s: %w", sr.Def.Name, err))
	}
	for _, def := range Systems {
		if !slices.Contains(cfg.Systems, def.Name) {
			continue
		}
		res.Systems = append(res.Systems, SystemResult{Def: def})
	}
	for i := range res.Systems {
		sr := &res.Systems[i]
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sys, err := startSystem(ctx, cfg, g, filepath.Join(dir, sr.Def.Name), sr.Def)
		if sys != nil {
			sr.Commands = sys.commands
		}
		if err != nil {
			fail(sr, fmt.Errorf("start: %w", err))
			continue
		}
		live, srs = append(live, sys), append(srs, sr)
		sr.CPUSource = sys.cpuSource()
		if sr.Durability, err = sys.durability(ctx); err != nil {
			cfg.Log.Warn("durability not read", "system", sr.Def.Name, "err", err)
		}
		if sys.kind == "zeppelin" && res.Machine.RocksDB == nil {
			if res.Machine.RocksDB, err = rocksDBOf(ctx, sys.metricsAddrs[0]); err != nil {
				cfg.Log.Warn("RocksDB build not read", "system", sr.Def.Name, "err", err)
			}
		}
	}

	for i, cpus := range measureIdle(ctx, live) {
		srs[i].IdleCPU = cpus
	}
	loaded := false
	for _, op := range cfg.Ops {
		if needsRecords(op) && !loaded {
			for i, sys := range live {
				if err := loadSystem(ctx, cfg, sys, srs[i]); err != nil {
					fail(srs[i], err)
				}
			}
			loaded = true
		}
		for _, p := range cfg.Pipelines {
			if ctx.Err() != nil {
				return errors.Join(append(errs, ctx.Err())...)
			}
			for _, sc := range measureCell(ctx, cfg, g, live, op, p) {
				sr, c := srs[sc.index], sc.cell
				if c.Err != "" {
					errs = append(errs, fmt.Errorf("%s: %s %s pipeline %d: %s", sr.Def.Name, c.Client, op, p, c.Err))
				}
				sr.Cells = append(sr.Cells, c)
			}
		}
	}
	for i, sys := range live {
		if sys.def.MinSync > 0 && ctx.Err() == nil {
			probe := probeMinSync(ctx, cfg, sys)
			srs[i].MinSync = &probe
		}
		if err := sys.crashed(); err != nil {
			fail(srs[i], err)
		}
	}
	if cfg.MemoryKeys > 0 && ctx.Err() == nil {
		// On a fresh node, with the measured systems stopped.
		if err := g.stopAll(); err != nil {
			errs = append(errs, fmt.Errorf("stopping: %w", err))
		}
		res.Memory = measureMemory(ctx, cfg, g, filepath.Join(dir, memoryDef.Name), &res.Machine)
		if res.Memory.Err != "" {
			errs = append(errs, fmt.Errorf("memory: %s", res.Memory.Err))
		}
	}
	return errors.Join(append(errs, ctx.Err())...)
}

// startSystem starts one system in dir.
func startSystem(ctx context.Context, cfg *Config, g *procs, dir string, def SystemDef) (*system, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg.Log.Info("starting", "system", def.Name)
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	switch def.Kind {
	case "noop":
		return startNoop(ctx, cfg, g, dir, def)
	case "zeppelin":
		return startZeppelin(ctx, cfg, g, dir, def, cfg.Log)
	case "redis":
		return startRedis(ctx, cfg, g, dir, def)
	case "redis-cluster":
		return startRedisCluster(ctx, cfg, g, dir, def)
	}
	return nil, fmt.Errorf("unknown kind %q", def.Kind)
}

// needsRecords reports whether op reads records that must exist.
func needsRecords(op string) bool {
	switch op {
	case "set", "mset", "incr":
		return false
	}
	return true
}

// openTarget opens sys as a benchmark target for a pipeline depth.
func openTarget(ctx context.Context, cfg *Config, sys *system, pipeline int, log *slog.Logger) (target.Target, error) {
	switch sys.kind {
	case "zeppelin":
		return target.NewZeppelin(ctx, target.ZeppelinOptions{
			MetaAddrs: []string{sys.addr}, Table: cfg.Table, Conns: cfg.Conns,
			Raw: pipeline > 1, Timeout: cfg.Timeout, Logger: log,
		})
	case "redis":
		return target.NewRedis(ctx, target.RedisOptions{Addr: sys.addr, Conns: cfg.Conns, Timeout: cfg.Timeout})
	case "redis-cluster":
		return openClusterTarget(ctx, cfg, sys)
	default:
		return target.NewNoop(sys.addr, cfg.Table), nil
	}
}

// Loading before the read cells: MSETs of loadBatch records from loadConns
// connections.
const (
	loadBatch = 100
	loadConns = 16
)

// loadKeyspace writes every record, for the read cells.
func loadKeyspace(ctx context.Context, cfg *Config, sys *system) (runner.LoadResult, error) {
	sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	t, err := openTarget(sctx, cfg, sys, 1, cfg.Log)
	if err != nil {
		return runner.LoadResult{}, fmt.Errorf("load: %w", err)
	}
	defer t.Close()
	lr, err := runner.Load(ctx, t, runner.LoadConfig{Records: cfg.Keyspace, Batch: loadBatch, Conns: loadConns,
		ValueSize: cfg.ValueSize, Seed: cfg.Seed, Timeout: 4 * cfg.Timeout})
	if err != nil {
		return lr, fmt.Errorf("load: %w", err)
	}
	cfg.Log.Info("loaded", "system", sys.def.Name, "records", lr.Records, "records/s", int(lr.Rate()))
	return lr, nil
}

// cellCommand is the zpbench command that measures what a cell of client
// does, against the system as the suite started it.
func cellCommand(cfg *Config, sys *system, client, op string, pipeline int) string {
	args := targetArgs(cfg, sys)
	if client == ClientZpbenchCluster {
		args = respArgs(sys)
	}
	return fmt.Sprintf("zpbench %s --workload %s --value-size %d --keyspace %d --conns %d --pipeline %d --duration %s --warmup %s --seed %d",
		args, op, cfg.ValueSize, cfg.Keyspace, cfg.Conns, pipeline, cfg.Duration, cfg.Warmup, cfg.Seed)
}

// targetArgs are the zpbench flags naming sys.
func targetArgs(cfg *Config, sys *system) string {
	switch sys.kind {
	case "zeppelin":
		return fmt.Sprintf("--meta %s --table %s", sys.addr, cfg.Table)
	case "redis":
		return "--redis " + sys.addr
	case "redis-cluster":
		return respArgs(sys)
	}
	return "--noop " + sys.addr
}

// MaxErrorRate returns the highest error rate of any cell, and which.
func (r *Results) MaxErrorRate() (rate float64, where string) {
	for _, s := range r.Systems {
		for _, c := range s.Cells {
			if c.Report.ErrorRate > rate {
				rate = c.Report.ErrorRate
				where = fmt.Sprintf("%s %s %s pipeline %d", s.Def.Name, c.ClientLabel, c.Op, c.Pipeline)
			}
		}
	}
	return rate, where
}
