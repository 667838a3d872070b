package cmd

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/secret"
	"github.com/zeppelin-kv/zeppelin/lib/tlsconf"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpbench/target"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// targetFlags choose the systems under test.
type targetFlags struct {
	metas, redis, noops []string
	redisClusters       []string
	table               string
	partitions          uint32
	replicas            uint32
	minSync             uint32
	raw                 bool
	timeout             time.Duration
	// tls names the PEM files of TLS to every target but noop: the CA
	// the servers' certificates chain to, and a client certificate for
	// servers that verify clients.
	tls tlsconf.Files
	// adminTokenFile holds the meta servers' admin token, for the table
	// zpbench creates and drops.
	adminTokenFile string
	// tablePasswordFile holds the password of the table, for a table with
	// passwords.
	tablePasswordFile string
}

func (t *targetFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringArrayVar(&t.metas, "meta", nil, "Zeppelin target: meta servers, comma-separated host:port (repeat for a second cluster)")
	fs.StringArrayVar(&t.redis, "redis", nil, "Redis target: host:port")
	fs.StringArrayVar(&t.redisClusters, "redis-cluster", nil, "Redis Cluster target (go-redis ClusterClient): seed nodes, comma-separated host:port; a Redis Cluster or zpnode RESP fronts")
	fs.StringArrayVar(&t.noops, "noop", nil, "no-op target: host:port of a zpbench noop-server")
	fs.StringVar(&t.table, "table", "bench", "Zeppelin table; created when missing (see --partitions, --replicas; a run drops a table it created unless --keep-table, load keeps it)")
	fs.Uint32Var(&t.partitions, "partitions", 16, "partitions of a table zpbench creates")
	fs.Uint32Var(&t.replicas, "replicas", 0, "replicas of a table zpbench creates; 0 = nodes up, at most 3")
	fs.Uint32Var(&t.minSync, "min-sync-replicas", 0, "min_sync_replicas of a table zpbench creates")
	fs.BoolVar(&t.raw, "raw", false, "Zeppelin: send raw requests to partition masters even at pipeline 1 (no client retries)")
	fs.DurationVar(&t.timeout, "timeout", 5*time.Second, "bound on each operation, retries included")
	fs.StringVar(&t.tls.CA, "tls-ca", "", "PEM CA the servers' certificates chain to: connect to Zeppelin and Redis targets over TLS")
	fs.StringVar(&t.tls.Cert, "tls-cert", "", "PEM client certificate, for servers that verify clients")
	fs.StringVar(&t.tls.Key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&t.adminTokenFile, "admin-token-file", "", "file holding the meta servers' admin token, to create and drop the table")
	fs.StringVar(&t.tablePasswordFile, "table-password-file", "", "file holding the password of --table, for a table with passwords (Zeppelin targets; Redis targets send AUTH TABLE PASSWORD, as zpnode's RESP front takes it)")
}

// access is what a target's connections need: TLS (nil: plain TCP), the
// admin token and the table's password (nil: none).
type access struct {
	tls           *tls.Config
	adminToken    []byte
	tablePassword []byte
}

// access reads the TLS, admin token and table password files named by the
// flags.
func (a *app) access(t *targetFlags) (access, error) {
	var ac access
	if t.tablePasswordFile != "" {
		pw, open, err := secret.ReadFile(t.tablePasswordFile)
		if err != nil {
			return ac, usagef("--table-password-file: %w", err)
		}
		if open {
			a.log.Warn("a secret file can be read by others than its owner: chmod 600 it", "flag", "table-password-file", "file", t.tablePasswordFile)
		}
		ac.tablePassword = pw
	}
	if t.tls.Enabled() {
		cfg, err := tlsconf.ClientConfig(t.tls)
		if err != nil {
			return ac, usagef("--tls-ca/--tls-cert/--tls-key: %w", err)
		}
		ac.tls = cfg
	}
	if t.adminTokenFile != "" {
		token, open, err := secret.ReadFile(t.adminTokenFile)
		if err != nil {
			return ac, usagef("--admin-token-file: %w", err)
		}
		if open {
			a.log.Warn("the admin token file can be read by others than its owner: chmod 600 it", "file", t.adminTokenFile)
		}
		ac.adminToken = token
	}
	return ac, nil
}

