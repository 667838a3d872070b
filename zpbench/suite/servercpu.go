package suite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Server CPU per operation (issue 15): the CPU time the system's server
// processes spent during a cell's measured rounds, over the operations
// completed in them. Throughput moves with whatever else runs on the
// machine; the CPU each operation costs the server moves much less, so it
// shows progress on a noisy machine.

// ServerCPU is the server side's CPU during one cell's measured rounds.
type ServerCPU struct {
	// Seconds of CPU (user and system) of the system's server processes.
	Seconds float64 `json:"seconds"`
	// MicrosPerOp is Seconds over the cell's operations, in µs.
	MicrosPerOp float64 `json:"us_per_op"`
	// Source says where the figure comes from.
	Source string `json:"source"`
}

// cpuPerOp is secs of CPU over ops operations, in µs per operation; 0
// when there were none.
func cpuPerOp(secs float64, ops int64) float64 {
	if ops <= 0 || secs < 0 {
		return 0
	}
	return secs * 1e6 / float64(ops)
}

// parseProcStat reads utime+stime (in clock ticks) and the parent's pid
// from the contents of /proc/<pid>/stat. The command, in parentheses, may
// hold spaces and parentheses itself: fields are counted after the last
// ')'.
func parseProcStat(st string) (ticks uint64, ppid string, ok bool) {
	i := strings.LastIndexByte(st, ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(st[i+1:])
	// After the command: state(0) ppid(1) ... utime(11) stime(12).
	if len(f) <= 12 {
		return 0, "", false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	k, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, "", false
	}
	return u + k, f[1], true
}

// promSum sums the samples of the metric name (exactly that name, any
// labels) in a Prometheus text exposition; ok is false when there is none.
func promSum(text, name string) (sum float64, ok bool) {
	for _, line := range strings.Split(text, "\n") {
		rest, found := strings.CutPrefix(line, name)
		if !found || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if rest[0] == '{' {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				continue
			}
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sum += v
		ok = true
	}
	return sum, ok
}

// promLabels returns the labels of the first sample of the metric name in
// a Prometheus text exposition (info metrics: zeppelin_node_build_info),
// nil when there is none.
func promLabels(text, name string) map[string]string {
	for _, line := range strings.Split(text, "\n") {
		rest, found := strings.CutPrefix(line, name+"{")
		if !found {
			continue
		}
		out := map[string]string{}
		for rest != "" && rest[0] != '}' {
			eq := strings.IndexByte(rest, '=')
			if eq < 0 || eq+1 >= len(rest) || rest[eq+1] != '"' {
				return out
			}
			key := rest[:eq]
			rest = rest[eq+2:]
			var val strings.Builder
			for len(rest) > 0 && rest[0] != '"' {
				if rest[0] == '\\' && len(rest) > 1 {
					switch rest[1] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[1])
					}
					rest = rest[2:]
					continue
				}
				val.WriteByte(rest[0])
				rest = rest[1:]
			}
			out[key] = val.String()
			rest = strings.TrimPrefix(rest, `"`)
			rest = strings.TrimPrefix(rest, ",")
		}
		return out
	}
	return nil
}

// scrapeTimeout bounds one scrape of a node's metrics.
const scrapeTimeout = 5 * time.Second

// scrape returns the Prometheus text exposition served at addr.
func scrape(ctx context.Context, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("scrape %s: %s", addr, resp.Status)
	}
	return string(b), nil
}

// serverCPU returns the CPU seconds the system's servers have used so far:
// for zpnode, the sum over its nodes of process_cpu_seconds_total from
// their metrics (zpmeta left out); for the others, utime+stime of the
// server process from /proc.
func (s *system) serverCPU(ctx context.Context) (float64, error) {
	if s.kind == "zeppelin" {
		var total float64
		for _, addr := range s.metricsAddrs {
			text, err := scrape(ctx, addr)
			if err != nil {
				return 0, err
			}
			v, ok := promSum(text, "process_cpu_seconds_total")
			if !ok {
				return 0, fmt.Errorf("%s: no process_cpu_seconds_total", addr)
			}
			total += v
		}
		return total, nil
	}
	if s.server == nil || !s.server.running() {
		return 0, errors.New("server not running")
	}
	pid := s.server.cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	ticks, _, ok := parseProcStat(string(b))
	if !ok {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return float64(ticks) / clockTicks, nil
}

// cpuSource says where serverCPU reads, for the docs.
func (s *system) cpuSource() string {
	if s.kind == "zeppelin" {
		return fmt.Sprintf("process_cpu_seconds_total of %d node(s)", len(s.metricsAddrs))
	}
	return "/proc/PID/stat utime+stime"
}
