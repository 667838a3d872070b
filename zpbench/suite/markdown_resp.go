package suite

import (
	"fmt"
	"slices"
	"strings"

	"github.com/zeppelin-kv/zeppelin/zpbench/report"
)

// respClients are the clients that speak RESP to zpnode's front.
var respClients = []string{ClientRedisBenchmark, ClientZpbenchCluster}

// regressionPipeline is the depth of issue #13's check: pipelined RESP
// writes share group commits as native ones do, so RESP SET at pipeline 16
// should not fall behind native SET at pipeline 16. A run without 16 is
// checked at its deepest pipeline.
func regressionPipeline(pipelines []int) int {
	if len(pipelines) == 0 || slices.Contains(pipelines, 16) {
		return 16
	}
	return slices.Max(pipelines)
}

// hasRESP reports whether r measured any RESP cell.
func (r *Results) hasRESP() bool {
	for _, s := range r.Systems {
		for _, c := range s.Cells {
			if slices.Contains(respClients, c.Client) {
				return true
			}
		}
	}
	return false
}

// writeRESP writes the section comparing zpnode's RESP front with its
// native protocol and with Redis Cluster.
func writeRESP(p func(string, ...any), r *Results) {
	if !r.hasRESP() {
		return
	}
	st := r.Settings
	p("## Redis protocol (issue #13)\n\n")
	p("zpnode's RESP front against its native protocol on the same cluster, measured\n")
	p("in the same alternating rounds. Reported, not asserted.\n\n")

	var zpnodes []*SystemResult
	for i := range r.Systems {
		if r.Systems[i].Def.Kind == "zeppelin" && slices.Contains(r.Systems[i].Def.Clients, ClientRedisBenchmark) {
			zpnodes = append(zpnodes, &r.Systems[i])
		}
	}
	depth := regressionPipeline(st.Pipelines)
	if c := r.cell("zpnode-1", "set", depth); c != nil {
		var parts []string
		for _, client := range respClients {
			rc := r.clientCell("zpnode-1", client, "set", depth)
			if _, s := cellRatio(rc, c); s != "n/a" {
				parts = append(parts, fmt.Sprintf("%s with `%s` (%s ops/s)", s, rc.ClientLabel, report.Count(rc.Report.OpsPerSec)))
			}
		}
		if len(parts) > 0 {
			p("**No-regression check: SET at pipeline %d on zpnode (1 node), RESP as a share\n", depth)
			p("of native (`zpbench --meta`, %s ops/s): %s.**\n\n", report.Count(c.Report.OpsPerSec), strings.Join(parts, "; "))
		}
	}
	p("| system | op | pipeline | native ops/s | redis-benchmark ops/s | share of native | zpbench --redis-cluster ops/s | share of native |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range zpnodes {
		for _, op := range st.Ops {
			for _, pl := range st.Pipelines {
				native := r.cell(s.Def.Name, op, pl)
				row := fmt.Sprintf("| %s | %s | %d | %s |", s.Def.Name, strings.ToUpper(op), pl, opsOf(native))
				for _, client := range respClients {
					rc := r.clientCell(s.Def.Name, client, op, pl)
					_, share := cellRatio(rc, native)
					row += fmt.Sprintf(" %s | %s |", opsOf(rc), share)
				}
				p("%s\n", row)
			}
		}
	}
	p("\n")

	if rc := r.system("redis-cluster"); rc != nil {
		p("zpnode's RESP front as a share of Redis Cluster (one node, all slots) with\n")
		p("the same client, keys and commands:\n\n")
		p("| client | op | pipeline |")
		for _, s := range zpnodes {
			p(" %s / Redis Cluster |", s.Def.Name)
		}
		p("\n|---|---|---:|%s\n", strings.Repeat("---:|", len(zpnodes)))
		for _, client := range respClients {
			for _, op := range st.Ops {
				for _, pl := range st.Pipelines {
					base := r.clientCell("redis-cluster", client, op, pl)
					if base == nil {
						continue
					}
					p("| %s | %s | %d |", base.ClientLabel, strings.ToUpper(op), pl)
					for _, s := range zpnodes {
						_, share := cellRatio(r.clientCell(s.Def.Name, client, op, pl), base)
						p(" %s |", share)
					}
					p("\n")
				}
			}
		}
		p("\n")
	}
}

func opsOf(c *Cell) string {
	if c == nil {
		return "n/a"
	}
	return report.Count(c.Report.OpsPerSec)
}

// writeRESPMethod explains the RESP cells in the Method section.
func writeRESPMethod(p func(string, ...any), r *Results) {
	if !r.hasRESP() {
		return
	}
	st := r.Settings
	p("- **RESP.** Every zpnode serves RESP (`--redis-addr`, `--redis-table bench`,\n")
	p("  the table the native cells use). The RESP clients measure the 1-node and\n")
	p("  3-node async clusters and a Redis Cluster: redis-server with\n")
	p("  `--cluster-enabled yes` and `CLUSTER ADDSLOTSRANGE 0 16383`, one node with\n")
	p("  every slot, AOF as above. A cluster-enabled Redis, not the plain one,\n")
	p("  because go-redis's ClusterClient needs `CLUSTER SLOTS` (a plain Redis\n")
	p("  refuses it) and because it, like zpnode's front, maps every key to its\n")
	p("  slot: both sides get the same client, keys and commands. redis-benchmark\n")
	p("  also measures the plain Redis: the other side of issue 15's goals with\n")
	p("  that client.\n")
	p("- **redis-benchmark** (the C binary, single-threaded, a process per round):\n")
	p("  `-t set|get -c %d -d %d -r %d -P <pipeline> --csv`. It sends a number\n", st.Conns, st.ValueSize, st.Keyspace)
	p("  of requests, not for a time, so the warm-up learns the rate and each\n")
	p("  round's `-n` is sized from the run before to last a round; throughput is\n")
	p("  its requests over its own measured time (connecting excluded), latency\n")
	p("  percentiles are its per-round figures weighted by requests. On one node\n")
	p("  (Redis, Redis Cluster, zpnode 1-node) it runs without `--cluster`:\n")
	p("  redis-benchmark 7.0 refuses `--cluster` with one node (\"Invalid cluster: 1\n")
	p("  node(s)\"), and one node owns every key. Before its GET cells the suite\n")
	p("  writes its keys (`key:<12 digits>`, every one of the -r range) there. On 3\n")
	p("  nodes it runs with `--cluster`, which puts a random slot's hash tag in\n")
	p("  every key (`key:{tag}:<12 digits>`), so its GETs there read **missing\n")
	p("  keys** whatever was written: compare those with each other only.\n")
	p("- **zpbench --redis-cluster**: go-redis's ClusterClient through the RESP\n")
	p("  seeds, %d connections per node; a pipeline is split per node by\n", st.Conns)
	p("  go-redis. Same keys and records as the native cells.\n")
	p("- **CPU.** redis-benchmark's processes count with the suite's (the\n")
	p("  children's time of the suite's process).\n")
}
