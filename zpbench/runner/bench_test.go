package runner

import (
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/zpbench/target"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// BenchmarkRecorder is the per-operation cost of recording an outcome, with
// every pipeline slot of a worker contending for its recorder.
func BenchmarkRecorder(b *testing.B) {
	r := newRecorder()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		d := 100 * time.Microsecond
		for pb.Next() {
			r.record(workload.Get, d, target.Outcome{})
			d += time.Nanosecond
		}
	})
}
