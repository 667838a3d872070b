package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// result is one run of zpctl.
type result struct {
	code           int
	stdout, stderr string
}

// invocation describes how to run zpctl.
type invocation struct {
	args     []string
	stdin    string
	terminal bool
	// stderrTerminal draws progress as a bar.
	stderrTerminal bool
	env            map[string]string
}

func run(t *testing.T, inv invocation) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := Main(ctx, Env{
		Args:             inv.args,
		Stdin:            strings.NewReader(inv.stdin),
		Stdout:           &stdout,
		Stderr:           &stderr,
		Getenv:           func(k string) string { return inv.env[k] },
		IsTerminal:       func() bool { return inv.terminal },
		StderrIsTerminal: func() bool { return inv.stderrTerminal },
	})
	return result{code, stdout.String(), stderr.String()}
}

// cluster is what zpctl is pointed at.
type cluster interface{ MetaAddrs() []string }

// zpctl runs zpctl against cl with args.
func zpctl(t *testing.T, cl cluster, args ...string) result {
	t.Helper()
	metas := cl.MetaAddrs()
	if c, ok := cl.(*inproc.Cluster); ok {
		// The leader only: a follower may answer a read from a copy a
		// moment behind the change the row before made.
		metas = []string{leaderAddr(t, c)}
	}
	return run(t, invocation{args: append([]string{"--meta", strings.Join(metas, ","), "--timeout", "2s"}, args...)})
}

