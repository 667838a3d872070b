// Package playbooks_test runs the Ansible playbooks of this directory
// against 127.0.0.1: site.yml deploys three meta servers and three nodes
// (one inventory host per daemon, connection local, the process
// supervisor, everything under a temporary directory) whose Redis protocol
// fronts must answer a cluster client, a second site.yml must change
// nothing, and upgrade.yml rolls new binaries out while zpbench
// writes to the cluster, without a failed request; then add-node.yml and
// remove-node.yml bring a fourth node in and take it out again. The
// cluster runs as the playbooks deploy it for production: the admin token
// and the cluster secret generated on the controller, mutual TLS on every
// port (certificates made by the test).
//
// It needs ansible-playbook (Debian: ansible-core) and is skipped with
// -short or without it. Binaries come from $ZP_BIN_DIR (make test sets it)
// or are built.
package playbooks_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zeppelin-kv/zeppelin/lib/freeport"
	"github.com/zeppelin-kv/zeppelin/lib/tlsconf"
	"github.com/zeppelin-kv/zeppelin/lib/tlsconf/tlstest"
)

// upgradeVersion is what the upgraded binaries report (INFO, meta list).
const upgradeVersion = "v2-ansible-upgrade-test"

func TestPlaybooks(t *testing.T) {
	if testing.Short() {
		t.Skip("deploys a cluster with ansible-playbook; skipped with -short")
	}
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		t.Skip("ansible-playbook is not installed (Debian: apt-get install ansible-core)")
	}
	// Beside TestLint: the serial plays of upgrade.yml, add-node.yml and
	// remove-node.yml run one host's task at a time, which leaves a core
	// to ansible-lint.
	t.Parallel()
	begin := time.Now()
	tmp := t.TempDir()
	if keep := os.Getenv("ZP_TEST_KEEP"); keep != "" {
		// Debugging, as in lib/testcluster: keep the inventory, the
		// playbook outputs, data and logs after the test.
		var err error
		if tmp, err = os.MkdirTemp(keep, "TestPlaybooks-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("inventory, playbook outputs, data and logs kept in %s", tmp)
	}
	root := moduleRoot(t)
	v1, tools := binaries(t, root, tmp)
	// The upgrade's binaries are linked while site.yml deploys v1: they
	// are first needed by upgrade.yml.
	v2 := filepath.Join(tmp, "bin-v2")
	var v2Err error
	v2Built := make(chan struct{})
	go func() { defer close(v2Built); v2Err = buildUpgrade(root, v2) }()
	t.Cleanup(func() { <-v2Built }) // before the temporary directory goes

	c := newCluster(t, tmp, v1)
	t.Cleanup(c.stop)

	// 1. Deploy from scratch.
	phase := time.Now()
	c.playbook(t, "site.yml")
	c.checkup(t)
	c.checkRESP(t)
	c.checkSecrets(t)
	t.Logf("site.yml deployed the cluster, checkup passed and RESP answers in %v", time.Since(phase).Round(time.Second))

	// 2. Again: nothing may change. On one meta server and one node: the
	// hosts of a group run the same tasks (only their ports and
	// directories differ), and Ansible's per-host work is what makes the
	// run long (92 s for the six hosts on a quiet 2-core machine, 208 s
	// in CI beside the other packages).
	phase = time.Now()
	again := []host{c.hosts[0], c.hosts[3]}
	out := c.playbook(t, "site.yml", "--limit", again[0].name+","+again[1].name)
	recap := parseRecap(t, out)
	for _, h := range again {
		r, ok := recap[h.name]
		if !ok {
			t.Errorf("second site.yml: no PLAY RECAP line for %s", h.name)
			continue
		}
		if r.changed != 0 || r.failed != 0 || r.unreachable != 0 {
			t.Errorf("second site.yml: %s changed=%d failed=%d unreachable=%d, want all 0",
				h.name, r.changed, r.failed, r.unreachable)
		}
	}
	if t.Failed() {
		t.Fatalf("site.yml is not idempotent; its output:\n%s", changedTasks(out))
	}
	if len(recap) != len(again) {
		t.Errorf("second site.yml with --limit %s,%s ran on %d hosts: %v", again[0].name, again[1].name, len(recap), recap)
	}
	t.Logf("second site.yml changed nothing on %d hosts (%v)", len(recap), time.Since(phase).Round(time.Second))

	// 3. Rolling upgrade under load.
	<-v2Built
	if v2Err != nil {
		t.Fatal(v2Err)
	}
	phase = time.Now()
	// The admin token as well: while a meta server restarts, a PULL can
	// miss the table and zpbench then tries to create it, which without
	// the token is refused instead of found to exist.
	// From the first restart on: the first play restarts nothing (it
	// installs files on all six hosts and checks the cluster), and under
	// the load its Ansible work took twice as long.
	var load *load
	c.playbookWatched(t, "upgrade.yml", "PLAY [Upgrade the meta followers", func() {
		load = startLoad(t, filepath.Join(tools, "zpbench"), c.metaAddrs(),
			append(c.tlsArgs(), "--admin-token-file", filepath.Join(c.secretsDir(), "admin-token")))
	}, "-e", "zeppelin_local_bin_dir="+v2)
	if load == nil {
		t.Fatal("upgrade.yml passed without its play that upgrades the meta followers")
	}
	res := load.stop()
	t.Logf("upgrade.yml took %v; zpbench (set, 30s op timeout) in %d rounds: %d writes, %d failed, %d ok/s",
		time.Since(phase).Round(time.Second), res.rounds, res.ops, res.errors, int(float64(res.ops)/res.elapsed.Seconds()))
	for _, e := range res.failures {
		t.Errorf("load: %s", e)
	}
	if res.errors != 0 {
		t.Errorf("load: %d of %d writes failed during the upgrade: %v", res.errors, res.ops, res.errorsByCode)
	}
	if res.ops == 0 {
		t.Errorf("load: no write was measured")
	}
	c.checkup(t)
	// The roll cordons each node while it restarts, and uncordons it; it
	// pauses the meta scheduler, and resumes it.
	for addr, n := range c.nodes(t) {
		if n.Cordoned {
			t.Errorf("%s is still cordoned after upgrade.yml", addr)
		}
	}
	if c.schedulerPaused(t) {
		t.Errorf("the meta scheduler is still paused after upgrade.yml")
	}
	for _, h := range c.hosts {
		if h.daemon == "zpnode" {
			if v := c.nodeVersion(t, h.addr); v != upgradeVersion {
				t.Errorf("%s runs zpnode version %q after the upgrade, want %q", h.addr, v, upgradeVersion)
			}
		}
		for _, bin := range []string{h.daemon, "zpctl"} {
			if !sameFile(t, filepath.Join(h.dir, "bin", bin), filepath.Join(v2, bin)) {
				t.Errorf("%s: %s is not the upgraded binary", h.name, bin)
			}
		}
		if h.daemon == "zpmeta" && !c.runsBinary(t, h, filepath.Join(v2, "zpmeta")) {
			t.Errorf("%s: the running zpmeta was not restarted on the upgraded binary", h.name)
		}
	}

	// 4. A fourth node joins (add-node.yml: start, expand) and leaves
	// (remove-node.yml: shrink, stop, node remove).
	phase = time.Now()
	node4 := c.extra
	c.writeInventory(t, append(c.hosts, node4))
	c.hosts = append(c.hosts, node4) // stopped by the cleanup too
	c.playbook(t, "add-node.yml", "-e", "zeppelin_local_bin_dir="+v2, "-e", "zpnode_add="+node4.name)
	if n, ok := c.nodes(t)[node4.addr]; !ok || n.State != "UP" || n.Replicas == 0 {
		t.Errorf("after add-node.yml, %s is %+v (known: %v), want UP with replicas", node4.addr, n, ok)
	}
	c.checkup(t)
	c.playbook(t, "remove-node.yml", "-e", "zeppelin_local_bin_dir="+v2, "-e", "zpnode_remove="+node4.name)
	if n, ok := c.nodes(t)[node4.addr]; ok {
		t.Errorf("after remove-node.yml, the cluster still has %s: %+v", node4.addr, n)
	}
	if err := exec.Command(filepath.Join(node4.dir, "bin", "zeppelin-ctl"), "zpnode", "status").Run(); err == nil {
		t.Errorf("after remove-node.yml, zpnode of %s still runs", node4.name)
	}
	c.checkup(t)
	t.Logf("add-node.yml and remove-node.yml took %v", time.Since(phase).Round(time.Second))
	t.Logf("all done in %v", time.Since(begin).Round(time.Second))
}

