package suite

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where the suite ran.
type Machine struct {
	CPU    string `json:"cpu"`
	CPUs   int    `json:"cpus"`
	Memory string `json:"memory"`
	OS     string `json:"os"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	Redis  string `json:"redis"`
	// Git is the commit measured, "+ uncommitted changes" when the tree
	// was dirty.
	Git string `json:"git"`
	// RocksDB is the one the zpnodes ran on; nil when none ran.
	RocksDB *RocksDB `json:"rocksdb,omitempty"`
}

func describeMachine(ctx context.Context, redisServer string, moduleDir string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown", Memory: "unknown", OS: "unknown", Kernel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(v)
				if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
					m.Memory = fmt.Sprintf("%.1f GiB", kb/(1<<20))
				}
			}
		}
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if redisServer != "" {
		m.Redis = redisVersion(ctx, redisServer)
	}
	m.Git = gitDescribe(ctx, moduleDir)
	return m
}

func gitDescribe(ctx context.Context, dir string) string {
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	head, err := run("rev-parse", "--short", "HEAD")
	if err != nil {
		return "unknown"
	}
	if st, err := run("status", "--porcelain"); err == nil && st != "" {
		head += " + uncommitted changes"
	}
	return head
}

// clockTicks is USER_HZ, the unit of /proc CPU times; 100 on Linux.
const clockTicks = 100

// CPUUse is how busy the machine's CPUs were over an interval, in CPUs
// (1.0 = one CPU busy all the time).
type CPUUse struct {
	Busy float64 `json:"busy"`
	// Suite is the suite's own processes: load generator and servers.
	Suite float64 `json:"suite"`
	// Kernel is interrupt handling (loopback networking runs in softirq)
	// and kernel threads (journal commits of fsync, writeback): mostly
	// work the suite causes, but not charged to its processes.
	Kernel float64 `json:"kernel"`
	// Others is every other process on the machine.
	Others float64 `json:"others"`
	// Steal is time the hypervisor gave to other guests: a noisy neighbour.
	Steal float64 `json:"steal"`
}

// cpuSample is one reading of the CPU counters, in clock ticks.
type cpuSample struct {
	at                                time.Time
	busy, irq, steal, suite, kthreads uint64
}

// procTicks returns utime+stime and the parent of a process, from
// /proc/<pid>/stat.
func procTicks(pid string) (ticks uint64, ppid string, ok bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, "", false
	}
	return parseProcStat(string(b))
}

// childTicks returns cutime+cstime of a process: the CPU of its children
// that exited and were waited for.
func childTicks(pid string) uint64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	st := string(b)
	f := strings.Fields(st[strings.LastIndexByte(st, ')')+1:])
	// After the command: ... utime(11) stime(12) cutime(13) cstime(14).
	if len(f) <= 14 {
		return 0
	}
	u, _ := strconv.ParseUint(f[13], 10, 64)
	k, _ := strconv.ParseUint(f[14], 10, 64)
	return u + k
}

// sampleCPU reads /proc/stat, the CPU times of this process and pids, and
// those of kernel threads. Fields it cannot read count as zero.
func sampleCPU(pids []int) cpuSample {
	s := cpuSample{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
		val := func(i int) uint64 {
			if i >= len(f) {
				return 0
			}
			v, _ := strconv.ParseUint(f[i], 10, 64)
			return v
		}
		s.busy = val(1) + val(2) + val(3) + val(6) + val(7)
		s.irq = val(6) + val(7)
		s.steal = val(8)
	}
	for _, pid := range append([]int{os.Getpid()}, pids...) {
		if t, _, ok := procTicks(strconv.Itoa(pid)); ok {
			s.suite += t
		}
	}
	// Children that exited and were waited for (a redis-benchmark run)
	// are in the suite's cutime and cstime.
	s.suite += childTicks(strconv.Itoa(os.Getpid()))
	if entries, err := os.ReadDir("/proc"); err == nil {
		for _, e := range entries {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			// Kernel threads are kthreadd (pid 2) and its children.
			if t, ppid, ok := procTicks(e.Name()); ok && (ppid == "2" || e.Name() == "2") {
				s.kthreads += t
			}
		}
	}
	return s
}

// use is the CPU use between two samples.
func (a cpuSample) use(b cpuSample) CPUUse {
	secs := b.at.Sub(a.at).Seconds()
	if secs <= 0 {
		return CPUUse{}
	}
	cpus := func(d uint64) float64 { return float64(d) / clockTicks / secs }
	busy, suite := b.busy-a.busy, b.suite-a.suite
	kernel := (b.irq - a.irq) + (b.kthreads - a.kthreads)
	u := CPUUse{Busy: cpus(busy), Suite: cpus(suite), Kernel: cpus(kernel), Steal: cpus(b.steal - a.steal)}
	if busy > suite+kernel {
		u.Others = cpus(busy - suite - kernel)
	}
	return u
}
