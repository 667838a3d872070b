package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/zeppelin-kv/zeppelin/zpbench/report"
	"github.com/zeppelin-kv/zeppelin/zpbench/runner"
	"github.com/zeppelin-kv/zeppelin/zpbench/target"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// setupTimeout bounds connecting to a target and creating its table.
const setupTimeout = time.Minute

// bench is one target with its workload and runner.
type bench struct {
	label  string
	spec   targetSpec
	target target.Target
	// table is a Zeppelin target's table, nil for others.
	table  *benchTable
	wl     *workload.Workload
	runner *runner.Runner
}

func (a *app) run(ctx context.Context, r *runFlags) error {
	if r.seed == 0 {
		r.seed = rand.Uint64()
	}
	var benches []*bench
	var tables []*benchTable
	defer func() {
		for _, b := range benches {
			if b.runner != nil {
				b.runner.Close()
			}
			b.target.Close()
		}
		for _, bt := range tables {
			bt.finish(a, r.tableFlags)
		}
	}()
	after := "it is dropped when the run ends (--keep-table keeps it)"
	if r.keepTable {
		after = "it is kept (--keep-table)"
	}
	for i, s := range r.specs() {
		sctx, cancel := context.WithTimeout(ctx, setupTimeout)
		bt, err := a.ensureTable(sctx, &r.targetFlags, s, after)
		cancel()
		if err != nil {
			return err
		}
		if bt != nil {
			tables = append(tables, bt)
		}
		b, err := a.prepare(ctx, r, s)
		if err != nil {
			return err
		}
		b.label, b.spec, b.table = string(rune('A'+i)), s, bt
		benches = append(benches, b)
	}

	var results []*runner.Result
	if r.compare {
		var err error
		if results, err = a.compareRounds(ctx, r, benches); err != nil {
			return err
		}
	} else {
		res, err := a.phase(ctx, r, benches[0], runner.Phase{Warmup: r.warmup, Duration: r.duration, Ops: r.ops})
		if err != nil {
			return err
		}
		results = []*runner.Result{res}
	}

	reports := make([]report.Report, len(benches))
	for i, b := range benches {
		reports[i] = a.report(r, b, results[i])
	}
	var out any = reports[0]
	if r.compare {
		out = report.Compare(reports[0], reports[1])
	}
	if err := write(a.env.Stdout, r.output, out); err != nil {
		return err
	}
	for i, rep := range reports {
		if hint := loadHint(r, benches[i].spec, rep); hint != "" {
			fmt.Fprintln(a.env.Stderr, hint)
		}
	}
	for _, rep := range reports {
		if rep.ErrorRate > r.maxErrorRate {
			return &errorRateError{rate: rep.ErrorRate, limit: r.maxErrorRate}
		}
	}
	return nil
}

// prepare opens a target and its runner.
func (a *app) prepare(ctx context.Context, r *runFlags, s targetSpec) (*bench, error) {
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	t, err := a.open(sctx, &r.targetFlags, s, r.conns, r.pipeline)
	if err != nil {
		return nil, err
	}
	p := r.params()
	p.Seed = r.seed
	wl, err := workload.New(p)
	if err != nil {
		t.Close()
		return nil, err
	}
	rn, err := runner.New(sctx, t, wl, runner.Config{
		Conns:            r.conns,
		Workers:          r.workers,
		Pipeline:         r.pipeline,
		Rate:             r.rate,
		Timeout:          r.timeout,
		Progress:         a.progressFunc(r, t.Kind()),
		ProgressInterval: a.progressInterval(r),
	})
	if err != nil {
		t.Close()
		return nil, err
	}
	return &bench{target: t, wl: wl, runner: rn}, nil
}

// phase runs one phase and ends the progress line.
func (a *app) phase(ctx context.Context, r *runFlags, b *bench, p runner.Phase) (*runner.Result, error) {
	res, err := b.runner.Run(ctx, p)
	if !r.quiet && a.env.StderrIsTerminal {
		fmt.Fprint(a.env.Stderr, "\r\x1b[K")
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.target.Name(), err)
	}
	return res, nil
}

