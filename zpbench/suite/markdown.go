package suite

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/zeppelin-kv/zeppelin/zpbench/report"
)

// cell returns zpbench's own measurement of op at pipeline on system name,
// nil when there is none (or it failed).
func (r *Results) cell(name, op string, pipeline int) *Cell {
	return r.clientCell(name, ClientZpbench, op, pipeline)
}

// clientCell returns client's measurement of op at pipeline on system
// name, nil when there is none (or it failed).
func (r *Results) clientCell(name, client, op string, pipeline int) *Cell {
	for i := range r.Systems {
		s := &r.Systems[i]
		if s.Def.Name != name {
			continue
		}
		for j := range s.Cells {
			c := &s.Cells[j]
			if c.Op == op && c.Pipeline == pipeline && c.client() == client && c.Report.Ops > 0 {
				return c
			}
		}
	}
	return nil
}

// ratio is the throughput of a over b's (zpbench's own cells), formatted;
// "n/a" when either is missing.
func (r *Results) ratio(a, b, op string, pipeline int) (float64, string) {
	return cellRatio(r.cell(a, op, pipeline), r.cell(b, op, pipeline))
}

// cellRatio is a's throughput over b's, formatted; "n/a" when either is
// missing.
func cellRatio(a, b *Cell) (float64, string) {
	if a == nil || b == nil || b.Report.OpsPerSec == 0 {
		return 0, "n/a"
	}
	v := a.Report.OpsPerSec / b.Report.OpsPerSec
	return v, fmt.Sprintf("%.0f%%", 100*v)
}

func (r *Results) system(name string) *SystemResult {
	for i := range r.Systems {
		if r.Systems[i].Def.Name == name {
			return &r.Systems[i]
		}
	}
	return nil
}

// label is a system's label, marked when its min_sync_replicas is not
// honoured.
func (s *SystemResult) label() string {
	l := s.Def.Label
	if s.MinSync != nil && s.MinSync.Honoured != "yes" {
		l += fmt.Sprintf(" (**min_sync not honoured: %s**)", s.MinSync.Honoured)
	}
	return l
}

// goal is one of issue 15's targets: the throughput of system a, measured
// by client, as a share of b's measured by the same client.
type goal struct {
	what      string
	a, b      string
	client    string
	op        string
	pipeline  int
	threshold float64
}

// goals are the targets issue 15 sets, reported against, not asserted:
// one node against Redis with AOF everysec, both with zpbench (zpnode's
// native protocol against go-redis) and with the same redis-benchmark
// binary on both sides; three replicas against one; min_sync_replicas=1
// against async.
var goals = []goal{
	{"1-node SET, pipeline 1, vs Redis (zpbench)", "zpnode-1", "redis", ClientZpbench, "set", 1, 0.70},
	{"1-node SET, pipeline 16, vs Redis (zpbench)", "zpnode-1", "redis", ClientZpbench, "set", 16, 0.50},
	{"1-node GET, pipeline 1, vs Redis (zpbench)", "zpnode-1", "redis", ClientZpbench, "get", 1, 0.80},
	{"1-node GET, pipeline 16, vs Redis (zpbench)", "zpnode-1", "redis", ClientZpbench, "get", 16, 0.60},
	{"1-node SET, pipeline 1, vs Redis (redis-benchmark)", "zpnode-1", "redis", ClientRedisBenchmark, "set", 1, 0.70},
	{"1-node SET, pipeline 16, vs Redis (redis-benchmark)", "zpnode-1", "redis", ClientRedisBenchmark, "set", 16, 0.50},
	{"1-node GET, pipeline 1, vs Redis (redis-benchmark)", "zpnode-1", "redis", ClientRedisBenchmark, "get", 1, 0.80},
	{"1-node GET, pipeline 16, vs Redis (redis-benchmark)", "zpnode-1", "redis", ClientRedisBenchmark, "get", 16, 0.60},
	{"3-node async SET, pipeline 1, vs 1-node", "zpnode-3-async", "zpnode-1", ClientZpbench, "set", 1, 0.50},
	{"3-node async SET, pipeline 16, vs 1-node", "zpnode-3-async", "zpnode-1", ClientZpbench, "set", 16, 0.50},
	{"3-node min_sync_replicas=1 SET, pipeline 1, vs async", "zpnode-3-sync1", "zpnode-3-async", ClientZpbench, "set", 1, 0.90},
	{"3-node min_sync_replicas=1 SET, pipeline 16, vs async", "zpnode-3-sync1", "zpnode-3-async", ClientZpbench, "set", 16, 0.90},
}