// targetSpec is one target from the command line.
type targetSpec struct {
	kind string // "zeppelin", "redis", "redis-cluster", "noop"
	addr string
}

// specs returns the targets in the order zeppelin, noop, redis: with
// --compare the first is A and ratios are A/B, so "zeppelin vs redis" and
// "zeppelin vs noop" read as fractions of the reference.
func (t *targetFlags) specs() []targetSpec {
	var out []targetSpec
	for _, m := range t.metas {
		out = append(out, targetSpec{"zeppelin", m})
	}
	for _, n := range t.noops {
		out = append(out, targetSpec{"noop", n})
	}
	for _, r := range t.redisClusters {
		out = append(out, targetSpec{"redis-cluster", r})
	}
	for _, r := range t.redis {
		out = append(out, targetSpec{"redis", r})
	}
	return out
}

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// open connects to a target. pipeline decides the Zeppelin path.
func (a *app) open(ctx context.Context, t *targetFlags, s targetSpec, conns, pipeline int) (target.Target, error) {
	ac, err := a.access(t)
	if err != nil {
		return nil, err
	}
	redisOpts := target.RedisOptions{Conns: conns, Timeout: t.timeout, TLS: ac.tls}
	if ac.tablePassword != nil {
		redisOpts.Username, redisOpts.Password = t.table, string(ac.tablePassword)
	}
	switch s.kind {
	case "zeppelin":
		return target.NewZeppelin(ctx, target.ZeppelinOptions{
			MetaAddrs:     splitAddrs(s.addr),
			Table:         t.table,
			TablePassword: ac.tablePassword,
			Conns:         conns,
			Raw:           t.raw || pipeline > 1,
			Timeout:       t.timeout,
			Create:        &client.TableSpec{Partitions: t.partitions, Replicas: t.replicas, MinSyncReplicas: t.minSync},
			TLS:           ac.tls,
			AdminToken:    ac.adminToken,
			Logger:        a.log,
		})
	case "redis":
		redisOpts.Addr = s.addr
		return target.NewRedis(ctx, redisOpts)
	case "redis-cluster":
		return target.NewRedisCluster(ctx, splitAddrs(s.addr), redisOpts)
	case "noop":
		return target.NewNoop(s.addr, t.table), nil
	}
	return nil, fmt.Errorf("unknown target kind %q", s.kind)
}

// workloadFlags describe what is sent.
type workloadFlags struct {
	name      string
	keyspace  uint64
	valueSize int
	dist      string
	readRatio float64
	batch     int
	maxScan   int
	seed      uint64
}

func (w *workloadFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVarP(&w.name, "workload", "w", "set", "workload: "+strings.Join(workload.Names(), ", "))
	fs.Uint64VarP(&w.keyspace, "keyspace", "r", 100_000, "records in the keyspace (YCSB recordcount)")
	fs.IntVarP(&w.valueSize, "value-size", "d", 100, "value size in bytes")
	fs.StringVar(&w.dist, "distribution", "", "key distribution: uniform, zipfian or latest (default: the workload's)")
	fs.Float64Var(&w.readRatio, "read-ratio", 0.5, "fraction of GETs in the mixed workload")
	fs.IntVar(&w.batch, "batch", 10, "keys per MGET/MSET")
	fs.IntVar(&w.maxScan, "max-scan", workload.DefaultGroupSize, "longest YCSB E scan, in records (at most 100)")
	fs.Uint64Var(&w.seed, "seed", 0, "seed of the operation streams; 0 picks one (reported, so a run can be repeated)")
}

func (w *workloadFlags) params() workload.Params {
	return workload.Params{
		Name:         w.name,
		Records:      w.keyspace,
		ValueSize:    w.valueSize,
		Distribution: w.dist,
		ReadRatio:    w.readRatio,
		Batch:        w.batch,
		MaxScan:      w.maxScan,
		Seed:         w.seed,
	}
}