// compareRounds warms both targets up, then alternates rounds between
// them, so that drift on the machine (other load, thermal throttling,
// compactions) hits both alike.
func (a *app) compareRounds(ctx context.Context, r *runFlags, benches []*bench) ([]*runner.Result, error) {
	if r.warmup > 0 {
		for _, b := range benches {
			if _, err := a.phase(ctx, r, b, runner.Phase{Duration: r.warmup}); err != nil {
				return nil, err
			}
		}
	}
	results := make([]*runner.Result, len(benches))
	for round := range r.rounds {
		p := runner.Phase{Duration: r.duration / time.Duration(r.rounds), Ops: r.ops / int64(r.rounds)}
		if round == 0 {
			p.Ops += r.ops % int64(r.rounds)
		}
		if r.duration > 0 && p.Duration == 0 {
			p.Duration = time.Millisecond
		}
		for i, b := range benches {
			res, err := a.phase(ctx, r, b, p)
			if err != nil {
				return nil, err
			}
			if results[i] == nil {
				results[i] = res
			} else {
				results[i].Merge(res)
			}
		}
	}
	return results, nil
}

func (a *app) report(r *runFlags, b *bench, res *runner.Result) report.Report {
	pipelining := "window"
	if b.target.Pipelining() == target.Batch {
		pipelining = "batch"
	}
	p := b.wl.Params()
	rounds := 1
	if r.compare {
		rounds = r.rounds
	}
	return report.New(
		report.Target{Kind: b.target.Kind(), Name: b.target.Name(), Pipelining: pipelining},
		report.Workload{Name: p.Name, Distribution: b.wl.DistributionName(), Records: p.Records, ValueSize: p.ValueSize, Batch: p.Batch, ReadRatio: p.ReadRatio, Seed: p.Seed},
		report.Config{Conns: r.conns, Workers: r.workers, Pipeline: r.pipeline, Rate: r.rate, DurationS: r.duration.Seconds(),
			WarmupS: r.warmup.Seconds(), Ops: r.ops, TimeoutS: r.timeout.Seconds(), Rounds: rounds},
		res)
}

func (a *app) progressInterval(r *runFlags) time.Duration {
	switch {
	case r.quiet:
		return 0
	case r.progress > 0:
		return r.progress
	case a.env.StderrIsTerminal:
		return time.Second
	}
	return 5 * time.Second
}

func (a *app) progressFunc(r *runFlags, label string) func(runner.Progress) {
	if r.quiet {
		return nil
	}
	return func(p runner.Progress) {
		line := report.ProgressLine(label, p)
		if a.env.StderrIsTerminal {
			fmt.Fprint(a.env.Stderr, "\r\x1b[K"+line)
		} else {
			fmt.Fprintln(a.env.Stderr, line)
		}
	}
}

// loadHint is what to tell when reads found no value: the keyspace was not
// loaded (or not all of it), and the command that loads it; "" when every
// read found its value.
func loadHint(r *runFlags, s targetSpec, rep report.Report) string {
	if rep.Misses == 0 {
		return ""
	}
	reads := max(rep.Reads(), rep.Misses)
	cmd := fmt.Sprintf("zpbench load --%s %s", s.kind, s.addr)
	if s.kind == "zeppelin" {
		cmd = fmt.Sprintf("zpbench load --meta %s --table %s", s.addr, r.table)
	}
	cmd += fmt.Sprintf(" --keyspace %d --value-size %d", r.keyspace, r.valueSize)
	return fmt.Sprintf("zpbench: %s of %s reads (%.0f%%) found no value: the keyspace is not loaded; load it first:\n  %s",
		report.Count(float64(rep.Misses)), report.Count(float64(reads)), 100*float64(rep.Misses)/float64(reads), cmd)
}

// textWriter is what the text format needs of a result.
type textWriter interface{ WriteText(io.Writer) }

func write(w io.Writer, format string, v any) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw, ok := v.(textWriter)
	if !ok {
		return errors.New("no text form for this result")
	}
	tw.WriteText(w)
	return nil
}
