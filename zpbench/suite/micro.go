package suite

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// MicroConfig configures the Go micro-benchmarks of the suite.
type MicroConfig struct {
	// Skip leaves them out.
	Skip bool
	// Go is the go command; default "go".
	Go string
	// Dir is the module root the packages are relative to.
	Dir string
	// Packages default to DefaultMicroPackages.
	Packages []string
	// Benchtime is go test's -benchtime; default "1s".
	Benchtime string
}

// DefaultMicroPackages are the packages with benchmarks of hot paths: the
// framing, key routing, the binlog, the engine, and zpbench's own recording
// and key generation.
var DefaultMicroPackages = []string{
	"./lib/rpc", "./lib/keyspace", "./lib/binlog", "./lib/engine",
	"./zpbench/latency", "./zpbench/workload", "./zpbench/runner",
}

func (m MicroConfig) packages() []string {
	if len(m.Packages) == 0 {
		return DefaultMicroPackages
	}
	return m.Packages
}

func (m MicroConfig) args() []string {
	bt := m.Benchtime
	if bt == "" {
		bt = "1s"
	}
	return append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", bt, "-count", "1"}, m.packages()...)
}

// MicroResult is the output of go test -bench.
type MicroResult struct {
	Command    string        `json:"command"`
	Benchmarks []MicroBench  `json:"benchmarks"`
	Elapsed    time.Duration `json:"elapsed"`
	// Err is set when go test failed (a package did not build or a
	// benchmark failed); the benchmarks that ran are still listed.
	Err string `json:"error,omitempty"`
}

// MicroBench is one benchmark line.
type MicroBench struct {
	Package    string   `json:"package"`
	Name       string   `json:"name"`
	Iterations int64    `json:"iterations"`
	Metrics    []Metric `json:"metrics"`
}

// Metric is one value of a benchmark line, e.g. 1234 ns/op.
type Metric struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

func runMicro(ctx context.Context, m MicroConfig) *MicroResult {
	goCmd := m.Go
	if goCmd == "" {
		goCmd = "go"
	}
	args := m.args()
	res := &MicroResult{Command: goCmd + " " + strings.Join(args, " ")}
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = m.Dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	res.Elapsed = time.Since(start)
	res.Benchmarks = parseBench(string(out))
	if err != nil {
		res.Err = strings.TrimSpace(err.Error() + "\n" + failures(string(out)) + stderr.String())
	}
	return res
}

// parseBench reads go test -bench output: "pkg:" lines name the package
// of the benchmark lines that follow.
func parseBench(out string) []MicroBench {
	var list []MicroBench
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		b := MicroBench{Package: pkg, Name: f[0], Iterations: n}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			b.Metrics = append(b.Metrics, Metric{Value: v, Unit: f[i+1]})
		}
		list = append(list, b)
	}
	return list
}

// failures returns the FAIL lines of go test output.
func failures(out string) string {
	var b strings.Builder
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "--- FAIL") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// Metric returns the value of the metric with unit, and whether there is
// one.
func (b MicroBench) Metric(unit string) (float64, bool) {
	for _, m := range b.Metrics {
		if m.Unit == unit {
			return m.Value, true
		}
	}
	return 0, false
}