// writeGoals writes the table of issue 15's goals: each ratio, the two
// throughputs and server CPU per operation behind it, and whether it is
// met.
func writeGoals(p func(string, ...any), r *Results) {
	p("## Goals of issue 15\n\n")
	p("Reported, not asserted: throughput of the first system as a share of the\n")
	p("second's, both measured by the same client in the same alternating rounds\n")
	p("(Redis: AOF on, `appendfsync everysec`; zpbench drives zpnode through its\n")
	p("native protocol and Redis through go-redis; redis-benchmark drives zpnode's\n")
	p("RESP front and Redis alike). Server CPU is µs per operation (see Results).\n\n")
	p("| goal | target | measured | ops/s | server CPU µs/op | |\n|---|---:|---:|---:|---:|---|\n")
	for _, g := range goals {
		ca, cb := r.clientCell(g.a, g.client, g.op, g.pipeline), r.clientCell(g.b, g.client, g.op, g.pipeline)
		v, share := cellRatio(ca, cb)
		verdict, ops, cpu := "not measured", "", ""
		if share != "n/a" {
			verdict = "met"
			if v < g.threshold {
				verdict = "**not met**"
			}
			ops = fmt.Sprintf("%s / %s", report.Count(ca.Report.OpsPerSec), report.Count(cb.Report.OpsPerSec))
			cpu = fmt.Sprintf("%s / %s", ca.cpuMicros(), cb.cpuMicros())
		}
		p("| %s | ≥ %.0f%% | %s | %s | %s | %s |\n", g.what, 100*g.threshold, share, ops, cpu, verdict)
	}
	p("\n")
}