// TestLint checks every playbook with ansible-playbook --syntax-check and,
// when it is installed, the directory with ansible-lint (profile
// production, see .ansible-lint).
func TestLint(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ansible-playbook and ansible-lint; skipped with -short")
	}
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		t.Skip("ansible-playbook is not installed (Debian: apt-get install ansible-core)")
	}
	t.Parallel() // beside TestPlaybooks
	tmp := t.TempDir()
	cfg := filepath.Join(tmp, "ansible.cfg")
	if err := os.WriteFile(cfg, []byte("[defaults]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "ANSIBLE_CONFIG="+cfg, "ANSIBLE_HOME="+tmp,
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(tmp, "tmp"), "ANSIBLE_NOCOLOR=1",
		"XDG_CACHE_HOME="+filepath.Join(tmp, "cache"))
	playbooks, err := filepath.Glob("*.yml")
	if err != nil || len(playbooks) < 5 {
		t.Fatalf("playbooks: %v %v", playbooks, err)
	}
	// One ansible-playbook checks them all (each start costs seconds of
	// CPU); it names the playbook an error is in.
	cmd := exec.Command("ansible-playbook", append([]string{"-i", "inventory/example", "--syntax-check",
		"-e", "zpnode_add=node-1", "-e", "zpnode_remove=node-1"}, playbooks...)...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("ansible-playbook --syntax-check %v: %v\n%s", playbooks, err, out)
	}
	if _, err := exec.LookPath("ansible-lint"); err != nil {
		t.Log("ansible-lint is not installed (Debian: apt-get install ansible-lint); not linted")
		return
	}
	// Niced: a minute or two of CPU that must not slow TestPlaybooks,
	// the suite's longest test, beside it.
	lint := []string{"ansible-lint", "--nocolor"}
	if _, err := exec.LookPath("nice"); err == nil {
		lint = append([]string{"nice", "-n", "10"}, lint...)
	}
	cmd = exec.Command(lint[0], lint[1:]...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("ansible-lint: %v\n%s", err, out)
	}
}

