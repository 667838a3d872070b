package suite

import (
	"fmt"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/zpbench/report"
)

// goalCell is a measured cell of opsPerSec ops/s over one second, its
// server spending usPerOp µs per operation (no ServerCPU when negative).
func goalCell(client, op string, pipeline int, opsPerSec, usPerOp float64) Cell {
	c := Cell{Op: op, Pipeline: pipeline, Client: client,
		Report: report.Report{Ops: int64(opsPerSec), OpsPerSec: opsPerSec}}
	if usPerOp >= 0 {
		c.ServerCPU = &ServerCPU{Seconds: usPerOp * opsPerSec / 1e6, MicrosPerOp: usPerOp}
	}
	return c
}

func TestWriteGoals(t *testing.T) {
	sys := func(name string, cells ...Cell) SystemResult {
		def, _ := systemDef(name)
		return SystemResult{Def: def, Cells: cells}
	}
	tests := []struct {
		name    string
		systems []SystemResult
		want    []string
	}{
		{
			name: "zpbench: met, at the threshold, not met",
			systems: []SystemResult{
				sys("zpnode-1", goalCell(ClientZpbench, "set", 1, 7000, 40), goalCell(ClientZpbench, "set", 16, 20000, 25.5),
					goalCell(ClientZpbench, "get", 1, 9000, 12)),
				sys("redis", goalCell(ClientZpbench, "set", 1, 10000, 8), goalCell(ClientZpbench, "set", 16, 100000, 3.25),
					goalCell(ClientZpbench, "get", 1, 10000, 7)),
			},
			want: []string{
				"| 1-node SET, pipeline 1, vs Redis (zpbench) | ≥ 70% | 70% | 7,000 / 10,000 | 40.0 / 8.00 | met |",
				"| 1-node SET, pipeline 16, vs Redis (zpbench) | ≥ 50% | 20% | 20,000 / 100,000 | 25.5 / 3.25 | **not met** |",
				"| 1-node GET, pipeline 1, vs Redis (zpbench) | ≥ 80% | 90% | 9,000 / 10,000 | 12.0 / 7.00 | met |",
				"| 1-node GET, pipeline 16, vs Redis (zpbench) | ≥ 60% | n/a |  |  | not measured |",
			},
		},
		{
			name: "redis-benchmark on both sides, not zpbench's cells",
			systems: []SystemResult{
				sys("zpnode-1", goalCell(ClientRedisBenchmark, "get", 16, 60000, 10), goalCell(ClientZpbench, "get", 16, 1, 1)),
				sys("redis", goalCell(ClientRedisBenchmark, "get", 16, 100000, -1), goalCell(ClientZpbench, "get", 16, 1000, 1)),
			},
			want: []string{
				"| 1-node GET, pipeline 16, vs Redis (redis-benchmark) | ≥ 60% | 60% | 60,000 / 100,000 | 10.0 / n/a | met |",
				"| 1-node GET, pipeline 16, vs Redis (zpbench) | ≥ 60% | 0% | 1 / 1,000 | 1.00 / 1.00 | **not met** |",
				"| 1-node SET, pipeline 1, vs Redis (redis-benchmark) | ≥ 70% | n/a |  |  | not measured |",
			},
		},
		{
			name: "replication: 3 nodes against 1, min_sync against async",
			systems: []SystemResult{
				sys("zpnode-1", goalCell(ClientZpbench, "set", 16, 30000, 20)),
				sys("zpnode-3-async", goalCell(ClientZpbench, "set", 16, 14000, 60), goalCell(ClientZpbench, "set", 1, 5000, 70)),
				sys("zpnode-3-sync1", goalCell(ClientZpbench, "set", 16, 13000, 62), goalCell(ClientZpbench, "set", 1, 4000, 80)),
			},
			want: []string{
				"| 3-node async SET, pipeline 16, vs 1-node | ≥ 50% | 47% | 14,000 / 30,000 | 60.0 / 20.0 | **not met** |",
				"| 3-node async SET, pipeline 1, vs 1-node | ≥ 50% | n/a |  |  | not measured |",
				"| 3-node min_sync_replicas=1 SET, pipeline 16, vs async | ≥ 90% | 93% | 13,000 / 14,000 | 62.0 / 60.0 | met |",
				"| 3-node min_sync_replicas=1 SET, pipeline 1, vs async | ≥ 90% | 80% | 4,000 / 5,000 | 80.0 / 70.0 | **not met** |",
			},
		},
		{
			name:    "nothing measured",
			systems: nil,
			want:    []string{"## Goals of issue 15", "| 1-node SET, pipeline 1, vs Redis (zpbench) | ≥ 70% | n/a |  |  | not measured |"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			writeGoals(func(f string, args ...any) { fmt.Fprintf(&b, f, args...) }, &Results{Systems: tt.systems})
			md := b.String()
			if n := strings.Count(md, "\n| ") - 1; n != len(goals) { // less the header
				t.Errorf("%d goal rows, want %d", n, len(goals))
			}
			for _, want := range tt.want {
				if !strings.Contains(md, want+"\n") {
					t.Errorf("goals lack %q", want)
				}
			}
			if t.Failed() {
				t.Log(md)
			}
		})
	}
}