// WriteMarkdown renders r as the benchmark page of the docs.
func WriteMarkdown(w io.Writer, r *Results) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	st := r.Settings
	m := r.Machine

	p("# Benchmarks\n\n")
	p("Generated by `make bench` (`zpbench suite`) on %s (run took %s). Running it\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Finished.Sub(r.Started).Round(1e9))
	p("again rewrites this page; the figures are for this machine only, and\n")
	p("everything (servers and load generator) shares its CPUs.\n\n")

	p("## Machine\n\n")
	p("| | |\n|---|---|\n")
	p("| CPU | %s, %d vCPUs |\n", m.CPU, m.CPUs)
	p("| memory | %s |\n", m.Memory)
	p("| OS | %s, %s |\n", m.OS, m.Kernel)
	p("| Go | %s |\n", m.Go)
	if m.Redis != "" {
		p("| Redis | %s |\n", m.Redis)
	}
	p("| RocksDB (zpnode) | %s |\n", m.RocksDB)
	p("| commit | %s |\n\n", m.Git)

	writeGoals(p, r)

	p("## Systems\n\n")
	p("What an acknowledged write survives on each system, as the running system\n")
	p("reported it (zpnode's `zeppelin_node_durability_info` metric, Redis's\n")
	p("`CONFIG GET append*`), and where its server CPU was read. Both answer a\n")
	p("write once it is handed to the kernel (`write(2)` of the binlog, of the\n")
	p("AOF) and fsync in the background, so a machine crash can lose about the\n")
	p("last fsync period of writes.\n\n")
	p("| system | durability | server CPU from |\n|---|---|---|\n")
	for _, s := range r.Systems {
		p("| %s | %s | %s |\n", s.Def.Label, orNA(s.Durability), orNA(s.CPUSource))
	}
	p("\n")

	p("## Results\n\n")
	p("%s of %d-byte values, keys uniform over %s records, %d connections\n",
		strings.Join(upper(st.Ops), " and "), st.ValueSize, report.Count(float64(st.Keyspace)), st.Conns)
	p("(one worker each), %s warm-up then %s measured per system and cell, in %d\n", st.Warmup, st.Duration, st.Rounds)
	p("alternating rounds (see Method). Throughput counts\n")
	p("successful operations; latencies (HDR histogram) are of successful operations.\n\n")
	p("The client column is the load generator: `zpbench --meta` is the native\n")
	p("protocol, the others speak RESP to zpnode's Redis front or to Redis (see\n")
	p("Method); redis-benchmark prints no p99.9.\n\n")
	p("The server CPU column is the CPU time (user and system) the system's server\n")
	p("processes spent during that client's measured rounds, over the operations\n")
	p("completed: zpnode's from its nodes' `process_cpu_seconds_total` (summed over\n")
	p("the cluster's nodes, zpmeta left out), the no-op server's and Redis's from\n")
	p("`/proc/PID/stat`. Throughput moves with the machine's other load; the CPU an\n")
	p("operation costs the server much less, so compare this column across runs.\n\n")
	p("| system | client | op | pipeline | ops/s | server CPU µs/op | p50 | p95 | p99 | p99.9 | max | errors |\n")
	p("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Systems {
		if s.Err != "" && len(s.Cells) == 0 {
			p("| %s | | | | failed: %s | | | | | | | |\n", s.label(), oneLine(s.Err))
			continue
		}
		for _, c := range s.sortedCells() {
			if c.Report.Ops == 0 {
				p("| %s | %s | %s | %d | failed: %s | | | | | | | |\n", s.label(), c.ClientLabel, c.Op, c.Pipeline, oneLine(c.Err))
				continue
			}
			l := c.Report.Latency
			p("| %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.label(), c.ClientLabel, strings.ToUpper(c.Op), c.Pipeline,
				report.Count(c.Report.OpsPerSec), c.cpuMicros(), report.Micros(l.P50), report.Micros(l.P95), report.Micros(l.P99),
				report.Micros(l.P999), report.Micros(l.Max), errorsCell(c.Report))
		}
	}
	var samples []string
	for _, s := range r.Systems {
		for _, c := range s.Cells {
			for _, code := range sortedCodes(c.Report.ErrorSamples) {
				samples = append(samples, fmt.Sprintf("- %s, %s, %s pipeline %d, %s: `%s`", s.Def.Name, c.ClientLabel, strings.ToUpper(c.Op), c.Pipeline, code, oneLine(c.Report.ErrorSamples[code])))
			}
		}
	}
	if len(samples) > 0 {
		p("\nErrors (one sample message per code):\n\n%s\n", strings.Join(samples, "\n"))
	}
	p("\nCPU use during each cell's rounds, in CPUs (of %d): the suite's processes\n", m.CPUs)
	p("(load generator and every server); the kernel's interrupt handling and\n")
	p("threads (loopback networking, journal commits: mostly the suite's doing, but\n")
	p("not charged to its processes); every other process; and time the hypervisor\n")
	p("gave to other guests. Load from others slows every system alike (see\n")
	p("Method), but it lowers the absolute figures.\n\n")
	p("| cell | suite | kernel | other processes | steal |\n|---|---:|---:|---:|---:|\n")
	for _, op := range st.Ops {
		for _, pl := range st.Pipelines {
			// Every slot of a cell shares its rounds, and so its CPU use.
			if c := r.anyCell(op, pl); c != nil {
				p("| %s, pipeline %d | %.2f | %.2f | %.2f | %.2f |\n", strings.ToUpper(op), pl, c.CPU.Suite, c.CPU.Kernel, c.CPU.Others, c.CPU.Steal)
			}
		}
	}
	p("\n")

	p("## Ratios\n\n")
	p("Throughput of one system as a share of another's, per cell.\n\n")
	p("| op | pipeline | zpnode 1-node / Redis | zpnode 1-node / noop | Redis / noop | 3-node async / 1-node | 3-node min_sync=1 / 1-node |\n")
	p("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, op := range st.Ops {
		for _, pl := range st.Pipelines {
			_, a := r.ratio("zpnode-1", "redis", op, pl)
			_, bb := r.ratio("zpnode-1", "noop", op, pl)
			_, c := r.ratio("redis", "noop", op, pl)
			_, d := r.ratio("zpnode-3-async", "zpnode-1", op, pl)
			_, e := r.ratio("zpnode-3-sync1", "zpnode-1", op, pl)
			p("| %s | %d | %s | %s | %s | %s | %s |\n", strings.ToUpper(op), pl, a, bb, c, d, e)
		}
	}
	p("\n")

	writeRESP(p, r)

	if s := r.system("zpnode-3-sync1"); s != nil && s.MinSync != nil {
		p("## min_sync_replicas\n\n")
		p("After its cells, the suite paused (SIGSTOP) every slave of one partition of\n")
		p("the min_sync_replicas=1 cluster and wrote a key of that partition with a\n")
		p("%s deadline. Honoured: **%s** — %s.\n\n", probeTimeout, s.MinSync.Honoured, s.MinSync.Detail)
		if s.MinSync.Honoured != "yes" {
			p("Until it is, that row measures asynchronous replication, not synchronous.\n\n")
		}
	}

	writeMemory(p, r)

	p("## Method\n\n")
	p("- **Systems.** The suite starts them all on free loopback ports in a\n")
	p("  temporary directory and stops them at the end: the no-op server (`zpbench\n")
	p("  noop-server`, answers every request OK at once); zpnode clusters with one\n")
	p("  zpmeta and 1 or 3 zpnodes (default flags: binlog fsync `interval`, 10 ms,\n")
	p("  answered after `write(2)`), table `bench` with %d partitions; Redis with\n", st.Partitions)
	p("  `appendonly yes`, `appendfsync everysec` (also answered after `write(2)`),\n")
	p("  no RDB snapshots.\n")
	p("- **Alternation.** Each cell (operation × pipeline depth) warms every system,\n")
	p("  with each of its clients, up for %s, then splits the %s each is measured\n", st.Warmup, st.Duration)
	p("  into %d rounds; each round runs every system and client in turn, starting\n", st.Rounds)
	p("  with a different one. Load from\n")
	p("  outside the suite (this machine is shared), or background work left by\n")
	p("  the system before, weighs on all systems alike, so the ratios hold even\n")
	p("  when the absolute figures move. Idle systems are not free, and their cost\n")
	p("  falls on every system's rounds alike; measured over %s before the first\n", idleWindow)
	p("  cell, in CPUs: %s.\n", idleList(r))
	p("- **Load generator.** zpbench in the suite's own process, %d connections and\n", st.Conns)
	p("  %d workers. Zeppelin at pipeline 1 goes through `lib/client` (routing,\n", st.Conns)
	p("  retries, %d pooled connections per node); deeper pipelines bypass the\n", st.Conns)
	p("  client and send raw requests to the partition masters over `rpc.Conn`.\n")
	p("  Redis goes through go-redis. At pipeline N both sides get N commands\n")
	p("  written together and their replies read together (go-redis pipelines,\n")
	p("  `rpc.Conn.Send` then `Wait`), as `redis-benchmark -P` does. The no-op\n")
	p("  server gets the same requests as zpnode's raw path.\n")
	p("- **Connections.** The Zeppelin client keeps %d connections to *each* node,\n", st.Conns)
	p("  so 3-node clusters are driven over %d connections by the same %d workers.\n", 3*st.Conns, st.Conns)
	p("- **Keys.** `{zb:<i/100>}<i, 10 digits>`, i uniform in [0, %s); GET cells run\n", report.Count(float64(st.Keyspace)))
	p("  after `zpbench load` wrote every record (MSET batches of 100), so reads hit.\n")
	writeRESPMethod(p, r)
	p("- **Server CPU.** Around each round of each system and client the suite\n")
	p("  reads the CPU its servers have used (user and system): each zpnode's\n")
	p("  `process_cpu_seconds_total` at `--metrics-addr` (one scrape before and after\n")
	p("  a round, counted in the round), `/proc/PID/stat` of the no-op server and\n")
	p("  redis-server. Summed over the rounds and divided by the operations they\n")
	p("  completed: server CPU µs/op. Counters tick every 10 ms, so a round needs a\n")
	p("  few hundred ms of server CPU for the figure to hold to a few percent.\n")
	p("- **Memory** (`--memory-keys`, default 1,000,000; 0 leaves the section out;\n")
	p("  `--memory-reads` the GET pass after the load, default 5s): see Memory. The\n")
	p("  soak (`--soak`, off unless set: `make bench-soak` sets 10m; `--soak-sample`\n")
	p("  5s, `--soak-read-ratio` 0.8) samples the node's metrics; RSS is said to\n")
	p("  keep growing when a least-squares fit over the second half's samples adds\n")
	p("  more than %.0f%% of the mid-run RSS (at least %s) over the second half.\n", 100*growthShare, mib(float64(growthFloor)))
	p("- **Measurement.** Latency from an HDR histogram (3\n")
	p("  significant digits) per worker, merged. Seed %d, so every run sends the\n", st.Seed)
	p("  same keys.\n\n")

	if r.Micro != nil {
		p("## Micro-benchmarks\n\n")
		p("Run first, before any server starts (took %s):\n\n", r.Micro.Elapsed.Round(1e9))
		p("```sh\n%s\n```\n\n", r.Micro.Command)
		if r.Micro.Err != "" {
			p("**go test failed:**\n\n```\n%s\n```\n\n", r.Micro.Err)
		}
		p("| package | benchmark | ns/op | B/op | allocs/op | other |\n|---|---|---:|---:|---:|---|\n")
		for _, mb := range r.Micro.Benchmarks {
			ns, _ := mb.Metric("ns/op")
			bop, okB := mb.Metric("B/op")
			allocs, okA := mb.Metric("allocs/op")
			var other []string
			for _, mt := range mb.Metrics {
				switch mt.Unit {
				case "ns/op", "B/op", "allocs/op":
				default:
					other = append(other, fmt.Sprintf("%g %s", mt.Value, mt.Unit))
				}
			}
			p("| %s | %s | %s | %s | %s | %s |\n", strings.TrimPrefix(mb.Package, "github.com/zeppelin-kv/zeppelin/"), mb.Name,
				fmtFloat(ns), optFloat(bop, okB), optFloat(allocs, okA), strings.Join(other, ", "))
		}
		p("\n")
	}

	p("## Other workloads\n\n")
	p("`zpbench --help` lists them all. YCSB's core workloads keep their standard\n")
	p("mixes and request distributions (zipfian is YCSB's scrambled zipfian,\n")
	p("theta 0.99; latest favours the newest acknowledged insert):\n\n")
	p("| workload | mix | keys |\n|---|---|---|\n")
	p("| `ycsb-a` | 50%% read, 50%% update | zipfian |\n")
	p("| `ycsb-b` | 95%% read, 5%% update | zipfian |\n")
	p("| `ycsb-c` | 100%% read | zipfian |\n")
	p("| `ycsb-d` | 95%% read, 5%% insert | latest |\n")
	p("| `ycsb-e` | 95%% scan, 5%% insert | zipfian start, length uniform 1..100 |\n")
	p("| `ycsb-f` | 50%% read, 50%% read-modify-write | zipfian |\n\n")
	p("Scans map onto hashtag SCAN: record i is stored as `{zb:<i/100>}<i>`, so\n")
	p("records 100g..100g+99 share a hashtag and a partition, and a scan of L\n")
	p("records from record s is one SCAN of s's hashtag with the cursor just before\n")
	p("s, reading up to L records and never past the end of s's group (a scan\n")
	p("starting at record 170 of length 50 reads 170..199). Against Redis, which\n")
	p("has no ordered range over string keys, it is an MGET of the same records. A\n")
	p("read-modify-write is a GET then a SET of the key, timed as one operation.\n")
	p("Load the records first:\n\n```sh\n")
	p("zpbench load --meta 127.0.0.1:9221 --keyspace 1000000\n")
	p("zpbench --meta 127.0.0.1:9221 --keyspace 1000000 --workload ycsb-b --conns 16 --pipeline 4 --duration 60s\n")
	p("```\n\n")

	p("## Commands\n\n")
	p("`make bench` writes this page; the suite command of this run was:\n\n```sh\n%s\n```\n\n", r.Command)
	p("Each system, as the suite started it (ports were free ones of that run;\n")
	p("paths are relative to the repository, `$SUITE_DIR` is the run's temporary\n")
	p("directory), and the command of each cell (redis-benchmark's of its first\n")
	p("round: `-n` is sized to each round):\n\n")
	for _, s := range r.Systems {
		p("**%s**\n\n```sh\n", s.Def.Label)
		for _, c := range s.Commands {
			p("%s\n", c)
		}
		if s.Load != nil {
			p("%s   # %s records/s\n", s.LoadCommand, report.Count(s.Load.Rate()))
		}
		if s.BenchLoad != nil {
			p("# the suite SETs redis-benchmark's keys key:000000000000 .. key:%012d (%s records/s)\n",
				s.BenchLoad.Records-1, report.Count(s.BenchLoad.Rate()))
		}
		for _, c := range s.sortedCells() {
			p("%s\n", c.Command)
		}
		p("```\n\n")
	}
	if m := r.Memory; m != nil {
		p("**%s**\n\n```sh\n", memoryDef.Label)
		for _, c := range m.Commands {
			p("%s\n", c)
		}
		if m.LoadCommand != "" {
			p("%s\n", m.LoadCommand)
		}
		if m.ReadsCommand != "" {
			p("%s\n", m.ReadsCommand)
		}
		if m.Soak != nil {
			p("%s\n", m.Soak.Command)
		}
		p("```\n\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// client is c's client; results written before there were several have
// none, and were zpbench's.
func (c *Cell) client() string {
	if c.Client == "" {
		return ClientZpbench
	}
	return c.Client
}

// sortedCells are s's cells by client, then in the order measured.
func (s *SystemResult) sortedCells() []Cell {
	out := slices.Clone(s.Cells)
	order := ClientNames()
	slices.SortStableFunc(out, func(a, b Cell) int {
		return slices.Index(order, a.client()) - slices.Index(order, b.client())
	})
	return out
}

// anyCell is a measured cell of op at pipeline, of any system and client.
func (r *Results) anyCell(op string, pipeline int) *Cell {
	for i := range r.Systems {
		for j := range r.Systems[i].Cells {
			if c := &r.Systems[i].Cells[j]; c.Op == op && c.Pipeline == pipeline && c.Err == "" {
				return c
			}
		}
	}
	return nil
}

func errorsCell(r report.Report) string {
	if r.Errors == 0 {
		return "0"
	}
	var parts []string
	for code, n := range r.ErrorsByCode {
		parts = append(parts, fmt.Sprintf("%s %d", code, n))
	}
	return fmt.Sprintf("%s (%s)", report.Count(float64(r.Errors)), strings.Join(parts, ", "))
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func fmtFloat(v float64) string {
	switch {
	case v >= 100:
		return report.Count(v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func optFloat(v float64, ok bool) string {
	if !ok {
		return ""
	}
	return fmt.Sprintf("%.0f", v)
}

func sortedCodes(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// idleList is each system's idle CPU use.
func idleList(r *Results) string {
	var parts []string
	for _, s := range r.Systems {
		if s.Err == "" || len(s.Cells) > 0 {
			parts = append(parts, fmt.Sprintf("%s %.3f", s.Def.Name, s.IdleCPU))
		}
	}
	return strings.Join(parts, ", ")
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}

func upper(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToUpper(s)
	}
	return out
}