func workloadHelp() string { return workload.Describe() }

// runFlags are the benchmark's own.
type runFlags struct {
	targetFlags
	workloadFlags
	tableFlags
	conns, workers, pipeline int
	duration, warmup         time.Duration
	ops                      int64
	rate                     float64
	output                   string
	progress                 time.Duration
	quiet                    bool
	maxErrorRate             float64
	compare                  bool
	rounds                   int
}

func (r *runFlags) register(cmd *cobra.Command) {
	r.targetFlags.register(cmd)
	r.workloadFlags.register(cmd)
	fs := cmd.Flags()
	fs.IntVar(&r.conns, "conns", 50, "connections (Zeppelin: per node)")
	fs.IntVarP(&r.workers, "workers", "c", 0, "worker goroutines, spread over the connections (default: --conns)")
	fs.IntVarP(&r.pipeline, "pipeline", "P", 1, "operations each worker keeps in flight on its connection")
	fs.DurationVar(&r.duration, "duration", 0, "measured time (default 10s unless --ops is set)")
	fs.Int64VarP(&r.ops, "ops", "n", 0, "measured operations; with --duration, whichever ends first")
	fs.DurationVar(&r.warmup, "warmup", time.Second, "unmeasured warm-up before the measurement")
	fs.Float64Var(&r.rate, "rate", 0, "total operations per second; 0 = as fast as possible. Latency then counts from each operation's scheduled start")
	fs.StringVarP(&r.output, "output", "o", "text", "report format: text or json")
	fs.DurationVar(&r.progress, "progress-interval", 0, "progress period on stderr (default 1s on a terminal, 5s otherwise)")
	fs.BoolVarP(&r.quiet, "quiet", "q", false, "no progress on stderr")
	fs.Float64Var(&r.maxErrorRate, "max-error-rate", 0, "exit 3 when more than this fraction of operations fail")
	fs.BoolVar(&r.compare, "compare", false, "run two targets in interleaved rounds and print A/B ratios (A: --meta, then --noop, then --redis-cluster, then --redis)")
	fs.IntVar(&r.rounds, "rounds", 4, "rounds of --compare; each target gets duration/rounds per round")
	fs.BoolVar(&r.keepTable, "keep-table", false, "Zeppelin: keep the table after the run even when zpbench created it (default: drop a table zpbench created, keep one that existed)")
	fs.BoolVar(&r.dropTable, "drop-table", false, "Zeppelin: drop the table after the run even when it existed before")
}

func (r *runFlags) validate(cmd *cobra.Command) error {
	n := len(r.specs())
	switch {
	case r.compare && n != 2:
		return usagef("--compare needs exactly two targets, got %d", n)
	case !r.compare && n != 1:
		return usagef("need exactly one target (--meta, --redis, --redis-cluster or --noop), got %d; use --compare for two", n)
	case r.conns < 1:
		return usagef("--conns must be at least 1")
	case r.workers < 0:
		return usagef("--workers must not be negative")
	case r.pipeline < 1:
		return usagef("--pipeline must be at least 1")
	case r.duration < 0 || r.warmup < 0 || r.ops < 0 || r.rate < 0 || r.timeout < 0:
		return usagef("--duration, --warmup, --ops, --rate and --timeout must not be negative")
	case r.output != "text" && r.output != "json":
		return usagef("--output must be text or json, not %q", r.output)
	case r.maxErrorRate < 0 || r.maxErrorRate > 1:
		return usagef("--max-error-rate must be in [0, 1]")
	case r.rounds < 1:
		return usagef("--rounds must be at least 1")
	}
	if err := r.tableFlags.validate(); err != nil {
		return err
	}
	if r.duration == 0 && r.ops == 0 {
		r.duration = 10 * time.Second
	}
	if r.workers == 0 {
		r.workers = r.conns
	}
	if _, err := workload.New(r.params()); err != nil {
		return usagef("%w", err)
	}
	return nil
}
