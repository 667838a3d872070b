// Package workload generates the operations zpbench sends: which command,
// which key, which value. It holds the key scheme of benchmark records, the
// request distributions (uniform, zipfian, latest) and the named workloads,
// among them YCSB's core workloads A to F with their standard definitions.
//
// Generation is deterministic for a seed: every goroutine that issues
// requests owns a Stream seeded from the run's seed and its own index, so a
// run can be repeated with --seed and no generator is shared under a lock.
package workload
