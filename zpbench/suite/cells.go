package suite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/zpbench/report"
	"github.com/zeppelin-kv/zeppelin/zpbench/runner"
	"github.com/zeppelin-kv/zeppelin/zpbench/target"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// slot is one system's share of a cell, as one client measures it.
type slot struct {
	sys    *system
	index  int // of sys among the systems measured
	client string
	cell   Cell
	// zpbench clients.
	target target.Target
	wl     *workload.Workload
	runner *runner.Runner
	res    *runner.Result
	// redis-benchmark.
	bench *benchMeter
	// Server CPU seconds over the measured rounds, and why it could not
	// be read.
	cpuSecs float64
	cpuErr  error
}

// slotCell is a measured cell and the index of its system.
type slotCell struct {
	index int
	cell  Cell
}

// measureCell measures op at one pipeline depth on every system with
// every client that applies, in alternation: each slot (system and
// client) warms up once, then the measured time is split into rounds, and
// every round runs each slot in turn, starting with a different one each
// round. Load from outside the suite, thermal changes or a compaction then
// weigh on every system alike instead of on whichever happened to run at
// the time; and the RESP clients of a zpnode are measured in the same
// rounds as its native one, so the two fronts compare fairly. Connections
// stay open across rounds (redis-benchmark, a process per round, connects
// again, outside its measured time).
func measureCell(ctx context.Context, cfg *Config, g *procs, systems []*system, op string, pipeline int) []slotCell {
	var slots []*slot
	for i, sys := range systems {
		for _, client := range cfg.Clients {
			if measures(cfg, sys.def, client, op) {
				slots = append(slots, &slot{sys: sys, index: i, client: client,
					cell: Cell{Op: op, Pipeline: pipeline, Client: client, ClientLabel: clientLabel(sys.kind, client, len(sys.respAddrs))}})
			}
		}
	}
	cfg.Log.Info("measuring", "op", op, "pipeline", pipeline, "slots", len(slots))
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
	for _, s := range slots {
		if err := s.open(ctx, cfg, op, pipeline); err != nil {
			s.fail(cfg, err)
			continue
		}
		if err := s.warmup(ctx, cfg.Warmup); err != nil {
			s.fail(cfg, fmt.Errorf("warm-up: %w", err))
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
			c0, err0 := s.sys.serverCPU(ctx)
			err := s.round(ctx, round)
			c1, err1 := s.sys.serverCPU(ctx)
			if err != nil {
				s.fail(cfg, fmt.Errorf("round %d: %w", r+1, err))
			}
			if cerr := errors.Join(err0, err1); cerr != nil {
				s.cpuErr = cerr
			} else {
				s.cpuSecs += c1 - c0
			}
		}
	}
	cpu := before.use(sampleCPU(g.pids()))
	cells := make([]slotCell, len(slots))
	for i, s := range slots {
		s.cell.CPU = cpu
		if s.cell.Err == "" {
			s.finish(cfg)
		}
		cells[i] = slotCell{index: s.index, cell: s.cell}
	}
	return cells
}

func (s *slot) open(ctx context.Context, cfg *Config, op string, pipeline int) error {
	if s.client == ClientRedisBenchmark {
		s.bench = newBenchMeter(cfg, s.sys, op, pipeline)
		s.cell.Command = commandLine(s.bench.command(s.bench.minReq))
		return nil
	}
	s.cell.Command = cellCommand(cfg, s.sys, s.client, op, pipeline)
	sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	var err error
	if s.target, err = openClientTarget(sctx, cfg, s.sys, s.client, pipeline, cfg.Log); err != nil {
		return err
	}
	if s.wl, err = workload.New(workload.Params{Name: op, Records: cfg.Keyspace, ValueSize: cfg.ValueSize, Batch: 1, Seed: cfg.Seed}); err != nil {
		return err
	}
	s.runner, err = runner.New(sctx, s.target, s.wl, runner.Config{Conns: cfg.Conns, Workers: cfg.Conns, Pipeline: pipeline, Timeout: cfg.Timeout})
	return err
}

// warmup runs the slot for d, unmeasured. redis-benchmark runs at least
// once, to learn how many requests make a round.
func (s *slot) warmup(ctx context.Context, d time.Duration) error {
	if s.bench != nil {
		return s.bench.warmup(ctx, d)
	}
	if d <= 0 {
		return nil
	}
	_, err := s.runner.Run(ctx, runner.Phase{Duration: d})
	return err
}

// round measures the slot for d.
func (s *slot) round(ctx context.Context, d time.Duration) error {
	if s.bench != nil {
		return s.bench.round(ctx, d)
	}
	res, err := s.runner.Run(ctx, runner.Phase{Duration: d})
	if err != nil {
		return err
	}
	if s.res == nil {
		s.res = res
	} else {
		s.res.Merge(res)
	}
	return nil
}

func (s *slot) fail(cfg *Config, err error) {
	s.cell.Err = err.Error()
	cfg.Log.Warn("cell failed", "system", s.sys.def.Name, "client", s.client, "op", s.cell.Op, "pipeline", s.cell.Pipeline, "err", err)
}

// finish turns the merged rounds into the cell's report.
func (s *slot) finish(cfg *Config) {
	c := &s.cell
	wl := report.Workload{Name: c.Op, Distribution: "uniform", Records: cfg.Keyspace, ValueSize: cfg.ValueSize, Batch: 1, Seed: cfg.Seed}
	rc := report.Config{Conns: cfg.Conns, Workers: cfg.Conns, Pipeline: c.Pipeline, DurationS: cfg.Duration.Seconds(),
		WarmupS: cfg.Warmup.Seconds(), TimeoutS: cfg.Timeout.Seconds(), Rounds: cfg.Rounds}
	if s.bench != nil {
		rep, err := s.bench.report()
		if err != nil {
			s.fail(cfg, err)
			return
		}
		rep.Target = report.Target{Kind: ClientRedisBenchmark, Name: "redis-benchmark " + strings.Join(s.sys.respAddrs, ","), Pipelining: "batch"}
		rep.Workload, rep.Config = wl, rc
		c.Report = rep
		c.Command = s.bench.firstCmd
	} else {
		pipelining := "window"
		if s.target.Pipelining() == target.Batch {
			pipelining = "batch"
		}
		wl.Distribution = s.wl.DistributionName()
		c.Report = report.New(report.Target{Kind: s.target.Kind(), Name: s.target.Name(), Pipelining: pipelining}, wl, rc, s.res)
	}
	if s.cpuErr != nil {
		cfg.Log.Warn("server CPU not read", "system", s.sys.def.Name, "client", s.client, "op", c.Op, "pipeline", c.Pipeline, "err", s.cpuErr)
	} else {
		c.ServerCPU = &ServerCPU{Seconds: s.cpuSecs, MicrosPerOp: cpuPerOp(s.cpuSecs, c.Report.Ops), Source: s.sys.cpuSource()}
	}
	cfg.Log.Info("measured", "system", s.sys.def.Name, "client", s.client, "op", c.Op, "pipeline", c.Pipeline,
		"ops/s", int(c.Report.OpsPerSec), "p99", report.Micros(c.Report.Latency.P99), "server µs/op", c.cpuMicros(), "errors", c.Report.Errors)
}