func TestCommands(t *testing.T) {
	// A cluster of its own: the output lists every table and node.
	cl := ownCluster(t, inproc.Options{})
	// The table the rows work on; which node has which role in its
	// partition 0 is meta's choice.
	if r := zpctl(t, cl, "table", "create", "users", "--partitions", "4", "--replicas", "2", "--wait"); r.code != ExitOK || !strings.Contains(r.stdout, "min sync replicas:  0") {
		t.Fatalf("create: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	p0 := pullTable(t, cl, "users").Partitions[0]
	master, slave, other := p0.Master, p0.Slaves[0], ""
	for _, a := range cl.NodeAddrs() {
		if a != master && a != slave {
			other = a
		}
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // exact when wantExact, else a substring
		wantExact  bool
		wantStderr string // substring
		// settle waits for every node to have applied the latest epoch
		// first, for rows whose output reports nodes lagging behind meta.
		settle bool
	}{
		{name: "create again", args: []string{"table", "create", "users", "--partitions", "4", "--replicas", "2"}, wantCode: ExitConflict, wantStderr: "TABLE_EXISTS"},
		{name: "create if not exists", args: []string{"table", "create", "users", "--partitions", "8", "--if-not-exists"}, wantStdout: "partitions:         4"},
		{name: "create too many replicas", args: []string{"table", "create", "big", "--replicas", "5"}, wantCode: ExitUnavailable, wantStderr: "NOT_ENOUGH_NODES"},
		{name: "create invalid", args: []string{"table", "create", "bad", "--partitions", "0"}, wantCode: ExitInvalid, wantStderr: "partitions must be 1..16384, got 0"},
		{name: "create negative", args: []string{"table", "create", "bad", "--partitions", "-1"}, wantCode: ExitUsage},
		{name: "list", args: []string{"table", "list"}, wantStdout: "users  4           2         0         "},
		{name: "show", args: []string{"table", "show", "users"}, wantStdout: "3          12288-16383  ACTIVE"},
		{name: "show missing", args: []string{"table", "show", "nosuch"}, wantCode: ExitNotFound},
		{name: "describe", args: []string{"table", "describe", "users"}, wantStdout: "MASTER (TERM,LSN)"},
		{name: "describe some partitions", args: []string{"table", "describe", "users", "--partitions", "3"}, wantStdout: "(TERM,LSN)\n3          12288-16383  ACTIVE"},
		{name: "describe the partitions of a node", args: []string{"table", "describe", "users", "--node", master}, wantStdout: "\n0          0-4095 "},
		{name: "describe bad partitions", args: []string{"table", "describe", "users", "--partitions", "3-1"}, wantCode: ExitUsage, wantStderr: "--partitions"},
		{name: "dump", args: []string{"table", "dump", "users"}, wantStdout: "per UP node: replicas 2-3, masters 1-2"},
		{name: "dump missing", args: []string{"table", "dump", "nosuch"}, wantCode: ExitNotFound},
		{name: "flush without --yes", args: []string{"table", "flush", "users"}, wantCode: ExitUsage, wantStderr: "refusing without --yes"},
		{name: "flush missing", args: []string{"table", "flush", "nosuch", "--yes"}, wantCode: ExitNotFound, wantStderr: "TABLE_NOT_FOUND"},
		{name: "flush", args: []string{"table", "flush", "users", "--yes"}, wantStdout: "flushed table users (4 partitions)\n", wantExact: true},
		{name: "quota", args: []string{"table", "quota", "users", "--ops", "100"}, wantStdout: "table:    users\nops/s:    100\nbytes/s:  unlimited\nepoch:    "},
		{name: "quota keeps the other limit", args: []string{"table", "quota", "users", "--bytes", "2048"}, wantStdout: "ops/s:    100\nbytes/s:  2048 (2.0 KiB/s)\n"},
		{name: "quota in list", args: []string{"table", "list"}, wantStdout: "100 ops/s, 2.0 KiB/s  off\n"},
		{name: "quota in describe", args: []string{"table", "describe", "users"}, wantStdout: "quota:              100 ops/s, 2.0 KiB/s\n"},
		{name: "quota without limits", args: []string{"table", "quota", "users"}, wantCode: ExitUsage, wantStderr: "--ops, --bytes or both"},
		{name: "quota old flag", args: []string{"table", "quota", "users", "--max-bytes", "1000"}, wantCode: ExitUsage},
		{name: "quota negative", args: []string{"table", "quota", "users", "--ops", "-1"}, wantCode: ExitUsage},
		{name: "quota missing table", args: []string{"table", "quota", "nosuch", "--ops", "1"}, wantCode: ExitNotFound, wantStderr: "TABLE_NOT_FOUND"},
		{name: "quota missing table, one limit", args: []string{"table", "quota", "nosuch", "--ops", "1", "--bytes", "1"}, wantCode: ExitNotFound},
		{name: "quota stale epoch", args: []string{"table", "quota", "users", "--ops", "1", "--expected-epoch", "1"}, wantCode: ExitConflict, wantStderr: "STALE_EPOCH"},
		{name: "quota removed", args: []string{"table", "quota", "users", "--ops", "0", "--bytes", "0"}, wantStdout: "ops/s:    unlimited\nbytes/s:  unlimited\n"},
		{name: "unlimited in describe", args: []string{"table", "describe", "users"}, wantStdout: "quota:              unlimited\n"},
		{name: "create with quota", args: []string{"table", "create", "limited", "--partitions", "2", "--replicas", "2", "--ops", "500", "--bytes", "1048576"}, wantStdout: "quota:              500 ops/s, 1.0 MiB/s\n"},
		{name: "create with quota, listed", args: []string{"table", "list"}, wantStdout: "500 ops/s, 1.0 MiB/s  off\n"},
		{name: "drop quota table", args: []string{"table", "drop", "limited", "--yes"}, wantStdout: "dropped table limited"},
		{name: "slowlog empty", args: []string{"slowlog"}, wantStdout: "no slow requests logged on 3 node(s)\n", wantExact: true},
		{name: "slowlog of a table", args: []string{"slowlog", "--table", "users", master}, wantStdout: "no slow requests logged on 1 node(s)\n", wantExact: true},
		{name: "slowlog unknown table", args: []string{"slowlog", "--table", "nosuch"}, wantCode: ExitNotFound, wantStderr: "TABLE_NOT_FOUND"},
		{name: "slowlog bad limit", args: []string{"slowlog", "--limit", "-1"}, wantCode: ExitUsage},
		{name: "slowlog unreachable node", args: []string{"slowlog", "127.0.0.1:1"}, wantCode: ExitUnavailable, wantStderr: "127.0.0.1:1"},
		{name: "set", args: []string{"set", "users", "alice", "hello"}, wantStdout: "OK\n", wantExact: true},
		{name: "set ttl", args: []string{"set", "users", "bob", "x", "--ttl", "1h"}, wantStdout: "OK\n", wantExact: true},
		{name: "set bad ttl", args: []string{"set", "users", "bob", "x", "--ttl", "soon"}, wantCode: ExitUsage},
		{name: "set negative ttl", args: []string{"set", "users", "bob", "x", "--ttl", "-1s"}, wantCode: ExitInvalid},
		{name: "set empty key", args: []string{"set", "users", "", "x"}, wantCode: ExitInvalid, wantStderr: "EMPTY_KEY"},
		{name: "get", args: []string{"get", "users", "alice"}, wantStdout: "hello\n", wantExact: true},
		{name: "get missing", args: []string{"get", "users", "nobody"}, wantCode: ExitNotFound, wantStderr: "NOT_FOUND"},
		{name: "get unknown table", args: []string{"get", "nosuch", "k"}, wantCode: ExitNotFound, wantStderr: "TABLE_NOT_FOUND"},
		{name: "mget", args: []string{"mget", "users", "alice", "nobody", "bob"}, wantStdout: "KEY     VALUE\nalice   hello\nnobody  (nil)\nbob     x\n", wantExact: true},
		{name: "locate", args: []string{"locate", "users", "foo"}, wantStdout: "slot:       12182"},
		{name: "mset", args: []string{"mset", "users", "{u1}a", "1", "{u1}b", "2", "{u1}c", "3"}, wantStdout: "OK\n", wantExact: true},
		{name: "mset odd", args: []string{"mset", "users", "a", "1", "b"}, wantCode: ExitUsage, wantStderr: "has no value"},
		{name: "scan", args: []string{"scan", "users", "--tag", "u1"}, wantStdout: "KEY    VALUE\n{u1}a  1\n{u1}b  2\n{u1}c  3\n", wantExact: true},
		{name: "scan pages and limit", args: []string{"scan", "users", "--tag", "u1", "--count", "1", "--limit", "2", "--keys-only"}, wantStdout: "{u1}a\n{u1}b\n", wantExact: true},
		{name: "scan without tag", args: []string{"scan", "users"}, wantCode: ExitUsage, wantStderr: "--tag"},
		{name: "incr", args: []string{"incr", "users", "n"}, wantStdout: "1\n", wantExact: true},
		{name: "incr by", args: []string{"incr", "users", "n", "--by", "-5"}, wantStdout: "-4\n", wantExact: true},
		{name: "incr not integer", args: []string{"incr", "users", "alice"}, wantCode: ExitInvalid, wantStderr: "NOT_INTEGER"},
		{name: "del", args: []string{"del", "users", "alice"}, wantStdout: "1\n", wantExact: true},
		{name: "del again", args: []string{"del", "users", "alice"}, wantStdout: "0\n", wantExact: true},
		{name: "node list", args: []string{"node", "list"}, wantStdout: "UP"},
		{name: "node list of a state", args: []string{"node", "list", "--state", "up"}, wantStdout: "UP"},
		{name: "node list bad state", args: []string{"node", "list", "--state", "sideways"}, wantCode: ExitUsage, wantStderr: "--state"},
		{name: "node info", args: []string{"node", "info", master}, wantStdout: "version:         " + buildinfo.Version},
		{name: "node info replicas", args: []string{"node", "info", master, "--section", "server"}, wantStdout: " slaves watched), 0 opening\n"},
		{name: "node info replication", args: []string{"node", "info", master, "--section", "replication", "--table", "users"}, wantStdout: "users  0          master"},
		{name: "node info bad section", args: []string{"node", "info", master, "--section", "disk"}, wantCode: ExitUsage},
		{name: "node info unreachable", args: []string{"node", "info", "127.0.0.1:1"}, wantCode: ExitUnavailable},
		{name: "node logs", args: []string{"node", "logs", master}, wantStdout: " INFO  new topology epoch="},
		{name: "node logs bad level", args: []string{"node", "logs", master, "--level", "loud"}, wantCode: ExitUsage, wantStderr: "--level"},
		{name: "node logs bad lines", args: []string{"node", "logs", master, "--lines", "-1"}, wantCode: ExitUsage},
		{name: "node logs unreachable", args: []string{"node", "logs", "127.0.0.1:1"}, wantCode: ExitUnavailable, wantStderr: "127.0.0.1:1"},
		{name: "node remove an UP node", args: []string{"node", "remove", master, "--yes"}, wantCode: ExitInvalid, wantStderr: "only DOWN nodes"},
		{name: "checkup", args: []string{"checkup"}, wantStdout: "HEALTHY\nepoch", settle: true},
		{name: "stats qps", args: []string{"stats", "qps", "users"}, wantStdout: "ERRORS  QUOTA_EXCEEDED\n"},
		{name: "stats latency", args: []string{"stats", "latency"}, wantStdout: "INFO reports no latency figures yet"},
		{name: "stats space", args: []string{"stats", "space", "users"}, wantStdout: "REPLICAS  USED"},
		{name: "stats repl", args: []string{"stats", "repl", "users"}, wantStdout: "all caught up: yes", settle: true},
		{name: "stats unknown table", args: []string{"stats", "qps", "nosuch"}, wantCode: ExitNotFound},
		{name: "setmaster dry run", args: []string{"setmaster", "users", "0", slave, "--dry-run"}, wantStdout: "Plan: setmaster, 1 move, made at epoch"},
		{name: "setmaster bad partition", args: []string{"setmaster", "users", "x", slave}, wantCode: ExitUsage},
		{name: "setmaster to a non-slave", args: []string{"setmaster", "users", "0", other, "--yes"}, wantCode: ExitInvalid, wantStderr: "setmaster: plan:"},
		{name: "addslave without --yes off a terminal", args: []string{"addslave", "users", "0", other}, wantCode: ExitUsage, wantStderr: "--yes"},
		{name: "removeslave of the master", args: []string{"removeslave", "users", "0", master}, wantCode: ExitInvalid},
		{name: "migrate needs from and to", args: []string{"migrate", "users", "0"}, wantCode: ExitUsage},
		{name: "migrate status", args: []string{"migrate", "status"}, wantStdout: "no moves in progress\n", wantExact: true},
		{name: "migrate cancel nothing", args: []string{"migrate", "cancel", "users", "0"}, wantCode: ExitNotFound, wantStderr: "no move in progress on users/0"},
		{name: "expand takes no nodes", args: []string{"expand", other}, wantCode: ExitUsage},
		{name: "expand nothing to do", args: []string{"expand", "--yes"}, wantStdout: "Nothing to do.\n"},
		{name: "shrink needs nodes", args: []string{"shrink"}, wantCode: ExitUsage},
		{name: "shrink unknown node", args: []string{"shrink", "127.0.0.1:1", "--dry-run"}, wantCode: ExitNotFound},
		{name: "replace-node onto itself", args: []string{"replace-node", master, master}, wantCode: ExitUsage},
		{name: "config", args: []string{"config"}, wantStdout: "meta              127.0.0.1:"},
		{name: "completion bash", args: []string{"completion", "bash"}, wantStdout: "__start_zpctl"},
		{name: "completion zsh", args: []string{"completion", "zsh"}, wantStdout: "#compdef zpctl"},
		{name: "completion fish", args: []string{"completion", "fish"}, wantStdout: "complete -c zpctl"},
		{name: "complete table names", args: []string{"__complete", "table", "describe", ""}, wantStdout: "users\n", wantStderr: "ShellCompDirectiveNoFileComp"},
		{name: "complete node addresses", args: []string{"__complete", "node", "info", ""}, wantStdout: master + "\n", wantStderr: "ShellCompDirectiveNoFileComp"},
		{name: "complete output formats", args: []string{"__complete", "--output", ""}, wantStdout: "table\njson\nyaml\n", wantStderr: "ShellCompDirectiveNoFileComp"},
		{name: "node wait", args: []string{"node", "wait", "--count", "3"}, wantStdout: "ADDR"},
		{name: "meta list", args: []string{"meta", "list"}, wantStdout: "leader: " + leaderAddr(t, cl)},
		{name: "drop without yes off a terminal", args: []string{"table", "drop", "users"}, wantCode: ExitUsage, wantStderr: "--yes"},
		{name: "drop", args: []string{"table", "drop", "users", "--yes"}, wantStdout: "dropped table users"},
		{name: "drop missing", args: []string{"table", "drop", "users", "-y"}, wantCode: ExitNotFound},
		{name: "missing subcommand", args: []string{"table"}, wantCode: ExitUsage, wantStderr: "missing command"},
		{name: "unknown subcommand", args: []string{"table", "frob"}, wantCode: ExitUsage, wantStderr: `unknown command "frob"`},
		{name: "unknown command", args: []string{"frob"}, wantCode: ExitUsage},
		{name: "unknown flag", args: []string{"table", "list", "--frob"}, wantCode: ExitUsage},
		{name: "wrong argument count", args: []string{"get", "users"}, wantCode: ExitUsage},
		{name: "bad output", args: []string{"-o", "xml", "table", "list"}, wantCode: ExitUsage, wantStderr: "xml"},
		{name: "top bad interval", args: []string{"top", "--interval", "1ms"}, wantCode: ExitUsage},
		{name: "bad timeout", args: []string{"--timeout", "0s", "table", "list"}, wantCode: ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.settle {
				waitSettled(t, cl)
			}
			r := zpctl(t, cl, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			if tt.wantExact && r.stdout != tt.wantStdout {
				t.Fatalf("stdout %q, want %q", r.stdout, tt.wantStdout)
			}
			if !tt.wantExact && !strings.Contains(r.stdout, tt.wantStdout) {
				t.Fatalf("stdout does not contain %q:\n%s", tt.wantStdout, r.stdout)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Fatalf("stderr does not contain %q:\n%s", tt.wantStderr, r.stderr)
			}
			if tt.wantCode == ExitOK && tt.wantStderr == "" && r.stderr != "" {
				t.Fatalf("stderr on success: %s", r.stderr)
			}
		})
	}
}

// JSON output is for programs: check it parses and has its field names.
func TestJSONOutput(t *testing.T) {
	cl := sharedCluster(t)
	tbl := addTable(t, cl, 2, 2).Name
	node := cl.Nodes[0].Addr
	leader := leaderAddr(t, cl)
	if r := zpctl(t, cl, "set", tbl, "k", "v"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	// A binary value, written by a program.
	c := newClient(t, cl)
	if err := c.Set(context.Background(), tbl, []byte("bin"), []byte{0xff, 0x00}, 0); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string
		want map[string]any // top-level fields and their values (nil: present, any value)
	}{
		{"get", []string{"get", tbl, "k"}, map[string]any{"table": tbl, "key": "k", "found": true, "value": "v", "encoding": "utf-8"}},
		{"get binary", []string{"get", tbl, "bin"}, map[string]any{"value": "/wA=", "encoding": "base64"}},
		{"set", []string{"set", tbl, "k2", "v2"}, map[string]any{"table": tbl, "key": "k2", "ok": true}},
		{"del", []string{"del", tbl, "k2"}, map[string]any{"deleted": true}},
		{"mget", []string{"mget", tbl, "k", "missing"}, map[string]any{"table": tbl, "results": nil}},
		{"locate", []string{"locate", tbl, "foo"}, map[string]any{"key": "foo", "table": tbl, "slot": 12182.0, "partition": 1.0, "master": nil, "slaves": nil, "epoch": nil}},
		{"table list", []string{"table", "list"}, map[string]any{"epoch": nil, "tables": nil}},
		{"table show", []string{"table", "show", tbl}, map[string]any{"name": tbl, "partition_count": 2.0, "replicas": nil, "min_sync_replicas": nil, "created_epoch": nil, "partitions": nil, "quota": nil}},
		// Real nodes enforce it: high enough for the rows after it.
		{"table quota", []string{"table", "quota", tbl, "--ops", "7000"}, map[string]any{"table": tbl, "quota": map[string]any{"ops_per_sec": 7000.0, "bytes_per_sec": 0.0}, "epoch": nil}},
		{"slowlog", []string{"slowlog"}, map[string]any{"table": "", "nodes": nil, "entries": []any{}, "truncated": false}},
		{"node list", []string{"node", "list"}, map[string]any{"epoch": nil, "nodes": nil}},
		{"meta list", []string{"meta", "list"}, map[string]any{"leader": leader, "epoch": nil, "members": nil}},
		{"table describe", []string{"table", "describe", tbl}, map[string]any{"name": tbl, "epoch": nil, "partitions": nil, "replicas": nil, "quota": map[string]any{"ops_per_sec": 7000.0, "bytes_per_sec": 0.0}}},
		{"table dump", []string{"table", "dump", tbl}, map[string]any{"table": tbl, "epoch": nil, "nodes": nil}},
		{"node info", []string{"node", "info", node}, map[string]any{"addr": node, "node": nil, "server": nil, "stats": nil, "capacity": nil, "replication": nil}},
		{"checkup", []string{"checkup"}, map[string]any{"healthy": true, "epoch": nil, "leader": leader, "checked_at": nil, "summary": nil, "problems": nil}},
		{"stats qps", []string{"stats", "qps"}, map[string]any{"table": "", "epoch": nil, "nodes": nil}},
		{"stats latency", []string{"stats", "latency", tbl}, map[string]any{"table": tbl, "available": false, "note": nil, "nodes": nil}},
		{"stats repl", []string{"stats", "repl", tbl}, map[string]any{"table": tbl, "replicas": nil}},
		{"mset", []string{"mset", tbl, "a", "1"}, map[string]any{"table": tbl, "keys": 1.0, "ok": true}},
		{"incr", []string{"incr", tbl, "counter", "--by", "3"}, map[string]any{"table": tbl, "key": "counter", "value": 3.0}},
		{"scan", []string{"scan", tbl, "--tag", "none"}, map[string]any{"table": tbl, "tag": "none", "count": 0.0, "truncated": false, "results": nil}},
		{"config", []string{"config"}, map[string]any{"meta": nil, "output": nil, "timeout": nil, "config": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.args[0] == "checkup" {
				waitSettled(t, cl) // no node or member a step behind
			}
			r := zpctl(t, cl, append([]string{"-o", "json"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, r.stdout)
			}
			for k, v := range tt.want {
				gv, ok := got[k]
				if !ok {
					t.Fatalf("field %q missing:\n%s", k, r.stdout)
				}
				if v != nil && !reflect.DeepEqual(gv, v) {
					t.Fatalf("field %q = %v, want %v", k, gv, v)
				}
			}
		})
	}

	t.Run("mget items", func(t *testing.T) {
		r := zpctl(t, cl, "-o", "json", "mget", tbl, "k", "missing")
		var got struct {
			Results []map[string]any `json:"results"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got.Results) != 2 {
			t.Fatalf("%v: %s", err, r.stdout)
		}
		if got.Results[0]["found"] != true || got.Results[0]["value"] != "v" || got.Results[1]["found"] != false || got.Results[1]["error"] != "" {
			t.Fatalf("results %v", got.Results)
		}
	})

	t.Run("errors are JSON on stderr", func(t *testing.T) {
		r := zpctl(t, cl, "-o", "json", "get", tbl, "missing")
		var got errorJSON
		if err := json.Unmarshal([]byte(r.stderr), &got); err != nil {
			t.Fatalf("stderr is not JSON: %v\n%s", err, r.stderr)
		}
		if r.code != ExitNotFound || got.ExitCode != ExitNotFound || got.Status != "NOT_FOUND" || got.Error == "" || r.stdout != "" {
			t.Fatalf("exit %d, stderr %+v, stdout %q", r.code, got, r.stdout)
		}
	})
}

// YAML output is the JSON document in YAML syntax: same names, same
// values.
func TestYAMLOutput(t *testing.T) {
	cl := sharedCluster(t)
	tbl := addTable(t, cl, 2, 2).Name
	for _, args := range [][]string{{"table", "describe", tbl}, {"checkup"}, {"node", "list"}, {"stats", "repl"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			waitSettled(t, cl) // checkup: no node or member a step behind
			j := zpctl(t, cl, append([]string{"-o", "json"}, args...)...)
			y := zpctl(t, cl, append([]string{"-o", "yaml"}, args...)...)
			if j.code != 0 || y.code != 0 {
				t.Fatalf("exit %d/%d: %s %s", j.code, y.code, j.stderr, y.stderr)
			}
			var fromJSON, fromYAML map[string]any
			if err := json.Unmarshal([]byte(j.stdout), &fromJSON); err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal([]byte(y.stdout), &fromYAML); err != nil {
				t.Fatalf("%v:\n%s", err, y.stdout)
			}
			// checked_at and heartbeats move between the two runs.
			for _, k := range []string{"checked_at"} {
				delete(fromJSON, k)
				delete(fromYAML, k)
			}
			if len(fromJSON) != len(fromYAML) {
				t.Fatalf("json has %d fields, yaml %d:\n%s", len(fromJSON), len(fromYAML), y.stdout)
			}
			for k := range fromJSON {
				if _, ok := fromYAML[k]; !ok {
					t.Fatalf("yaml lacks %q:\n%s", k, y.stdout)
				}
			}
		})
	}
	t.Run("errors are YAML on stderr", func(t *testing.T) {
		r := zpctl(t, cl, "-o", "yaml", "get", tbl, "missing")
		var got errorJSON
		if err := yaml.Unmarshal([]byte(r.stderr), &got); err != nil || r.code != ExitNotFound || got.Error == "" {
			t.Fatalf("exit %d, %v: %s", r.code, err, r.stderr)
		}
	})
}

func TestConfirmation(t *testing.T) {
	commands := []struct {
		name   string
		args   []string
		prompt string
		// done reports whether the command changed the cluster.
		done func(t *testing.T, cl *inproc.Cluster, table string) bool
	}{
		{"drop", []string{"table", "drop", "{t}"}, `Drop table "{t}" and all its data? [y/N]`,
			func(t *testing.T, cl *inproc.Cluster, table string) bool {
				_, err := leaderClient(t, cl).Pull(testCtx(t), table)
				if err != nil && !errors.Is(err, status.ErrTableNotFound) {
					t.Fatal(err)
				}
				return err != nil
			}},
		{"flush", []string{"table", "flush", "{t}"}, `Flush table "{t}": delete every key on every replica? [y/N]`,
			func(t *testing.T, cl *inproc.Cluster, table string) bool {
				return stored(t, cl, table, []string{"k"}) == 0
			}},
	}
	answers := []struct {
		answer   string
		wantCode int
		done     bool
	}{
		{"y\n", ExitOK, true},
		{"YES\n", ExitOK, true},
		{"n\n", ExitAborted, false},
		{"\n", ExitAborted, false},
		{"", ExitAborted, false}, // EOF
	}
	cl := sharedCluster(t)
	for _, c := range commands {
		for _, tt := range answers {
			t.Run(fmt.Sprintf("%s %q", c.name, tt.answer), func(t *testing.T) {
				table := addTable(t, cl, 1, 1).Name
				meta := leaderAddr(t, cl)
				if r := run(t, invocation{args: []string{"--meta", meta, "set", table, "k", "v"}}); r.code != ExitOK {
					t.Fatalf("set: exit %d: %s", r.code, r.stderr)
				}
				args := slices.Clone(c.args)
				for i, a := range args {
					args[i] = strings.ReplaceAll(a, "{t}", table)
				}
				r := run(t, invocation{
					args:     append([]string{"--meta", meta}, args...),
					stdin:    tt.answer,
					terminal: true,
				})
				if r.code != tt.wantCode {
					t.Fatalf("exit %d, want %d: %s", r.code, tt.wantCode, r.stderr)
				}
				if prompt := strings.ReplaceAll(c.prompt, "{t}", table); !strings.Contains(r.stderr, prompt) {
					t.Fatalf("no prompt on stderr: %q", r.stderr)
				}
				if done := c.done(t, cl, table); done != tt.done {
					t.Fatalf("%s done = %v, want %v", c.name, done, tt.done)
				}
			})
		}
	}
}

func TestMetaFromEnv(t *testing.T) {
	cl := sharedCluster(t)
	r := run(t, invocation{args: []string{"table", "list"}, env: map[string]string{"ZP_META": cl.MetaAddrs()[0]}})
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	// The flag wins over the environment.
	r = run(t, invocation{args: []string{"--meta", "127.0.0.1:1", "--timeout", "1s", "table", "list"}, env: map[string]string{"ZP_META": cl.MetaAddrs()[0]}})
	if r.code != ExitUnavailable {
		t.Fatalf("exit %d, want %d (the flag's unreachable meta)", r.code, ExitUnavailable)
	}
}

func TestAllMetasDown(t *testing.T) {
	// Meta servers of its own, stopped.
	cl := ownCluster(t, inproc.Options{Nodes: -1})
	for _, m := range cl.Metas {
		if err := m.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	if r := zpctl(t, addrs(cl.MetaAddrs()), "table", "list"); r.code != ExitUnavailable {
		t.Fatalf("table list: exit %d, want %d", r.code, ExitUnavailable)
	}
	r := zpctl(t, addrs(cl.MetaAddrs()), "meta", "list")
	if r.code != ExitUnavailable {
		t.Fatalf("meta list: exit %d, want %d", r.code, ExitUnavailable)
	}
	for _, m := range cl.Metas {
		if !strings.Contains(r.stdout, m.Addr) {
			t.Fatalf("meta list does not show %s:\n%s", m.Addr, r.stdout)
		}
	}
	if strings.Count(r.stdout, "connection refused") != len(cl.Metas) {
		t.Fatalf("meta list does not say why:\n%s", r.stdout)
	}
}

func TestExitCode(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("context: %w", err) }
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ExitOK},
		{"plain", errors.New("boom"), ExitError},
		{"server error", status.New(zppb.Code_ERROR, "disk"), ExitError},
		{"usage", usagef("bad"), ExitUsage},
		{"invalid options", wrap(client.ErrInvalidOptions), ExitUsage},
		{"not found", wrap(status.ErrNotFound), ExitNotFound},
		{"table not found", wrap(status.New(zppb.Code_TABLE_NOT_FOUND, "t")), ExitNotFound},
		{"deadline", wrap(context.DeadlineExceeded), ExitUnavailable},
		// A timeout that saw TABLE_NOT_FOUND last is still a timeout.
		{"deadline after not found", fmt.Errorf("%w (last error: %w)", context.DeadlineExceeded, status.ErrTableNotFound), ExitUnavailable},
		{"transport", wrap(rpc.ErrTransport), ExitUnavailable},
		{"no meta", wrap(client.ErrMetaUnreachable), ExitUnavailable},
		{"no leader", wrap(status.ErrNoLeader), ExitUnavailable},
		{"no master", wrap(client.ErrNoMaster), ExitUnavailable},
		{"not enough nodes", wrap(status.ErrNotEnoughNodes), ExitUnavailable},
		{"key too large", wrap(status.ErrKeyTooLarge), ExitInvalid},
		{"not integer", wrap(status.ErrNotInteger), ExitInvalid},
		{"cross slot", wrap(status.ErrCrossSlot), ExitInvalid},
		{"table exists", wrap(status.ErrTableExists), ExitConflict},
		{"stale epoch", wrap(status.ErrStaleEpoch), ExitConflict},
		{"failed precondition", wrap(status.New(zppb.Code_FAILED_PRECONDITION, "node too old")), ExitConflict},
		{"unknown outcome over transport", fmt.Errorf("%w: %w", client.ErrUnknownOutcome, rpc.ErrTransport), ExitUnknown},
		{"aborted", errAborted, ExitAborted},
		{"interrupted", wrap(context.Canceled), ExitAborted},
		{"move failed", wrap(ErrMoveFailed), ExitMoveFailed},
		{"unsupported", wrap(ErrUnsupported), ExitUnsupported},
		{"multi-key failure", &client.MultiError{Op: "mget", Total: 2, Errs: []client.KeyError{{Index: 1, Err: wrap(context.DeadlineExceeded)}}}, ExitUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.want {
				t.Fatalf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestHelpListsExitCodes(t *testing.T) {
	r := run(t, invocation{args: []string{"--help"}})
	if r.code != 0 || !strings.Contains(r.stdout, "Exit codes:") || !strings.Contains(r.stdout, "8  aborted") ||
		!strings.Contains(r.stdout, "11  move failed") {
		t.Fatalf("exit %d, help:\n%s", r.code, r.stdout)
	}
}