// host is one inventory host: one daemon with its own directories.
type host struct {
	name      string // inventory name
	daemon    string // zpmeta or zpnode
	addr      string // 127.0.0.1:port
	port      int
	redisPort int // a node's RESP port (zpnode_redis_port)
	dir       string
}

type cluster struct {
	// ctx ends the playbook runs (the watchdog of newCluster).
	ctx   context.Context
	dir   string
	v1    string
	inv   string
	hosts []host
	extra host // the node add-node.yml adds
	env   []string
	// tls names the CA and the certificate of every server (127.0.0.1),
	// which the test's clients present too.
	tls tlsconf.Files
}

func newCluster(t *testing.T, tmp, v1 string) *cluster {
	c := &cluster{dir: tmp, v1: v1}
	tlsDir := filepath.Join(tmp, "tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	c.tls = tlstest.NewCA(t, tlsDir, "cluster").Issue(t, tlsDir, "server")
	// 3 meta servers, then 4 nodes: each a native and a RESP port (not
	// the role's default 9241, which `make run` may hold).
	// Below the ephemeral range: the daemons keep their ports across the
	// upgrade's restarts.
	ports, err := freeport.Ports(3 + 2*4)
	if err != nil {
		t.Fatal(err)
	}
	newHost := func(name, daemon string, port, redisPort int) host {
		h := host{name: name, daemon: daemon, port: port, redisPort: redisPort, addr: fmt.Sprintf("127.0.0.1:%d", port), dir: filepath.Join(tmp, name)}
		// The playbooks write a logrotate file; /etc/logrotate.d is not ours.
		if err := os.MkdirAll(filepath.Join(h.dir, "logrotate.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		return h
	}
	for i := range 3 {
		c.hosts = append(c.hosts, newHost(fmt.Sprintf("meta%d", i+1), "zpmeta", ports[i], 0))
	}
	for i := range 3 {
		c.hosts = append(c.hosts, newHost(fmt.Sprintf("node%d", i+1), "zpnode", ports[3+2*i], ports[4+2*i]))
	}
	c.extra = newHost("node4", "zpnode", ports[9], ports[10])
	// A test that runs out of time panics past its cleanups, which would
	// leave the daemons Ansible started (not the test's children) running:
	// a minute before, end the play and stop them.
	var stopPlays context.CancelFunc
	c.ctx, stopPlays = context.WithCancel(context.Background())
	t.Cleanup(stopPlays)
	if deadline, ok := t.Deadline(); ok {
		all := append(slices.Clone(c.hosts), c.extra)
		watchdog := time.AfterFunc(time.Until(deadline)-time.Minute, func() {
			stopPlays()
			stopHosts(all)
		})
		t.Cleanup(func() { watchdog.Stop() })
	}
	c.writeInventory(t, c.hosts)

	ansibleDir := filepath.Join(tmp, "ansible")
	cfg := filepath.Join(ansibleDir, "ansible.cfg")
	if err := os.MkdirAll(ansibleDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("[defaults]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.env = append(os.Environ(),
		"ANSIBLE_CONFIG="+cfg, // not one of the machine's
		"ANSIBLE_HOME="+ansibleDir,
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(ansibleDir, "tmp"),
		"ANSIBLE_REMOTE_TEMP="+filepath.Join(ansibleDir, "remote-tmp"),
		"ANSIBLE_FORKS=10",
		"ANSIBLE_PIPELINING=1",
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_RETRY_FILES_ENABLED=0",
		"ANSIBLE_STDOUT_CALLBACK=default",
		"ANSIBLE_DEPRECATION_WARNINGS=0",
		// Every line of every play, timestamped: with ZP_TEST_KEEP, where
		// a slow run spent its time.
		"ANSIBLE_LOG_PATH="+filepath.Join(tmp, "ansible.log"),
	)
	return c
}

// writeInventory writes the inventory of hosts: all on 127.0.0.1 with the
// process supervisor, as the user running the test, each host with
// directories of its own.
func (c *cluster) writeInventory(t *testing.T, hosts []host) {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]map[string]any{"zpmeta": {}, "zpnode": {}}
	zones := []string{"zone-a", "zone-b", "zone-c"}
	nodes := 0
	for _, h := range hosts {
		vars := map[string]any{
			"zeppelin_bin_dir":       filepath.Join(h.dir, "bin"),
			"zeppelin_conf_dir":      filepath.Join(h.dir, "etc"),
			"zeppelin_log_dir":       filepath.Join(h.dir, "log"),
			"zeppelin_run_dir":       filepath.Join(h.dir, "run"),
			"zeppelin_logrotate_dir": filepath.Join(h.dir, "logrotate.d"),
		}
		if h.daemon == "zpmeta" {
			vars["zpmeta_port"] = h.port
			vars["zpmeta_data_dir"] = filepath.Join(h.dir, "data")
		} else {
			vars["zpnode_port"] = h.port
			vars["zpnode_redis_port"] = h.redisPort
			vars["zpnode_data_dir"] = filepath.Join(h.dir, "data")
			vars["zpnode_zone"] = zones[nodes%3]
			vars["zpnode_rack"] = fmt.Sprintf("r%d", nodes+1)
			vars["zpnode_block_cache"] = 32 << 20
			nodes++
		}
		groups[h.daemon][h.name] = vars
	}
	inv := map[string]any{"all": map[string]any{
		"vars": map[string]any{
			"ansible_connection":         "local",
			"ansible_python_interpreter": "{{ ansible_playbook_python }}",
			"ansible_become":             false,
			"zeppelin_host":              "127.0.0.1",
			"zeppelin_supervisor":        "process",
			"zeppelin_create_user":       false,
			"zeppelin_user":              u.Username,
			"zeppelin_group":             g.Name,
			"zeppelin_manage_packages":   false,
			"zeppelin_local_bin_dir":     c.v1,
			"zeppelin_limit_nofile":      65536,
			"zeppelin_stop_timeout":      30,
			"zeppelin_wait_delay":        1,
			"zeppelin_wait_retries":      120,
			// zeppelin_admin_token and zeppelin_cluster_secret are left
			// to the playbooks: generated in zeppelin_secrets_dir, by
			// default c.secretsDir().
			"zeppelin_tls_cert":           c.tls.Cert,
			"zeppelin_tls_key":            c.tls.Key,
			"zeppelin_tls_ca":             c.tls.CA,
			"zeppelin_tls_verify_clients": true,
			"zeppelin_tables": []map[string]any{
				{"name": "bench", "partitions": 8, "replicas": 3},
			},
		},
		"children": map[string]any{
			"zpmeta": map[string]any{"hosts": groups["zpmeta"]},
			"zpnode": map[string]any{"hosts": groups["zpnode"]},
		},
	}}
	b, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	// The yaml inventory plugin reads .json files too (JSON is YAML).
	c.inv = filepath.Join(c.dir, "inventory.json")
	if err := os.WriteFile(c.inv, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// playbook runs ansible-playbook and returns its output; it fails the test
// when the playbook fails. The output also goes to a log file.
func (c *cluster) playbook(t *testing.T, name string, args ...string) string {
	t.Helper()
	return c.playbookWatched(t, name, "", nil, args...)
}

// playbookWatched is playbook, calling at once, as soon as the output
// first shows the text mark.
func (c *cluster) playbookWatched(t *testing.T, name, mark string, at func(), args ...string) string {
	t.Helper()
	// A bound for a stuck play, not a speed check: upgrade.yml under load
	// on a busy 2-core machine once took more than 6 minutes.
	ctx, cancel := context.WithTimeout(c.ctx, 12*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ansible-playbook", append([]string{"-i", c.inv, name}, args...)...)
	cmd.Env = c.env
	var out bytes.Buffer
	w := &markWriter{buf: &out, mark: []byte(mark), at: at}
	cmd.Stdout = w
	cmd.Stderr = w
	start := time.Now()
	err := cmd.Run()
	logFile := filepath.Join(c.dir, fmt.Sprintf("%s-%d.log", strings.TrimSuffix(name, ".yml"), start.UnixNano()))
	_ = os.WriteFile(logFile, out.Bytes(), 0o644)
	// no_log: the secrets never appear in a play's output, even a failed one's.
	for _, f := range []string{"admin-token", "cluster-secret"} {
		if sec := c.secret(f); sec != "" && strings.Contains(out.String(), sec) {
			t.Errorf("ansible-playbook %s printed the %s (%s)", name, f, logFile)
		}
	}
	if err != nil {
		// CI shows only the start of a long failure: what failed and the
		// daemons' warnings (a node marked DOWN, a failover) come first.
		t.Fatalf("ansible-playbook %s %v: %v after %v\n--- failed tasks:\n%s\n--- warnings and errors the daemons logged:\n%s\n--- the play's last lines:\n%s\n%s",
			name, args, err, time.Since(start).Round(time.Second), failedTasks(out.String()), c.daemonWarnings(),
			tail(out.String(), 100), c.daemonLogs())
	}
	return out.String()
}

func (c *cluster) metaAddrs() string {
	var a []string
	for _, h := range c.hosts {
		if h.daemon == "zpmeta" {
			a = append(a, h.addr)
		}
	}
	return strings.Join(a, ",")
}

// zpctl runs zpctl with the cluster's TLS files and the admin token the
// playbooks generated.
func (c *cluster) zpctl(args ...string) *exec.Cmd {
	return c.zpctlWithoutToken(append([]string{"--admin-token-file", filepath.Join(c.secretsDir(), "admin-token")}, args...)...)
}

func (c *cluster) zpctlWithoutToken(args ...string) *exec.Cmd {
	base := append([]string{"--meta", c.metaAddrs(), "--timeout", "10s"}, c.tlsArgs()...)
	return exec.Command(filepath.Join(c.v1, "zpctl"), append(base, args...)...)
}

// tlsArgs are zpctl's and zpbench's flags for the cluster's TLS.
func (c *cluster) tlsArgs() []string {
	return []string{"--tls-ca", c.tls.CA, "--tls-cert", c.tls.Cert, "--tls-key", c.tls.Key}
}

// secretsDir is where the playbooks generate the secrets on the
// controller: zeppelin_secrets_dir's default, next to the inventory.
func (c *cluster) secretsDir() string { return filepath.Join(filepath.Dir(c.inv), ".zeppelin-secrets") }

// secret returns a generated secret, "" before it exists.
func (c *cluster) secret(name string) string {
	b, _ := os.ReadFile(filepath.Join(c.secretsDir(), name))
	return strings.TrimSpace(string(b))
}

// checkSecrets: the playbooks generated the secrets on the controller
// (private), installed them on every host in files only their owner reads,
// named them to the daemons by path only, and the meta servers refuse a
// change without the token (zpctl exits 12).
func (c *cluster) checkSecrets(t *testing.T) {
	t.Helper()
	private := func(path string, want os.FileMode) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Error(err)
			return
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	private(c.secretsDir(), 0o700)
	secrets := map[string]string{}
	for _, f := range []string{"admin-token", "cluster-secret"} {
		private(filepath.Join(c.secretsDir(), f), 0o600)
		if secrets[f] = c.secret(f); len(secrets[f]) < 32 {
			t.Errorf("the generated %s has %d characters, want 32 or more", f, len(secrets[f]))
		}
	}
	if secrets["admin-token"] == secrets["cluster-secret"] {
		t.Errorf("the admin token and the cluster secret are the same")
	}
	for _, h := range c.hosts {
		etc := filepath.Join(h.dir, "etc")
		for f, want := range secrets {
			path := filepath.Join(etc, f)
			private(path, 0o600)
			if b, err := os.ReadFile(path); err != nil || strings.TrimSpace(string(b)) != want {
				t.Errorf("%s: %s is not the controller's (%v)", h.name, path, err)
			}
		}
		private(filepath.Join(etc, "tls", "key.pem"), 0o600)
		args, err := os.ReadFile(filepath.Join(etc, h.daemon+".env"))
		if err != nil {
			t.Error(err)
			continue
		}
		wantFlags := []string{"--cluster-secret-file " + filepath.Join(etc, "cluster-secret"), "--tls-verify-clients"}
		if h.daemon == "zpmeta" {
			wantFlags = append(wantFlags, "--admin-token-file "+filepath.Join(etc, "admin-token"))
		}
		for _, w := range wantFlags {
			if !strings.Contains(string(args), w) {
				t.Errorf("%s: %s.env lacks %q:\n%s", h.name, h.daemon, w, args)
			}
		}
		for f, sec := range secrets {
			if strings.Contains(string(args), sec) {
				t.Errorf("%s: %s.env holds the %s itself", h.name, h.daemon, f)
			}
		}
	}
	out, err := c.zpctlWithoutToken("table", "create", "no-token", "--partitions", "1", "--replicas", "1").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 12 {
		t.Errorf("zpctl table create without the admin token: %v, want exit 12 (unauthenticated)\n%s", err, out)
	}
}

// checkup wants zpctl checkup to exit 0 (the playbooks waited for it; a
// moment of slack covers a slave reconnecting).
func (c *cluster) checkup(t *testing.T) {
	t.Helper()
	var out []byte
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Second) {
		out, err = c.zpctl("checkup").CombinedOutput()
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("zpctl checkup: %v\n%s", err, out)
	}
}

// checkRESP writes and reads keys of every partition through each node's
// RESP port with a Redis Cluster client seeded with that port alone, as
// `redis-cli -c -p <port>` would: the node must serve RESP where the role
// put it and hand out the other nodes' RESP addresses (zpnode_redis_addr)
// in CLUSTER SLOTS and MOVED.
func (c *cluster) checkRESP(t *testing.T) {
	t.Helper()
	want := map[string]bool{}
	var nodes []host
	for _, h := range c.hosts {
		if h.daemon == "zpnode" {
			want[fmt.Sprintf("127.0.0.1:%d", h.redisPort)] = true
			nodes = append(nodes, h)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tlsCfg, err := tlsconf.ClientConfig(c.tls)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range nodes {
		seed := fmt.Sprintf("127.0.0.1:%d", h.redisPort)
		// The site's table is bench (writeInventory); AUTH selects it.
		rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{seed}, Username: "bench", Password: "x", DisableIdentity: true, TLSConfig: tlsCfg})
		slots, err := rdb.ClusterSlots(ctx).Result()
		if err != nil {
			t.Errorf("%s: CLUSTER SLOTS on %s: %v", h.name, seed, err)
			rdb.Close()
			continue
		}
		got := map[string]bool{}
		for _, s := range slots {
			for _, n := range s.Nodes {
				got[n.Addr] = true
			}
		}
		for a := range want {
			if !got[a] {
				t.Errorf("%s: CLUSTER SLOTS on %s names %v, not %s", h.name, seed, got, a)
			}
		}
		// Keys spread over the slots, so that most are redirected.
		for i := range 16 {
			key, val := fmt.Sprintf("ansible-resp:%s:%d", h.name, i), fmt.Sprintf("v%d", i)
			if err := rdb.Set(ctx, key, val, 0).Err(); err != nil {
				t.Errorf("%s: SET %s through %s: %v", h.name, key, seed, err)
				continue
			}
			if got, err := rdb.Get(ctx, key).Result(); err != nil || got != val {
				t.Errorf("%s: GET %s through %s = %q, %v; want %q", h.name, key, seed, got, err, val)
			}
		}
		rdb.Close()
	}
}

type nodeRow struct {
	State    string `json:"state"`
	Replicas int    `json:"replicas"`
	Cordoned bool   `json:"cordoned"`
}

// nodes is zpctl node list: address -> state and replicas.
func (c *cluster) nodes(t *testing.T) map[string]nodeRow {
	t.Helper()
	out, err := c.zpctl("node", "list", "--output", "json").Output()
	if err != nil {
		t.Fatalf("zpctl node list: %v", err)
	}
	var list struct {
		Nodes []struct {
			Addr string `json:"addr"`
			nodeRow
		} `json:"nodes"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("zpctl node list: %v", err)
	}
	m := map[string]nodeRow{}
	for _, n := range list.Nodes {
		m[n.Addr] = n.nodeRow
	}
	return m
}

// schedulerPaused reports whether the meta scheduler is paused.
func (c *cluster) schedulerPaused(t *testing.T) bool {
	t.Helper()
	out, err := c.zpctl("schedule", "show", "--output", "json").Output()
	if err != nil {
		t.Fatalf("zpctl schedule show: %v", err)
	}
	var st struct {
		Settings struct {
			Paused bool `json:"paused"`
		} `json:"settings"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("zpctl schedule show: %v: %s", err, out)
	}
	return st.Settings.Paused
}

func (c *cluster) nodeVersion(t *testing.T, addr string) string {
	t.Helper()
	out, err := c.zpctl("node", "info", addr, "--output", "json").Output()
	if err != nil {
		t.Errorf("zpctl node info %s: %v", addr, err)
		return ""
	}
	var info struct {
		Server struct {
			Version string `json:"version"`
		} `json:"server"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Errorf("zpctl node info %s: %v", addr, err)
	}
	return info.Server.Version
}

// runsBinary tells whether the host's daemon runs the executable whose
// content is that of want (the installed file was replaced, so the running
// one must have been started after the upgrade).
func (c *cluster) runsBinary(t *testing.T, h host, want string) bool {
	t.Helper()
	pid := readPid(filepath.Join(h.dir, "run", h.daemon+".child.pid"))
	if pid == 0 {
		t.Errorf("%s: no pid file", h.name)
		return false
	}
	return sameFile(t, fmt.Sprintf("/proc/%d/exe", pid), want)
}

// stop stops every daemon, through the supervisor script and, should that
// fail, with SIGKILL from the pid files.
func (c *cluster) stop() { stopHosts(c.hosts) }

// stopHosts stops the daemons of hosts, with their supervisor and, if
// that fails, by their pid files.
func stopHosts(hosts []host) {
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Go(func() {
			ctl := filepath.Join(h.dir, "bin", "zeppelin-ctl")
			if _, err := os.Stat(ctl); err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
				defer cancel()
				_ = exec.CommandContext(ctx, ctl, h.daemon, "stop").Run()
			}
			for _, f := range []string{h.daemon + ".pid", h.daemon + ".child.pid"} {
				if pid := readPid(filepath.Join(h.dir, "run", f)); pid > 0 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		})
	}
	wg.Wait()
}

func (c *cluster) daemonLogs() string {
	var b strings.Builder
	for h, log := range c.logs() {
		fmt.Fprintf(&b, "--- %s (%s) log, last lines:\n%s\n", h.name, h.addr, tail(log, 15))
	}
	return b.String()
}

// logs yields each host's daemon log, skipping those that cannot be read.
func (c *cluster) logs() iter.Seq2[host, string] {
	return func(yield func(host, string) bool) {
		for _, h := range c.hosts {
			data, err := os.ReadFile(filepath.Join(h.dir, "log", h.daemon+".log"))
			if err != nil {
				continue
			}
			if !yield(h, string(data)) {
				return
			}
		}
	}
}

// daemonWarnings returns the last WARN and ERROR lines of each daemon's log.
func (c *cluster) daemonWarnings() string {
	var b strings.Builder
	for h, log := range c.logs() {
		var warn []string
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				warn = append(warn, l)
			}
		}
		if len(warn) > 10 {
			warn = warn[len(warn)-10:]
		}
		for _, l := range warn {
			fmt.Fprintf(&b, "%s: %s\n", h.name, l)
		}
	}
	return b.String()
}

// failedTasks picks the failed tasks' lines (and the task each belongs to)
// out of a play's output.
func failedTasks(out string) string {
	var b strings.Builder
	task := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "TASK [") || strings.HasPrefix(line, "RUNNING HANDLER ["):
			task = line
		case strings.HasPrefix(line, "fatal:") || strings.HasPrefix(line, "failed:") || strings.HasPrefix(line, "ERROR!"):
			fmt.Fprintf(&b, "%s\n  %s\n", task, line)
		}
	}
	return b.String()
}

type recapLine struct{ ok, changed, unreachable, failed int }

var recapRE = regexp.MustCompile(`(?m)^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)`)

// parseRecap reads the PLAY RECAP of ansible-playbook's default output.
func parseRecap(t *testing.T, out string) map[string]recapLine {
	t.Helper()
	i := strings.LastIndex(out, "PLAY RECAP")
	if i < 0 {
		t.Fatalf("no PLAY RECAP in the output:\n%s", tail(out, 50))
	}
	m := map[string]recapLine{}
	for _, s := range recapRE.FindAllStringSubmatch(out[i:], -1) {
		n := func(k int) int { v, _ := strconv.Atoi(s[k]); return v }
		m[s[1]] = recapLine{ok: n(2), changed: n(3), unreachable: n(4), failed: n(5)}
	}
	return m
}

// changedTasks picks the tasks that reported a change out of the output.
func changedTasks(out string) string {
	var b strings.Builder
	task := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "TASK [") || strings.HasPrefix(line, "RUNNING HANDLER [") {
			task = line
		}
		if strings.HasPrefix(line, "changed:") {
			fmt.Fprintf(&b, "%s\n  %s\n", task, line)
		}
	}
	return b.String()
}

// load runs zpbench in back-to-back rounds of a few seconds until stopped,
// so that it covers the whole upgrade however long that takes.
type load struct {
	done   chan struct{}
	result chan loadResult
}

type loadResult struct {
	rounds, ops, errors int64
	errorsByCode        map[string]int64
	elapsed             time.Duration
	failures            []string
}

func startLoad(t *testing.T, zpbench, meta string, extraArgs []string) *load {
	t.Helper()
	l := &load{done: make(chan struct{}), result: make(chan loadResult, 1)}
	go func() {
		res := loadResult{errorsByCode: map[string]int64{}}
		for {
			select {
			case <-l.done:
				l.result <- res
				return
			default:
			}
			// Writes to existing records of the table site.yml created,
			// each with a deadline long enough for a switchover or a
			// failover (SET is retried by lib/client within it).
			cmd := exec.Command(zpbench, append([]string{"--meta", meta, "--table", "bench", "--workload", "set",
				"--keyspace", "10000", "--value-size", "100", "--conns", "2", "--workers", "8",
				"--rate", "200", "--duration", "5s", "--warmup", "0s", "--timeout", "30s",
				"--output", "json", "--quiet"}, extraArgs...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			res.rounds++
			var rep struct {
				Ops          int64             `json:"ops"`
				Errors       int64             `json:"errors"`
				ElapsedS     float64           `json:"elapsed_s"`
				ErrorsByCode map[string]int64  `json:"errors_by_code"`
				ErrorSamples map[string]string `json:"error_samples"`
			}
			if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
				res.failures = append(res.failures, fmt.Sprintf("round %d: zpbench: %v (%v)\n%s", res.rounds, err, jerr, tail(stderr.String(), 20)))
				time.Sleep(500 * time.Millisecond)
				continue
			}
			res.ops += rep.Ops
			res.errors += rep.Errors
			res.elapsed += time.Duration(rep.ElapsedS * float64(time.Second))
			for k, v := range rep.ErrorsByCode {
				res.errorsByCode[k] += v
			}
			if rep.Errors > 0 {
				res.failures = append(res.failures, fmt.Sprintf("round %d: %d errors: %v", res.rounds, rep.Errors, rep.ErrorSamples))
			}
		}
	}()
	return l
}

func (l *load) stop() loadResult {
	close(l.done)
	return <-l.result
}

// binaries returns two directories: v1 (zpmeta, zpnode, zpctl as
// deployed) and tools (zpbench).
func binaries(t *testing.T, root, tmp string) (v1, tools string) {
	t.Helper()
	v1, tools = filepath.Join(tmp, "bin-v1"), filepath.Join(tmp, "tools")
	for _, d := range []string{v1, tools} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src := os.Getenv("ZP_BIN_DIR")
	var build []string
	for _, b := range []string{"zpmeta", "zpnode", "zpctl", "zpbench"} {
		dst := v1
		if b == "zpbench" {
			dst = tools
		}
		// A copy, so that a rebuild of $ZP_BIN_DIR meanwhile changes nothing.
		if src != "" && copyFile(filepath.Join(src, b), filepath.Join(dst, b)) == nil {
			continue
		}
		build = append(build, b)
	}
	for _, b := range build {
		dst := v1
		if b == "zpbench" {
			dst = tools
		}
		if err := goBuild(root, dst, "./"+b); err != nil {
			t.Fatal(err)
		}
	}
	return v1, tools
}

// buildUpgrade builds zpmeta, zpnode and zpctl into dir with another
// version, upgradeVersion. One build stamps one version into every binary,
// as make build does: checkup warns about mixed versions outside an
// upgrade.
func buildUpgrade(root, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return goBuild(root, dir, "-ldflags", "-X github.com/zeppelin-kv/zeppelin/lib/buildinfo.Version="+upgradeVersion,
		"./zpmeta", "./zpnode", "./zpctl")
}

// goBuild runs go build -o dir/ with args (flags, then packages) in root.
func goBuild(root, dir string, args ...string) error {
	cmd := exec.Command("go", append([]string{"build", "-o", dir + "/"}, args...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %w\n%s", args, err, out)
	}
	return nil
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// copyFile copies src to dst (mode 0755).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Error(err)
		return false
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Error(err)
		return false
	}
	return bytes.Equal(x, y)
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// markWriter collects a play's output in buf and calls at once the output
// shows mark. Output is written by one goroutine (exec copies stdout and
// stderr, one writer, in one goroutine), and cmd.Run returns after it.
type markWriter struct {
	buf  *bytes.Buffer
	mark []byte
	at   func()
	seen bool
}

func (w *markWriter) Write(p []byte) (int, error) {
	from := max(0, w.buf.Len()-len(w.mark))
	n, err := w.buf.Write(p)
	if !w.seen && w.at != nil && bytes.Contains(w.buf.Bytes()[from:], w.mark) {
		w.seen = true
		w.at()
	}
	return n, err
}
