package testcluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is one zpmeta or zpnode process. It can be stopped and started
// again with the same address and data directory.
type Process struct {
	Name string
	Addr string
	// MetricsAddr serves /metrics when the cluster has metrics.
	MetricsAddr string
	// RedisAddr serves RESP when the cluster has it (Options.Redis).
	RedisAddr string
	DataDir   string
	LogPath   string
	bin       string
	args      []string
	env       []string // added to the test's environment

	// Inbound and MetaLinks are the node's proxies when the cluster has
	// them (Options.Proxies): in front of it, and towards each meta server.
	Inbound   *Proxy
	MetaLinks []*Proxy

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts the process; it is an error when it is running.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("testcluster: %s is running", p.Name)
	}
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if len(p.env) > 0 {
		cmd.Env = append(os.Environ(), p.env...)
	}
	// Kill the child if the test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("testcluster: start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
	return nil
}

// Kill sends SIGKILL and waits for the process to exit: a crash.
func (p *Process) Kill() error { return p.stop(syscall.SIGKILL, 10*time.Second) }

// Stop sends SIGTERM and waits for a graceful exit, killing it after 20s.
func (p *Process) Stop() error {
	err := p.stop(syscall.SIGTERM, 20*time.Second)
	if err != nil {
		return errors.Join(err, p.Kill())
	}
	return nil
}

func (p *Process) stop(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	// A paused process cannot act on SIGTERM.
	cmd.Process.Signal(syscall.SIGCONT)
	cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(wait):
		return fmt.Errorf("testcluster: %s did not exit %v after %v", p.Name, wait, sig)
	}
	p.mu.Lock()
	if p.cmd == cmd {
		p.cmd, p.exited = nil, nil
	}
	p.mu.Unlock()
	return nil
}

// Restart kills the process and starts it again.
func (p *Process) Restart() error {
	if err := p.Kill(); err != nil {
		return err
	}
	return p.Start()
}

// Pause stops the process with SIGSTOP: it holds its sockets but answers
// nothing, like a hung machine. It returns once every thread of the process
// has stopped: kill(2) only queues the signal, and on a loaded machine a
// thread can run on for a while, answering what a test sends "after" the
// pause.
func (p *Process) Pause() error {
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stopped, err := allThreadsStopped(pid)
		if err != nil || stopped {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testcluster: %s did not stop within 10s of SIGSTOP", p.Name)
		}
		time.Sleep(time.Millisecond)
	}
}

// allThreadsStopped reports whether every thread of pid is in the stopped
// state ("T" in /proc/PID/task/TID/stat).
func allThreadsStopped(pid int) (bool, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("testcluster: %w", err)
	}
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "stat"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // the thread exited
			}
			return false, fmt.Errorf("testcluster: %w", err)
		}
		// The state follows the command name, which is in parentheses
		// and may itself hold spaces or parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) {
			return false, fmt.Errorf("testcluster: unexpected %s/%s/stat: %q", dir, t.Name(), b)
		}
		if state := b[i+2]; state != 'T' && state != 't' {
			return false, nil
		}
	}
	return true, nil
}

// Resume continues a paused process.
func (p *Process) Resume() error { return p.signal(syscall.SIGCONT) }

func (p *Process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("testcluster: %s is not running", p.Name)
	}
	return p.cmd.Process.Signal(sig)
}

// Running reports whether the process was started and has not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Pid is the process id, 0 when not running.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// LogTail returns the last n lines of the process's log.
func (p *Process) LogTail(n int) string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func newProcess(bin, dir, name, addr string, args []string) *Process {
	return &Process{
		Name:    name,
		Addr:    addr,
		DataDir: filepath.Join(dir, name),
		LogPath: filepath.Join(dir, name+".log"),
		bin:     bin,
		args:    args,
	}
}

// CutFromMeta partitions the node from every meta server: its PINGs time
// out, as on a real network partition.
func (p *Process) CutFromMeta() error { return p.setLinks(Blackhole, true, false) }

// CutFromClients partitions the node from clients and other nodes, which
// reach it through its inbound proxy.
func (p *Process) CutFromClients() error { return p.setLinks(Blackhole, false, true) }

// Isolate cuts the node off from everyone.
func (p *Process) Isolate() error { return p.setLinks(Blackhole, true, true) }

// Heal lets all of the node's traffic through again.
func (p *Process) Heal() error { return p.setLinks(Pass, true, true) }

func (p *Process) setLinks(m ProxyMode, meta, inbound bool) error {
	if p.Inbound == nil {
		return fmt.Errorf("testcluster: %s has no proxies (Options.Proxies)", p.Name)
	}
	if inbound {
		p.Inbound.SetMode(m)
	}
	if meta {
		for _, l := range p.MetaLinks {
			l.SetMode(m)
		}
	}
	return nil
}

// waitListening waits until the process itself listens on every one of
// addrs. The cluster picks ports that were free a moment before and
// releases them for the process to bind: another program can take one in
// between, and the process then exits (or a stranger answers in its
// place). Waiting for the bind turns that into a clear error at start.
func (p *Process) waitListening(timeout time.Duration, addrs ...string) error {
	deadline := time.Now().Add(timeout)
	for _, addr := range addrs {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("testcluster: %w", err)
		}
		for {
			if !p.Running() {
				return fmt.Errorf("testcluster: %s exited before listening on %s (port taken?):\n%s", p.Name, addr, p.LogTail(10))
			}
			ok, err := listensOn(p.Pid(), port)
			if err != nil {
				return err
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("testcluster: %s does not listen on %s after %v", p.Name, addr, timeout)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// listensOn reports whether process pid holds a listening TCP socket on
// port: one of its file descriptors is the socket inode /proc/net/tcp{,6}
// lists in state LISTEN (0A) on that port.
func listensOn(pid int, port string) (bool, error) {
	n, err := strconv.Atoi(port)
	if err != nil {
		return false, fmt.Errorf("testcluster: port %q: %w", port, err)
	}
	suffix := fmt.Sprintf(":%04X", n)
	inodes := make(map[string]bool)
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue // no IPv6
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 9 && strings.HasSuffix(f[1], suffix) && f[3] == "0A" {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return false, nil
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return false, nil // exited meanwhile: the caller sees it
	}
	for _, fd := range fds {
		if link, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && inodes[link] {
			return true, nil
		}
	}
	return false, nil
}
