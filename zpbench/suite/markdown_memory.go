package suite

import (
	"fmt"
	"strings"

	"github.com/zeppelin-kv/zeppelin/zpbench/report"
)

// writeMemory writes the memory section: the loaded node's RSS and its
// breakdown, and the soak.
func writeMemory(p func(string, ...any), r *Results) {
	m := r.Memory
	if m == nil {
		return
	}
	p("## Memory\n\n")
	p("A fresh zpnode (1 node, 1 replica, table of %d partitions), started after\n", m.Partitions)
	p("the systems above stopped, loaded with %s records of %d bytes",
		report.Count(float64(m.Keys)), m.ValueSize)
	if m.Load != nil {
		p(" (%s records/s)", report.Count(m.Load.Rate()))
	}
	p(". Its memory\n")
	p("as it reports it in its metrics: RSS (`process_resident_memory_bytes`), the\n")
	p("shared block cache (`zeppelin_node_block_cache_usage_bytes`), the memtables\n")
	p("of every replica (`zeppelin_node_memtable_bytes`), the Go heap the last GC\n")
	p("found live (`go_gc_heap_live_bytes`) and in use (`go_memstats_heap_inuse_bytes`,\n")
	p("up to twice the live heap at GOGC=100), what the Go runtime holds from the OS\n")
	p("(`go_memstats_sys_bytes` less `go_memstats_heap_released_bytes`), RocksDB's\n")
	p("SST readers outside the cache (`zeppelin_node_table_readers_bytes`), and the\n")
	p("rest of RSS: C allocator slack (freed memtables included), RocksDB's other\n")
	p("buffers, thread stacks, code.\n\n")
	if m.Err != "" {
		p("**Failed:** %s\n\n", oneLine(m.Err))
	}
	if len(m.Snapshots) > 0 {
		p("|")
		for _, s := range m.Snapshots {
			p(" | %s", s.When)
		}
		p(" |\n|---|%s\n", strings.Repeat("---:|", len(m.Snapshots)))
		row := func(name string, v func(MemSnapshot) string) {
			p("| %s |", name)
			for _, s := range m.Snapshots {
				p(" %s |", v(s))
			}
			p("\n")
		}
		row("RSS", func(s MemSnapshot) string { return "**" + mib(s.RSS) + "**" })
		row("block cache", func(s MemSnapshot) string { return mib(s.BlockCache) })
		row("memtables", func(s MemSnapshot) string { return mib(s.Memtables) })
		row("SST readers", func(s MemSnapshot) string { return mib(s.TableReaders) })
		row("Go heap live", func(s MemSnapshot) string { return mib(s.GoLive) })
		row("Go heap in use", func(s MemSnapshot) string { return mib(s.GoHeap) })
		row("Go runtime, held", func(s MemSnapshot) string { return mib(s.GoHeld) })
		row("other", func(s MemSnapshot) string { return mib(s.Other()) })
		p("\n")
		if m.Reads != nil {
			p("The GETs (uniform over the records, %d connections, pipeline 1) ran at %s ops/s.\n\n",
				m.Reads.Config.Conns, report.Count(m.Reads.OpsPerSec))
		}
	}
	writeSoak(p, m.Soak)
}

// soakRows is about how many samples the soak table shows.
const soakRows = 12

func writeSoak(p func(string, ...any), s *SoakResult) {
	p("### Soak\n\n")
	if s == nil {
		p("Not run: `make bench-soak` (`zpbench suite --soak 10m`) adds a mixed run of\n")
		p("the node above, its RSS sampled every few seconds.\n\n")
		return
	}
	p("The same node for %s: %.0f%% GET, %.0f%% SET, keys uniform over its records,\n",
		s.Duration, 100*s.ReadRatio, 100*(1-s.ReadRatio))
	p("%d connections, pipeline 1: %s ops/s, %s errors. Memory sampled every %s.\n\n",
		s.Conns, report.Count(s.Report.OpsPerSec), report.Count(float64(s.Report.Errors)), s.Sample)
	if s.Err != "" {
		p("**Failed:** %s\n\n", oneLine(s.Err))
	}
	if len(s.Samples) == 0 {
		return
	}
	p("| RSS at start | peak | end | second half |\n|---:|---:|---:|---|\n")
	p("| %s | %s | %s | %s |\n\n", mib(s.StartRSS), mib(s.PeakRSS), mib(s.EndRSS), growthVerdict(s.Growth))
	p("The block cache and the memtables fill up to their bounds, and the Go heap in\n")
	p("use swings with each GC, on a healthy node: a leak shows in the live Go heap\n")
	p("or in the rest, outside Go and the caches. Second half: live Go heap %s;\n", growthVerdict(s.GrowthLive))
	p("outside Go and the caches %s.\n\n", growthVerdict(s.GrowthOther))
	p("The live Go heap grows while the replicas fill their rings of request ids\n")
	p("(`zeppelin_node_request_ids`, 65,536 per replica, about 76 bytes each), and\n")
	p("the rest while the block cache fills (the C allocator's overhead on its\n")
	p("blocks); both stop at their bounds.")
	if last := s.Samples[len(s.Samples)-1]; last.MallocTrims > 0 {
		p(" The free memory the block cache's churn leaves in the\n")
		p("C allocator's arenas went back to the OS in %d trims (`malloc_trim`, every\n", last.MallocTrims)
		p("30 s), %.1f ms each on average.", 1000*last.MallocTrimSeconds/float64(last.MallocTrims))
	}
	p("\n\n")
	p("| at | RSS | block cache | memtables | SST readers | Go heap live | request ids | Go heap in use | Go runtime, held | other |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	step := max(1, (len(s.Samples)+soakRows-1)/soakRows)
	for i, m := range s.Samples {
		if i%step != 0 && i != len(s.Samples)-1 {
			continue
		}
		p("| %.0fs | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", m.AtSec, mib(m.RSS), mib(m.BlockCache), mib(m.Memtables),
			mib(m.TableReaders), mib(m.GoLive), report.Count(float64(m.RequestIDs)), mib(m.GoHeap), mib(m.GoHeld), mib(m.Other()))
	}
	p("\n")
}

// growthVerdict says whether RSS kept growing, and by how much.
func growthVerdict(g Growth) string {
	if !g.Enough {
		return fmt.Sprintf("too few samples to tell (fewer than %d in the second half)", minGrowthSamples)
	}
	trend := fmt.Sprintf("%+.1f MiB/min, %+.1f MiB over the second half (threshold %s)", g.SlopePerMin/(1<<20), g.Over/(1<<20), mib(g.Threshold))
	if g.Growing {
		return "**still growing**: " + trend
	}
	return "flat: " + trend
}
