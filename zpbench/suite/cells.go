package suite

import (
	"context"
	"fmt"
	"time"

	"github.com/zeppelin-kv/zeppelin/zpbench/report"
	"github.com/zeppelin-kv/zeppelin/zpbench/runner"
	"github.com/zeppelin-kv/zeppelin/zpbench/target"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// slot is one system's share of a cell.
type slot struct {
	sys    *system
	cell   Cell
	target target.Target
	wl     *workload.Workload
	runner *runner.Runner
	res    *runner.Result
}

// measureCell measures op at one pipeline depth on every system, in
// alternation: each system warms up once, then the measured time is split
// into rounds, and every round runs each system in turn, starting with a
// different one each round. Load from outside the suite, thermal changes or
// a compaction then weigh on every system alike instead of on whichever
// happened to run at the time. Connections stay open across rounds.
func measureCell(ctx context.Context, cfg *Config, g *procs, systems []*system, op string, pipeline int) []Cell {
	slots := make([]*slot, len(systems))
	cfg.Log.Info("measuring", "op", op, "pipeline", pipeline, "systems", len(systems))
	defer func() {
		for _, s := range slots {
			if s.runner != nil {
				s.runner.Close()
			}
			if s.target != nil {
				s.target.Close()
			}
		}
	}()
	for i, sys := range systems {
		s := &slot{sys: sys, cell: Cell{Op: op, Pipeline: pipeline, Command: cellCommand(cfg, sys, op, pipeline)}}
		slots[i] = s
		if err := s.open(ctx, cfg, op, pipeline); err != nil {
			s.fail(cfg, err)
			continue
		}
		if cfg.Warmup > 0 {
			if _, err := s.runner.Run(ctx, runner.Phase{Duration: cfg.Warmup}); err != nil {
				s.fail(cfg, fmt.Errorf("warm-up: %w", err))
			}
		}
	}
	round := max(cfg.Duration/time.Duration(cfg.Rounds), time.Millisecond)
	before := sampleCPU(g.pids())
	for r := range cfg.Rounds {
		for k := range slots {
			s := slots[(r+k)%len(slots)]
			if s.cell.Err != "" {
				continue
			}
			res, err := s.runner.Run(ctx, runner.Phase{Duration: round})
			if err != nil {
				s.fail(cfg, fmt.Errorf("round %d: %w", r+1, err))
				continue
			}
			if s.res == nil {
				s.res = res
			} else {
				s.res.Merge(res)
			}
		}
	}
	cpu := before.use(sampleCPU(g.pids()))
	cells := make([]Cell, len(slots))
	for i, s := range slots {
		s.cell.CPU = cpu
		if s.cell.Err == "" {
			s.finish(cfg)
		}
		cells[i] = s.cell
	}
	return cells
}

func (s *slot) open(ctx context.Context, cfg *Config, op string, pipeline int) error {
	sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	var err error
	if s.target, err = openTarget(sctx, cfg, s.sys, pipeline, cfg.Log); err != nil {
		return err
	}
	if s.wl, err = workload.New(workload.Params{Name: op, Records: cfg.Keyspace, ValueSize: cfg.ValueSize, Batch: 1, Seed: cfg.Seed}); err != nil {
		return err
	}
	s.runner, err = runner.New(sctx, s.target, s.wl, runner.Config{Conns: cfg.Conns, Workers: cfg.Conns, Pipeline: pipeline, Timeout: cfg.Timeout})
	return err
}

func (s *slot) fail(cfg *Config, err error) {
	s.cell.Err = err.Error()
	cfg.Log.Warn("cell failed", "system", s.sys.def.Name, "op", s.cell.Op, "pipeline", s.cell.Pipeline, "err", err)
}

// finish turns the merged rounds into the cell's report.
func (s *slot) finish(cfg *Config) {
	pipelining := "window"
	if s.target.Pipelining() == target.Batch {
		pipelining = "batch"
	}
	c := &s.cell
	c.Report = report.New(
		report.Target{Kind: s.target.Kind(), Name: s.target.Name(), Pipelining: pipelining},
		report.Workload{Name: c.Op, Distribution: s.wl.DistributionName(), Records: cfg.Keyspace, ValueSize: cfg.ValueSize, Batch: 1, Seed: cfg.Seed},
		report.Config{Conns: cfg.Conns, Workers: cfg.Conns, Pipeline: c.Pipeline, DurationS: cfg.Duration.Seconds(),
			WarmupS: cfg.Warmup.Seconds(), TimeoutS: cfg.Timeout.Seconds(), Rounds: cfg.Rounds},
		s.res)
	cfg.Log.Info("measured", "system", s.sys.def.Name, "op", c.Op, "pipeline", c.Pipeline,
		"ops/s", int(c.Report.OpsPerSec), "p99", report.Micros(c.Report.Latency.P99), "errors", c.Report.Errors)
}
